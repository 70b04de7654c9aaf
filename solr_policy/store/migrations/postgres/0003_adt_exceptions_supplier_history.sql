-- What SQLite's migration 10 adds: the exceptions of an ADT file (named Device sets exempt
-- from its thresholds, or held to their own), and each Device's responsible Supplier as a
-- history with effective times (a change of Supplier during a SoLR event, or one scheduled).

ALTER TABLE adt_files ADD COLUMN exceptions TEXT NOT NULL DEFAULT '[]';

CREATE TABLE supplier_history (
    device TEXT COLLATE "C" NOT NULL,
    effective_from TEXT COLLATE "C" NOT NULL,
    supplier TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (device, effective_from)
);
