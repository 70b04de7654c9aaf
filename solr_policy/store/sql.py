"""Every store method in plain SQL, shared by the SQLite and PostgreSQL stores.

``SqlStore`` implements the role protocols of ``store.base.Store`` once, in SQL both databases
run: ``?`` placeholders, ``ON CONFLICT`` upserts, ``RETURNING``, ``NULLS FIRST``, and values
kept in the same form in both (times as canonical UTC ISO text, counters and serials as
decimal text, JSON as text), so the two stores return the same records in the same order. A
subclass supplies only the driver: connections, transactions, faults and its migrations.

Adding a concern (a table and a few methods) means one migration per database and the
methods here, written once.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from solr_policy.errors import StoreUnavailable
from solr_policy.records import (
    AdtFileRecord,
    AdtFileStatus,
    AdtUsage,
    AdtUsageKey,
    AlertDelivery,
    AlertStatus,
    AuditAppend,
    AuditCheck,
    AuditEntry,
    AuditHead,
    CertRecord,
    InstructionEvent,
    KeyHolder,
    LogHead,
    LogSnapshot,
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
    gbcs_counter_key,
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
    grow_many,
    leaf_of,
    verify_chain,
)
from solr_policy.world import Device, DeviceType, Instruction, InstructionStatus, Party, Smets, SupplierChange, User, UserStatus

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Row = dict[str, Any]
R = TypeVar("R", bound="DataclassInstance")


class Cursor(Protocol):
    """What the shared methods use of a driver's cursor (sqlite3 and psycopg both fit)."""

    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _optional_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# The tables of facts a decision reads that change only by a governance act or a world load;
# any change to them bumps the store's world generation (a trigger, in the same transaction).
STATIC_FACT_TABLES = ("users", "instructions", "adt_files", "certificates")


