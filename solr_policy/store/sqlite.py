"""SQLite implementation of the store: WAL journal, one connection per thread.

Writes happen inside ``transaction()`` (``BEGIN IMMEDIATE``), so a decision, its counter
and its audit entry commit together or not at all; WAL with ``synchronous=FULL`` makes a
committed transaction survive a crash or power cut. Several processes may share one file:
``busy_timeout`` makes them queue for the write lock instead of failing.

Portability note for the PostgreSQL implementation: queries use ``?`` placeholders
(psycopg: ``%s``), TEXT/INTEGER/BLOB columns (BYTEA for BLOB), and no SQLite-only functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from solr_policy.crypto.certs import CertRecord, SmkiStatus
from solr_policy.world import Device, DeviceType, Instruction, InstructionStatus, Party, Smets, User, UserStatus

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
]

GENESIS = "0" * 64


def audit_hash(prev_hash: str, seq: int, at: str, kind: str, fields: dict, payload: str) -> str:
    """The chain link: SHA-256 over the previous hash and this entry's canonical content."""
    body = json.dumps(
        {"seq": seq, "at": at, "kind": kind, **fields, "payload": payload},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def default_db_path() -> Path:
    return Path(os.environ.get(ENV_DB) or "solr-policy.db")


def open_store(path: str | os.PathLike[str] | None = None) -> "SqliteStore":
    return SqliteStore(Path(path) if path is not None else default_db_path())


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat()


class SqliteStore:
    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 30_000, synchronous: str | None = None) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = (synchronous or os.environ.get(ENV_SYNCHRONOUS) or "FULL").upper()
        if self._synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"{ENV_SYNCHRONOUS} must be FULL or NORMAL, not {self._synchronous!r}")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate()

    # -- connections and transactions -------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            self._local.depth = 0
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work; nested calls join the outer transaction."""
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._local.depth = 0

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        conn = self._conn()
        cur = conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def _migrate(self) -> None:
        conn = self._conn()
        with self.transaction():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass
            self._all.clear()
        self._local = threading.local()

    # -- certificates -----------------------------------------------------------------
    def put_certificate(self, record: CertRecord) -> bool:
        """Insert or refresh a certificate's facts; its SMKI status is kept if already known."""
        with self.transaction() as conn:
            existing = conn.execute(
                "SELECT status FROM certificates WHERE issuer = ? AND serial = ?",
                (record.issuer, str(record.serial)),
            ).fetchone()
            if existing:
                return False
            conn.execute(
                "INSERT INTO certificates (issuer, serial, subject, subject_eui, role, key_usage, not_before,"
                " not_after, status, spki_sha256, fingerprint, der, lenient, imported_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )
            return True

    @staticmethod
    def _cert(row: dict) -> CertRecord:
        # Rows were validated on the way in; model_construct skips re-validating them.
        return CertRecord.model_construct(
            serial=int(row["serial"]),
            issuer=row["issuer"],
            subject=row["subject"],
            subject_eui=row["subject_eui"],
            role=row["role"],
            key_usage=tuple(u for u in row["key_usage"].split(",") if u),
            not_before=datetime.fromisoformat(row["not_before"]),
            not_after=datetime.fromisoformat(row["not_after"]),
            status=SmkiStatus(row["status"]),
            spki_sha256=row["spki_sha256"],
            fingerprint=row["fingerprint"],
            der=bytes(row["der"]),
            lenient=bool(row["lenient"]),
        )

    def get_certificate(self, issuer: str, serial: int) -> CertRecord | None:
        rows = self._read(
            "SELECT * FROM certificates WHERE issuer = ? AND serial = ?", (issuer, str(serial))
        )
        return self._cert(rows[0]) if rows else None

    def find_certificates(
        self, *, eui: str | None = None, role: int | None = None, spki_sha256: str | None = None
    ) -> list[CertRecord]:
        clauses, params = [], []
        for column, value in (("subject_eui", eui), ("role", role), ("spki_sha256", spki_sha256)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return [self._cert(r) for r in self._read(f"SELECT * FROM certificates{where} ORDER BY subject_eui, serial", tuple(params))]

    def key_shared_with(self, spki_sha256: str, fingerprint: str) -> list[tuple[str, int | None, str, str | None]]:
        """Other certificates with the same public key: (serial, role, key_usage, eui)."""
        conn = self._conn()
        rows = conn.execute(
            "SELECT serial, role, key_usage, subject_eui FROM certificates WHERE spki_sha256 = ? AND fingerprint <> ?",
            (spki_sha256, fingerprint),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def set_certificate_status(self, issuer: str, serial: int, status: SmkiStatus) -> bool:
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE certificates SET status = ? WHERE issuer = ? AND serial = ?",
                (status.value, issuer, str(serial)),
            )
            return cur.rowcount == 1

    def list_certificates(self) -> list[CertRecord]:
        return self.find_certificates()

    # -- the world --------------------------------------------------------------------
    def put_party(self, party: Party) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO parties (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                (party.id, party.name),
            )

    def put_user(self, user: User) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO users (id, party, role, status) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " party = excluded.party, role = excluded.role, status = excluded.status",
                (user.id, user.party, user.role, user.status.value),
            )

    def put_device(self, device: Device) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO devices (id, type, smets, supplier) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " type = excluded.type, smets = excluded.smets, supplier = excluded.supplier",
                (device.id, device.type.value, device.smets.value, device.supplier),
            )

    def put_instruction(self, instruction: Instruction) -> None:
        with self.transaction() as conn:
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
        if not rows:
            return None
        row = rows[0]  # validated on the way in: construct without re-validating (hot path)
        return User.model_construct(id=row["id"], party=row["party"], role=row["role"], status=UserStatus(row["status"]))

    def get_device(self, eui: str) -> Device | None:
        rows = self._read("SELECT * FROM devices WHERE id = ?", (eui,))
        if not rows:
            return None
        row = rows[0]
        return Device.model_construct(id=row["id"], type=DeviceType(row["type"]), smets=Smets(row["smets"]), supplier=row["supplier"])

    @staticmethod
    def _instruction(row: dict) -> Instruction:
        return Instruction.model_construct(
            reference=row["reference"],
            failed_supplier=row["failed_supplier"],
            solr_party=row["solr_party"],
            effective_from=datetime.fromisoformat(row["effective_from"]),
            effective_until=datetime.fromisoformat(row["effective_until"]) if row["effective_until"] else None,
            status=InstructionStatus(row["status"]),
            scope=tuple(json.loads(row["scope"])) if row["scope"] else None,
            proposed_by=row["proposed_by"],
            approved_by=row["approved_by"],
        )

    def get_instruction(self, reference: str) -> Instruction | None:
        rows = self._read("SELECT * FROM instructions WHERE reference = ?", (reference,))
        return self._instruction(rows[0]) if rows else None

    def instructions(self, *, solr_party: str | None = None, failed_supplier: str | None = None) -> list[Instruction]:
        clauses, params = [], []
        for column, value in (("solr_party", solr_party), ("failed_supplier", failed_supplier)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(f"SELECT * FROM instructions{where} ORDER BY effective_from, reference", tuple(params))
        return [self._instruction(r) for r in rows]

    def list_parties(self) -> list[Party]:
        return [Party(**r) for r in self._read("SELECT * FROM parties ORDER BY id")]

    def list_users(self) -> list[User]:
        return [User(**r) for r in self._read("SELECT * FROM users ORDER BY id")]

    def list_devices(self) -> list[Device]:
        return [Device(**r) for r in self._read("SELECT * FROM devices ORDER BY id")]

    # -- replay counters ---------------------------------------------------------------
    # Counters go up to 2^64-1, beyond SQLite's signed INTEGER: kept as 20-digit text.
    def get_counter(self, originator: str) -> int | None:
        rows = self._read("SELECT last_counter FROM counters WHERE originator = ?", (originator,))
        return int(rows[0]["last_counter"]) if rows else None

    def set_counter(self, originator: str, counter: int) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO counters (originator, last_counter) VALUES (?, ?)"
                " ON CONFLICT (originator) DO UPDATE SET last_counter = excluded.last_counter",
                (originator, f"{counter:020d}"),
            )

    # -- audit trail ------------------------------------------------------------------
    def append_audit(
        self,
        kind: str,
        payload: dict,
        *,
        at: datetime,
        actor: str | None = None,
        originator: str | None = None,
        device: str | None = None,
        instruction: str | None = None,
    ) -> int:
        """Append one hash-chained entry; joins the caller's transaction if there is one."""
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        fields = {"actor": actor, "originator": originator, "device": device, "instruction": instruction}
        with self.transaction() as conn:
            last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            when = _iso(at)
            digest = audit_hash(prev, seq, when, kind, fields, text)
            conn.execute(
                "INSERT INTO audit (seq, at, kind, actor, originator, device, instruction, payload, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, when, kind, actor, originator, device, instruction, text, prev, digest),
            )
            conn.execute(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                (seq, digest),
            )
            return seq

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
    ) -> list[dict]:
        clauses, params = [], []
        for column, value in (("kind", kind), ("actor", actor), ("device", device), ("instruction", instruction)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("at >= ?")
            params.append(_iso(since))
        if until is not None:
            clauses.append("at < ?")
            params.append(_iso(until))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = f" LIMIT {int(limit)}" if limit else ""
        return self._read(f"SELECT * FROM audit{where} ORDER BY seq{tail}", tuple(params))

    def verify_audit(self) -> tuple[bool, int, str]:
        """Walk the chain: (intact, entries checked, message naming the first broken entry)."""
        prev, count = GENESIS, 0
        conn = self._conn()
        cur = conn.execute("SELECT * FROM audit ORDER BY seq")
        names = [d[0] for d in cur.description]
        expected_seq = 1
        for raw in cur:
            row = dict(zip(names, raw))
            count += 1
            if row["seq"] != expected_seq:
                return False, count, f"entry {expected_seq} is missing (next is {row['seq']})"
            fields = {k: row[k] for k in ("actor", "originator", "device", "instruction")}
            digest = audit_hash(prev, row["seq"], row["at"], row["kind"], fields, row["payload"])
            if row["prev_hash"] != prev:
                return False, count, f"entry {row['seq']} does not link to entry {row['seq'] - 1}"
            if row["hash"] != digest:
                return False, count, f"entry {row['seq']} was altered (its hash does not match its content)"
            prev, expected_seq = row["hash"], expected_seq + 1
        head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        if head is not None and (head[0] != count or head[1] != prev):
            return False, count, f"the chain ends at entry {count}, but entry {head[0]} was written: newest entries are missing or altered"
        if head is None and count:
            return False, count, "the chain's head record is missing"
        return True, count, f"{count} entries, chain intact"

    # -- governance ---------------------------------------------------------------------
    def add_instruction_event(self, reference: str, *, at: datetime, action: str, officer: str, reason: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO instruction_events (reference, at, action, officer, reason) VALUES (?, ?, ?, ?, ?)",
                (reference, _iso(at), action, officer, reason),
            )

    def instruction_events(self, reference: str) -> list[dict]:
        return self._read("SELECT at, action, officer, reason FROM instruction_events WHERE reference = ? ORDER BY id", (reference,))

    def put_officer(self, officer: dict) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO officers (id, kind, name, party, public_key, status, appointed_by, appointed_at, removed_by, removed_at)"
                " VALUES (:id, :kind, :name, :party, :public_key, :status, :appointed_by, :appointed_at, :removed_by, :removed_at)"
                " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, party = excluded.party,"
                " public_key = excluded.public_key, status = excluded.status, appointed_by = excluded.appointed_by,"
                " appointed_at = excluded.appointed_at, removed_by = excluded.removed_by, removed_at = excluded.removed_at",
                officer,
            )

    def get_officer(self, officer_id: str) -> dict | None:
        rows = self._read("SELECT * FROM officers WHERE id = ?", (officer_id,))
        return rows[0] if rows else None

    def list_officers(self, *, party: str | None = None) -> list[dict]:
        if party is None:
            return self._read("SELECT * FROM officers ORDER BY kind, id")
        return self._read("SELECT * FROM officers WHERE party = ? ORDER BY kind, id", (party,))

    def put_adt_file(self, record: dict) -> None:
        """Store an accepted ADT file; it supersedes the current one for the same User and Supplier."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE adt_files SET status = 'superseded' WHERE user_id = ? AND supplier = ? AND status = 'current'",
                (record["user_id"], record["supplier"]),
            )
            conn.execute(
                "INSERT INTO adt_files (reference, party, user_id, supplier, aro, submitted_at, thresholds, sha256, status)"
                " VALUES (:reference, :party, :user_id, :supplier, :aro, :submitted_at, :thresholds, :sha256, 'current')",
                record,
            )

    def get_adt_file(self, reference: str) -> dict | None:
        rows = self._read("SELECT * FROM adt_files WHERE reference = ?", (reference,))
        return rows[0] if rows else None

    def current_adt_files(self, user_id: str) -> list[dict]:
        return self._read("SELECT * FROM adt_files WHERE user_id = ? AND status = 'current' ORDER BY supplier", (user_id,))

    def list_adt_files(self) -> list[dict]:
        return self._read("SELECT * FROM adt_files ORDER BY submitted_at, reference")

    def adt_usage(self, user_id: str, supplier: str, srv: str, period: str, window_start: str) -> int:
        rows = self._read(
            "SELECT count FROM adt_usage WHERE user_id = ? AND supplier = ? AND srv = ? AND period = ? AND window_start = ?",
            (user_id, supplier, srv, period, window_start),
        )
        return rows[0]["count"] if rows else 0

    def add_adt_usage(self, user_id: str, supplier: str, srv: str, period: str, window_start: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO adt_usage (user_id, supplier, srv, period, window_start, count) VALUES (?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (user_id, supplier, srv, period, window_start) DO UPDATE SET count = adt_usage.count + 1",
                (user_id, supplier, srv, period, window_start),
            )

    def all_adt_usage(self) -> list[dict]:
        return self._read("SELECT * FROM adt_usage ORDER BY user_id, supplier, srv, period, window_start")

    def add_quarantine(self, *, at: datetime, originator: str, device: str, srv: str, counter: int, raw: bytes, decision: dict) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO quarantine (at, originator, device, srv, counter, raw, decision, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'held')",
                (_iso(at), originator, device, srv, f"{counter:020d}", raw, json.dumps(decision, default=str)),
            )
            return int(cur.lastrowid)

    def get_quarantine(self, item: int) -> dict | None:
        rows = self._read("SELECT * FROM quarantine WHERE id = ?", (item,))
        return rows[0] if rows else None

    def list_quarantine(self, *, status: str | None = None) -> list[dict]:
        if status is None:
            return self._read("SELECT id, at, originator, device, srv, counter, status, resolved_by, resolved_at, reason FROM quarantine ORDER BY id")
        return self._read(
            "SELECT id, at, originator, device, srv, counter, status, resolved_by, resolved_at, reason FROM quarantine WHERE status = ? ORDER BY id",
            (status,),
        )

    def resolve_quarantine(self, item: int, *, status: str, by: str, at: datetime, reason: str) -> bool:
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE quarantine SET status = ?, resolved_by = ?, resolved_at = ?, reason = ? WHERE id = ? AND status = 'held'",
                (status, by, _iso(at), reason, item),
            )
            return cur.rowcount == 1

    # -- Shared Resource Providers and alert deliveries ---------------------------------------
    def put_srp(self, srp_id: str, *, name: str, endpoint: str, serves: list[str]) -> None:
        with self.transaction() as conn:
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

    def srp_for_supplier(self, supplier: str) -> dict | None:
        rows = self._read(
            "SELECT srps.* FROM srps JOIN srp_suppliers ON srp_suppliers.srp = srps.id WHERE srp_suppliers.supplier = ?",
            (supplier,),
        )
        return rows[0] if rows else None

    def list_srps(self) -> list[dict]:
        rows = self._read("SELECT * FROM srps ORDER BY id")
        for row in rows:
            row["serves"] = [r["supplier"] for r in self._read("SELECT supplier FROM srp_suppliers WHERE srp = ? ORDER BY supplier", (row["id"],))]
        return rows

    def add_alert_delivery(self, record: dict) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO alert_deliveries (received_at, response_id, recipient, device, alert, raw, status, target_kind,"
                " target_id, endpoint, reason, routed_at) VALUES (:received_at, :response_id, :recipient, :device, :alert, :raw,"
                " :status, :target_kind, :target_id, :endpoint, :reason, :routed_at)",
                record,
            )
            return int(cur.lastrowid)

    def update_alert_delivery(self, item: int, **fields) -> None:
        allowed = {"status", "target_kind", "target_id", "endpoint", "reason", "routed_at", "response_id", "recipient", "device", "alert"}
        assignments = ", ".join(f"{k} = :{k}" for k in fields if k in allowed)
        with self.transaction() as conn:
            conn.execute(f"UPDATE alert_deliveries SET {assignments} WHERE id = :id", {**fields, "id": item})

    def alert_deliveries(self, *, status: str | None = None) -> list[dict]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        return self._read(
            "SELECT id, received_at, response_id, recipient, device, alert, status, target_kind, target_id, endpoint, reason,"
            f" routed_at FROM alert_deliveries {where} ORDER BY id",
            params,
        )

    def alert_delivery_status(self, item: int) -> str | None:
        rows = self._read("SELECT status FROM alert_deliveries WHERE id = ?", (item,))
        return rows[0]["status"] if rows else None

    def alert_raw(self, item: int) -> bytes | None:
        rows = self._read("SELECT raw FROM alert_deliveries WHERE id = ?", (item,))
        return bytes(rows[0]["raw"]) if rows else None
