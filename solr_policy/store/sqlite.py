"""SQLite implementation of the store: WAL journal, one connection per thread.

Writes happen inside ``transaction()`` (``BEGIN IMMEDIATE``), so a decision, its counter
and its audit entry commit together or not at all; WAL with ``synchronous=FULL`` makes a
committed transaction survive a crash or power cut. Several processes may share one file:
``busy_timeout`` makes them queue for the write lock instead of failing. The store methods
themselves are ``store.sql.SqlStore``'s, shared with the PostgreSQL store.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from solr_policy.errors import StoreUnavailable
from solr_policy.records import AuditEntry
from solr_policy.store.sql import STATIC_FACT_TABLES, Cursor, Row, SqlStore

ENV_DB = "SOLR_POLICY_DB"
# FULL (default): a committed decision survives a power cut. NORMAL: it survives a crash of
# the process, and a power cut may lose the last commits (faster; see README, Durable state).
ENV_SYNCHRONOUS = "SOLR_POLICY_SYNCHRONOUS"

MIGRATIONS: list[str] = [
    # 1: certificates
    """
    CREATE TABLE certificates (
        issuer TEXT NOT NULL,
        serial TEXT NOT NULL,
        subject TEXT NOT NULL,
        subject_eui TEXT,
        role INTEGER,
        key_usage TEXT NOT NULL,
        not_before TEXT NOT NULL,
        not_after TEXT NOT NULL,
        status TEXT NOT NULL,
        spki_sha256 TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        der BLOB NOT NULL,
        lenient INTEGER NOT NULL DEFAULT 0,
        imported_at TEXT NOT NULL,
        PRIMARY KEY (issuer, serial)
    );
    CREATE INDEX certificates_eui ON certificates (subject_eui);
    CREATE INDEX certificates_spki ON certificates (spki_sha256);
    """,
    # 2: the world, replay counters and the hash-chained audit trail
    """
    CREATE TABLE parties (id TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE users (
        id TEXT PRIMARY KEY, party TEXT NOT NULL REFERENCES parties (id),
        role TEXT NOT NULL, status TEXT NOT NULL
    );
    CREATE TABLE devices (
        id TEXT PRIMARY KEY, type TEXT NOT NULL, smets TEXT NOT NULL,
        supplier TEXT NOT NULL REFERENCES parties (id)
    );
    CREATE TABLE instructions (
        reference TEXT PRIMARY KEY,
        failed_supplier TEXT NOT NULL REFERENCES parties (id),
        solr_party TEXT NOT NULL REFERENCES parties (id),
        effective_from TEXT NOT NULL, effective_until TEXT, status TEXT NOT NULL
    );
    CREATE INDEX instructions_solr ON instructions (solr_party);
    CREATE TABLE counters (originator TEXT PRIMARY KEY, last_counter TEXT NOT NULL);
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL,
        actor TEXT, originator TEXT, device TEXT, instruction TEXT,
        payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
    );
    CREATE INDEX audit_device ON audit (device);
    CREATE INDEX audit_instruction ON audit (instruction);
    CREATE INDEX audit_actor ON audit (actor);
    """,
    # 3: governance: instruction lifecycle, officers, ADT files and usage, quarantine
    """
    ALTER TABLE instructions ADD COLUMN scope TEXT;
    ALTER TABLE instructions ADD COLUMN proposed_by TEXT;
    ALTER TABLE instructions ADD COLUMN approved_by TEXT;
    CREATE TABLE instruction_events (
        id INTEGER PRIMARY KEY, reference TEXT NOT NULL REFERENCES instructions (reference),
        at TEXT NOT NULL, action TEXT NOT NULL, officer TEXT NOT NULL, reason TEXT NOT NULL
    );
    CREATE TABLE officers (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, party TEXT,
        public_key TEXT, status TEXT NOT NULL, appointed_by TEXT, appointed_at TEXT NOT NULL,
        removed_by TEXT, removed_at TEXT
    );
    CREATE TABLE adt_files (
        reference TEXT PRIMARY KEY, party TEXT NOT NULL, user_id TEXT NOT NULL, supplier TEXT NOT NULL,
        aro TEXT NOT NULL, submitted_at TEXT NOT NULL, thresholds TEXT NOT NULL, sha256 TEXT NOT NULL,
        status TEXT NOT NULL
    );
    CREATE INDEX adt_files_user ON adt_files (user_id, supplier, status);
    CREATE TABLE adt_usage (
        user_id TEXT NOT NULL, supplier TEXT NOT NULL, srv TEXT NOT NULL, period TEXT NOT NULL,
        window_start TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (user_id, supplier, srv, period, window_start)
    );
    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, originator TEXT NOT NULL, device TEXT NOT NULL,
        srv TEXT NOT NULL, counter TEXT NOT NULL, raw BLOB NOT NULL, decision TEXT NOT NULL,
        status TEXT NOT NULL, resolved_by TEXT, resolved_at TEXT, reason TEXT
    );
    """,
    # 4: Shared Resource Providers and alert deliveries (R7)
    """
    CREATE TABLE srps (id TEXT PRIMARY KEY, name TEXT NOT NULL, endpoint TEXT NOT NULL);
    CREATE TABLE srp_suppliers (
        supplier TEXT PRIMARY KEY REFERENCES parties (id), srp TEXT NOT NULL REFERENCES srps (id)
    );
    CREATE TABLE alert_deliveries (
        id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, response_id TEXT NOT NULL,
        recipient TEXT NOT NULL, device TEXT, alert TEXT NOT NULL, raw BLOB NOT NULL,
        status TEXT NOT NULL, target_kind TEXT, target_id TEXT, endpoint TEXT, reason TEXT NOT NULL,
        routed_at TEXT
    );
    CREATE INDEX alert_deliveries_status ON alert_deliveries (status);
    """,
    # 5: the head of the audit chain, so that losing the newest entries is detected too
    """
    CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
    INSERT INTO audit_head (id, seq, hash) SELECT 1, seq, hash FROM audit ORDER BY seq DESC LIMIT 1;
    """,
    # 6: the Merkle tree over the audit entries (RFC 9162): frontier in the head, kept interior
    # levels, and signed checkpoints. An older store's tree is built from its entries on open.
    """
    ALTER TABLE audit_head ADD COLUMN frontier TEXT;
    CREATE TABLE log_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx));
    CREATE TABLE checkpoints (size INTEGER NOT NULL, root TEXT NOT NULL, at TEXT NOT NULL, note TEXT NOT NULL);
    CREATE INDEX checkpoints_size ON checkpoints (size);
    """,
    # 7: the counter a decision took, in its (hashed) audit entry: replay protection that a
    # rolled-back counters table cannot undo
    """
    ALTER TABLE audit ADD COLUMN counter TEXT;
    CREATE INDEX audit_counter ON audit (originator, counter);
    """,
    # 8: signed governance statements applied, by nonce (each applies at most once)
    """
    CREATE TABLE statements (nonce TEXT PRIMARY KEY, digest TEXT NOT NULL, at TEXT NOT NULL);
    """,
    # 9: SMKI trust: why each certificate is trusted, and the trust anchors governance added
    """
    ALTER TABLE certificates ADD COLUMN provenance TEXT;
    CREATE TABLE trust_anchors (
        fingerprint TEXT PRIMARY KEY, subject TEXT NOT NULL, der BLOB NOT NULL, added_at TEXT NOT NULL, added_by TEXT NOT NULL
    );
    """,
    # 10: ADT file exceptions, and each Device's responsible Supplier as a history (PostgreSQL 0003)
    """
    ALTER TABLE adt_files ADD COLUMN exceptions TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE supplier_history (
        device TEXT NOT NULL, effective_from TEXT NOT NULL, supplier TEXT NOT NULL, PRIMARY KEY (device, effective_from)
    );
    """,
    # 11: a generation of the static world facts (Users, instructions, ADT files, certificates),
    # bumped by triggers (see _generation_triggers) in the transaction of any change to them
    """
    CREATE TABLE world_generation (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL);
    INSERT INTO world_generation (id, generation) VALUES (1, 0);
    """,
]

SQLITE_MAGIC = b"SQLite format 3\x00"


def _generation_triggers() -> list[str]:
    """Triggers bumping ``world_generation`` on any change to a table of ``STATIC_FACT_TABLES``:
    a cache of those facts (``engine.facts``) is right exactly while the generation is unchanged,
    whichever program or node made the change."""
    return [
        f"CREATE TRIGGER {table}_generation_{op.lower()} AFTER {op} ON {table}"
        # Not INSERT OR IGNORE: in a trigger the outer statement's conflict policy would win.
        " BEGIN INSERT INTO world_generation (id, generation) SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM world_generation);"
        " UPDATE world_generation SET generation = generation + 1 WHERE id = 1; END"
        for table in STATIC_FACT_TABLES
        for op in ("INSERT", "UPDATE", "DELETE")
    ]


def default_db_path() -> Path:
    return Path(os.environ.get(ENV_DB) or "solr-policy.db")


class SqliteStore(SqlStore):
    """The embedded store; implements every role protocol of ``store.base.Store``."""

    _driver_error = sqlite3.Error

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 30_000, synchronous: str | None = None) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = (synchronous or os.environ.get(ENV_SYNCHRONOUS) or "FULL").upper()
        if self._synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"{ENV_SYNCHRONOUS} must be FULL or NORMAL, not {self._synchronous!r}")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._check_file()
        try:
            self._migrate()
        except StoreUnavailable:
            self.close()
            raise

    # -- faults --------------------------------------------------------------------------
    def _fault(self, exc: BaseException) -> StoreUnavailable:
        """One line a person can act on; the driver's own words in brackets."""
        detail = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        lowered = detail.lower()
        if "not a database" in lowered:
            why = "is not a solr-policy store"
        elif "malformed" in lowered or "corrupt" in lowered:
            why = "is corrupt or truncated"
        elif "locked" in lowered or "busy" in lowered:
            why = "is locked by another process"
        elif isinstance(exc, sqlite3.IntegrityError):
            why = "refused a write"
        elif isinstance(exc, OSError) or "unable to open" in lowered or "readonly" in lowered:
            why = "cannot be opened or written"
        else:
            why = "cannot be used"
        return StoreUnavailable(f"store {self.path} {why} ({detail})")

    def _check_file(self) -> None:
        """Refuse, before SQLite touches it, a path that cannot hold a store.

        A truncated copy of a store opens without complaint and fails only on the first read
        of a missing page, so its header's page count is compared with its size (when no
        write-ahead log holds pages of its own).
        """
        if self.path.is_dir():
            raise StoreUnavailable(f"store {self.path} is a directory, not a store file")
        try:
            with self.path.open("rb") as file:
                header = file.read(100)
            size = self.path.stat().st_size
        except FileNotFoundError:
            return  # a new store
        except OSError as exc:
            raise StoreUnavailable(f"store {self.path} cannot be read ({exc.strerror})") from None
        if not header:
            return
        if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
            raise StoreUnavailable(f"store {self.path} is not a solr-policy store (not an SQLite database file)")
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        # The header's page count is only valid when its two change counters agree.
        header_count_valid = pages and header[24:28] == header[92:96]
        wal = self.path.with_name(self.path.name + "-wal")
        wal_in_use = wal.exists() and wal.stat().st_size > 0
        if header_count_valid and not wal_in_use and size < pages * page_size:
            raise StoreUnavailable(f"store {self.path} is truncated ({size} bytes of the {pages * page_size} its header describes)")

    # -- connections and transactions -------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout_ms / 1000)
        except (OSError, sqlite3.Error) as exc:
            raise self._fault(exc) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            conn.close()
            raise self._fault(exc) from None
        self._local.conn = conn
        self._local.depth = 0
        with self._lock:
            self._all.append(conn)
        return conn

    @contextmanager
    def _outermost_tx(self) -> Iterator[None]:
        conn = self._conn()
        with self._commit_or_roll_back(conn.execute, "BEGIN IMMEDIATE"):
            yield

    def _execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        return self._conn().execute(sql, params)  # inside _tx, which turns driver errors into faults

    def _execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._conn().executemany(sql, rows)

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        conn = self._conn()
        with self._driver_errors():
            cur = conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    @contextmanager
    def _snapshot_rows(self, queries: Sequence[str]) -> Iterator[list[Iterator[Row]]]:
        """A deferred read transaction: WAL readers see one snapshot and block no writer."""
        conn = self._conn()
        with self._driver_errors():
            began = not self._local.depth and not conn.in_transaction
            if began:
                conn.execute("BEGIN")
            try:
                yield [self._rows(conn.execute(sql)) for sql in queries]
            finally:
                if began:
                    conn.execute("COMMIT")

    def audit_stream(self) -> Iterator[AuditEntry]:
        # On a connection of its own (read-only): the thread's connection stays free for its
        # transactions while the stream is open, and the snapshot is the stream's alone.
        with self._driver_errors():
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                   timeout=self._busy_timeout_ms / 1000)
        try:
            with self._driver_errors():
                conn.execute("BEGIN")
                rows = self._rows(conn.execute("SELECT * FROM audit ORDER BY seq"))
                for row in rows:
                    yield self._audit_entry(row)
        finally:
            conn.close()

    @staticmethod
    def _rows(cur: sqlite3.Cursor) -> Iterator[Row]:
        names = [d[0] for d in cur.description]
        return (dict(zip(names, row)) for row in cur)

    def _migrate(self) -> None:
        with self._tx():
            conn = self._conn()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreUnavailable(
                    f"store {self.path} was written by a newer solr-policy (schema {version}; this version knows {len(MIGRATIONS)})"
                )
            if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreUnavailable(f"store {self.path} is not a solr-policy store (an SQLite database of something else)")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
                if number == 6:
                    self._build_log()  # the tree over an older store's entries
                if number == 11:
                    for trigger in _generation_triggers():
                        conn.execute(trigger)  # one statement each: their bodies hold a ';'

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()
