"""The store interface the rest of solr-policy depends on.

Everything durable goes through a ``Store``: small role protocols, one per concern, composed
into one. Code that needs one concern asks for that protocol only (``Verifier`` needs a
``CertificateStore``). The SQLite implementation is the embedded default; a PostgreSQL
implementation for several nodes implements the same protocols, reuses ``audit_chain`` for
the audit hash chain, and passes ``tests/store/test_contract.py``.

Contract for every implementation:

- records in and out are the typed records of ``solr_policy.records`` and ``world.py``;
- ``transaction()`` is one atomic unit (all or nothing); nested calls join the outer one; a
  write outside ``transaction()`` is its own transaction;
- any fault of the database (missing, corrupt, locked, unreachable, a driver error) raises
  ``solr_policy.errors.StoreUnavailable`` with a one-line message, never the driver's own
  exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, Self

from solr_policy.records import (
    AdtFileRecord,
    AdtUsage,
    AdtUsageKey,
    AlertDelivery,
    AlertStatus,
    AuditAppend,
    AuditCheck,
    AuditEntry,
    CertRecord,
    InstructionEvent,
    KeyHolder,
    LogHead,
    LogSnapshot,
    OfficerRecord,
    QuarantinedRequest,
    QuarantineItem,
    QuarantineStatus,
    SmkiStatus,
    SrpRecord,
    StoredCheckpoint,
    TrustAnchor,
)
from solr_policy.world import Device, Instruction, Party, SupplierChange, User


class CertificateStore(Protocol):
    """SMKI Organisation Certificates and their statuses."""

    def put_certificate(self, record: CertRecord) -> bool:
        """Add a certificate; False, changing nothing, if (issuer, serial) is already known."""
        ...

    def get_certificate(self, issuer: str, serial: int) -> CertRecord | None: ...

    def find_certificates(
        self, *, eui: str | None = None, role: int | None = None, spki_sha256: str | None = None
    ) -> list[CertRecord]:
        """Those matching every criterion given, ordered by subject EUI-64 and serial."""
        ...

    def list_certificates(self) -> list[CertRecord]: ...

    # trust anchors: SMKI Root and Organisation CA certificates, added by signed act
    def add_trust_anchor(self, anchor: TrustAnchor) -> bool:
        """False, changing nothing, if one with that fingerprint is already there."""
        ...

    def remove_trust_anchor(self, fingerprint: str) -> bool: ...
    def trust_anchors(self) -> list[TrustAnchor]: ...

    def key_shared_with(self, spki_sha256: str, fingerprint: str) -> list[KeyHolder]:
        """Other certificates (another fingerprint) with the same public key."""
        ...

    def set_certificate_status(self, issuer: str, serial: int, status: SmkiStatus) -> bool:
        """False if no such certificate."""
        ...


class WorldStore(Protocol):
    """Parties, Users, Devices, Authority instructions and the instructions' history."""

    def put_party(self, party: Party) -> None: ...
    def put_user(self, user: User) -> None: ...
    def put_device(self, device: Device) -> None: ...
    def put_instruction(self, instruction: Instruction) -> None: ...
    def get_party(self, party_id: str) -> Party | None: ...
    def get_user(self, eui: str) -> User | None: ...

    def world_generation(self) -> int:
        """A number that changes, in the same transaction, whenever Users, instructions, ADT
        files or certificates change: what decisions may cache is valid while it stays."""
        ...

    def get_device(self, eui: str) -> Device | None: ...

    def devices_with_history(self, euis: Sequence[str]) -> dict[str, tuple[Device, list[SupplierChange]]]:
        """Each of those Devices that exists, with its ``supplier_history``, by id."""
        ...

    def get_instruction(self, reference: str) -> Instruction | None: ...

    def instructions(self, *, solr_party: str | None = None, failed_supplier: str | None = None) -> list[Instruction]:
        """Those matching every criterion given, ordered by start and reference."""
        ...

    def list_parties(self) -> list[Party]: ...
    def list_users(self) -> list[User]: ...
    def list_devices(self) -> list[Device]: ...

    def put_supplier_history(self, device: str, changes: Sequence[SupplierChange]) -> None:
        """Replace the Device's history of Supplier changes with ``changes``."""
        ...

    def supplier_history(self, device: str) -> list[SupplierChange]:
        """The Device's Supplier changes, in time order (empty: its ``supplier`` always)."""
        ...

    def add_instruction_event(self, reference: str, *, at: datetime, action: str, officer: str, reason: str) -> None: ...

    def instruction_events(self, reference: str) -> list[InstructionEvent]:
        """In the order they happened."""
        ...