class SqlStore(ABC):
    """The role protocols of ``store.base.Store`` over one SQL connection per transaction."""

    _local: threading.local  # per thread: ``depth`` of transaction() calls open, and the driver's own
    _driver_error: type[Exception]  # the base class of the driver's exceptions

    @contextmanager
    def transaction(self) -> Iterator[Self]:
        """One atomic unit of work; nested calls join the outer one.

        Any driver error inside rolls the whole unit back and surfaces as ``StoreUnavailable``.
        """
        with self._tx():
            yield self

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """Begin a write transaction on this thread, or join the one open: nested calls are
        part of the outermost, which commits or rolls back everything."""
        if getattr(self._local, "depth", 0):
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        self._local.appended = None  # the newest audit entry this transaction appends: (seq, hash)
        with self._outermost_tx():
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0

    @contextmanager
    def _driver_errors(self) -> Iterator[None]:
        try:
            yield
        except self._driver_error as exc:
            raise self._fault(exc) from None

    @contextmanager
    def _commit_or_roll_back(self, execute: Callable[[str], object], begin: str) -> Iterator[None]:
        """``begin``; then COMMIT, or ROLLBACK on any exception (a driver error surfacing as
        ``StoreUnavailable``). ``execute`` runs a statement on the transaction's connection."""
        with self._driver_errors():
            execute(begin)
        try:
            yield
        except BaseException as exc:
            try:
                execute("ROLLBACK")
            except self._driver_error:
                pass  # the database rolled back already (a lost connection, a full disk, ...)
            if isinstance(exc, self._driver_error):
                raise self._fault(exc) from None
            raise
        try:
            execute("COMMIT")
        except self._driver_error as exc:
            if self._committed_anyway():
                return  # the answer to COMMIT was lost, not the transaction: it stands as committed
            try:
                # A COMMIT that failed may leave the transaction open (SQLite, on a full disk or
                # a busy file), holding the write lock and refusing the next BEGIN: end it.
                execute("ROLLBACK")
            except self._driver_error:
                pass  # it ended with the failure
            raise self._fault(exc) from None

    def _committed_anyway(self) -> bool:
        """After COMMIT failed: did the database commit all the same? (A server can commit and
        lose the connection before it answers.) Unknown is no. SQLite commits locally: no."""
        return False

    # -- what a driver supplies ------------------------------------------------------------
    @abstractmethod
    def _fault(self, exc: BaseException) -> StoreUnavailable:
        """The driver's exception as one line a person can act on."""

    @abstractmethod
    def _outermost_tx(self) -> AbstractContextManager[None]:
        """One transaction on this thread's connection (see ``_commit_or_roll_back``)."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        """Run one statement in the transaction ``_tx`` opened on this thread."""

    @abstractmethod
    def _execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement once per row of parameters, in the transaction ``_tx`` opened."""

    @abstractmethod
    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Rows as dicts: in this thread's transaction if one is open, else on their own."""

    @abstractmethod
    def _snapshot_rows(self, queries: Sequence[str]) -> AbstractContextManager[list[Iterator[Row]]]:
        """The rows of each query, all read from one snapshot of the database, streamed."""

    def _serialise(self, key: str, *, shared: bool = False) -> None:
        """Inside a write transaction, wait for any other transaction holding ``key``, then hold
        it until commit (``shared``: beside other transactions holding it shared). Called before the reads a decision depends on (the originator's
        counter and ADT usage, a held request, the audit chain's head). A database whose write
        transactions already run one at a time (SQLite) needs nothing here."""

    @abstractmethod
    def close(self) -> None: ...

    def _serialise_originator(self, eui: str) -> None:
        # One key for everything a decision reads and writes about its originator (User,
        # counter, ADT files and usage): decisions of one originator run one at a time,
        # decisions of different originators side by side.
        self._serialise(f"originator:{eui}")

    def serialise_originators(self, originators: Iterable[str]) -> None:
        # Sorted: two transactions deciding for the same originators (two nodes' groups) take
        # their locks in one order, so one waits for the other instead of both deadlocking.
        for key in sorted({k for originator in originators for k in (originator, gbcs_counter_key(originator))}):
            self._serialise_originator(key)

    def _insert(self, sql: str, params: Sequence[object]) -> int:
        """Run an ``INSERT ... RETURNING id``; the id given to the new row."""
        with self._tx():
            return int(self._execute(sql, params).fetchall()[0][0])

    # -- certificates -----------------------------------------------------------------
    def put_certificate(self, record: CertRecord) -> bool:
        """Insert a certificate's facts; False (and nothing changed) if it is already known."""
        with self._tx():
            # DO NOTHING rather than a read first: two nodes importing one certificate at once
            # add it once, and neither fails.
            cur = self._execute(
                "INSERT INTO certificates (issuer, serial, subject, subject_eui, role, key_usage, not_before,"
                " not_after, status, spki_sha256, fingerprint, der, lenient, imported_at, provenance)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (issuer, serial) DO NOTHING",
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
            return cur.rowcount == 1

    def add_trust_anchor(self, anchor: TrustAnchor) -> bool:
        with self._tx():
            cur = self._execute(
                "INSERT INTO trust_anchors (fingerprint, subject, der, added_at, added_by) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (fingerprint) DO NOTHING",
                (anchor.fingerprint, anchor.subject, anchor.der, _iso(anchor.added_at), anchor.added_by),
            )
            return cur.rowcount == 1

    def remove_trust_anchor(self, fingerprint: str) -> bool:
        with self._tx():
            return self._execute("DELETE FROM trust_anchors WHERE fingerprint = ?", (fingerprint,)).rowcount == 1

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
        return [self._cert(r) for r in self._read(f"SELECT * FROM certificates{where} ORDER BY subject_eui NULLS FIRST, serial", params)]

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
        with self._tx():
            cur = self._execute(
                "UPDATE certificates SET status = ? WHERE issuer = ? AND serial = ?",
                (status.value, issuer, str(serial)),
            )
            return cur.rowcount == 1

    # -- the world --------------------------------------------------------------------
    def put_party(self, party: Party) -> None:
        with self._tx():
            self._execute(
                "INSERT INTO parties (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                (party.id, party.name),
            )

    def put_user(self, user: User) -> None:
        with self._tx():
            self._execute(
                "INSERT INTO users (id, party, role, status) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " party = excluded.party, role = excluded.role, status = excluded.status"
                # An unchanged User is not rewritten: the world generation (the facts cache) stays.
                " WHERE users.party <> excluded.party OR users.role <> excluded.role OR users.status <> excluded.status",
                (user.id, user.party, user.role, user.status.value),
            )

    def put_device(self, device: Device) -> None:
        with self._tx():
            self._execute(
                "INSERT INTO devices (id, type, smets, supplier) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " type = excluded.type, smets = excluded.smets, supplier = excluded.supplier",
                (device.id, device.type.value, device.smets.value, device.supplier),
            )

    def put_supplier_history(self, device: str, changes: Sequence[SupplierChange]) -> None:
        with self._tx():
            self._execute("DELETE FROM supplier_history WHERE device = ?", (device,))
            for change in changes:
                self._execute(
                    "INSERT INTO supplier_history (device, effective_from, supplier) VALUES (?, ?, ?)",
                    (device, _iso(change.effective_from), change.supplier),
                )

    def supplier_history(self, device: str) -> list[SupplierChange]:
        rows = self._read("SELECT * FROM supplier_history WHERE device = ? ORDER BY effective_from", (device,))
        return [SupplierChange.model_construct(device=r["device"], effective_from=_time(r["effective_from"]), supplier=r["supplier"]) for r in rows]

    def put_instruction(self, instruction: Instruction) -> None:
        with self._tx():
            self._execute(
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

    def world_generation(self) -> int:
        rows = self._read("SELECT generation FROM world_generation WHERE id = 1")
        return int(rows[0]["generation"]) if rows else 0

    def get_user(self, eui: str) -> User | None:
        self._serialise_originator(eui)
        rows = self._read("SELECT * FROM users WHERE id = ?", (eui,))
        return self._user(rows[0]) if rows else None

    @staticmethod
    def _user(row: Row) -> User:
        # Validated on the way in: constructed without re-validating (hot path).
        return User.model_construct(id=row["id"], party=row["party"], role=row["role"], status=UserStatus(row["status"]))

    def get_device(self, eui: str) -> Device | None:
        rows = self._read("SELECT * FROM devices WHERE id = ?", (eui,))
        return self._device(rows[0]) if rows else None

    def devices_with_history(self, euis: Sequence[str]) -> dict[str, tuple[Device, list[SupplierChange]]]:
        """Each of those Devices that exists, with its ``supplier_history``, by id: one
        statement for up to 256 of them."""
        found: dict[str, tuple[Device, list[SupplierChange]]] = {}
        for chunk in _id_chunks(euis):
            rows = self._read(
                "SELECT devices.id, devices.type, devices.smets, devices.supplier, supplier_history.effective_from,"
                " supplier_history.supplier AS changed_to FROM devices LEFT JOIN supplier_history"
                f" ON supplier_history.device = devices.id WHERE devices.id IN ({_marks(len(chunk))})"
                " ORDER BY devices.id, supplier_history.effective_from",
                chunk,
            )
            for r in rows:
                if r["id"] not in found:
                    found[r["id"]] = (self._device(r), [])
                if r["effective_from"] is not None:
                    found[r["id"]][1].append(
                        SupplierChange.model_construct(device=r["id"], effective_from=_time(r["effective_from"]), supplier=r["changed_to"])
                    )
        return found

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
        with self._tx():
            self._execute(
                "INSERT INTO instruction_events (reference, at, action, officer, reason) VALUES (?, ?, ?, ?, ?)",
                (reference, _iso(at), action, officer, reason),
            )

    def instruction_events(self, reference: str) -> list[InstructionEvent]:
        rows = self._read("SELECT reference, at, action, officer, reason FROM instruction_events WHERE reference = ? ORDER BY id", (reference,))
        return [InstructionEvent(r["reference"], _time(r["at"]), r["action"], r["officer"], r["reason"]) for r in rows]

    # -- replay counters ---------------------------------------------------------------
    # Counters go up to 2^64-1, beyond SQLite's signed INTEGER: kept as 20-digit text.
    def get_counter(self, originator: str) -> int | None:
        self._serialise_originator(originator)
        rows = self._read("SELECT last_counter FROM counters WHERE originator = ?", (originator,))
        return int(rows[0]["last_counter"]) if rows else None

    def set_counter(self, originator: str, counter: int) -> None:
        with self._tx():
            self._serialise_originator(originator)
            self._execute(
                "INSERT INTO counters (originator, last_counter) VALUES (?, ?)"
                " ON CONFLICT (originator) DO UPDATE SET last_counter = excluded.last_counter",
                (originator, f"{counter:020d}"),
            )

    def replay_counters(self, originator: str) -> tuple[int | None, int | None]:
        """``(get_counter, logged_counter)`` of ``originator``, in one statement."""
        self._serialise_originator(originator)
        rows = self._read(
            "SELECT (SELECT last_counter FROM counters WHERE originator = ?) AS counter,"
            " (SELECT max(counter) FROM audit WHERE originator = ? AND counter IS NOT NULL) AS logged",
            (originator, originator),
        )
        counter, logged = (rows[0]["counter"], rows[0]["logged"]) if rows else (None, None)
        return (int(counter) if counter is not None else None, int(logged) if logged is not None else None)

    def set_counters(self, counters: Mapping[str, int]) -> None:
        """``set_counter`` for each (originator, counter), in one statement."""
        if not counters:
            return
        with self._tx():
            for originator in counters:
                self._serialise_originator(originator)
            self._execute_many(
                "INSERT INTO counters (originator, last_counter) VALUES (?, ?)"
                " ON CONFLICT (originator) DO UPDATE SET last_counter = excluded.last_counter",
                [(originator, f"{counter:020d}") for originator, counter in counters.items()],
            )

    # -- officers -----------------------------------------------------------------------
    def put_officer(self, officer: OfficerRecord) -> None:
        with self._tx():
            self._execute(
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
        with self._tx():
            rows = self._execute(
                "SELECT reference FROM adt_files WHERE aro = ? AND status = ? ORDER BY reference", (aro, AdtFileStatus.CURRENT.value)
            ).fetchall()
            self._execute(
                "UPDATE adt_files SET status = ? WHERE aro = ? AND status = ?",
                (AdtFileStatus.WITHDRAWN.value, aro, AdtFileStatus.CURRENT.value),
            )
            return [r[0] for r in rows]

    def put_adt_file(self, record: AdtFileRecord) -> None:
        """Store an accepted ADT file as current; it supersedes the current one for the same User and Supplier."""
        with self._tx():
            self._execute(
                "UPDATE adt_files SET status = ? WHERE user_id = ? AND supplier = ? AND status = ?",
                (AdtFileStatus.SUPERSEDED.value, record.user_id, record.supplier, AdtFileStatus.CURRENT.value),
            )
            self._execute(
                "INSERT INTO adt_files (reference, party, user_id, supplier, aro, submitted_at, thresholds, sha256, status, exceptions)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.reference, record.party, record.user_id, record.supplier, record.aro, _iso(record.submitted_at),
                    json.dumps(record.thresholds, sort_keys=True), record.sha256, AdtFileStatus.CURRENT.value,
                    json.dumps(list(record.exceptions), sort_keys=True),
                ),
            )

    @staticmethod
    def _adt_file(row: Row) -> AdtFileRecord:
        return _record(AdtFileRecord, row, submitted_at=_time, thresholds=json.loads, status=AdtFileStatus, exceptions=_json_tuple)

    def get_adt_file(self, reference: str) -> AdtFileRecord | None:
        rows = self._read("SELECT * FROM adt_files WHERE reference = ?", (reference,))
        return self._adt_file(rows[0]) if rows else None

    def current_adt_files(self, user_id: str) -> list[AdtFileRecord]:
        self._serialise_originator(user_id)
        rows = self._read(
            "SELECT * FROM adt_files WHERE user_id = ? AND status = ? ORDER BY supplier", (user_id, AdtFileStatus.CURRENT.value)
        )
        return [self._adt_file(r) for r in rows]

    def list_adt_files(self) -> list[AdtFileRecord]:
        return [self._adt_file(r) for r in self._read("SELECT * FROM adt_files ORDER BY submitted_at, reference")]

    def adt_usage(self, user_id: str, supplier: str, srv: str, period: str, window_start: str) -> int:
        self._serialise_originator(user_id)
        rows = self._read(
            "SELECT count FROM adt_usage WHERE user_id = ? AND supplier = ? AND srv = ? AND period = ? AND window_start = ?",
            (user_id, supplier, srv, period, window_start),
        )
        return int(rows[0]["count"]) if rows else 0

    def add_adt_usage(self, user_id: str, supplier: str, srv: str, period: str, window_start: str) -> None:
        with self._tx():
            self._serialise_originator(user_id)
            self._execute(
                "INSERT INTO adt_usage (user_id, supplier, srv, period, window_start, count) VALUES (?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (user_id, supplier, srv, period, window_start) DO UPDATE SET count = adt_usage.count + 1",
                (user_id, supplier, srv, period, window_start),
            )

    def adt_usages(self, keys: Sequence[AdtUsageKey]) -> dict[AdtUsageKey, int]:
        """``adt_usage`` of each window, in one statement for the windows of one User,
        Supplier and SRV (a request counts in two or three)."""
        found: dict[AdtUsageKey, int] = {}
        groups: dict[tuple[str, str, str], list[AdtUsageKey]] = {}
        for key in keys:
            groups.setdefault((key.user_id, key.supplier, key.srv), []).append(key)
        for (user_id, supplier, srv), windows in groups.items():
            self._serialise_originator(user_id)
            rows = self._read(
                "SELECT period, window_start, count FROM adt_usage WHERE user_id = ? AND supplier = ? AND srv = ? AND ("
                + " OR ".join(["(period = ? AND window_start = ?)"] * len(windows)) + ")",
                (user_id, supplier, srv, *(part for key in windows for part in (key.period, key.window_start))),
            )
            counts = {(r["period"], r["window_start"]): int(r["count"]) for r in rows}
            found.update((key, counts.get((key.period, key.window_start), 0)) for key in windows)
        return found

    def add_adt_usages(self, counts: Mapping[AdtUsageKey, int]) -> None:
        """Count ``n`` more requests in each window ``key``, in one statement."""
        if not counts:
            return
        with self._tx():
            for key in counts:
                self._serialise_originator(key.user_id)
            self._execute_many(
                "INSERT INTO adt_usage (user_id, supplier, srv, period, window_start, count) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, supplier, srv, period, window_start) DO UPDATE SET count = adt_usage.count + excluded.count",
                [(*key, n) for key, n in counts.items()],
            )

    def all_adt_usage(self) -> list[AdtUsage]:
        rows = self._read("SELECT * FROM adt_usage ORDER BY user_id, supplier, srv, period, window_start")
        return [AdtUsage(r["user_id"], r["supplier"], r["srv"], r["period"], r["window_start"], int(r["count"])) for r in rows]

    # -- quarantine -----------------------------------------------------------------------
    def add_quarantine(
        self, *, at: datetime, originator: str, device: str, srv: str, counter: int, raw: bytes, decision: Mapping[str, Any]
    ) -> int:
        with self._tx():
            return self._insert(
                "INSERT INTO quarantine (at, originator, device, srv, counter, raw, decision, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (_iso(at), originator, device, srv, f"{counter:020d}", raw, json.dumps(decision, default=str), QuarantineStatus.HELD.value),
            )

    _QUARANTINE_ITEM = "SELECT id, at, originator, device, srv, counter, status, resolved_by, resolved_at, reason FROM quarantine"

    @staticmethod
    def _quarantine_item(row: Row) -> QuarantineItem:
        return _record(QuarantineItem, row, at=_time, counter=int, status=QuarantineStatus, resolved_at=_optional_time)

    def get_quarantine(self, item: int) -> QuarantineItem | None:
        self._serialise(f"quarantine:{item}")  # of two officers releasing one item, the second sees it resolved
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
        with self._tx():
            self._serialise(f"quarantine:{item}")
            cur = self._execute(
                "UPDATE quarantine SET status = ?, resolved_by = ?, resolved_at = ?, reason = ? WHERE id = ? AND status = ?",
                (status.value, by, _iso(at), reason, item, QuarantineStatus.HELD.value),
            )
            return cur.rowcount == 1

    # -- Shared Resource Providers ------------------------------------------------------------
    def put_srp(self, srp_id: str, *, name: str, endpoint: str, serves: Sequence[str]) -> None:
        """Register or update an SRP; each Supplier in ``serves`` is (re)assigned to it."""
        with self._tx():
            self._execute(
                "INSERT INTO srps (id, name, endpoint) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " name = excluded.name, endpoint = excluded.endpoint",
                (srp_id, name, endpoint),
            )
            for supplier in serves:
                self._execute(
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
        with self._tx():
            return self._insert(
                "INSERT INTO alert_deliveries (received_at, raw, response_id, recipient, device, alert, status, target_kind,"
                " target_id, endpoint, reason, routed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (_iso(delivery.received_at), raw, *self._delivery_columns(delivery)),
            )

    def update_alert_delivery(self, delivery: AlertDelivery) -> None:
        """Write where a stored alert goes now (everything but when it arrived and its bytes)."""
        if delivery.id is None:
            raise ValueError("an alert delivery is updated by its id")
        with self._tx():
            self._execute(
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
        self._serialise(f"alert-delivery:{item}")  # of two nodes retrying it at once, the second sees it routed
        rows = self._read(f"{self._DELIVERY} WHERE id = ?", (item,))
        return self._delivery(rows[0]) if rows else None

    def alert_deliveries(self, *, status: AlertStatus | None = None, response_id: str | None = None) -> list[AlertDelivery]:
        if response_id is not None:
            # Of two nodes given the same alert at once, the second sees the first's delivery.
            self._serialise(f"alert:{response_id}")
        where, params = _where(status=AlertStatus(status).value if status is not None else None, response_id=response_id)
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
        """Append one hash-chained entry and grow the Merkle tree over the entries; joins the
        caller's transaction if there is one."""
        entry = AuditAppend(kind, canonical_payload(payload), at, actor, originator, device, instruction, counter)
        return self.append_audits([entry])[0]

    def append_audits(self, entries: Sequence[AuditAppend]) -> list[int]:
        """Append entries in order, each chained to the one before, as ``append_audit`` one by
        one would (the same hashes and tree), reading and writing the head once; their
        sequence numbers. Joins the caller's transaction if there is one."""
        if not entries:
            return []
        with self._tx():
            self._serialise("audit")  # one linear chain: appends wait for each other
            last = self._execute("SELECT seq, hash, frontier FROM audit_head WHERE id = 1").fetchall()
            first, prev = (int(last[0][0]) + 1, last[0][1]) if last else (1, GENESIS)
            tree = frontier_from_text(int(last[0][0]), last[0][2]) if last else EMPTY_LOG
            if not frontier_fits(tree):
                tree = self._build_log()
            rows, digests = [], []
            for seq, entry in enumerate(entries, start=first):
                if isinstance(entry.payload, str):
                    text, text_json = entry.payload, entry.payload_json
                else:
                    text, text_json = canonical_payload(entry.payload), None
                when = canonical_time(entry.at)
                fields = {
                    "actor": entry.actor, "originator": entry.originator, "device": entry.device,
                    "instruction": entry.instruction, "counter": entry.counter,
                }
                digest = audit_hash(prev, seq, when, entry.kind, fields, text, text_json)
                rows.append((seq, when, entry.kind, entry.actor, entry.originator, entry.device, entry.instruction, text, prev, digest,
                             f"{entry.counter:020d}" if entry.counter is not None else None))
                digests.append(digest)
                prev = digest
            self._execute_many(
                "INSERT INTO audit (seq, at, kind, actor, originator, device, instruction, payload, prev_hash, hash, counter)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            nodes: list[tuple[int, int, bytes]] = []
            tree = grow_many(tree, digests, lambda level, idx, digest: nodes.append((level, idx, digest)))
            if nodes:
                self._execute_many("INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
            self._execute(
                "INSERT INTO audit_head (id, seq, hash, frontier) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
                " SET seq = excluded.seq, hash = excluded.hash, frontier = excluded.frontier",
                (first + len(entries) - 1, prev, frontier_text(tree)),
            )
            self._local.appended = (first + len(entries) - 1, prev)
            return list(range(first, first + len(entries)))

    def _keep_node(self, level: int, idx: int, digest: bytes) -> None:
        self._execute("INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", (level, idx, digest))

    def _build_log(self) -> LogHead:
        """The tree over the entries as appends would have made it (an older store, or a kept
        frontier that does not fit the entries: it is a cache of what they determine; a
        rolled-back log is caught by its checkpoints, not here). Inside a transaction."""
        self._execute("DELETE FROM log_nodes")
        digests = [digest for (digest,) in self._execute("SELECT hash FROM audit ORDER BY seq").fetchall()]
        head = grow_many(EMPTY_LOG, digests, self._keep_node)
        self._execute("UPDATE audit_head SET frontier = ? WHERE id = 1", (frontier_text(head),))
        return head

    def logged_counter(self, originator: str) -> int | None:
        self._serialise_originator(originator)
        rows = self._read("SELECT max(counter) AS c FROM audit WHERE originator = ? AND counter IS NOT NULL", (originator,))
        return int(rows[0]["c"]) if rows and rows[0]["c"] is not None else None

    def log_head(self) -> LogHead:
        rows = self._read("SELECT seq, frontier FROM audit_head WHERE id = 1")
        return frontier_from_text(int(rows[0]["seq"]), rows[0]["frontier"]) if rows else EMPTY_LOG

    def log_nodes(self, level: int, start: int, end: int) -> list[bytes]:
        if level == 0:
            rows = self._read("SELECT hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq", (start, end))
            return [leaf_of(r["hash"]) for r in rows]
        rows = self._read("SELECT hash FROM log_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx", (level, start, end))
        return [bytes(r["hash"]) for r in rows]

    def serialise_log(self) -> None:
        self._serialise("audit")

    def put_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._tx():
            self._execute(
                "INSERT INTO checkpoints (size, root, at, note) VALUES (?, ?, ?, ?)",
                (checkpoint.size, checkpoint.root, canonical_time(checkpoint.at), checkpoint.note),
            )

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        rows = self._read("SELECT size, root, at, note FROM checkpoints ORDER BY rowid DESC LIMIT 1")
        if not rows:
            return None
        row = rows[0]
        return StoredCheckpoint(int(row["size"]), row["root"], datetime.fromisoformat(row["at"]), row["note"])

    def serialise_acts(self, *, shared: bool = False) -> None:
        self._serialise("governance", shared=shared)

    def use_nonce(self, nonce: str, digest: str, at: datetime) -> bool:
        with self._tx():
            cur = self._execute(
                "INSERT INTO statements (nonce, digest, at) VALUES (?, ?, ?) ON CONFLICT (nonce) DO NOTHING",
                (nonce, digest, canonical_time(at)),
            )
            return cur.rowcount == 1

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

    def audit_stream(self) -> Iterator[AuditEntry]:
        with self._snapshot_rows(("SELECT * FROM audit ORDER BY seq",)) as (rows,):
            for row in rows:
                yield self._audit_entry(row)

    @contextmanager
    def log_snapshot(self) -> Iterator[LogSnapshot]:
        queries = (
            "SELECT seq, frontier FROM audit_head WHERE id = 1",
            "SELECT originator, last_counter FROM counters",
            "SELECT user_id, supplier, srv, period, window_start, count FROM adt_usage",
            f"{self._QUARANTINE_ITEM} ORDER BY id",
            "SELECT * FROM audit ORDER BY seq",
        )
        with self._snapshot_rows(queries) as (head_rows, counter_rows, usage_rows, held_rows, rows):
            head = next(head_rows, None)
            yield LogSnapshot(
                head=frontier_from_text(int(head["seq"]), head["frontier"]) if head else EMPTY_LOG,
                entries=(self._audit_entry(row) for row in rows),
                counters={r["originator"]: int(r["last_counter"]) for r in counter_rows},
                usage={
                    AdtUsageKey(r["user_id"], r["supplier"], r["srv"], r["period"], r["window_start"]): int(r["count"])
                    for r in usage_rows
                },
                quarantine=tuple(self._quarantine_item(r) for r in held_rows),
            )

    def verify_audit(self) -> AuditCheck:
        """Walk the chain (``audit_chain.verify_chain``): intact, or the first broken entry named.

        Head and entries come from one snapshot, so an append committed meanwhile (by another
        process or node) is not mistaken for entries cut off."""
        queries = ("SELECT seq, hash FROM audit_head WHERE id = 1", "SELECT * FROM audit ORDER BY seq")
        with self._snapshot_rows(queries) as (head_rows, rows):
            head = next(head_rows, None)
            entries = (self._audit_entry(row) for row in rows)
            return verify_chain(entries, AuditHead(int(head["seq"]), head["hash"]) if head else None)


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


def _id_chunks(ids: Sequence[str], most: int = 256) -> Iterator[list[str]]:
    """``ids`` (duplicates dropped) in chunks of at most ``most``, each padded with its first
    id to a power of two: a handful of distinct statements, so the drivers' statement caches
    keep them."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), most):
        chunk = unique[start : start + most]
        chunk += chunk[:1] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk))
        yield chunk


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _json_tuple(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text))


def _usages(text: str) -> tuple[str, ...]:
    return tuple(u for u in text.split(",") if u)

