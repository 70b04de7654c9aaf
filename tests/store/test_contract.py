"""The store contract: what every ``Store`` implementation must do, whatever its database.

Runs once per entry of ``kinds.STORE_KINDS`` (SQLite and PostgreSQL). It
uses only the ``Store`` protocol; what no protocol method can do (tampering with the audit
table, damaging the database) each kind supplies itself.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from solr_policy.errors import StoreUnavailable
from solr_policy.records import (
    ROLE_DSP_XML_SIGN,
    ROLE_SUPPLIER,
    AdtFileStatus,
    AdtUsage,
    AdtUsageKey,
    AlertStatus,
    AuditAppend,
    AuditCheck,
    InstructionEvent,
    KeyHolder,
    OfficerKind,
    OfficerStatus,
    QuarantineStatus,
    SmkiStatus,
    SrpRecord,
)
from solr_policy.store.audit_chain import canonical_payload, canonical_time, entry_hash
from solr_policy.store import SqliteStore
from solr_policy.store.base import Store
from solr_policy.world import Device, DeviceType, InstructionStatus, Party, Smets, SupplierChange, User, UserStatus

from .kinds import STORE_KINDS, StoreKind
from .samples import (
    GAS_METER,
    HOUR,
    ISSUER,
    METER,
    NOW,
    OTHER_USER,
    SOLR_USER,
    adt_file,
    cert,
    fill,
    instruction,
    officer,
    pending_alert,
    supplier_signing_cert,
    world,
)


@pytest.fixture(params=[pytest.param(kind, marks=kind.marks, id=kind.name) for kind in STORE_KINDS])
def kind(request, tmp_path: Path) -> Iterator[StoreKind]:
    request.param.ready()
    yield request.param
    request.param.cleanup(tmp_path)


@pytest.fixture()
def store(kind: StoreKind, tmp_path: Path) -> Iterator[Store]:
    opened = kind.create(tmp_path)
    yield opened
    opened.close()


# -- certificates ----------------------------------------------------------------------------
def test_a_certificate_round_trips_and_is_added_once(store):
    record = cert(2**127 + 5)  # SMKI serials are up to 20 bytes, beyond any 64-bit integer
    assert store.put_certificate(record) is True
    assert store.get_certificate(ISSUER, record.serial) == record
    assert store.put_certificate(record.model_copy(update={"subject": "changed"})) is False
    assert store.get_certificate(ISSUER, record.serial) == record
    assert store.get_certificate(ISSUER, record.serial + 1) is None
    assert store.get_certificate("CN=other", record.serial) is None


def test_certificates_are_found_by_every_criterion_given(store):
    xml_sign = cert(10, key="k1")
    dsp = cert(11, eui="90B3D51F30000002", role=ROLE_DSP_XML_SIGN, key="k2")
    signing = supplier_signing_cert(12, key="k1")
    no_eui = cert(13, eui=None, role=None, key="k3", usage=())
    for record in (signing, dsp, no_eui, xml_sign):
        store.put_certificate(record)
    assert store.find_certificates(eui=SOLR_USER) == [xml_sign, signing]
    assert store.find_certificates(role=ROLE_DSP_XML_SIGN) == [dsp]
    assert store.find_certificates(eui=SOLR_USER, role=ROLE_SUPPLIER) == [signing]
    assert store.find_certificates(spki_sha256=xml_sign.spki_sha256) == [xml_sign, signing]
    assert store.find_certificates(eui="0000000000000000") == []
    everything = store.list_certificates()
    assert everything == store.find_certificates()
    assert sorted(c.serial for c in everything) == [10, 11, 12, 13]


def test_key_shared_with_names_the_other_holders_of_a_key(store):
    mine = cert(20, key="shared")
    twin = supplier_signing_cert(21, key="shared", eui="90B3D51F300F0002")
    store.put_certificate(mine)
    store.put_certificate(twin)
    store.put_certificate(cert(22, key="unrelated"))
    assert store.key_shared_with(mine.spki_sha256, mine.fingerprint) == [
        KeyHolder(serial=21, role=ROLE_SUPPLIER, key_usage=("digital_signature",), subject_eui="90B3D51F300F0002")
    ]
    assert store.key_shared_with(cert(22, key="unrelated").spki_sha256, cert(22, key="unrelated").fingerprint) == []


def test_a_certificate_status_changes_only_for_a_known_certificate(store):
    record = cert(30)
    store.put_certificate(record)
    assert store.set_certificate_status(ISSUER, 30, SmkiStatus.REVOKED) is True
    assert store.get_certificate(ISSUER, 30).status is SmkiStatus.REVOKED
    assert store.set_certificate_status(ISSUER, 31, SmkiStatus.REVOKED) is False
    # Adding it again does not bring it back to life.
    assert store.put_certificate(record) is False
    assert store.get_certificate(ISSUER, 30).status is SmkiStatus.REVOKED


# -- the world -------------------------------------------------------------------------------
def test_parties_users_and_devices_round_trip_and_update_in_place(store):
    world(store)
    assert store.get_party("FAILED") == Party(id="FAILED", name="Failed Energy")
    assert store.get_user(OTHER_USER) == User(id=OTHER_USER, party="FAILED", role="IS", status=UserStatus.SUSPENDED)
    assert store.get_device(GAS_METER) == Device(id=GAS_METER, type=DeviceType.GSME, smets=Smets.SMETS2, supplier="OTHER")
    assert store.get_party("NOBODY") is None and store.get_user("0000000000000000") is None and store.get_device("0000000000000000") is None

    store.put_party(Party(id="FAILED", name="Failed Energy (in administration)"))
    store.put_user(User(id=OTHER_USER, party="FAILED", role="IS", status=UserStatus.WITHDRAWN))
    store.put_device(Device(id=GAS_METER, type=DeviceType.GSME, smets=Smets.SMETS2, supplier="FAILED"))
    assert store.get_party("FAILED").name == "Failed Energy (in administration)"
    assert store.get_user(OTHER_USER).status is UserStatus.WITHDRAWN
    assert store.get_device(GAS_METER).supplier == "FAILED"
    assert [p.id for p in store.list_parties()] == ["FAILED", "OTHER", "SOLR"]
    assert [u.id for u in store.list_users()] == sorted([SOLR_USER, OTHER_USER])
    assert [d.id for d in store.list_devices()] == sorted([METER, GAS_METER])
    assert all(isinstance(u.status, UserStatus) for u in store.list_users())


def test_instructions_round_trip_with_their_scope_and_are_filtered(store):
    world(store)
    scoped = instruction(
        "OFGEM-2", failed="OTHER", start=NOW + HOUR, scope=[METER], status=InstructionStatus.PROPOSED, proposed_by="gov-alice"
    )
    open_ended = instruction("OFGEM-0", start=NOW - 2 * HOUR).model_copy(update={"effective_until": None})
    store.put_instruction(scoped)
    store.put_instruction(open_ended)
    assert store.get_instruction("OFGEM-2") == scoped
    assert store.get_instruction("OFGEM-0") == open_ended
    assert store.get_instruction("OFGEM-9") is None
    assert [i.reference for i in store.instructions()] == ["OFGEM-0", "OFGEM-1", "OFGEM-2"]  # by start
    assert [i.reference for i in store.instructions(failed_supplier="FAILED")] == ["OFGEM-0", "OFGEM-1"]
    assert [i.reference for i in store.instructions(solr_party="SOLR", failed_supplier="OTHER")] == ["OFGEM-2"]
    assert store.instructions(solr_party="OTHER") == []

    approved = scoped.model_copy(update={"status": InstructionStatus.ACTIVE, "approved_by": "gov-bob"})
    store.put_instruction(approved)
    assert store.get_instruction("OFGEM-2") == approved


def test_an_instructions_history_is_kept_in_order(store):
    world(store)
    steps = [("propose", "gov-alice", "Ofgem letter"), ("approve", "gov-bob", "checked"), ("end", "gov-alice", "over")]
    for n, (action, who, why) in enumerate(steps):
        store.add_instruction_event("OFGEM-1", at=NOW + n * HOUR, action=action, officer=who, reason=why)
    assert store.instruction_events("OFGEM-1") == [
        InstructionEvent("OFGEM-1", NOW + n * HOUR, action, who, why) for n, (action, who, why) in enumerate(steps)
    ]
    assert store.instruction_events("OFGEM-9") == []


# -- counters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("counter", [0, 1, 2**63, 2**64 - 1])
def test_a_counter_round_trips_up_to_2_to_the_64(store, counter):
    assert store.get_counter(SOLR_USER) is None
    store.set_counter(SOLR_USER, counter)
    assert store.get_counter(SOLR_USER) == counter
    assert store.get_counter(OTHER_USER) is None


def test_a_counter_is_replaced_not_added(store):
    store.set_counter(SOLR_USER, 10)
    store.set_counter(SOLR_USER, 11)
    store.set_counter(OTHER_USER, 5)
    assert (store.get_counter(SOLR_USER), store.get_counter(OTHER_USER)) == (11, 5)


def test_counters_set_together_are_each_replaced_and_read_with_the_log(store):
    store.set_counter(SOLR_USER, 10)
    store.set_counters({SOLR_USER: 12, f"gbcs:{SOLR_USER}": 2**64 - 1, OTHER_USER: 3})
    assert (store.get_counter(SOLR_USER), store.get_counter(f"gbcs:{SOLR_USER}"), store.get_counter(OTHER_USER)) == (12, 2**64 - 1, 3)
    store.set_counters({})  # nothing to write: nothing changes
    assert store.replay_counters(SOLR_USER) == (12, None)
    store.append_audit("decision", {"outcome": "allow"}, at=NOW, originator=SOLR_USER, counter=11)
    store.append_audit("decision", {"outcome": "allow"}, at=NOW, originator=SOLR_USER, counter=2**64 - 2)
    store.append_audit("decision", {"outcome": "allow"}, at=NOW, originator=OTHER_USER, counter=2**64 - 1)
    assert store.replay_counters(SOLR_USER) == (12, 2**64 - 2) == (store.get_counter(SOLR_USER), store.logged_counter(SOLR_USER))
    assert store.replay_counters("90B3D51F300F00FF") == (None, None)


# -- ADT files and usage windows ------------------------------------------------------------------
def test_a_new_adt_file_supersedes_only_the_same_users_file_for_the_same_supplier(store):
    first, other_supplier = adt_file("ADT-1"), adt_file("ADT-2", supplier="OTHER", at=NOW + HOUR)
    store.put_adt_file(first)
    store.put_adt_file(other_supplier)
    assert store.get_adt_file("ADT-1") == first
    assert store.current_adt_files(SOLR_USER) == [first, other_supplier]  # by Supplier

    replacement = adt_file("ADT-3", per_hour=9, at=NOW + 2 * HOUR)
    store.put_adt_file(dataclasses.replace(replacement, status=AdtFileStatus.SUPERSEDED))  # stored as current regardless
    assert store.current_adt_files(SOLR_USER) == [replacement, other_supplier]
    assert store.get_adt_file("ADT-1").status is AdtFileStatus.SUPERSEDED
    assert store.get_adt_file("ADT-3").thresholds == {"1.6": {"per_hour": 9, "per_day": 50}}
    assert [(f.reference, f.status) for f in store.list_adt_files()] == [
        ("ADT-1", AdtFileStatus.SUPERSEDED), ("ADT-2", AdtFileStatus.CURRENT), ("ADT-3", AdtFileStatus.CURRENT)
    ]
    assert store.current_adt_files(OTHER_USER) == [] and store.get_adt_file("ADT-9") is None


def test_an_adt_files_exceptions_round_trip(store):
    exceptions = (
        {"name": "priority-care", "devices": [METER], "exempt": True},
        {"name": "trial", "devices": [GAS_METER], "srvs": ["1.6"], "exempt": False, "thresholds": {"per_15_minutes": 2}},
    )
    store.put_adt_file(dataclasses.replace(adt_file("ADT-X", per_hour=5), exceptions=exceptions))
    assert store.get_adt_file("ADT-X").exceptions == exceptions
    assert store.get_adt_file("ADT-X").thresholds == {"1.6": {"per_hour": 5, "per_day": 50}}


def test_a_devices_supplier_history_is_kept_in_time_order_and_replaced_whole(store):
    assert store.supplier_history(METER) == []
    later = SupplierChange(device=METER, effective_from=NOW + 24 * HOUR, supplier="SOLR")
    earlier = SupplierChange(device=METER, effective_from=NOW - HOUR, supplier="INTERIM")
    store.put_supplier_history(METER, [later, earlier])
    assert store.supplier_history(METER) == [earlier, later]
    assert store.supplier_history(GAS_METER) == []
    store.put_supplier_history(METER, [later])
    assert store.supplier_history(METER) == [later]
    store.put_supplier_history(METER, [])
    assert store.supplier_history(METER) == []


def test_adt_usage_counts_each_window_separately(store):
    hour, day = "2026-11-22T10:00Z", "2026-11-22"
    assert store.adt_usage(SOLR_USER, "FAILED", "1.6", "hour", hour) == 0
    for _ in range(3):
        store.add_adt_usage(SOLR_USER, "FAILED", "1.6", "hour", hour)
    store.add_adt_usage(SOLR_USER, "FAILED", "1.6", "day", day)
    store.add_adt_usage(SOLR_USER, "FAILED", "1.6", "hour", "2026-11-22T11:00Z")
    store.add_adt_usage(SOLR_USER, "FAILED", "1.5", "hour", hour)
    store.add_adt_usage(SOLR_USER, "OTHER", "1.6", "hour", hour)
    assert store.adt_usage(SOLR_USER, "FAILED", "1.6", "hour", hour) == 3
    assert store.adt_usage(SOLR_USER, "FAILED", "1.6", "day", day) == 1
    assert store.adt_usage(SOLR_USER, "FAILED", "1.6", "hour", "2026-11-22T11:00Z") == 1
    assert store.adt_usage(OTHER_USER, "FAILED", "1.6", "hour", hour) == 0
    assert store.all_adt_usage() == [
        AdtUsage(SOLR_USER, "FAILED", "1.5", "hour", hour, 1),
        AdtUsage(SOLR_USER, "FAILED", "1.6", "day", day, 1),
        AdtUsage(SOLR_USER, "FAILED", "1.6", "hour", hour, 3),
        AdtUsage(SOLR_USER, "FAILED", "1.6", "hour", "2026-11-22T11:00Z", 1),
        AdtUsage(SOLR_USER, "OTHER", "1.6", "hour", hour, 1),
    ]


def test_adt_usage_is_read_and_counted_for_several_windows_at_once(store):
    hour, day = AdtUsageKey(SOLR_USER, "FAILED", "1.6", "hour", "2026-11-22T10:00Z"), AdtUsageKey(SOLR_USER, "FAILED", "1.6", "day", "2026-11-22")
    other = AdtUsageKey(OTHER_USER, "FAILED", "1.6", "hour", "2026-11-22T10:00Z")
    exception = AdtUsageKey(SOLR_USER, "FAILED", "1.6", "trial/15_minutes", "2026-11-22T10:15Z")
    assert store.adt_usages([hour, day, other, exception]) == {hour: 0, day: 0, other: 0, exception: 0}
    store.add_adt_usage(*hour)
    store.add_adt_usages({hour: 4, day: 1, exception: 2})
    store.add_adt_usages({})
    assert store.adt_usages([hour, day, other, exception]) == {hour: 5, day: 1, other: 0, exception: 2}
    assert store.adt_usages([]) == {}
    assert [store.adt_usage(*key) for key in (hour, day, other, exception)] == [5, 1, 0, 2]


def test_devices_are_read_with_their_supplier_history_many_at_once(store):
    world(store)
    later = SupplierChange(device=METER, effective_from=NOW + 24 * HOUR, supplier="SOLR")
    earlier = SupplierChange(device=METER, effective_from=NOW - HOUR, supplier="OTHER")
    store.put_supplier_history(METER, [later, earlier])
    unknown = "00DB1234567890FF"
    found = store.devices_with_history([GAS_METER, unknown, METER, METER])
    assert found == {METER: (store.get_device(METER), [earlier, later]), GAS_METER: (store.get_device(GAS_METER), [])}
    assert store.devices_with_history([]) == {}
    # More than one statement's worth: every one found, each once.
    many = [f"00DB12345678{n:04X}" for n in range(300)]
    for eui in many[::3]:
        store.put_device(Device(id=eui, type=DeviceType.GSME, smets=Smets.SMETS2, supplier="OTHER"))
    assert sorted(store.devices_with_history(many + [METER])) == sorted(many[::3] + [METER])


# -- quarantine --------------------------------------------------------------------------------
def _hold(store: Store, counter: int, raw: bytes = b"<sr:Request/>") -> int:
    decision = {"outcome": "quarantine", "response_code": "AD1", "request": {"counter": counter}}
    return store.add_quarantine(at=NOW, originator=SOLR_USER, device=METER, srv="1.6", counter=counter, raw=raw, decision=decision)


def test_a_quarantined_request_is_kept_byte_for_byte_with_its_decision(store):
    raw = b"<sr:Request>\x00\xff bytes as received</sr:Request>"
    item = _hold(store, 2**64 - 1, raw)
    held = store.get_quarantine(item)
    assert (held.id, held.at, held.originator, held.device, held.srv, held.counter) == (item, NOW, SOLR_USER, METER, "1.6", 2**64 - 1)
    assert held.status is QuarantineStatus.HELD and held.held
    assert (held.resolved_by, held.resolved_at, held.reason) == (None, None, None)
    request = store.quarantined_request(item)
    assert (request.id, request.raw) == (item, raw)
    assert request.decision == {"outcome": "quarantine", "response_code": "AD1", "request": {"counter": 2**64 - 1}}
    assert store.get_quarantine(item + 100) is None and store.quarantined_request(item + 100) is None


def test_a_held_request_is_resolved_once(store):
    first, second, third = _hold(store, 1), _hold(store, 2), _hold(store, 3)
    assert first < second < third
    assert store.resolve_quarantine(first, status=QuarantineStatus.RELEASED, by="aro-ann", at=NOW + HOUR, reason="genuine") is True
    assert store.resolve_quarantine(first, status=QuarantineStatus.DISCARDED, by="gov-bob", at=NOW + HOUR, reason="late") is False
    assert store.resolve_quarantine(second, status=QuarantineStatus.DISCARDED, by="gov-bob", at=NOW + 2 * HOUR, reason="runaway") is True
    assert store.resolve_quarantine(third + 1, status=QuarantineStatus.RELEASED, by="aro-ann", at=NOW, reason="none") is False
    released = store.get_quarantine(first)
    assert (released.status, released.resolved_by, released.resolved_at, released.reason) == (
        QuarantineStatus.RELEASED, "aro-ann", NOW + HOUR, "genuine"
    )
    assert [q.id for q in store.list_quarantine()] == [first, second, third]
    assert [q.id for q in store.list_quarantine(status=QuarantineStatus.HELD)] == [third]
    assert [q.id for q in store.list_quarantine(status=QuarantineStatus.DISCARDED)] == [second]
    assert store.list_quarantine(status=QuarantineStatus.HELD)[0] == store.get_quarantine(third)


def test_resolving_as_held_is_refused(store):
    item = _hold(store, 1)
    with pytest.raises(ValueError):
        store.resolve_quarantine(item, status=QuarantineStatus.HELD, by="aro-ann", at=NOW, reason="?")
    assert store.get_quarantine(item).held


# -- officers ----------------------------------------------------------------------------------
def test_officers_round_trip_are_listed_by_kind_and_party_and_are_replaced_by_id(store):
    alice = officer("gov-alice", OfficerKind.GOVERNANCE)
    sam = officer("sro-sam", OfficerKind.SRO, "SOLR", by="gov-alice")
    ann = officer("aro-ann", OfficerKind.ARO, "SOLR", by="sro-sam")
    sue = officer("sro-sue", OfficerKind.SRO, "OTHER", by="gov-alice")
    for record in (sue, ann, sam, alice):
        store.put_officer(record)
    assert store.get_officer("sro-sam") == sam and store.get_officer("nobody") is None
    assert [o.id for o in store.list_officers()] == ["aro-ann", "gov-alice", "sro-sam", "sro-sue"]  # kind, then id
    assert [o.id for o in store.list_officers(party="SOLR")] == ["aro-ann", "sro-sam"]

    removed = dataclasses.replace(ann, status=OfficerStatus.REMOVED, removed_by="sro-sam", removed_at=NOW + HOUR)
    store.put_officer(removed)
    assert store.get_officer("aro-ann") == removed and not removed.active
    assert len(store.list_officers()) == 4


# -- SRPs and alert deliveries ---------------------------------------------------------------
def test_srps_serve_suppliers_and_a_supplier_can_move_to_another_srp(store):
    world(store)
    assert store.srp_for_supplier("FAILED") is None and store.list_srps() == []
    store.put_srp("SRP-N", name="North", endpoint="https://north.example/alerts", serves=["FAILED", "OTHER"])
    north = SrpRecord("SRP-N", "North", "https://north.example/alerts", ("FAILED", "OTHER"))
    assert store.srp_for_supplier("FAILED") == north and store.list_srps() == [north]

    store.put_srp("SRP-S", name="South", endpoint="queue:south", serves=["OTHER"])
    store.put_srp("SRP-N", name="North Ltd", endpoint="https://north.example/v2", serves=[])
    assert store.srp_for_supplier("OTHER") == SrpRecord("SRP-S", "South", "queue:south", ("OTHER",))
    assert store.list_srps() == [
        SrpRecord("SRP-N", "North Ltd", "https://north.example/v2", ("FAILED",)),
        SrpRecord("SRP-S", "South", "queue:south", ("OTHER",)),
    ]


def test_an_alert_delivery_round_trips_and_is_updated_but_never_its_bytes(store):
    raw = b"<sr:Response>alert \x00\x01</sr:Response>"
    item = store.add_alert_delivery(dataclasses.replace(pending_alert(), id=12345), raw)  # the id given is ignored
    stored = store.get_alert_delivery(item)
    assert stored == dataclasses.replace(pending_alert(), id=item)
    assert store.alert_raw(item) == raw

    routed = dataclasses.replace(
        stored, status=AlertStatus.ROUTED, target_kind="srp,solr_party", target_id="SRP-N,SOLR",
        endpoint="https://north.example/alerts,", reason="to its SRP", routed_at=NOW + HOUR,
        received_at=NOW + 5 * HOUR,  # not something an update changes
    )
    store.update_alert_delivery(routed)
    assert store.get_alert_delivery(item) == dataclasses.replace(routed, received_at=NOW)
    assert store.alert_raw(item) == raw
    assert store.get_alert_delivery(item + 1) is None and store.alert_raw(item + 1) is None


def test_alert_deliveries_are_listed_in_order_and_by_status(store):
    first = store.add_alert_delivery(pending_alert(), b"1")
    refused = dataclasses.replace(pending_alert("90B3D51F300D0001"), response_id="", device=None, alert="{}", status=AlertStatus.REFUSED)
    second = store.add_alert_delivery(refused, b"2")
    third = store.add_alert_delivery(pending_alert(SOLR_USER), b"3")
    assert [d.id for d in store.alert_deliveries()] == [first, second, third]
    assert [d.id for d in store.alert_deliveries(status=AlertStatus.PENDING)] == [first, third]
    assert [d.id for d in store.alert_deliveries(status=AlertStatus.REFUSED)] == [second]
    assert store.alert_deliveries(status=AlertStatus.ROUTED) == []


def test_updating_an_alert_delivery_needs_its_id(store):
    with pytest.raises(ValueError):
        store.update_alert_delivery(pending_alert())


# -- the audit trail --------------------------------------------------------------------------------
def _audit_some(store: Store) -> list[int]:
    return [
        store.append_audit("instruction.propose", {"reference": "OFGEM-1", "reason": "letter"}, at=NOW, actor="gov-alice", instruction="OFGEM-1"),
        store.append_audit("decision", {"outcome": "allow", "n": 2**64 - 1}, at=NOW + HOUR, actor=SOLR_USER, originator=SOLR_USER, device=METER),
        store.append_audit("quarantine.discard", {"item": 1}, at=NOW + 2 * HOUR, actor="gov-bob", originator=SOLR_USER, device=GAS_METER),
        store.append_audit("srp.add", {"srp": "SRP-N"}, at=NOW + 3 * HOUR),
    ]


def test_audit_entries_are_numbered_and_chained_as_audit_chain_computes(store):
    assert _audit_some(store) == [1, 2, 3, 4]
    entries = store.audit_entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[1].payload_data() == {"outcome": "allow", "n": 2**64 - 1}
    assert entries[1].payload == canonical_payload({"outcome": "allow", "n": 2**64 - 1})
    assert [e.at for e in entries] == [canonical_time(NOW + n * HOUR) for n in range(4)]
    assert entries[1].at_time == NOW + HOUR
    assert (entries[2].actor, entries[2].originator, entries[2].device, entries[2].instruction) == ("gov-bob", SOLR_USER, GAS_METER, None)
    # One chain definition for every store: each hash is what audit_chain says it is.
    prev = "0" * 64
    for entry in entries:
        assert entry.prev_hash == prev and entry.hash == entry_hash(entry, prev)
        prev = entry.hash
    assert store.verify_audit() == AuditCheck(True, 4, "4 entries, chain intact")


def test_entries_appended_together_are_chained_as_one_by_one(store, tmp_path):
    """append_audits is append_audit for each entry in turn: the same entries, hashes and tree
    (a batch of 300 completes a kept subtree of the Merkle tree, at level 8), as an SQLite
    store given them one at a time has them."""
    entries = [
        AuditAppend("decision", {"outcome": "allow", "n": n, "text": "é \"quoted\""}, NOW + n * HOUR, SOLR_USER, SOLR_USER, METER, None, n)
        for n in range(300)
    ] + [AuditAppend("srp.add", canonical_payload({"srp": "SRP-N"}), NOW)]  # a payload given as its canonical text
    store.append_audit("bootstrap", {"first": True}, at=NOW)
    assert store.append_audits(entries) == list(range(2, 303))
    assert store.append_audits([]) == []
    one_by_one = SqliteStore(tmp_path / "one-by-one.db")
    try:
        one_by_one.append_audit("bootstrap", {"first": True}, at=NOW)
        for entry in entries:
            payload = entry.payload if isinstance(entry.payload, dict) else {"srp": "SRP-N"}
            one_by_one.append_audit(entry.kind, payload, at=entry.at, actor=entry.actor, originator=entry.originator,
                                    device=entry.device, instruction=entry.instruction, counter=entry.counter)
        assert store.audit_entries() == one_by_one.audit_entries()
        assert store.log_head() == one_by_one.log_head() and store.log_head().size == 302
        assert store.log_nodes(8, 0, 2) == one_by_one.log_nodes(8, 0, 2) and len(store.log_nodes(8, 0, 2)) == 1
    finally:
        one_by_one.close()
    assert store.verify_audit() == AuditCheck(True, 302, "302 entries, chain intact")


def test_an_empty_audit_trail_is_intact(store):
    assert store.audit_entries() == []
    assert store.verify_audit() == AuditCheck(True, 0, "0 entries, chain intact")


def test_audit_entries_are_filtered_by_every_criterion_given(store):
    _audit_some(store)

    def seqs(**criteria) -> list[int]:
        return [e.seq for e in store.audit_entries(**criteria)]

    assert seqs(kind="decision") == [2]
    assert seqs(actor="gov-bob") == [3]
    assert seqs(device=METER) == [2]
    assert seqs(instruction="OFGEM-1") == [1]
    assert seqs(since=NOW + HOUR) == [2, 3, 4]  # inclusive
    assert seqs(until=NOW + 2 * HOUR) == [1, 2]  # exclusive
    assert seqs(since=NOW + HOUR, until=NOW + 3 * HOUR, actor="gov-bob") == [3]
    assert seqs(limit=2) == [1, 2]
    assert seqs(kind="decision", actor="gov-bob") == []


@pytest.mark.parametrize(
    ("change", "params", "finding"),
    [
        ("UPDATE audit SET payload = ? WHERE seq = ?", ('{"outcome":"reject"}', 2), "entry 2 was altered (its hash does not match its content)"),
        ("UPDATE audit SET actor = ? WHERE seq = ?", ("gov-eve", 3), "entry 3 was altered (its hash does not match its content)"),
        ("UPDATE audit SET prev_hash = ? WHERE seq = ?", ("f" * 64, 2), "entry 2 does not link to entry 1"),
        ("DELETE FROM audit WHERE seq = ?", (2,), "entry 2 is missing (next is 3)"),
        (
            "DELETE FROM audit WHERE seq = ?",
            (4,),
            "the chain ends at entry 3, but entry 4 was written: newest entries are missing or altered",
        ),
    ],
    ids=["payload", "actor", "link", "middle-entry-deleted", "newest-entry-deleted"],
)
def test_tampering_with_the_audit_trail_is_found(store, kind, change, params, finding):
    _audit_some(store)
    kind.write_behind(store, change, params)
    check = store.verify_audit()
    assert not check.intact and check.message == finding


def test_an_entry_rewritten_with_a_fresh_hash_breaks_the_next_link(store, kind):
    _audit_some(store)
    entry = store.audit_entries(kind="decision")[0]
    forged = dataclasses.replace(entry, payload='{"outcome":"reject"}')
    kind.write_behind(store, "UPDATE audit SET payload = ?, hash = ? WHERE seq = ?", (forged.payload, entry_hash(forged, entry.prev_hash), entry.seq))
    assert store.verify_audit() == AuditCheck(False, 3, "entry 3 does not link to entry 2")


def test_verifying_while_another_thread_appends_never_reports_a_false_break(store):
    done = threading.Event()

    def append() -> None:
        for n in range(60):
            store.append_audit("test", {"n": n}, at=NOW)
        done.set()

    writer = threading.Thread(target=append)
    writer.start()
    checks = []
    while not done.is_set():
        checks.append(store.verify_audit())  # head and entries from one snapshot
        time.sleep(0.002)  # let the writer have the GIL between walks    writer.join()
    assert len(checks) > 1 and all(check.intact for check in checks), [c.message for c in checks if not c.intact][:3]
    assert store.verify_audit().entries == 60


# -- transactions --------------------------------------------------------------------------------
class Boom(Exception):
    pass


def test_a_transaction_commits_everything_together(store):
    with store.transaction() as tx:
        assert tx is store
        store.put_party(Party(id="SOLR", name="SoLR Co"))
        store.set_counter(SOLR_USER, 7)
        store.append_audit("decision", {"outcome": "allow"}, at=NOW)
    assert store.get_party("SOLR") is not None and store.get_counter(SOLR_USER) == 7 and len(store.audit_entries()) == 1


def test_an_exception_rolls_the_whole_transaction_back(store):
    store.set_counter(SOLR_USER, 1)
    with pytest.raises(Boom):
        with store.transaction():
            store.put_party(Party(id="SOLR", name="SoLR Co"))
            store.set_counter(SOLR_USER, 2)
            store.add_adt_usage(SOLR_USER, "FAILED", "1.6", "hour", "2026-11-22T10:00Z")
            _hold(store, 2)
            store.append_audit("decision", {"outcome": "quarantine"}, at=NOW)
            raise Boom()
    assert store.get_party("SOLR") is None and store.get_counter(SOLR_USER) == 1
    assert store.all_adt_usage() == [] and store.list_quarantine() == [] and store.audit_entries() == []
    assert store.verify_audit().intact
    # The store is usable afterwards, and the chain continues from where it was.
    assert store.append_audit("decision", {"outcome": "allow"}, at=NOW) == 1


def test_a_nested_transaction_joins_the_outer_one(store):
    with pytest.raises(Boom):
        with store.transaction():
            with store.transaction():
                store.set_counter(SOLR_USER, 5)
            assert store.get_counter(SOLR_USER) == 5  # visible inside, not yet committed
            raise Boom()
    assert store.get_counter(SOLR_USER) is None


def test_data_outlives_the_store_object(kind, tmp_path):
    first = kind.create(tmp_path)
    world(first)
    first.set_counter(SOLR_USER, 99)
    first.append_audit("decision", {"outcome": "allow"}, at=NOW)
    first.close()
    second = kind.reopen(tmp_path)
    try:
        assert second.get_counter(SOLR_USER) == 99 and second.get_instruction("OFGEM-1") is not None
        assert second.verify_audit().intact
    finally:
        second.close()


# -- store faults ------------------------------------------------------------------------------
def _is_one_line(fault: StoreUnavailable) -> bool:
    return bool(fault.message) and "\n" not in fault.message and str(fault) == fault.message


def test_every_unusable_store_refuses_to_open_with_one_line(kind, tmp_path):
    ways = kind.unusable(tmp_path)
    assert ways, "a store kind must say how it can be unusable"
    for way, open_it in ways.items():
        with pytest.raises(StoreUnavailable) as raised:
            open_it().close()
        assert _is_one_line(raised.value), (way, raised.value.message)
        assert raised.value.rule == "store.unavailable"


def test_a_store_damaged_after_it_was_written_fails_reads_and_writes_with_the_typed_error(kind, tmp_path):
    store = kind.create(tmp_path)
    fill(store)
    store.close()
    kind.damage(tmp_path)
    try:
        damaged = kind.reopen(tmp_path)
    except StoreUnavailable as fault:  # some damage is found on opening: as good
        assert _is_one_line(fault)
        return
    try:
        for read in (damaged.list_parties, damaged.audit_entries, damaged.verify_audit):
            with pytest.raises(StoreUnavailable) as raised:
                read()
            assert _is_one_line(raised.value)
        with pytest.raises(StoreUnavailable):
            with damaged.transaction():
                damaged.append_audit("decision", {"outcome": "allow"}, at=NOW)
    finally:
        damaged.close()


def test_the_audit_stream_is_every_entry_in_order_from_one_snapshot(store):
    _audit_some(store)
    assert list(store.audit_stream()) == store.audit_entries()
    stream = store.audit_stream()
    first = next(stream)
    store.append_audit("note", {"after": "the stream began"}, at=NOW + 9 * HOUR)  # not in the snapshot
    assert [first, *stream] == store.audit_entries()[:-1]