class CounterStore(Protocol):
    """The last accepted RequestID counter of each originator (replay protection)."""

    def get_counter(self, originator: str) -> int | None: ...

    def set_counter(self, originator: str, counter: int) -> None:
        """Counters go up to 2**64 - 1."""
        ...

    def set_counters(self, counters: Mapping[str, int]) -> None:
        """``set_counter`` for each originator given."""
        ...

    def replay_counters(self, originator: str) -> tuple[int | None, int | None]:
        """``(get_counter(originator), logged_counter(originator))``, read together."""
        ...

    def serialise_originators(self, originators: Iterable[str]) -> None:
        """Inside a write transaction: wait for, then hold, each originator's lock (what a
        decision reads and takes about it: counters, ADT usage), in one order whoever asks,
        so two transactions deciding for the same originators never deadlock."""
        ...


class AdtStore(Protocol):
    """ADT files and the requests counted against their thresholds."""

    def put_adt_file(self, record: AdtFileRecord) -> None:
        """Store as current (whatever ``record.status``); the User's current file for the same
        Supplier becomes superseded."""
        ...

    def withdraw_adt_files(self, aro: str) -> list[str]:
        """The current files ``aro`` submitted stop being current (their ARO was removed);
        returns their references."""
        ...

    def get_adt_file(self, reference: str) -> AdtFileRecord | None: ...

    def current_adt_files(self, user_id: str) -> list[AdtFileRecord]:
        """Ordered by Supplier."""
        ...

    def list_adt_files(self) -> list[AdtFileRecord]:
        """Current and superseded, in the order submitted."""
        ...

    def adt_usage(self, user_id: str, supplier: str, srv: str, period: str, window_start: str) -> int:
        """Requests counted in that window (0 if none)."""
        ...

    def add_adt_usage(self, user_id: str, supplier: str, srv: str, period: str, window_start: str) -> None:
        """Count one more request in that window."""
        ...

    def adt_usages(self, keys: Sequence[AdtUsageKey]) -> dict[AdtUsageKey, int]:
        """``adt_usage`` of each window ``key``."""
        ...

    def add_adt_usages(self, counts: Mapping[AdtUsageKey, int]) -> None:
        """Count ``n`` more requests in each window ``key`` given."""
        ...

    def all_adt_usage(self) -> list[AdtUsage]: ...


class QuarantineStore(Protocol):
    """Requests held over an ADT threshold, until an officer releases or discards them."""

    def add_quarantine(
        self, *, at: datetime, originator: str, device: str, srv: str, counter: int, raw: bytes, decision: Mapping[str, Any]
    ) -> int:
        """Hold a request; returns its item id."""
        ...

    def get_quarantine(self, item: int) -> QuarantineItem | None: ...
    def quarantined_request(self, item: int) -> QuarantinedRequest | None: ...

    def list_quarantine(self, *, status: QuarantineStatus | None = None) -> list[QuarantineItem]:
        """Ordered by item id."""
        ...

    def resolve_quarantine(self, item: int, *, status: QuarantineStatus, by: str, at: datetime, reason: str) -> bool:
        """Mark a held item released or discarded; False if it is not held (any more)."""
        ...


class OfficerStore(Protocol):
    """Governance officers, SROs and AROs."""

    def put_officer(self, officer: OfficerRecord) -> None:
        """Insert or replace (by id)."""
        ...

    def get_officer(self, officer_id: str) -> OfficerRecord | None: ...

    def list_officers(self, *, party: str | None = None) -> list[OfficerRecord]:
        """Ordered by kind and id."""
        ...


class SrpStore(Protocol):
    """Shared Resource Providers and the Suppliers they serve."""

    def put_srp(self, srp_id: str, *, name: str, endpoint: str, serves: Sequence[str]) -> None:
        """Register or update an SRP; each Supplier in ``serves`` is (re)assigned to it."""
        ...

    def srp_for_supplier(self, supplier: str) -> SrpRecord | None: ...
    def list_srps(self) -> list[SrpRecord]: ...


