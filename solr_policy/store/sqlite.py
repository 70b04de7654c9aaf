"""SQLite implementation of the store: WAL journal, one connection per thread.

Writes happen inside ``transaction()`` (``BEGIN IMMEDIATE``), so a decision, its counter
and its audit entry commit together or not at all; WAL with ``synchronous=FULL`` makes a
committed transaction survive a crash or power cut. Several processes may share one file:
``busy_timeout`` makes them queue for the write lock instead of failing.

Portability note for the PostgreSQL implementation: queries use ``?`` placeholders
(psycopg: ``%s``), TEXT/INTEGER/BLOB columns (BYTEA for BLOB), and no SQLite-only functions.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from solr_policy.errors import StoreUnavailable
from solr_policy.records import (
    AdtFileRecord,
    AdtFileStatus,
    AdtUsage,
    AlertDelivery,
    AlertStatus,
    AuditCheck,
    AuditEntry,
    AuditHead,
    CertRecord,
    InstructionEvent,
    KeyHolder,
    LogHead,
    OfficerKind,
    OfficerRecord,
    OfficerStatus,
    QuarantinedRequest,
    QuarantineItem,
    QuarantineStatus,
    SmkiStatus,
    SrpRecord,
    StoredCheckpoint,
    TrustAnchor,
)
from solr_policy.store.audit_chain import (
    EMPTY_LOG,
    GENESIS,
    audit_hash,
    canonical_payload,
    canonical_time,
    frontier_fits,
    frontier_from_text,
    frontier_text,
    grow,
    leaf_of,
    verify_chain,
)
from solr_policy.store.base import Store
from solr_policy.world import (
    Device,
    DeviceType,
    Instruction,
    InstructionStatus,
    Party,
    Smets,
    User,
    UserStatus,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

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
]

SQLITE_MAGIC = b"SQLite format 3\x00"


def default_db_path() -> Path:
    return Path(os.environ.get(ENV_DB) or "solr-policy.db")


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """Open (and create or migrate) the store; a file that cannot be a store raises ``StoreUnavailable``."""
    return SqliteStore(Path(path) if path is not None else default_db_path())


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _optional_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


Row = dict[str, Any]
R = TypeVar("R", bound="DataclassInstance")


class SqliteStore:
    """The embedded store; implements every role protocol of ``store.base.Store``."""

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

    @contextmanager
    def _driver_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._fault(exc) from None

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
    def transaction(self) -> Iterator[Self]:
        """One atomic unit of work (``BEGIN IMMEDIATE``); nested calls join the outer one.

        Any driver error inside rolls the whole unit back and surfaces as ``StoreUnavailable``.
        """
        with self._tx():
            yield self

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        with self._driver_errors():
            conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield conn
        except BaseException as exc:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already rolled back (e.g. a full disk or a corrupt page)
            if isinstance(exc, sqlite3.Error):
                raise self._fault(exc) from None
            raise
        else:
            with self._driver_errors():
                conn.execute("COMMIT")
        finally:
            self._local.depth = 0

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        conn = self._conn()
        with self._driver_errors():
            cur = conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def _migrate(self) -> None:
        with self._tx() as conn:
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
                    self._build_log(conn)

    def _build_log(self, conn: sqlite3.Connection) -> LogHead:
        """The tree over the entries as appends would have made it (migration 6, and whenever
        the kept frontier does not fit the entries: it is a cache of what they determine;
        a rolled-back log is caught by its checkpoints, not here)."""
        conn.execute("DELETE FROM log_nodes")
        head = EMPTY_LOG
        for (digest,) in conn.execute("SELECT hash FROM audit ORDER BY seq").fetchall():
            head = grow(head, digest, lambda level, idx, h: conn.execute(
                "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", (level, idx, h)))
        conn.execute("UPDATE audit_head SET frontier = ? WHERE id = 1", (frontier_text(head),))
        return head

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()

    # -- certificates -----------------------------------------------------------------
    def put_certificate(self, record: CertRecord) -> bool:
        """Insert a certificate's facts; False (and nothing changed) if it is already known."""
        with self._tx() as conn:
            existing = conn.execute(
                "SELECT status FROM certificates WHERE issuer = ? AND serial = ?",
                (record.issuer, str(record.serial)),
            ).fetchone()
            if existing:
                return False
            conn.execute(
                "INSERT INTO certificates (issuer, serial, subject, subject_eui, role, key_usage, not_before,"
                " not_after, status, spki_sha256, fingerprint, der, lenient, imported_at, provenance)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.issuer,
                    str(record.serial),
                    record.subject,
                    record.subject_eui,
                    record.role,
                    ",".join(record.key_usage),
                    _iso(record.not_before),
                    _iso(record.not_after),
                    record.status.value,
                    record.spki_sha256,
                    record.fingerprint,
                    record.der,
                    int(record.lenient),
                    _iso(datetime.now(timezone.utc)),
                    record.provenance,
                ),
            )
            return True

    def add_trust_anchor(self, anchor: TrustAnchor) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO trust_anchors (fingerprint, subject, der, added_at, added_by) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (fingerprint) DO NOTHING",
                (anchor.fingerprint, anchor.subject, anchor.der, _iso(anchor.added_at), anchor.added_by),
            )
            return cur.rowcount == 1

    def remove_trust_anchor(self, fingerprint: str) -> bool:
        with self._tx() as conn:
            return conn.execute("DELETE FROM trust_anchors WHERE fingerprint = ?", (fingerprint,)).rowcount == 1

    def trust_anchors(self) -> list[TrustAnchor]:
        rows = self._read("SELECT * FROM trust_anchors ORDER BY subject, fingerprint")
        return [TrustAnchor(r["fingerprint"], r["subject"], bytes(r["der"]), _time(r["added_at"]), r["added_by"]) for r in rows]

    @staticmethod
    def _cert(row: Row) -> CertRecord:
        # Rows were validated on the way in; model_construct skips re-validating them.
        return CertRecord.model_construct(
            serial=int(row["serial"]),
            issuer=row["issuer"],
            subject=row["subject"],
            subject_eui=row["subject_eui"],
            role=row["role"],
            key_usage=_usages(row["key_usage"]),
            not_before=_time(row["not_before"]),
            not_after=_time(row["not_after"]),
            status=SmkiStatus(row["status"]),
            spki_sha256=row["spki_sha256"],
            fingerprint=row["fingerprint"],
            der=bytes(row["der"]),
            lenient=bool(row["lenient"]),
            provenance=row["provenance"],
        )

    def get_certificate(self, issuer: str, serial: int) -> CertRecord | None:
        rows = self._read("SELECT * FROM certificates WHERE issuer = ? AND serial = ?", (issuer, str(serial)))
        return self._cert(rows[0]) if rows else None

    def find_certificates(
        self, *, eui: str | None = None, role: int | None = None, spki_sha256: str | None = None
    ) -> list[CertRecord]:
        where, params = _where(subject_eui=eui, role=role, spki_sha256=spki_sha256)
        return [self._cert(r) for r in self._read(f"SELECT * FROM certificates{where} ORDER BY subject_eui, serial", params)]

    def list_certificates(self) -> list[CertRecord]:
        return self.find_certificates()

    def key_shared_with(self, spki_sha256: str, fingerprint: str) -> list[KeyHolder]:
        """The other certificates (another fingerprint) with the same public key."""
        rows = self._read(
            "SELECT serial, role, key_usage, subject_eui FROM certificates WHERE spki_sha256 = ? AND fingerprint <> ?"
            " ORDER BY serial",
            (spki_sha256, fingerprint),
        )
        return [KeyHolder(int(r["serial"]), r["role"], _usages(r["key_usage"]), r["subject_eui"]) for r in rows]

    def set_certificate_status(self, issuer: str, serial: int, status: SmkiStatus) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE certificates SET status = ? WHERE issuer = ? AND serial = ?",
                (status.value, issuer, str(serial)),
            )
            return cur.rowcount == 1

    # -- the world --------------------------------------------------------------------
    def put_party(self, party: Party) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO parties (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                (party.id, party.name),
            )

    def put_user(self, user: User) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO users (id, party, role, status) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " party = excluded.party, role = excluded.role, status = excluded.status",
                (user.id, user.party, user.role, user.status.value),
            )

    def put_device(self, device: Device) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO devices (id, type, smets, supplier) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " type = excluded.type, smets = excluded.smets, supplier = excluded.supplier",
                (device.id, device.type.value, device.smets.value, device.supplier),
            )

    def put_instruction(self, instruction: Instruction) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO instructions (reference, failed_supplier, solr_party, effective_from, effective_until, status,"
                " scope, proposed_by, approved_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (reference) DO UPDATE SET"
                " failed_supplier = excluded.failed_supplier, solr_party = excluded.solr_party,"
                " effective_from = excluded.effective_from, effective_until = excluded.effective_until,"
                " status = excluded.status, scope = excluded.scope, proposed_by = excluded.proposed_by,"
                " approved_by = excluded.approved_by",
                (
                    instruction.reference,
                    instruction.failed_supplier,
                    instruction.solr_party,
                    _iso(instruction.effective_from),
                    _iso(instruction.effective_until) if instruction.effective_until else None,
                    instruction.status.value,
                    json.dumps(list(instruction.scope)) if instruction.scope is not None else None,
                    instruction.proposed_by,
                    instruction.approved_by,
                ),
            )

    def get_party(self, party_id: str) -> Party | None:
        rows = self._read("SELECT * FROM parties WHERE id = ?", (party_id,))
        return Party(**rows[0]) if rows else None

    def get_user(self, eui: str) -> User | None:
        rows = self._read("SELECT * FROM users WHERE id = ?", (eui,))
        return self._user(rows[0]) if rows else None

    @staticmethod
    def _user(row: Row) -> User:
        # Validated on the way in: constructed without re-validating (hot path).
        return User.model_construct(id=row["id"], party=row["party"], role=row["role"], status=UserStatus(row["status"]))

    def get_device(self, eui: str) -> Device | None:
        rows = self._read("SELECT * FROM devices WHERE id = ?", (eui,))
        return self._device(rows[0]) if rows else None

    @staticmethod
    def _device(row: Row) -> Device:
        return Device.model_construct(id=row["id"], type=DeviceType(row["type"]), smets=Smets(row["smets"]), supplier=row["supplier"])

    @staticmethod
    def _instruction(row: Row) -> Instruction:
        return Instruction.model_construct(
            reference=row["reference"],
            failed_supplier=row["failed_supplier"],
            solr_party=row["solr_party"],
            effective_from=_time(row["effective_from"]),
            effective_until=_optional_time(row["effective_until"]),
            status=InstructionStatus(row["status"]),
            scope=tuple(json.loads(row["scope"])) if row["scope"] else None,
            proposed_by=row["proposed_by"],
            approved_by=row["approved_by"],
        )

    def get_instruction(self, reference: str) -> Instruction | None:
        rows = self._read("SELECT * FROM instructions WHERE reference = ?", (reference,))
        return self._instruction(rows[0]) if rows else None

    def instructions(self, *, solr_party: str | None = None, failed_supplier: str | None = None) -> list[Instruction]:
        where, params = _where(solr_party=solr_party, failed_supplier=failed_supplier)
        rows = self._read(f"SELECT * FROM instructions{where} ORDER BY effective_from, reference", params)
        return [self._instruction(r) for r in rows]

    def list_parties(self) -> list[Party]:
        return [Party.model_construct(**r) for r in self._read("SELECT * FROM parties ORDER BY id")]

    def list_users(self) -> list[User]:
        return [self._user(r) for r in self._read("SELECT * FROM users ORDER BY id")]

    def list_devices(self) -> list[Device]:
        return [self._device(r) for r in self._read("SELECT * FROM devices ORDER BY id")]

    def add_instruction_event(self, reference: str, *, at: datetime, action: str, officer: str, reason: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO instruction_events (reference, at, action, officer, reason) VALUES (?, ?, ?, ?, ?)",
                (reference, _iso(at), action, officer, reason),
            )

    def instruction_events(self, reference: str) -> list[InstructionEvent]:
        rows = self._read("SELECT reference, at, action, officer, reason FROM instruction_events WHERE reference = ? ORDER BY id", (reference,))
        return [InstructionEvent(r["reference"], _time(r["at"]), r["action"], r["officer"], r["reason"]) for r in rows]

    # -- replay counters ---------------------------------------------------------------
    # Counters go up to 2^64-1, beyond SQLite's signed INTEGER: kept as 20-digit text.
    def get_counter(self, originator: str) -> int | None:
        rows = self._read("SELECT last_counter FROM counters WHERE originator = ?", (originator,))
        return int(rows[0]["last_counter"]) if rows else None

    def set_counter(self, originator: str, counter: int) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO counters (originator, last_counter) VALUES (?, ?)"
                " ON CONFLICT (originator) DO UPDATE SET last_counter = excluded.last_counter",
                (originator, f"{counter:020d}"),
            )

    # -- officers -----------------------------------------------------------------------
    def put_officer(self, officer: OfficerRecord) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO officers (id, kind, name, party, public_key, status, appointed_by, appointed_at, removed_by, removed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, party = excluded.party,"
                " public_key = excluded.public_key, status = excluded.status, appointed_by = excluded.appointed_by,"
                " appointed_at = excluded.appointed_at, removed_by = excluded.removed_by, removed_at = excluded.removed_at",
                (
                    officer.id, officer.kind.value, officer.name, officer.party, officer.public_key, officer.status.value,
                    officer.appointed_by, _iso(officer.appointed_at), officer.removed_by,
                    _iso(officer.removed_at) if officer.removed_at else None,
                ),
            )

    @staticmethod
    def _officer(row: Row) -> OfficerRecord:
        return _record(
            OfficerRecord, row, kind=OfficerKind, appointed_at=_time, status=OfficerStatus, removed_at=_optional_time
        )

    def get_officer(self, officer_id: str) -> OfficerRecord | None:
        rows = self._read("SELECT * FROM officers WHERE id = ?", (officer_id,))
        return self._officer(rows[0]) if rows else None

    def list_officers(self, *, party: str | None = None) -> list[OfficerRecord]:
        where, params = _where(party=party)
        return [self._officer(r) for r in self._read(f"SELECT * FROM officers{where} ORDER BY kind, id", params)]

    # -- ADT files and usage ----------------------------------------------------------------
    def withdraw_adt_files(self, aro: str) -> list[str]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT reference FROM adt_files WHERE aro = ? AND status = ? ORDER BY reference", (aro, AdtFileStatus.CURRENT.value)
            ).fetchall()
            conn.execute(
                "UPDATE adt_files SET status = ? WHERE aro = ? AND status = ?",
                (AdtFileStatus.WITHDRAWN.value, aro, AdtFileStatus.CURRENT.value),
            )
            return [r[0] for r in rows]

    def put_adt_file(self, record: AdtFileRecord) -> None:
        """Store an accepted ADT file as current; it supersedes the current one for the same User and Supplier."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE adt_files SET status = ? WHERE user_id = ? AND supplier = ? AND status = ?",
                (AdtFileStatus.SUPERSEDED.value, record.user_id, record.supplier, AdtFileStatus.CURRENT.value),
            )
            conn.execute(
                "INSERT INTO adt_files (reference, party, user_id, supplier, aro, submitted_at, thresholds, sha256, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.reference, record.party, record.user_id, record.supplier, record.aro, _iso(record.submitted_at),
                    json.dumps(record.thresholds, sort_keys=True), record.sha256, AdtFileStatus.CURRENT.value,
                ),
            )

    @staticmethod
    def _adt_file(row: Row) -> AdtFileRecord:
        return _record(AdtFileRecord, row, submitted_at=_time, thresholds=json.loads, status=AdtFileStatus)

    def get_adt_file(self, reference: str) -> AdtFileRecord | None:
        rows = self._read("SELECT * FROM adt_files WHERE reference = ?", (reference,))
        return self._adt_file(rows[0]) if rows else None

    def current_adt_files(self, user_id: str) -> list[AdtFileRecord]:
        rows = self._read(
            "SELECT * FROM adt_files WHERE user_id = ? AND status = ? ORDER BY supplier", (user_id, AdtFileStatus.CURRENT.value)
        )
        return [self._adt_file(r) for r in rows]

    def list_adt_files(self) -> list[AdtFileRecord]:
        return [self._adt_file(r) for r in self._read("SELECT * FROM adt_files ORDER BY submitted_at, reference")]

    def adt_usage(self, user_id: str, supplier: str, srv: str, period: str, window_start: str) -> int:
        rows = self._read(
            "SELECT count FROM adt_usage WHERE user_id = ? AND supplier = ? AND srv = ? AND period = ? AND window_start = ?",
            (user_id, supplier, srv, period, window_start),
        )
        return int(rows[0]["count"]) if rows else 0

    def add_adt_usage(self, user_id: str, supplier: str, srv: str, period: str, window_start: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO adt_usage (user_id, supplier, srv, period, window_start, count) VALUES (?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (user_id, supplier, srv, period, window_start) DO UPDATE SET count = adt_usage.count + 1",
                (user_id, supplier, srv, period, window_start),
            )

    def all_adt_usage(self) -> list[AdtUsage]:
        rows = self._read("SELECT * FROM adt_usage ORDER BY user_id, supplier, srv, period, window_start")
        return [AdtUsage(r["user_id"], r["supplier"], r["srv"], r["period"], r["window_start"], int(r["count"])) for r in rows]

    # -- quarantine -----------------------------------------------------------------------
    def add_quarantine(
        self, *, at: datetime, originator: str, device: str, srv: str, counter: int, raw: bytes, decision: Mapping[str, Any]
    ) -> int:
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO quarantine (at, originator, device, srv, counter, raw, decision, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (_iso(at), originator, device, srv, f"{counter:020d}", raw, json.dumps(decision, default=str), QuarantineStatus.HELD.value),
            )
            return _row_id(cur)

    _QUARANTINE_ITEM = "SELECT id, at, originator, device, srv, counter, status, resolved_by, resolved_at, reason FROM quarantine"

    @staticmethod
    def _quarantine_item(row: Row) -> QuarantineItem:
        return _record(QuarantineItem, row, at=_time, counter=int, status=QuarantineStatus, resolved_at=_optional_time)

    def get_quarantine(self, item: int) -> QuarantineItem | None:
        rows = self._read(f"{self._QUARANTINE_ITEM} WHERE id = ?", (item,))
        return self._quarantine_item(rows[0]) if rows else None

    def quarantined_request(self, item: int) -> QuarantinedRequest | None:
        rows = self._read("SELECT id, raw, decision FROM quarantine WHERE id = ?", (item,))
        return QuarantinedRequest(rows[0]["id"], bytes(rows[0]["raw"]), json.loads(rows[0]["decision"])) if rows else None

    def list_quarantine(self, *, status: QuarantineStatus | None = None) -> list[QuarantineItem]:
        where, params = _where(status=QuarantineStatus(status).value if status is not None else None)
        return [self._quarantine_item(r) for r in self._read(f"{self._QUARANTINE_ITEM}{where} ORDER BY id", params)]

    def resolve_quarantine(self, item: int, *, status: QuarantineStatus, by: str, at: datetime, reason: str) -> bool:
        """Release or discard a held item; False if it is not held (any more)."""
        status = QuarantineStatus(status)  # a plain "released" is taken too; anything else is refused
        if status is QuarantineStatus.HELD:
            raise ValueError("a quarantined request is resolved as released or discarded")
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE quarantine SET status = ?, resolved_by = ?, resolved_at = ?, reason = ? WHERE id = ? AND status = ?",
                (status.value, by, _iso(at), reason, item, QuarantineStatus.HELD.value),
            )
            return cur.rowcount == 1

    # -- Shared Resource Providers ------------------------------------------------------------
    def put_srp(self, srp_id: str, *, name: str, endpoint: str, serves: Sequence[str]) -> None:
        """Register or update an SRP; each Supplier in ``serves`` is (re)assigned to it."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO srps (id, name, endpoint) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " name = excluded.name, endpoint = excluded.endpoint",
                (srp_id, name, endpoint),
            )
            for supplier in serves:
                conn.execute(
                    "INSERT INTO srp_suppliers (supplier, srp) VALUES (?, ?) ON CONFLICT (supplier) DO UPDATE SET srp = excluded.srp",
                    (supplier, srp_id),
                )

    def _srp(self, row: Row) -> SrpRecord:
        serves = self._read("SELECT supplier FROM srp_suppliers WHERE srp = ? ORDER BY supplier", (row["id"],))
        return SrpRecord(row["id"], row["name"], row["endpoint"], tuple(r["supplier"] for r in serves))

    def srp_for_supplier(self, supplier: str) -> SrpRecord | None:
        rows = self._read(
            "SELECT srps.* FROM srps JOIN srp_suppliers ON srp_suppliers.srp = srps.id WHERE srp_suppliers.supplier = ?",
            (supplier,),
        )
        return self._srp(rows[0]) if rows else None

    def list_srps(self) -> list[SrpRecord]:
        return [self._srp(r) for r in self._read("SELECT * FROM srps ORDER BY id")]

    # -- alert deliveries ------------------------------------------------------------------------
    def add_alert_delivery(self, delivery: AlertDelivery, raw: bytes) -> int:
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO alert_deliveries (received_at, raw, response_id, recipient, device, alert, status, target_kind,"
                " target_id, endpoint, reason, routed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_iso(delivery.received_at), raw, *self._delivery_columns(delivery)),
            )
            return _row_id(cur)

    def update_alert_delivery(self, delivery: AlertDelivery) -> None:
        """Write where a stored alert goes now (everything but when it arrived and its bytes)."""
        if delivery.id is None:
            raise ValueError("an alert delivery is updated by its id")
        with self._tx() as conn:
            conn.execute(
                "UPDATE alert_deliveries SET response_id = ?, recipient = ?, device = ?, alert = ?, status = ?,"
                " target_kind = ?, target_id = ?, endpoint = ?, reason = ?, routed_at = ? WHERE id = ?",
                (*self._delivery_columns(delivery), delivery.id),
            )

    @staticmethod
    def _delivery_columns(delivery: AlertDelivery) -> tuple[object, ...]:
        return (
            delivery.response_id, delivery.recipient, delivery.device, delivery.alert, delivery.status.value,
            delivery.target_kind, delivery.target_id, delivery.endpoint, delivery.reason,
            _iso(delivery.routed_at) if delivery.routed_at else None,
        )

    _DELIVERY = (
        "SELECT id, received_at, response_id, recipient, device, alert, status, target_kind, target_id, endpoint, reason,"
        " routed_at FROM alert_deliveries"
    )

    @staticmethod
    def _delivery(row: Row) -> AlertDelivery:
        return _record(AlertDelivery, row, received_at=_time, status=AlertStatus, routed_at=_optional_time)

    def get_alert_delivery(self, item: int) -> AlertDelivery | None:
        rows = self._read(f"{self._DELIVERY} WHERE id = ?", (item,))
        return self._delivery(rows[0]) if rows else None

    def alert_deliveries(self, *, status: AlertStatus | None = None) -> list[AlertDelivery]:
        where, params = _where(status=AlertStatus(status).value if status is not None else None)
        return [self._delivery(r) for r in self._read(f"{self._DELIVERY}{where} ORDER BY id", params)]

    def alert_raw(self, item: int) -> bytes | None:
        rows = self._read("SELECT raw FROM alert_deliveries WHERE id = ?", (item,))
        return bytes(rows[0]["raw"]) if rows else None

    # -- audit trail ------------------------------------------------------------------
    def append_audit(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        at: datetime,
        actor: str | None = None,
        originator: str | None = None,
        device: str | None = None,
        instruction: str | None = None,
        counter: int | None = None,
    ) -> int:
        """Append one hash-chained entry; joins the caller's transaction if there is one."""
        text = canonical_payload(payload)
        fields = {"actor": actor, "originator": originator, "device": device, "instruction": instruction, "counter": counter}
        with self._tx() as conn:
            last = conn.execute("SELECT seq, hash, frontier FROM audit_head WHERE id = 1").fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            tree = frontier_from_text(last[0], last[2]) if last else EMPTY_LOG
            if not frontier_fits(tree):
                tree = self._build_log(conn)
            when = canonical_time(at)
            digest = audit_hash(prev, seq, when, kind, fields, text)
            conn.execute(
                "INSERT INTO audit (seq, at, kind, actor, originator, device, instruction, payload, prev_hash, hash, counter)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, when, kind, actor, originator, device, instruction, text, prev, digest,
                 f"{counter:020d}" if counter is not None else None),
            )
            tree = grow(tree, digest, lambda level, idx, h: conn.execute(
                "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", (level, idx, h)))
            conn.execute(
                "INSERT INTO audit_head (id, seq, hash, frontier) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
                " SET seq = excluded.seq, hash = excluded.hash, frontier = excluded.frontier",
                (seq, digest, frontier_text(tree)),
            )
            return seq

    @staticmethod
    def _audit_entry(row: Row) -> AuditEntry:
        # text as stored: the chain is checked on exactly what was hashed
        return _record(AuditEntry, row, counter=lambda c: int(c) if c is not None else None)

    def audit_entries(
        self,
        *,
        kind: str | None = None,
        actor: str | None = None,
        device: str | None = None,
        instruction: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        where, params = _where(
            ("at >= ?", canonical_time(since) if since else None),
            ("at < ?", canonical_time(until) if until else None),
            kind=kind, actor=actor, device=device, instruction=instruction,
        )
        tail = f" LIMIT {int(limit)}" if limit else ""
        return [self._audit_entry(r) for r in self._read(f"SELECT * FROM audit{where} ORDER BY seq{tail}", params)]

    def use_nonce(self, nonce: str, digest: str, at: datetime) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO statements (nonce, digest, at) VALUES (?, ?, ?) ON CONFLICT (nonce) DO NOTHING",
                (nonce, digest, canonical_time(at)),
            )
            return cur.rowcount == 1

    def logged_counter(self, originator: str) -> int | None:
        rows = self._read("SELECT max(counter) AS c FROM audit WHERE originator = ? AND counter IS NOT NULL", (originator,))
        return int(rows[0]["c"]) if rows and rows[0]["c"] is not None else None

    def log_head(self) -> LogHead:
        row = self._read("SELECT seq, frontier FROM audit_head WHERE id = 1")
        return frontier_from_text(row[0]["seq"], row[0]["frontier"]) if row else EMPTY_LOG

    def log_nodes(self, level: int, start: int, end: int) -> list[bytes]:
        if level == 0:
            rows = self._read("SELECT hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq", (start, end))
            return [leaf_of(r["hash"]) for r in rows]
        rows = self._read("SELECT hash FROM log_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx", (level, start, end))
        return [bytes(r["hash"]) for r in rows]

    def put_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO checkpoints (size, root, at, note) VALUES (?, ?, ?, ?)",
                (checkpoint.size, checkpoint.root, canonical_time(checkpoint.at), checkpoint.note),
            )

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        rows = self._read("SELECT size, root, at, note FROM checkpoints ORDER BY rowid DESC LIMIT 1")
        if not rows:
            return None
        row = rows[0]
        return StoredCheckpoint(row["size"], row["root"], datetime.fromisoformat(row["at"]), row["note"])

    def verify_audit(self) -> AuditCheck:
        """Walk the chain (``audit_chain.verify_chain``): intact, or the first broken entry named."""
        conn = self._conn()
        with self._driver_errors():
            head_row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            cur = conn.execute("SELECT * FROM audit ORDER BY seq")
            names = [d[0] for d in cur.description]
            entries = (self._audit_entry(dict(zip(names, row))) for row in cur)
            return verify_chain(entries, AuditHead(head_row[0], head_row[1]) if head_row else None)


def _where(*conditions: tuple[str, object], **equal: object) -> tuple[str, tuple[object, ...]]:
    """`` WHERE a = ? AND ...`` for the arguments that are not None (column names are ours, never input)."""
    given = [(f"{column} = ?", value) for column, value in equal.items()] + list(conditions)
    given = [(clause, value) for clause, value in given if value is not None]
    if not given:
        return "", ()
    return " WHERE " + " AND ".join(clause for clause, _ in given), tuple(value for _, value in given)


def _record(cls: type[R], row: Row, **convert: Callable[[Any], object]) -> R:
    """The record ``cls`` from a row with a column per field, each converted where a converter is given."""
    return cls(**{f.name: convert.get(f.name, _same)(row[f.name]) for f in fields(cls)})


def _same(value: object) -> object:
    return value


def _usages(text: str) -> tuple[str, ...]:
    return tuple(u for u in text.split(",") if u)


def _row_id(cur: sqlite3.Cursor) -> int:
    assert cur.lastrowid is not None  # an INSERT into a rowid table always sets it
    return int(cur.lastrowid)
