"""What the decisions of one write transaction have read and taken, kept ahead of the store.

Inside a write transaction the writer holds the locks on what a decision reads and takes
(SQLite: the database's write lock; PostgreSQL: the advisory lock of each originator, taken
at its first read, and the audit chain's, taken to append): no other transaction changes an
originator's counters or ADT usage meanwhile. So each is read from the store once per
transaction and kept here, with what the decisions before took, and every decision sees
exactly what the ones before it in the transaction wrote. The writes (counters, ADT usage,
audit entries) go to the store together in ``flush``, just before the transaction commits:
a few statements for a whole group instead of a dozen per decision. An ``Overlay`` lives no
longer than its transaction's ``with`` block: when that rolls back, it goes with it.

Quarantine rows are written at once (a decision names the id it was given), as is a release.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from solr_policy.records import AdtUsageKey, AuditAppend
from solr_policy.store.audit_chain import canonical_payload
from solr_policy.store.base import Store
from solr_policy.world import Device, SupplierChange

DeviceFacts = tuple[Device | None, tuple[SupplierChange, ...]]


class Overlay:
    """One transaction's view of counters, ADT usage and Devices, and its pending writes."""

    __slots__ = ("store", "_counters", "_logged", "_usage", "_devices", "_set", "_add", "_audit")

    def __init__(self, store: Store) -> None:
        self.store = store
        self._counters: dict[str, int | None] = {}  # counters table, as this transaction left it
        self._logged: dict[str, int | None] = {}  # highest counter in the log, pending entries included
        self._usage: dict[AdtUsageKey, int] = {}  # requests counted, pending ones included
        self._devices: dict[str, DeviceFacts] = {}
        self._set: dict[str, int] = {}  # counters to write
        self._add: dict[AdtUsageKey, int] = {}  # ADT usage to add
        # Entries to append, in order, as plain tuples of AuditAppend's fields: strings, a time
        # and numbers, which the garbage collector stops following (a named tuple it does not).
        self._audit: list[tuple[str, str, datetime, str | None, str | None, str | None, str | None, int | None, str | None]] = []

    # -- reads: the store's value the first time, then this transaction's --------------------
    def counter(self, key: str) -> int | None:
        try:
            return self._counters[key]
        except KeyError:
            value = self._counters[key] = self.store.get_counter(key)
            return value

    def logged_counter(self, originator: str) -> int | None:
        try:
            return self._logged[originator]
        except KeyError:
            value = self._logged[originator] = self.store.logged_counter(originator)
            return value

    def replay_counters(self, originator: str) -> tuple[int | None, int | None]:
        """``(counter, logged_counter)`` of ``originator`` (one statement when neither is known)."""
        if originator not in self._counters or originator not in self._logged:
            counter, logged = self.store.replay_counters(originator)
            self._counters.setdefault(originator, counter)
            self._logged.setdefault(originator, logged)
        return self._counters[originator], self._logged[originator]

    def adt_usage(self, key: AdtUsageKey) -> int:
        try:
            return self._usage[key]
        except KeyError:
            return self.adt_usages([key])[0]

    def adt_usages(self, keys: list[AdtUsageKey]) -> list[int]:
        """The requests counted in each window (those not known yet read in one statement)."""
        usage = self._usage
        unknown = [key for key in keys if key not in usage]
        if unknown:
            usage.update(self.store.adt_usages(unknown))
        return [usage[key] for key in keys]

    def device(self, eui: str) -> DeviceFacts:
        """The Device and its Supplier history (read once per transaction)."""
        try:
            return self._devices[eui]
        except KeyError:
            self.read_devices((eui,))
            return self._devices[eui]

    def read_devices(self, euis: Iterable[str]) -> None:
        """Read the Devices a group of decisions will ask for, in a statement per 256. Devices
        change only by a world load; read at the start of the group, as if decided then."""
        wanted = [eui for eui in dict.fromkeys(euis) if eui not in self._devices]
        if not wanted:
            return
        found = self.store.devices_with_history(wanted)
        for eui in wanted:
            device, history = found.get(eui, (None, []))
            self._devices[eui] = (device, tuple(history))

    # -- writes: seen by the decisions after, written by flush -------------------------------
    def set_counter(self, key: str, counter: int) -> None:
        self._counters[key] = self._set[key] = counter

    def add_adt_usage(self, key: AdtUsageKey) -> None:
        self._usage[key] = self.adt_usage(key) + 1
        self._add[key] = self._add.get(key, 0) + 1

    def append_audit(
        self, kind: str, payload: Mapping[str, Any] | str, *, at: datetime, actor: str | None = None, originator: str | None = None,
        device: str | None = None, instruction: str | None = None, counter: int | None = None, payload_json: str | None = None,
    ) -> None:
        """Append an audit entry at the flush; ``payload_json`` as ``AuditAppend``'s."""
        if originator is not None and counter is not None:
            # Read before the entry is pending, so the log's highest counter counts it too.
            known = self.logged_counter(originator)
            self._logged[originator] = counter if known is None else max(known, counter)
        # Kept as its canonical text (``payload`` may be that already): a string, which the
        # garbage collector need not walk while the group's entries wait for the flush.
        text = payload if isinstance(payload, str) else canonical_payload(payload)
        self._audit.append((kind, text, at, actor, originator, device, instruction, counter, payload_json))

    def flush(self) -> list[int]:
        """Write what the decisions took; inside the transaction, before it commits. The
        audit chain last: on PostgreSQL its lock is then held only while the group commits."""
        store = self.store
        if self._set:
            store.set_counters(self._set)
            self._set = {}
        if self._add:
            store.add_adt_usages(self._add)
            self._add = {}
        positions: list[int] = []
        if self._audit:
            positions = store.append_audits([AuditAppend._make(entry) for entry in self._audit])
            self._audit = []
        return positions
