-- What SQLite's migrations 6-9 add (on main beside this store): the Merkle tree over the audit
-- entries and signed checkpoints, the counter a decision took in its audit entry, the nonces
-- of signed governance statements, and SMKI trust anchors with each certificate's provenance.
-- The store methods that use them come with those changes (written once, in store/sql.py).

ALTER TABLE audit_head ADD COLUMN frontier TEXT;
CREATE TABLE log_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL, PRIMARY KEY (level, idx));
-- "rowid" is SQLite's implicit row number, which the shared SQL orders checkpoints by.
CREATE TABLE checkpoints (
    rowid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size BIGINT NOT NULL,
    root TEXT NOT NULL,
    at TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX checkpoints_size ON checkpoints (size);

ALTER TABLE audit ADD COLUMN counter TEXT COLLATE "C";
CREATE INDEX audit_counter ON audit (originator, counter);

CREATE TABLE statements (nonce TEXT COLLATE "C" PRIMARY KEY, digest TEXT NOT NULL, at TEXT NOT NULL);

ALTER TABLE certificates ADD COLUMN provenance TEXT;
CREATE TABLE trust_anchors (
    fingerprint TEXT COLLATE "C" PRIMARY KEY,
    subject TEXT COLLATE "C" NOT NULL,
    der BYTEA NOT NULL,
    added_at TEXT NOT NULL,
    added_by TEXT NOT NULL
);
