"""The governance layer (MP134B R4, R6): Authority instructions with four eyes, officers
(governance, each Party's SRO and AROs), signed ADT files, thresholds and quarantine, R2 in
the engine, the hash-chained audit trail, and the governance commands of the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import OfficerKeys
from solr_policy.cli import cli
from solr_policy.crypto.certs import read_certificates
from solr_policy.testing.pki import TestPki
from solr_policy.engine import Engine
from solr_policy.errors import GovernanceRefused
from solr_policy.governance import instructions, officers
from solr_policy.governance import quarantine as held
from solr_policy.governance.adt import adt_text, sign_adt, submit_adt
from solr_policy.policy import PolicySet
from solr_policy.records import QuarantineStatus, SmkiStatus
from solr_policy.testing.scenario import SolrScenario
from solr_policy.store import SqliteStore
from solr_policy.world import Instruction, InstructionStatus, Party, User

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
# 10:30 UTC today: inside the validity of the certificates the test PKI issues now (from a
# day ago), with room for decisions an hour later and on the next day.
NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

E1 = "electricity meter (SMETS1)"
E2 = "electricity meter (SMETS2)"
G1 = "gas meter (SMETS1)"
OTHER = "other Supplier's electricity meter"
REF = "OFGEM-SOLR-2026-002"


# -- helpers --------------------------------------------------------------------------------
def refused(rule: str, fn, *args, **kwargs) -> GovernanceRefused:
    with pytest.raises(GovernanceRefused) as info:
        fn(*args, **kwargs)
    assert info.value.rule == rule, info.value.as_dict()
    return info.value


def proposal(s: SolrScenario, ref: str = REF, *, start: datetime = NOW - HOUR, until: datetime | None = None, scope=None, failed: str | None = None) -> Instruction:
    return Instruction(
        reference=ref,
        failed_supplier=failed or s.failed_supplier,
        solr_party=s.solr_party,
        effective_from=start,
        effective_until=until,
        scope=scope,
    )


def propose(store, instruction: Instruction, *, officer: str = "gov-alice", reason: str = "Ofgem letter", at: datetime = NOW) -> Instruction:
    return instructions.propose(store, instruction, officer=officer, reason=reason, at=at)


def act(store, ref: str, action: str, *, officer: str = "gov-bob", reason: str = "as instructed", at: datetime = NOW) -> Instruction:
    return instructions.transition(store, ref, action, officer=officer, reason=reason, at=at)


def activate(store, s: SolrScenario, ref: str = REF, **kwargs) -> Instruction:
    propose(store, proposal(s, ref, **kwargs))
    return act(store, ref, "approve")


def rules_of(decision) -> list[str]:
    return [r.rule for r in decision.reasons]


def new_key() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a fresh P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def public_of(private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def other_party_officers(store, s: SolrScenario) -> dict[str, bytes]:
    """An SRO (sro-sue) and ARO (aro-otto) for the other Party, STEADY-POWER."""
    sue, otto = new_key(), new_key()
    officers.register_sro(store, "sro-sue", name="Sue", party=s.other_supplier, public_key=sue[1], by="gov-alice", at=NOW)
    officers.appoint_aro(store, "aro-otto", name="Otto", party=s.other_supplier, public_key=otto[1], by="sro-sue", at=NOW)
    return {"sro-sue": sue[0], "aro-otto": otto[0]}


def usage(store, s: SolrScenario, when: datetime, srv: str = "1.6") -> tuple[int, int]:
    when = when.astimezone(timezone.utc)
    return (
        store.adt_usage(s.user_eui, s.failed_supplier, srv, "hour", when.strftime("%Y-%m-%dT%H:00Z")),
        store.adt_usage(s.user_eui, s.failed_supplier, srv, "day", when.strftime("%Y-%m-%d")),
    )


def adt_rows(store) -> int:
    return len(store.list_adt_files())


def kinds(store) -> list[str]:
    return [e.kind for e in store.audit_entries()]


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture()
def engine(store):
    return Engine(store, PolicySet.load_dir(POLICIES))


@pytest.fixture()
def bare(store, pki) -> SolrScenario:
    """The scenario without a recorded instruction: governance has to make one."""
    return SolrScenario(pki=pki).install(store, now=NOW, instruction_status=None)


@pytest.fixture()
def limited(store, pki) -> SolrScenario:
    """An active instruction and an ADT file allowing SRV 1.6 three times an hour, five a day."""
    return SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": 3, "per_day": 5}}).install(store, now=NOW)


# == Authority instructions =================================================================
def test_the_proposer_cannot_approve_and_the_refusal_is_audited(store, bare):
    proposed = propose(store, proposal(bare))
    assert proposed.status is InstructionStatus.PROPOSED and proposed.proposed_by == "gov-alice"
    before = len(store.audit_entries())
    refused("R6.four-eyes", act, store, REF, "approve", officer="gov-alice")
    assert store.get_instruction(REF).status is InstructionStatus.PROPOSED
    entries = store.audit_entries()
    assert len(entries) == before + 1
    last = entries[-1]
    assert (last.kind, last.actor, last.instruction) == ("instruction.approve.refused", "gov-alice", REF)
    assert last.payload_data()["rule"] == "R6.four-eyes"
    assert [e.action for e in store.instruction_events(REF)] == ["propose"]  # the refusal is no event

    approved = act(store, REF, "approve", officer="gov-bob")
    assert approved.status is InstructionStatus.ACTIVE
    stored = store.get_instruction(REF)
    assert (stored.status, stored.proposed_by, stored.approved_by) == (InstructionStatus.ACTIVE, "gov-alice", "gov-bob")


def test_the_lifecycle_decides_whether_requests_pass(store, bare, engine):
    ask = bare.requests(counter=100)
    meter = bare.device(E1)

    def decide(at: datetime = NOW):
        return engine.decide(ask.switch_to_credit(meter), now=at)

    propose(store, proposal(bare))
    before = decide()
    assert before.outcome == "reject" and before.response_code == "E3" and "R6.instruction-active" in rules_of(before)

    act(store, REF, "approve")
    assert decide().outcome == "allow"

    act(store, REF, "suspend", officer="gov-alice", reason="Ofgem asked for a pause")
    suspended = decide()
    assert suspended.outcome == "reject" and suspended.response_code == "E3"

    act(store, REF, "resume", officer="gov-alice", reason="pause over")
    assert decide().outcome == "allow"

    act(store, REF, "end", reason="SoLR appointed")
    ended = decide()
    assert ended.outcome == "reject" and ended.response_code == "E3"

    refused("R6.instruction-state", act, store, REF, "resume")
    refused("R6.instruction-state", act, store, REF, "approve", officer="gov-alice")
    refused("R6.instruction-state", act, store, REF, "end")
    assert store.get_instruction(REF).status is InstructionStatus.ENDED
    assert decide().outcome == "reject"


def test_transitions_only_from_their_states(store, bare):
    propose(store, proposal(bare))
    refused("R6.instruction-state", act, store, REF, "suspend")
    refused("R6.instruction-state", act, store, REF, "resume")
    act(store, REF, "approve")
    refused("R6.instruction-state", act, store, REF, "approve", officer="gov-alice")
    refused("R6.instruction-state", act, store, REF, "resume")
    refused("R6.unknown-instruction", act, store, "NO-SUCH", "approve")
    refused("governance.action", act, store, REF, "reopen")
    # A proposal can be ended without ever being active.
    propose(store, proposal(bare, "OFGEM-X", failed=bare.other_supplier))
    assert act(store, "OFGEM-X", "end").status is InstructionStatus.ENDED


def test_the_history_keeps_every_step_in_order(store, bare):
    steps = [
        ("approve", "gov-bob", "checked against the Ofgem letter"),
        ("suspend", "gov-alice", "pause"),
        ("resume", "gov-bob", "go on"),
        ("end", "gov-alice", "over"),
    ]
    propose(store, proposal(bare), reason="  Ofgem letter of 22 Nov  ", at=NOW)
    for n, (action, officer, reason) in enumerate(steps, start=1):
        act(store, REF, action, officer=officer, reason=reason, at=NOW + n * MINUTE)
    history = store.instruction_events(REF)
    assert [(e.action, e.officer, e.reason) for e in history] == [("propose", "gov-alice", "Ofgem letter of 22 Nov"), *steps]
    assert [e.at for e in history] == [NOW + n * MINUTE for n in range(5)]
    audited = [e.kind for e in store.audit_entries(instruction=REF)]
    assert audited == ["instruction.propose", "instruction.approve", "instruction.suspend", "instruction.resume", "instruction.end"]


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        # (from, until) relative to NOW in hours; None is open-ended
        ((-1, None), (240, None), True),  # two open-ended
        ((-1, None), (240, 480), True),  # bounded inside an open-ended one
        ((-1, None), (-240, 0), True),  # bounded, ending after the open-ended one starts
        ((-1, None), (-240, -1), False),  # bounded, ending exactly when the open-ended one starts
        ((-1, 24), (12, 48), True),  # two bounded, overlapping
        ((-1, 24), (-48, 1), True),
        ((-1, 24), (24, 48), False),  # back to back
        ((-1, 24), (-48, -1), False),
        ((-1, 24), (12, None), True),  # open-ended starting inside
        ((-1, 24), (24, None), False),  # open-ended starting at the end
    ],
)
def test_overlapping_instructions_for_one_failed_supplier_are_refused(store, bare, first, second, overlap):
    def window(pair):
        return {"start": NOW + pair[0] * HOUR, "until": NOW + pair[1] * HOUR if pair[1] is not None else None}

    activate(store, bare, REF, **window(first))
    later = proposal(bare, "OFGEM-LATER", **window(second))
    if overlap:
        error = refused("R6.instruction-overlap", propose, store, later)
        assert REF in error.message
        assert store.get_instruction("OFGEM-LATER") is None
        assert store.audit_entries()[-1].kind == "instruction.propose.refused"
    else:
        assert propose(store, later).status is InstructionStatus.PROPOSED
        assert act(store, "OFGEM-LATER", "approve").status is InstructionStatus.ACTIVE


def test_a_proposal_blocks_an_overlapping_one_and_other_suppliers_do_not(store, bare):
    propose(store, proposal(bare, REF))  # proposed, not yet approved: it still counts
    refused("R6.instruction-overlap", propose, store, proposal(bare, "OFGEM-3", start=NOW))
    # The same window for another failed Supplier is a different matter.
    assert propose(store, proposal(bare, "OFGEM-4", failed=bare.other_supplier)).status is InstructionStatus.PROPOSED


def test_an_ended_instruction_does_not_block_a_new_one(store, bare, engine):
    activate(store, bare, REF)
    act(store, REF, "end", officer="gov-alice")
    activate(store, bare, "OFGEM-SOLR-2026-003")
    assert store.get_instruction("OFGEM-SOLR-2026-003").status is InstructionStatus.ACTIVE
    decision = engine.decide(bare.requests().switch_to_credit(bare.device(E1)), now=NOW)
    assert decision.outcome == "allow"


def test_only_active_governance_officers_run_instructions(store, bare):
    refused("governance.unknown-officer", propose, store, proposal(bare), officer="gov-nobody")
    officers.register_governance_officer(store, "gov-carol", name="Carol", public_key=new_key()[1], by="gov-alice", at=NOW)
    officers.remove_officer(store, "gov-carol", by="gov-bob", reason="left DCC", at=NOW)
    refused("governance.officer-removed", propose, store, proposal(bare), officer="gov-carol")
    refused("governance.officer-kind", propose, store, proposal(bare), officer="sro-sam")
    refused("governance.officer-kind", propose, store, proposal(bare), officer="aro-ann")
    assert store.get_instruction(REF) is None

    propose(store, proposal(bare))
    refused("governance.officer-kind", act, store, REF, "approve", officer="sro-sam")
    refused("governance.officer-removed", act, store, REF, "approve", officer="gov-carol")
    refused("governance.unknown-officer", act, store, REF, "approve", officer="gov-nobody")
    assert store.get_instruction(REF).status is InstructionStatus.PROPOSED
    assert {e.kind for e in store.audit_entries(instruction=REF)} == {
        "instruction.propose.refused",
        "instruction.propose",
        "instruction.approve.refused",
    }


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_every_step_needs_a_reason(store, bare, reason):
    refused("governance.reason", propose, store, proposal(bare), reason=reason)
    assert store.get_instruction(REF) is None
    propose(store, proposal(bare))
    refused("governance.reason", act, store, REF, "approve", reason=reason)
    assert store.get_instruction(REF).status is InstructionStatus.PROPOSED


def test_a_proposal_names_known_distinct_parties_and_a_sane_window(store, bare):
    refused("governance.unknown-party", propose, store, proposal(bare, failed="NO-SUCH-SUPPLIER"))
    refused("R6.instruction-parties", propose, store, proposal(bare, failed=bare.solr_party))
    refused("R6.instruction-window", propose, store, proposal(bare, start=NOW, until=NOW))
    propose(store, proposal(bare))
    refused("R6.instruction-exists", propose, store, proposal(bare, failed=bare.other_supplier))


def test_an_instruction_scoped_to_one_device_allows_only_that_device(store, bare, engine):
    activate(store, bare, scope=[bare.device(E1)])
    assert store.get_instruction(REF).scope == (bare.device(E1),)
    ask = bare.requests()
    assert engine.decide(ask.switch_to_credit(bare.device(E1)), now=NOW).outcome == "allow"
    outside = engine.decide(ask.switch_to_credit(bare.device(E2)), now=NOW)
    assert outside.outcome == "reject" and outside.response_code == "E4"
    assert rules_of(outside) == ["R6.device-of-failed-supplier"]
    assert "scope" in outside.reasons[0].message


# == Officers ===============================================================================
def test_sros_are_registered_by_governance_only(store, bare):
    key = new_key()[1]
    for by, rule in (("sro-sam", "governance.officer-kind"), ("aro-ann", "governance.officer-kind"), ("nobody", "governance.unknown-officer")):
        refused(rule, officers.register_sro, store, "sro-sue", name="Sue", party=bare.other_supplier, public_key=key, by=by, at=NOW)
    assert store.get_officer("sro-sue") is None
    refused("governance.unknown-party", officers.register_sro, store, "sro-sue", name="Sue", party="NO-SUCH", public_key=key, by="gov-alice", at=NOW)
    record = officers.register_sro(store, "sro-sue", name="Sue", party=bare.other_supplier, public_key=key, by="gov-bob", at=NOW)
    assert (record.kind, record.party, record.appointed_by, record.status) == ("sro", bare.other_supplier, "gov-bob", "active")
    assert store.get_officer("sro-sue").public_key == key.decode()
    refused("governance.officer-exists", officers.register_sro, store, "aro-ann", name="x", party="FAILED-ENERGY", public_key=key, by="gov-bob", at=NOW)


def test_one_active_sro_per_party(store, bare):
    key = new_key()[1]
    refused("R4.one-sro", officers.register_sro, store, "sro-sid", name="Sid", party=bare.solr_party, public_key=key, by="gov-alice", at=NOW)
    officers.remove_officer(store, "sro-sam", by="gov-bob", reason="left the Party", at=NOW)
    record = officers.register_sro(store, "sro-sid", name="Sid", party=bare.solr_party, public_key=key, by="gov-alice", at=NOW)
    assert record.status == "active"
    assert [o.id for o in store.list_officers(party=bare.solr_party) if o.kind == "sro" and o.status == "active"] == ["sro-sid"]


def test_aros_are_appointed_by_their_own_partys_sro_only(store, bare):
    other_party_officers(store, bare)
    key = new_key()[1]
    for by, rule in (
        ("gov-alice", "governance.officer-kind"),
        ("aro-ann", "governance.officer-kind"),
        ("sro-sue", "governance.officer-party"),
        ("nobody", "governance.unknown-officer"),
    ):
        refused(rule, officers.appoint_aro, store, "aro-axel", name="Axel", party=bare.solr_party, public_key=key, by=by, at=NOW)
    assert store.get_officer("aro-axel") is None
    record = officers.appoint_aro(store, "aro-axel", name="Axel", party=bare.solr_party, public_key=key, by="sro-sam", at=NOW)
    assert (record.kind, record.party, record.appointed_by) == ("aro", bare.solr_party, "sro-sam")
    officers.remove_officer(store, "sro-sam", by="gov-alice", reason="left", at=NOW)
    refused("governance.officer-removed", officers.appoint_aro, store, "aro-ada", name="Ada", party=bare.solr_party, public_key=key, by="sro-sam", at=NOW)


def test_an_sro_removes_its_partys_aros(store, bare):
    other_party_officers(store, bare)
    refused("governance.officer-party", officers.remove_officer, store, "aro-ann", by="sro-sue", reason="not mine", at=NOW)
    refused("governance.officer-kind", officers.remove_officer, store, "sro-sam", by="sro-sue", reason="no", at=NOW)
    refused("governance.officer-kind", officers.remove_officer, store, "sro-sam", by="aro-ann", reason="no", at=NOW)
    assert store.get_officer("aro-ann").status == "active"
    removed = officers.remove_officer(store, "aro-ann", by="sro-sam", reason="moved on", at=NOW + MINUTE)
    assert (removed.status, removed.removed_by) == ("removed", "sro-sam")
    assert store.get_officer("aro-ann").removed_at == NOW + MINUTE
    entry = store.audit_entries(kind="officer.remove")[-1]
    payload = entry.payload_data()
    assert entry.actor == "sro-sam" and {k: payload[k] for k in ("officer", "kind", "reason")} == {"officer": "aro-ann", "kind": "aro", "reason": "moved on"}
    # A removed ARO's ADT files stop being current: the role can no longer act on their authority.
    assert payload.get("adt_files_withdrawn", []) == [f.reference for f in store.list_adt_files() if f.aro == "aro-ann"]
    assert [f for f in store.list_adt_files() if f.aro == "aro-ann" and f.status == "current"] == []
    refused("governance.unknown-officer", officers.remove_officer, store, "aro-ann", by="sro-sam", reason="again", at=NOW)


def test_an_officer_cannot_remove_themselves(store, bare):
    refused("governance.four-eyes", officers.remove_officer, store, "gov-alice", by="gov-alice", reason="quit", at=NOW)
    assert store.get_officer("gov-alice").status == "active"
    # Governance may remove another governance officer (and SROs).
    officers.remove_officer(store, "gov-alice", by="gov-bob", reason="left DCC", at=NOW)
    officers.remove_officer(store, "sro-sam", by="gov-bob", reason="left the Party", at=NOW)
    assert store.get_officer("sro-sam").status == "removed"


def _rsa_public() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _p384_public() -> bytes:
    key = ec.generate_private_key(ec.SECP384R1())
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(_rsa_public(), id="rsa"),
        pytest.param(_p384_public(), id="p384"),
        pytest.param(b"garbage, not a key", id="garbage"),
        pytest.param(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", id="broken-pem"),
        pytest.param(new_key()[0], id="private-key"),
        pytest.param(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", id="broken-certificate"),
    ],
)
def test_officer_keys_must_be_p256_public_keys(store, bare, key):
    before = len(store.audit_entries())
    refused("R4.officer-key", officers.appoint_aro, store, "aro-axel", name="Axel", party=bare.solr_party, public_key=key, by="sro-sam", at=NOW)
    assert store.get_officer("aro-axel") is None
    assert len(store.audit_entries()) == before


def test_an_officer_key_may_come_in_a_p256_certificate(store, bare, pki):
    issued = pki.issue("90-B3-D5-1F-30-0F-00-99", 135)
    record = officers.appoint_aro(store, "aro-axel", name="Axel", party=bare.solr_party, public_key=issued.cert_pem, by="sro-sam", at=NOW)
    assert record.public_key == public_of(issued.key_pem).decode()


def test_the_first_governance_officer_bootstraps_and_later_ones_need_by(store):
    one, two = new_key()[1], new_key()[1]
    first = officers.register_governance_officer(store, "gov-one", name="One", public_key=one, at=NOW)
    assert (first.kind, first.appointed_by) == ("governance", None)
    entry = store.audit_entries()[-1]
    assert (entry.kind, entry.actor) == ("officer.register-governance", "gov-one")
    refused("governance.officer-kind", officers.register_governance_officer, store, "gov-two", name="Two", public_key=two, at=NOW)
    refused("governance.unknown-officer", officers.register_governance_officer, store, "gov-two", name="Two", public_key=two, by="nobody", at=NOW)
    assert store.get_officer("gov-two") is None
    refused("governance.key-in-use", officers.register_governance_officer, store, "gov-two", name="Two", public_key=one, by="gov-one", at=NOW)
    second = officers.register_governance_officer(store, "gov-two", name="Two", public_key=two, by="gov-one", at=NOW)
    assert second.appointed_by == "gov-one"
    refused("governance.officer-exists", officers.register_governance_officer, store, "gov-two", name="Two", public_key=new_key()[1], by="gov-one", at=NOW)
    # A non-governance officer cannot register governance officers.
    store.put_party(Party(id="P1", name="P1"))
    officers.register_sro(store, "sro-x", name="X", party="P1", public_key=new_key()[1], by="gov-one", at=NOW)
    refused("governance.officer-kind", officers.register_governance_officer, store, "gov-three", name="Three", public_key=new_key()[1], by="sro-x", at=NOW)


# == ADT files ==============================================================================
def test_a_good_signed_adt_file_is_stored_and_opens_the_suppliers_devices(store, pki, engine):
    s = SolrScenario(pki=pki).install(store, now=NOW, adt=False)
    ask = s.requests()
    without = engine.decide(ask.switch_to_credit(s.device(E1)), now=NOW)
    assert without.outcome == "reject" and without.response_code == "E4"
    assert "R4.adt-covers-supplier" in rules_of(without)

    data = s.adt_file()
    adt = submit_adt(store, data, sign_adt(data, s.officer_keys["aro-ann"]), aro="aro-ann", at=NOW)
    assert adt.user == s.user_eui and adt.supplier == s.failed_supplier
    row = store.get_adt_file(s.adt_reference)
    assert {k: getattr(row, k) for k in ("party", "user_id", "supplier", "aro", "status")} == {
        "party": s.solr_party, "user_id": s.user_eui, "supplier": s.failed_supplier, "aro": "aro-ann", "status": "current",
    }
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert row.thresholds == s.thresholds
    entry = store.audit_entries(kind="adt.submit")[-1]
    assert (entry.actor, entry.originator) == ("aro-ann", s.user_eui)

    assert engine.decide(ask.switch_to_credit(s.device(E1)), now=NOW).outcome == "allow"
    # The file names the failed Supplier only: the other Supplier's meters stay closed.
    other = engine.decide(ask.switch_to_credit(s.device(OTHER)), now=NOW)
    assert other.outcome == "reject" and "R4.adt-covers-supplier" in rules_of(other)


def _assert_refused_changes_nothing(store, rule: str, data: bytes, signature: bytes, aro: str = "aro-ann") -> GovernanceRefused:
    rows, entries = adt_rows(store), len(store.audit_entries())
    statuses = [r.status for r in store.list_adt_files()]
    error = refused(rule, submit_adt, store, data, signature, aro=aro, at=NOW)
    assert adt_rows(store) == rows
    assert len(store.audit_entries()) == entries
    assert [r.status for r in store.list_adt_files()] == statuses
    return error


def test_an_adt_file_changed_after_signing_is_refused(store, bare):
    data = bare.adt_file(reference="ADT-2")
    signature = sign_adt(data, bare.officer_keys["aro-ann"])
    changed = data.replace(b"per_hour: 1000", b"per_hour: 9000")
    assert changed != data
    _assert_refused_changes_nothing(store, "R4.adt-signature", changed, signature)
    _assert_refused_changes_nothing(store, "R4.adt-signature", data + b"\n", signature)  # even one byte
    _assert_refused_changes_nothing(store, "R4.adt-signature", data, b"not base64 !!!")
    assert store.get_adt_file("ADT-2") is None


def test_an_adt_file_signed_with_another_aros_key_is_refused(store, bare):
    axel = new_key()
    officers.appoint_aro(store, "aro-axel", name="Axel", party=bare.solr_party, public_key=axel[1], by="sro-sam", at=NOW)
    data = bare.adt_file(reference="ADT-2")
    _assert_refused_changes_nothing(store, "R4.adt-signature", data, sign_adt(data, axel[0]), aro="aro-ann")
    _assert_refused_changes_nothing(store, "R4.adt-signature", data, sign_adt(data, new_key()[0]), aro="aro-ann")
    # Axel's own submission of what he signed is fine.
    submit_adt(store, data, sign_adt(data, axel[0]), aro="aro-axel", at=NOW)
    assert store.get_adt_file("ADT-2").aro == "aro-axel"


def test_only_active_aros_submit_adt_files(store, bare):
    data = bare.adt_file(reference="ADT-2")
    signature = sign_adt(data, bare.officer_keys["aro-ann"])
    _assert_refused_changes_nothing(store, "governance.unknown-officer", data, signature, aro="aro-nobody")
    _assert_refused_changes_nothing(store, "governance.officer-kind", data, sign_adt(data, bare.officer_keys["sro-sam"]), aro="sro-sam")
    officers.remove_officer(store, "aro-ann", by="sro-sam", reason="moved on", at=NOW)
    _assert_refused_changes_nothing(store, "governance.officer-removed", data, signature, aro="aro-ann")


def test_an_adt_file_for_another_party_or_its_user_is_refused(store, bare):
    key = bare.officer_keys["aro-ann"]
    other_party = bare.adt_file(reference="ADT-2", party=bare.other_supplier)
    _assert_refused_changes_nothing(store, "R4.adt-party", other_party, sign_adt(other_party, key))

    store.put_user(User(id="90B3D51F300F0002", party=bare.other_supplier, role="IS"))
    their_user = adt_text(reference="ADT-3", party=bare.solr_party, user="90-B3-D5-1F-30-0F-00-02", supplier=bare.failed_supplier, thresholds=bare.thresholds)
    _assert_refused_changes_nothing(store, "R4.adt-user", their_user, sign_adt(their_user, key))
    no_user = adt_text(reference="ADT-4", party=bare.solr_party, user="90-B3-D5-1F-30-0F-00-03", supplier=bare.failed_supplier, thresholds=bare.thresholds)
    _assert_refused_changes_nothing(store, "R4.adt-user", no_user, sign_adt(no_user, key))


def test_an_adt_file_for_an_unknown_supplier_or_a_used_reference_is_refused(store, bare):
    key = bare.officer_keys["aro-ann"]
    unknown = bare.adt_file(reference="ADT-2", supplier="NO-SUCH-SUPPLIER")
    _assert_refused_changes_nothing(store, "R4.adt-supplier", unknown, sign_adt(unknown, key))
    again = bare.adt_file()  # the reference of the file the scenario submitted
    _assert_refused_changes_nothing(store, "R4.adt-reference", again, sign_adt(again, key))
    # Even for another Supplier: a reference is never reused.
    other = bare.adt_file(supplier=bare.other_supplier)
    _assert_refused_changes_nothing(store, "R4.adt-reference", other, sign_adt(other, key))


def test_a_new_adt_file_supersedes_the_old_and_its_thresholds_apply(store, bare, engine):
    activate(store, bare)
    ask = bare.requests()
    meter = bare.device(E1)
    assert engine.decide(ask.switch_to_credit(meter), now=NOW).outcome == "allow"  # 1 of 1000 this hour

    bare.submit_adt(store, now=NOW + MINUTE, reference="ADT-SOLR-2026-002", thresholds={"1.6": {"per_hour": 2}})
    files = {r.reference: r.status for r in store.list_adt_files()}
    assert files == {bare.adt_reference: "superseded", "ADT-SOLR-2026-002": "current"}
    assert [f.reference for f in store.current_adt_files(bare.user_eui)] == ["ADT-SOLR-2026-002"]

    second = engine.decide(ask.switch_to_credit(meter), now=NOW + 2 * MINUTE)
    assert second.outcome == "allow"
    assert any("ADT-SOLR-2026-002" in c.message for c in second.checks if c.rule == "R4.adt-covers-supplier")
    # Usage so far counts against the new file's limit of 2 an hour.
    third = engine.decide(ask.switch_to_credit(meter), now=NOW + 3 * MINUTE)
    assert third.outcome == "quarantine" and "ADT-SOLR-2026-002" in third.reasons[0].message

    # A file for another Supplier sits beside it rather than replacing it.
    bare.submit_adt(store, now=NOW + 4 * MINUTE, reference="ADT-SOLR-2026-003", supplier=bare.other_supplier)
    assert sorted(f.reference for f in store.current_adt_files(bare.user_eui)) == ["ADT-SOLR-2026-002", "ADT-SOLR-2026-003"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (b"adt_version: 1\nreference: [unclosed\nparty: SOLR-PARTY\n", "line"),
        (b"- just\n- a list\n", "mapping"),
        (b"adt_version: 1\nreference: A\nreference: B\n", "line 3"),
    ],
)
def test_adt_files_that_are_not_valid_yaml_mappings_are_refused(store, bare, text, where):
    error = _assert_refused_changes_nothing(store, "R4.adt-format", text, sign_adt(text, bare.officer_keys["aro-ann"]))
    assert where in error.message


def test_an_unknown_or_bad_field_in_an_adt_file_is_refused_with_its_line(store, bare):
    key = bare.officer_keys["aro-ann"]
    good = bare.adt_file(reference="ADT-2").decode()
    unknown = (good.replace("supplier: FAILED-ENERGY\n", "supplier: FAILED-ENERGY\ncolour: blue\n")).encode()
    error = _assert_refused_changes_nothing(store, "R4.adt-format", unknown, sign_adt(unknown, key))
    assert "line 6" in error.message and "colour" in error.message and "unknown field" in error.message

    misspelt = good.replace("per_hour", "per_hr").encode()
    error = _assert_refused_changes_nothing(store, "R4.adt-format", misspelt, sign_adt(misspelt, key))
    assert "line 7" in error.message and "per_hr" in error.message

    negative = good.replace("per_hour: 1000", "per_hour: -1").encode()
    error = _assert_refused_changes_nothing(store, "R4.adt-format", negative, sign_adt(negative, key))
    assert "line 7" in error.message

    bad_user = good.replace("90-B3-D5-1F-30-0F-00-01", "not-an-eui").encode()
    error = _assert_refused_changes_nothing(store, "R4.adt-format", bad_user, sign_adt(bad_user, key))
    assert "line 4" in error.message

    not_utf8 = b"adt_version: 1\nreference: \xff\xfe\n"
    _assert_refused_changes_nothing(store, "R4.adt-format", not_utf8, sign_adt(not_utf8, key))
    assert store.get_adt_file("ADT-2") is None


# == Thresholds and quarantine ==============================================================
def test_over_the_hourly_threshold_a_request_is_quarantined_and_kept(store, limited, engine):
    ask = limited.requests(counter=500)
    meter = limited.device(E1)
    for n in range(3):
        assert engine.decide(ask.switch_to_credit(meter), now=NOW + n * MINUTE).outcome == "allow"
    assert usage(store, limited, NOW) == (3, 3)

    fourth_raw = ask.switch_to_credit(meter)
    fourth = engine.decide(fourth_raw, now=NOW + 3 * MINUTE)
    assert fourth.outcome == "quarantine" and fourth.response_code == "AD1"
    assert rules_of(fourth) == ["R4.adt-threshold"] and "per hour" in fourth.reasons[0].message
    assert isinstance(fourth.quarantine_id, int)

    kept = store.list_quarantine(status=QuarantineStatus.HELD)
    assert [q.id for q in kept] == [fourth.quarantine_id]
    item = kept[0]
    assert (item.originator, item.device, item.srv, item.counter) == (limited.user_eui, meter, "1.6", 504)
    assert store.quarantined_request(fourth.quarantine_id).raw == fourth_raw
    # The counter is taken, usage is not.
    assert store.get_counter(limited.user_eui) == 504
    assert usage(store, limited, NOW) == (3, 3)
    replay = engine.decide(fourth_raw, now=NOW + 4 * MINUTE)
    assert replay.outcome == "reject" and rules_of(replay) == ["R6.counter-fresh"]
    assert len(store.list_quarantine()) == 1
    audited = store.audit_entries(kind="decision")[-2]
    assert audited.payload_data()["outcome"] == "quarantine"

    # The next fixed UTC hour starts afresh.
    assert engine.decide(ask.switch_to_credit(meter), now=NOW + HOUR).outcome == "allow"
    assert usage(store, limited, NOW + HOUR) == (1, 4)


def test_hour_windows_are_fixed_utc_hours_not_sliding(store, limited, engine):
    ask = limited.requests()
    meter = limited.device(E1)
    end_of_hour = NOW.replace(minute=59, second=59)
    for n in range(3):
        assert engine.decide(ask.switch_to_credit(meter), now=end_of_hour - timedelta(seconds=2 - n)).outcome == "allow"
    assert engine.decide(ask.switch_to_credit(meter), now=end_of_hour).outcome == "quarantine"
    # One second later is a new hour, though four requests fell within the last few seconds.
    assert engine.decide(ask.switch_to_credit(meter), now=end_of_hour + timedelta(seconds=1)).outcome == "allow"


def test_over_the_daily_threshold_a_request_is_quarantined_until_the_next_utc_day(store, limited, engine):
    ask = limited.requests()
    meter = limited.device(E1)
    for n in range(5):  # five a day, spread over hours so the hourly limit never bites
        assert engine.decide(ask.switch_to_credit(meter), now=NOW + n * HOUR).outcome == "allow"
    sixth = engine.decide(ask.switch_to_credit(meter), now=NOW + 5 * HOUR)
    assert sixth.outcome == "quarantine" and "per day" in sixth.reasons[0].message
    assert usage(store, limited, NOW) == (1, 5)
    # 23:59:59 UTC the same day, given in a zone where it is already tomorrow: still today.
    late = NOW.replace(hour=23, minute=59, second=59).astimezone(timezone(timedelta(hours=5)))
    assert late.date() != NOW.date()
    assert engine.decide(ask.switch_to_credit(meter), now=late).outcome == "quarantine"
    tomorrow = NOW.replace(hour=0, minute=0) + timedelta(days=1)
    assert engine.decide(ask.switch_to_credit(meter), now=tomorrow).outcome == "allow"
    assert usage(store, limited, tomorrow) == (1, 1)
    assert len(store.list_quarantine(status=QuarantineStatus.HELD)) == 2


def _fill_and_hold(engine, s: SolrScenario, ask, n_held: int = 1, meter_label: str = E1) -> list[int]:
    meter = s.device(meter_label)
    for n in range(3):
        assert engine.decide(ask.switch_to_credit(meter), now=NOW + n * MINUTE).outcome == "allow"
    items = []
    for n in range(n_held):
        decision = engine.decide(ask.switch_to_credit(meter), now=NOW + (3 + n) * MINUTE)
        assert decision.outcome == "quarantine"
        items.append(decision.quarantine_id)
    return items


def test_an_aro_releases_a_held_request(store, limited, engine):
    ask = limited.requests(counter=10)
    (item,) = _fill_and_hold(engine, limited, ask)
    counter = store.get_counter(limited.user_eui)
    released = held.release(engine, item, officer="aro-ann", reason="a genuine batch", now=NOW + 10 * MINUTE)
    assert released.outcome == "allow" and released.response_code == "I99"
    assert released.request["counter"] == 14
    row = store.get_quarantine(item)
    assert (row.status, row.resolved_by) == ("released", "aro-ann")
    assert row.resolved_at == NOW + 10 * MINUTE
    assert usage(store, limited, NOW) == (4, 4)
    assert store.get_counter(limited.user_eui) == counter
    assert store.list_quarantine(status=QuarantineStatus.HELD) == []
    entry = store.audit_entries(kind="quarantine.release")[-1]
    assert entry.actor == "aro-ann"
    assert entry.payload_data() == {"item": item, "reason": "a genuine batch", "outcome": "allow"}
    assert (entry.originator, entry.device) == (limited.user_eui, limited.device(E1))
    assert store.audit_entries(kind="decision")[-1].payload_data()["outcome"] == "allow"

    entries = len(store.audit_entries())
    refused("R4.quarantine-not-held", held.release, engine, item, officer="aro-ann", reason="again", now=NOW + 11 * MINUTE)
    refused("R4.quarantine-not-held", held.discard, store, item, officer="gov-bob", reason="late", now=NOW + 11 * MINUTE)
    assert len(store.audit_entries()) == entries
    assert usage(store, limited, NOW) == (4, 4)
    refused("R4.quarantine-unknown", held.release, engine, 9999, officer="aro-ann", reason="?", now=NOW)


def test_two_officers_releasing_one_request_at_once_release_it_once(store, limited, engine):
    import threading

    (item,) = _fill_and_hold(engine, limited, limited.requests())
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def release(officer: str) -> None:
        barrier.wait()
        try:
            results[officer] = held.release(engine, item, officer=officer, reason="checked", now=NOW + 10 * MINUTE).outcome
        except GovernanceRefused as refusal:
            results[officer] = refusal.rule

    threads = [threading.Thread(target=release, args=(officer,)) for officer in ("aro-ann", "gov-alice")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == ["R4.quarantine-not-held", "allow"]
    winner = next(officer for officer, result in results.items() if result == "allow")
    assert store.get_quarantine(item).resolved_by == winner
    # The audit trail names the one release that happened, not the attempt that lost.
    assert [e.actor for e in store.audit_entries(kind="quarantine.release")] == [winner]
    assert usage(store, limited, NOW) == (4, 4)
    assert [e.payload_data()["outcome"] for e in store.audit_entries(kind="decision")][-1] == "allow"
    assert store.verify_audit().intact


def test_governance_discards_a_held_request(store, limited, engine):
    ask = limited.requests()
    first, second = _fill_and_hold(engine, limited, ask, n_held=2)
    held.discard(store, first, officer="gov-bob", reason="looks like a runaway script", now=NOW + 10 * MINUTE)
    row = store.get_quarantine(first)
    assert (row.status, row.resolved_by, row.reason) == ("discarded", "gov-bob", "looks like a runaway script")
    assert [q.id for q in store.list_quarantine(status=QuarantineStatus.HELD)] == [second]
    assert [q.id for q in store.list_quarantine(status=QuarantineStatus.DISCARDED)] == [first]
    entry = store.audit_entries(kind="quarantine.discard")[-1]
    assert (entry.actor, entry.originator, entry.device) == ("gov-bob", limited.user_eui, limited.device(E1))
    refused("R4.quarantine-not-held", held.release, engine, first, officer="aro-ann", reason="no", now=NOW + 11 * MINUTE)
    assert usage(store, limited, NOW) == (3, 3)


def test_only_the_users_partys_aros_or_governance_resolve_held_requests(store, limited, engine):
    other_party_officers(store, limited)
    (item,) = _fill_and_hold(engine, limited, limited.requests())
    refused("governance.officer-party", held.release, engine, item, officer="aro-otto", reason="not mine", now=NOW)
    refused("governance.officer-party", held.discard, store, item, officer="aro-otto", reason="not mine", now=NOW)
    refused("governance.officer-kind", held.release, engine, item, officer="sro-sam", reason="SROs do not", now=NOW)
    refused("governance.unknown-officer", held.release, engine, item, officer="nobody", reason="?", now=NOW)
    officers.remove_officer(store, "aro-ann", by="sro-sam", reason="moved on", at=NOW)
    refused("governance.officer-removed", held.release, engine, item, officer="aro-ann", reason="too late", now=NOW)
    assert store.get_quarantine(item).status == "held"
    assert store.audit_entries(kind="quarantine.release") == []
    assert usage(store, limited, NOW) == (3, 3)
    # Governance may release, but the removed ARO's ADT file no longer lets the role act.
    decision = held.release(engine, item, officer="gov-alice", reason="checked", now=NOW + MINUTE)
    assert decision.outcome == "reject" and "R4.adt-covers-supplier" in [r.rule for r in decision.reasons]
    assert store.get_quarantine(item).status == "held"


def test_releasing_after_the_instruction_ended_is_a_reject_and_the_request_stays_held(store, limited, engine):
    (item,) = _fill_and_hold(engine, limited, limited.requests())
    act(store, limited.instruction_ref, "end", reason="SoLR appointed", at=NOW + 5 * MINUTE)
    decision = held.release(engine, item, officer="aro-ann", reason="checked", now=NOW + 10 * MINUTE)
    assert decision.outcome == "reject" and decision.response_code == "E3"
    assert "R6.instruction-active" in rules_of(decision)
    assert store.get_quarantine(item).status == "held"
    assert usage(store, limited, NOW) == (3, 3)
    # The attempt is on record as refused; no entry claims a release.
    assert store.audit_entries(kind="quarantine.release") == []
    (attempt,) = store.audit_entries(kind="quarantine.release.refused")
    assert attempt.actor == "aro-ann" and attempt.payload_data() == {"item": item, "reason": "checked", "outcome": "reject"}
    assert store.verify_audit().intact


def test_an_srv_without_a_threshold_in_the_file_or_the_policy_is_refused(store, pki, engine):
    s = SolrScenario(pki=pki, thresholds={"1.5": {"per_hour": 10}}).install(store, now=NOW)
    decision = engine.decide(s.requests().switch_to_credit(s.device(E1)), now=NOW)
    assert decision.outcome == "reject"
    assert rules_of(decision) == ["R4.adt-threshold"]
    assert "refused by default" in decision.reasons[0].message
    assert store.get_counter(s.user_eui) is None
    assert store.all_adt_usage() == []


def test_the_policys_adt_default_applies_when_the_file_names_no_threshold(store, pki, tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    path = policies / "solr-contingency.yaml"
    text = path.read_text()
    anchor = "    service_request_body: UpdatePaymentMode\n"
    assert text.count(anchor) == 1
    path.write_text(text.replace(anchor, anchor + "    adt_default: {per_hour: 2, per_day: 50}\n"))
    engine = Engine(store, PolicySet.load_dir(policies))

    s = SolrScenario(pki=pki, thresholds={"1.5": {"per_hour": 10}}).install(store, now=NOW)
    ask = s.requests()
    meter = s.device(E1)
    assert [engine.decide(ask.switch_to_credit(meter), now=NOW + n * MINUTE).outcome for n in range(3)] == ["allow", "allow", "quarantine"]
    assert usage(store, s, NOW) == (2, 2)
    # A threshold in the file still wins over the policy's default.
    s.submit_adt(store, now=NOW, reference="ADT-2", thresholds={"1.6": {"per_hour": 5}})
    assert engine.decide(ask.switch_to_credit(meter), now=NOW + 5 * MINUTE).outcome == "allow"


# == R2 in the engine =======================================================================
def test_a_digital_signing_certificate_for_the_user_refuses_its_requests_until_revoked(store, engine, pki):
    s = SolrScenario(pki=pki).install(store, now=NOW)
    ask = s.requests()
    meter = s.device(E1)
    assert engine.decide(ask.switch_to_credit(meter), now=NOW).outcome == "allow"

    (record,) = read_certificates(TestPki("OTHER").issue(s.user_eui, 2).cert_pem)
    assert record.role == 2 and "digital_signature" in record.key_usage
    store.put_certificate(record)
    decision = engine.decide(ask.switch_to_credit(meter), now=NOW + MINUTE)
    assert decision.outcome == "reject" and decision.response_code == "E1"
    assert rules_of(decision) == ["R2.no-digital-signing-certificate"]
    assert str(record.serial) in decision.reasons[0].message

    # A key-agreement certificate of the same role is no Digital Signing certificate.
    (agreement,) = read_certificates(pki.issue(s.user_eui, 2, usage="key_agreement").cert_pem)
    store.put_certificate(agreement)

    assert store.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
    assert engine.decide(ask.switch_to_credit(meter), now=NOW + 2 * MINUTE).outcome == "allow"


# == Audit ==================================================================================
@pytest.fixture()
def lifecycle(store, pki):
    """A whole SoLR event: install (T0), propose (T1), approve (T2), decisions (T3),
    quarantine resolved (T4), instruction ended (T5). Returns the scenario and the times."""
    t0, t1, t2, t3, t4, t5 = (NOW - 3 * HOUR, NOW - 2 * HOUR, NOW - HOUR, NOW, NOW + HOUR, NOW + 2 * HOUR)
    s = SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": 2, "per_day": 100}}).install(store, now=t0, instruction_status=None)
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    propose(store, proposal(s, start=t1), officer="gov-alice", at=t1)
    act(store, REF, "approve", officer="gov-bob", at=t2)
    ask = s.requests()
    outcomes = [engine.decide(ask.switch_to_credit(s.device(label)), now=t3) for label in (E1, E2, E1, G1)]
    assert [d.outcome for d in outcomes] == ["allow", "allow", "quarantine", "quarantine"]
    held.release(engine, outcomes[2].quarantine_id, officer="aro-ann", reason="genuine", now=t4)
    held.discard(store, outcomes[3].quarantine_id, officer="gov-bob", reason="not needed", now=t4)
    act(store, REF, "end", officer="gov-alice", at=t5)
    return s, (t0, t1, t2, t3, t4, t5)


def test_every_governance_step_is_audited_and_the_chain_is_intact(store, lifecycle):
    s, _ = lifecycle
    assert kinds(store) == [
        "officer.register-governance",
        "officer.register-governance",
        "officer.register-sro",
        "officer.appoint-aro",
        "adt.submit",
        "instruction.propose",
        "instruction.approve",
        "decision",
        "decision",
        "decision",
        "decision",
        "decision",
        "quarantine.release",  # written once the release is decided
        "quarantine.discard",
        "instruction.end",
    ]
    by_kind = {e.kind: e for e in store.audit_entries()}
    assert by_kind["officer.appoint-aro"].actor == "sro-sam"
    assert by_kind["instruction.propose"].actor == "gov-alice"
    assert by_kind["instruction.approve"].actor == "gov-bob"
    assert by_kind["adt.submit"].actor == "aro-ann"
    assert by_kind["quarantine.release"].actor == "aro-ann"
    assert by_kind["instruction.approve"].payload_data() == {"reference": REF, "from": "proposed", "to": "active", "reason": "as instructed"}
    check = store.verify_audit()
    assert check.intact and check.entries == 15
    assert [e.seq for e in store.audit_entries()] == list(range(1, 16))


def _tamper(store, sql: str, *params) -> None:
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute(sql, params)
    conn.close()


def _seq_of(store, kind: str) -> int:
    return store.audit_entries(kind=kind)[0].seq


def test_tampering_with_an_entrys_payload_is_found(store, lifecycle):
    seq = _seq_of(store, "instruction.approve")
    _tamper(store, "UPDATE audit SET payload = replace(payload, 'as instructed', 'self-approved') WHERE seq = ?", seq)
    check = store.verify_audit()
    assert not check.intact
    assert check.message == f"entry {seq} was altered (its hash does not match its content)"


def test_tampering_with_an_entrys_actor_is_found(store, lifecycle):
    seq = _seq_of(store, "quarantine.release")
    _tamper(store, "UPDATE audit SET actor = 'gov-eve' WHERE seq = ?", seq)
    check = store.verify_audit()
    assert not check.intact and check.message.startswith(f"entry {seq} ")


def test_rewriting_an_entry_with_a_fresh_hash_breaks_the_next_link(store, lifecycle):
    from solr_policy.store.audit_chain import audit_hash

    seq = _seq_of(store, "instruction.approve")
    row = store.audit_entries(kind="instruction.approve")[0]
    payload = row.payload.replace("as instructed", "self-approved")
    fields = {k: getattr(row, k) for k in ("actor", "originator", "device", "instruction")}
    _tamper(store, "UPDATE audit SET payload = ?, hash = ? WHERE seq = ?", payload, audit_hash(row.prev_hash, seq, row.at, row.kind, fields, payload), seq)
    check = store.verify_audit()
    assert not check.intact and check.message == f"entry {seq + 1} does not link to entry {seq}"


def test_deleting_an_entry_is_found(store, lifecycle):
    seq = _seq_of(store, "adt.submit")
    _tamper(store, "DELETE FROM audit WHERE seq = ?", seq)
    check = store.verify_audit()
    assert not check.intact and check.message == f"entry {seq} is missing (next is {seq + 1})"


def test_deleting_the_newest_entries_is_found(store, lifecycle):
    last = store.audit_entries()[-1].seq
    _tamper(store, "DELETE FROM audit WHERE seq >= ?", last - 1)
    check = store.verify_audit()
    assert not check.intact and f"entry {last} was written" in check.message


def run(db: Path, *args: str):
    return CliRunner().invoke(cli, ["--db", str(db), *args])


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def test_cli_audit_verify(store, lifecycle):
    ok = run(store.path, "audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {"intact": True, "entries": 15, "message": "15 entries, chain intact"}
    seq = _seq_of(store, "decision")
    _tamper(store, "UPDATE audit SET payload = replace(payload, '\"allow\"', '\"reject\"') WHERE seq = ?", seq)
    broken = run(store.path, "audit", "verify")
    assert broken.exit_code == 1
    report = json.loads(broken.stdout)
    assert report["intact"] is False and report["message"] == f"entry {seq} was altered (its hash does not match its content)"


def test_cli_audit_show_filters(store, lifecycle):
    s, (t0, t1, t2, t3, t4, t5) = lifecycle

    def show(*args: str) -> list[dict]:
        result = run(store.path, "audit", "show", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    everything = show()
    assert len(everything) == 15 and isinstance(everything[0]["payload"], dict)

    for_instruction = show("--instruction", REF)
    assert {e["instruction"] for e in for_instruction} == {REF}
    assert [e["kind"] for e in for_instruction] == [
        "instruction.propose", "instruction.approve", "decision", "decision", "decision", "decision", "decision", "instruction.end",
    ]

    by_bob = show("--officer", "gov-bob")
    assert [e["kind"] for e in by_bob] == ["instruction.approve", "quarantine.discard"]  # gov-alice registered him
    assert [e["kind"] for e in show("--officer", "gov-alice")] == [
        "officer.register-governance", "officer.register-governance", "officer.register-sro", "instruction.propose", "instruction.end",
    ]
    assert [e["kind"] for e in show("--officer", "aro-ann")] == ["adt.submit", "quarantine.release"]

    device = s.device(E1)
    for_device = show("--device", "00-DB-12-34-56-78-90-A0")
    assert device == "00DB1234567890A0"
    assert {e["device"] for e in for_device} == {device}
    # The officer's release of a request to the Device is listed with it, like a discard.
    assert [(e["kind"], e["payload"].get("outcome")) for e in for_device] == [
        ("decision", "allow"), ("decision", "quarantine"), ("decision", "allow"), ("quarantine.release", "allow"),
    ]
    assert [e["kind"] for e in show("--device", s.device(G1))] == ["decision", "quarantine.discard"]

    window = show("--since", iso(t1), "--until", iso(t3))
    assert [e["kind"] for e in window] == ["instruction.propose", "instruction.approve"]
    assert [e["kind"] for e in show("--since", iso(t4))] == ["decision", "quarantine.release", "quarantine.discard", "instruction.end"]
    assert [e["kind"] for e in show("--until", iso(t1))] == kinds(store)[:5]
    assert [e["kind"] for e in show("--kind", "decision", "--since", iso(t3), "--limit", "2")] == ["decision", "decision"]
    assert show("--officer", "gov-bob", "--since", iso(t3)) == [by_bob[-1]]

    bad = run(store.path, "audit", "show", "--device", "not-an-eui")
    assert bad.exit_code == 2


# == CLI smoke for governance commands =====================================================
def _reason(result) -> dict:
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["done"] is False
    return data["reason"]


def test_cli_init_then_officers_by_signed_acts(tmp_path):
    db, keys = tmp_path / "fresh.db", OfficerKeys(tmp_path)
    made = run(db, *keys.init_args("gov-one", "gov-two"))
    assert made.exit_code == 0, made.output
    assert [o["id"] for o in json.loads(made.stdout)["officers"]] == ["gov-one", "gov-two"]
    listed = json.loads(run(db, "officer", "list").stdout)
    assert [(o["id"], o["kind"], o["appointed_by"], o["has_key"]) for o in listed] == [
        ("gov-one", "governance", None, True), ("gov-two", "governance", None, True),
    ]
    assert all("public_key" not in o for o in listed)

    register = ["officer", "register-governance", "gov-three", "--name", "Three", "--public-key", keys.public("gov-three")]
    assert _reason(run(db, *register, *keys.signs("gov-one")))["rule"] == "governance.four-eyes"
    # The cosigner's name must be that of the key given with it.
    typed = ["--cosigner", "gov-two", "--cosigner-key", keys.key("gov-three")]
    assert _reason(run(db, *register, *keys.signs("gov-one"), *typed))["rule"] == "statement.not-the-cosigner"
    assert _reason(run(db, *register, *keys.signs("gov-one", "gov-one")))["rule"] == "statement.duplicate-signature"
    second = run(db, *register, *keys.signs("gov-one", "gov-two"))
    assert second.exit_code == 0, second.output
    body = json.loads(second.stdout)
    assert (body["signed_by"], body["cosigners"], body["officer"]["id"], body["officer"]["appointed_by"]) == ("gov-one", ["gov-two"], "gov-three", "gov-one")
    # One key, one officer: gov-three's key cannot be registered again for an SRO.
    sro = ["officer", "register-sro", "sro-x", "--name", "X", "--party", "NOWHERE", "--public-key", keys.public("gov-three")]
    assert _reason(run(db, *sro, *keys.signs("gov-three")))["rule"] in {"governance.key-in-use", "governance.unknown-party"}
    assert json.loads(run(db, "audit", "verify").stdout)["intact"] is True


@pytest.fixture()
def cli_world(tmp_path, pki):
    """A database with the scenario (no instruction), written and closed, for the CLI."""
    db = tmp_path / "solr.db"
    store = SqliteStore(db)
    try:
        s = SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": 1, "per_day": 100}}).install(store, now=NOW, instruction_status=None)
    finally:
        store.close()
    return db, s


def test_cli_instruction_propose_approve_list_show(cli_world, tmp_path):
    db, s = cli_world
    keys = OfficerKeys(tmp_path, s.officer_keys)
    propose_args = [
        "instruction", "propose", REF, "--failed-supplier", s.failed_supplier, "--solr-party", s.solr_party,
        "--from", iso(NOW - HOUR), "--reason", "Ofgem letter", "--now", iso(NOW),
        "--device", "00-DB-12-34-56-78-90-A0", "--device", "00DB1234567890B0",
    ]
    proposed = run(db, *propose_args, *keys.signs("gov-alice"))
    assert proposed.exit_code == 0, proposed.output
    body = json.loads(proposed.stdout)
    assert body["done"] is True and body["signed_by"] == "gov-alice" and body["instruction"]["status"] == "proposed"
    assert body["instruction"]["scope"] == ["00DB1234567890A0", "00DB1234567890B0"]

    assert _reason(run(db, *propose_args, *keys.signs("gov-alice")))["rule"] == "R6.instruction-exists"
    approve = ["instruction", "approve", REF, "--reason", "checked", "--now", iso(NOW)]
    assert _reason(run(db, *approve, *keys.signs("gov-alice")))["rule"] == "R6.four-eyes"
    assert _reason(run(db, *approve, *keys.signs("sro-sam")))["rule"] == "governance.officer-kind"
    # Bob's name typed with Alice's key: the signature says who signed.
    assert _reason(run(db, *approve, "--officer", "gov-bob", "--key", keys.key("gov-alice")))["rule"] == "statement.not-the-officer"
    approved = run(db, *approve, *keys.signs("gov-bob"))
    assert approved.exit_code == 0, approved.output
    assert json.loads(approved.stdout)["instruction"]["approved_by"] == "gov-bob"

    listed = run(db, "instruction", "list")
    assert listed.exit_code == 0 and REF in listed.stdout and "active" in listed.stdout and "approved by gov-bob" in listed.stdout
    shown = run(db, "instruction", "show", REF)
    assert shown.exit_code == 0
    data = json.loads(shown.stdout)
    assert data["instruction"]["status"] == "active"
    assert [(h["action"], h["officer"]) for h in data["history"]] == [("propose", "gov-alice"), ("approve", "gov-bob")]
    assert run(db, "instruction", "show", "NO-SUCH").exit_code == 2

    suspended = run(db, "instruction", "suspend", REF, "--reason", "pause", "--now", iso(NOW), *keys.signs("gov-alice"))
    assert suspended.exit_code == 0 and json.loads(suspended.stdout)["instruction"]["status"] == "suspended"
    assert _reason(run(db, "instruction", "suspend", REF, "--reason", "again", *keys.signs("gov-alice")))["rule"] == "R6.instruction-state"
    assert _reason(run(db, "instruction", "end", REF, "--reason", " ", *keys.signs("gov-alice")))["rule"] == "governance.reason"
    # --now is recorded as a clock override; the service clock is not.
    store = SqliteStore(db)
    try:
        overrides = [(e.payload_data()["action"], e.payload_data()["clock_override"]) for e in store.audit_entries(kind="statement")]
    finally:
        store.close()
    assert overrides == [("instruction.propose", True), ("instruction.approve", True), ("instruction.suspend", True)]


def test_cli_adt_sign_and_submit(cli_world, tmp_path):
    db, s = cli_world
    keys = OfficerKeys(tmp_path, s.officer_keys)
    key = keys.key("aro-ann")
    adt = tmp_path / "adt.yaml"
    adt.write_bytes(s.adt_file(reference="ADT-CLI-1", thresholds={"1.6": {"per_hour": 7}}))

    signed = run(db, "adt", "sign", str(adt), "--key", str(key))
    assert signed.exit_code == 0, signed.output
    assert Path(str(adt) + ".sig").exists()
    submitted = run(db, "adt", "submit", str(adt), "--aro", "aro-ann", "--key", key, "--now", iso(NOW))
    assert submitted.exit_code == 0, submitted.output
    assert json.loads(submitted.stdout)["adt_file"] == "ADT-CLI-1"
    listed = {r["reference"]: r["status"] for r in json.loads(run(db, "adt", "list").stdout)}
    assert listed == {s.adt_reference: "superseded", "ADT-CLI-1": "current"}

    # Changed after signing: refused, with the reason as JSON.
    changed = tmp_path / "changed.yaml"
    changed.write_bytes(s.adt_file(reference="ADT-CLI-2"))
    assert run(db, "adt", "sign", str(changed), "--key", str(key)).exit_code == 0
    changed.write_bytes(s.adt_file(reference="ADT-CLI-2", thresholds={"1.6": {"per_hour": 99999}}))
    assert _reason(run(db, "adt", "submit", str(changed), "--aro", "aro-ann", "--key", key))["rule"] == "R4.adt-signature"
    # Another officer's statement carrying Ann's signed file: the statement's signer is not its ARO.
    other = tmp_path / "other.yaml"
    other.write_bytes(s.adt_file(reference="ADT-CLI-5"))
    assert run(db, "adt", "sign", str(other), "--key", key).exit_code == 0
    assert _reason(run(db, "adt", "submit", str(other), "--aro", "aro-ann", "--key", keys.key("sro-sam")))["rule"] == "statement.not-the-officer"
    # Unknown field: refused with the file and line.
    typo = tmp_path / "typo.yaml"
    typo.write_bytes(s.adt_file(reference="ADT-CLI-3") + b"colour: blue\n")
    assert run(db, "adt", "sign", str(typo), "--key", str(key)).exit_code == 0
    reason = _reason(run(db, "adt", "submit", str(typo), "--aro", "aro-ann", "--key", key))
    assert reason["rule"] == "R4.adt-format" and f"{typo} line 8" in reason["message"]
    # No signature file: a usage error.
    lonely = tmp_path / "lonely.yaml"
    lonely.write_bytes(s.adt_file(reference="ADT-CLI-4"))
    assert run(db, "adt", "submit", str(lonely), "--aro", "aro-ann", "--key", key).exit_code == 2
    assert len(json.loads(run(db, "adt", "list").stdout)) == 2


def _held_after_one_allowed(db: Path, s, requests: int) -> list[int]:
    """The SoLR event activated, then ``requests`` switches of one meter a minute apart: the
    first allowed, the rest held over the ADT threshold; their quarantine ids."""
    store = SqliteStore(db)
    try:
        activate(store, s)
        engine = Engine(store, PolicySet.load_dir(POLICIES))
        ask = s.requests()
        decisions = [engine.decide(ask.switch_to_credit(s.device(E1)), now=NOW + n * MINUTE) for n in range(requests)]
    finally:
        store.close()
    assert [d.outcome for d in decisions] == ["allow"] + ["quarantine"] * (requests - 1)
    return [d.quarantine_id for d in decisions[1:]]


def test_cli_quarantine_list_release_discard(cli_world, tmp_path):
    db, s = cli_world
    keys = OfficerKeys(tmp_path, s.officer_keys)
    first, second, third = _held_after_one_allowed(db, s, 4)

    listed = run(db, "quarantine", "list", "--status", "held")
    assert listed.exit_code == 0
    assert [q["id"] for q in json.loads(listed.stdout)] == [first, second, third]

    release = ["quarantine", "release", str(first), "--policies", str(POLICIES)]
    other_party = run(db, *release, "--reason", "x", "--now", iso(NOW + HOUR), *keys.signs("sro-sam"))
    assert _reason(other_party)["rule"] == "governance.officer-kind"
    released = run(db, *release, "--reason", "genuine", "--now", iso(NOW + 10 * MINUTE), *keys.signs("aro-ann"))
    assert released.exit_code == 0, released.output
    body = json.loads(released.stdout)
    assert body["signed_by"] == "aro-ann" and body["decision"]["outcome"] == "allow"
    assert _reason(run(db, *release, "--reason", "again", *keys.signs("aro-ann")))["rule"] == "R4.quarantine-not-held"

    discard = ["quarantine", "discard", str(second)]
    discarded = run(db, *discard, "--reason", "no", "--now", iso(NOW + 10 * MINUTE), *keys.signs("gov-bob"))
    assert discarded.exit_code == 0, discarded.output
    assert {k: json.loads(discarded.stdout)[k] for k in ("done", "action", "item", "status")} == {
        "done": True, "action": "quarantine.discard", "item": second, "status": "discarded",
    }
    assert _reason(run(db, *discard, "--reason", "again", *keys.signs("gov-bob")))["rule"] == "R4.quarantine-not-held"
    # Released after the instruction ended: decided again and refused (exit 1); it stays held.
    end = run(db, "instruction", "end", REF, "--reason", "over", "--now", iso(NOW + 20 * MINUTE), *keys.signs("gov-bob"))
    assert end.exit_code == 0, end.output
    late = run(db, "quarantine", "release", str(third), "--policies", str(POLICIES), "--reason", "late", "--now", iso(NOW + 30 * MINUTE),
               *keys.signs("aro-ann"))
    assert late.exit_code == 1 and json.loads(late.stdout)["decision"]["outcome"] == "reject"
    statuses = {q["id"]: q["status"] for q in json.loads(run(db, "quarantine", "list").stdout)}
    assert statuses == {first: "released", second: "discarded", third: "held"}
    assert json.loads(run(db, "audit", "verify").stdout)["intact"] is True


def test_cli_quarantine_exit_file(cli_world, tmp_path):
    """An ARO releases and deletes held requests in bulk with one signed Exit Quarantine file."""
    from solr_policy.governance.exit_quarantine import exit_file_text

    db, s = cli_world
    keys = OfficerKeys(tmp_path, s.officer_keys)
    first, second = _held_after_one_allowed(db, s, 3)
    eq = tmp_path / "exit.yaml"
    eq.write_bytes(exit_file_text(reference="EQ-CLI-1", party=s.solr_party, reason="checked", items=[(first, "release"), (second, "delete")]))
    ann = ["--aro", "aro-ann", "--key", keys.key("aro-ann")]
    apply = ["quarantine", "exit-file", str(eq), "--policies", str(POLICIES), "--now", iso(NOW + 10 * MINUTE)]

    assert run(db, *apply, *ann).exit_code == 2  # no FILE.sig yet: a usage error
    assert run(db, "adt", "sign", str(eq), "--key", keys.key("aro-ann")).exit_code == 0
    # Ann's signed file in a statement signed by another officer: the statement says who acts.
    assert _reason(run(db, *apply, "--aro", "aro-ann", "--key", keys.key("sro-sam")))["rule"] == "statement.not-the-officer"
    applied = run(db, *apply, *ann)
    assert applied.exit_code == 0, applied.output
    body = json.loads(applied.stdout)
    assert body["signed_by"] == "aro-ann" and [i["action"] for i in body["items"]] == ["release", "delete"]
    statuses = {q["id"]: q["status"] for q in json.loads(run(db, "quarantine", "list").stdout)}
    assert statuses == {first: "released", second: "discarded"}
    # The same file again: applied once only; nothing changes.
    assert _reason(run(db, *apply, *ann))["rule"] == "R4.exit-quarantine"
    # A malformed file is named before anything is signed or submitted.
    bad = tmp_path / "bad.yaml"
    bad.write_text("exit_quarantine_version: 1\nreference: EQ-BAD\ncolour: blue\n")
    assert run(db, "adt", "sign", str(bad), "--key", keys.key("aro-ann")).exit_code == 0
    assert _reason(run(db, "quarantine", "exit-file", str(bad), *ann))["rule"].startswith("R4.")
    assert json.loads(run(db, "audit", "verify").stdout)["intact"] is True