class AlertStore(Protocol):
    """Every alert received (bytes kept) and where it was routed, or why it waits."""

    def add_alert_delivery(self, delivery: AlertDelivery, raw: bytes) -> int:
        """Store a new delivery (its ``id`` is ignored); returns the id given to it."""
        ...

    def update_alert_delivery(self, delivery: AlertDelivery) -> None:
        """Rewrite a stored delivery (found by ``id``); its arrival time and bytes never change."""
        ...

    def get_alert_delivery(self, item: int) -> AlertDelivery | None: ...

    def alert_deliveries(self, *, status: AlertStatus | None = None, response_id: str | None = None) -> list[AlertDelivery]:
        """Ordered by id; those with ``status`` and/or ``response_id`` when given."""
        ...

    def alert_raw(self, item: int) -> bytes | None: ...


class AuditStore(Protocol):
    """The hash-chained audit trail (see ``store.audit_chain``)."""

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
        """Append one entry, chained to the newest; returns its sequence number. ``counter``:
        the RequestID counter a decision took for ``originator`` (hashed with the entry)."""
        ...

    def append_audits(self, entries: Sequence[AuditAppend]) -> list[int]:
        """Append entries in order, as ``append_audit`` of each in turn would; their sequence numbers."""
        ...

    def logged_counter(self, originator: str) -> int | None:
        """The highest counter the log says a decision took for ``originator``."""
        ...

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
        """Those matching every criterion given (``since`` inclusive, ``until`` exclusive), in sequence order."""
        ...

    def audit_stream(self) -> Iterator[AuditEntry]:
        """Every entry in sequence order, from one snapshot, streamed (constant memory: a SoLR
        event's log is hundreds of thousands of entries). Read it to the end, or close it."""
        ...

    def verify_audit(self) -> AuditCheck: ...

    def log_snapshot(self) -> AbstractContextManager[LogSnapshot]:
        """The Merkle tree's head, every entry (streamed) and the counters, ADT usage and
        quarantine items, all from one snapshot (``transparency.log.LogKeeper.verify``)."""
        ...

    # the Merkle tree over the entries (RFC 9162; ``solr_policy.audit`` proves and checks it)
    def log_head(self) -> LogHead:
        """The tree's size and frontier, as the last append left them."""
        ...

    def log_nodes(self, level: int, start: int, end: int) -> list[bytes]:
        """Hashes of the perfect subtrees of height ``level`` numbered start..end-1 (level 0:
        the leaf hashes, from the entries themselves; levels 8 and 16: kept on append)."""
        ...

    def serialise_log(self) -> None:
        """Inside a transaction: wait for the appends other transactions (any process or node)
        are making, and keep new ones waiting until this one commits: the log's head stays
        what this transaction read (to sign it and keep the checkpoint in the order signed)."""
        ...

    def put_checkpoint(self, checkpoint: StoredCheckpoint) -> None: ...
    def latest_checkpoint(self) -> StoredCheckpoint | None: ...


class StatementStore(Protocol):
    """The nonces of signed governance statements already applied: each applies at most once."""

    def use_nonce(self, nonce: str, digest: str, at: datetime) -> bool:
        """Record ``nonce`` as used; False, changing nothing, if it already was."""
        ...

    def serialise_acts(self, *, shared: bool = False) -> None:
        """Inside a transaction: wait for the governance act another transaction (any process
        or node) is applying, and keep the next one waiting until this one commits, so each
        act reads the officers and keys as the acts before it left them. ``shared`` (a
        decision, first in its transaction): beside other decisions, never beside an act."""
        ...


class Store(
    StatementStore,
    CertificateStore,
    WorldStore,
    CounterStore,
    AdtStore,
    QuarantineStore,
    OfficerStore,
    SrpStore,
    AlertStore,
    AuditStore,
    Protocol,
):
    """Everything durable."""

    def transaction(self) -> AbstractContextManager[Self]:
        """One atomic unit of work; yields the store itself."""
        ...

    def close(self) -> None: ...
