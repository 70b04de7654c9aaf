"""Governance you can prove: every act a signed statement, and each impersonation of the
red-team report failing closed with a named reason."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from solr_policy.engine import Engine
from solr_policy.errors import GovernanceRefused
from solr_policy.governance.acts import Governance
from solr_policy.governance.bootstrap import init_store
from solr_policy.policy import PolicySet, default_policy_dir
from solr_policy.testing.governance import Signatories
from solr_policy.testing.scenario import SolrScenario
from solr_policy.world import InstructionStatus

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


@pytest.fixture()
def world(store):
    scenario = SolrScenario().install(store, now=NOW, instruction_status=None)
    return scenario


@pytest.fixture()
def officers(world) -> Signatories:
    return Signatories(keys=world.officer_keys)


@pytest.fixture()
def gov(store) -> Governance:
    engine = Engine(store, PolicySet.load_dir(default_policy_dir()))
    return Governance(store, engine=engine)


def proposal(world, reference="OFGEM-1", **extra) -> dict:
    return {
        "reference": reference, "failed_supplier": world.failed_supplier, "solr_party": world.solr_party,
        "effective_from": (NOW - timedelta(minutes=5)).isoformat(), "reason": "Ofgem letter", **extra,
    }


def refused(rule: str, gov: Governance, envelope: str, *, now: datetime = NOW) -> GovernanceRefused:
    entries = len(gov.store.audit_entries())
    with pytest.raises(GovernanceRefused) as info:
        gov.submit(envelope, now=now)
    assert info.value.rule == rule, info.value.message
    # Nothing changed but the log entry of the refusal.
    new = gov.store.audit_entries()[entries:]
    assert [e.kind for e in new] == ["statement.refused"] and new[0].payload_data()["rule"] == rule
    return info.value


def test_a_signed_proposal_and_another_officers_approval_activate_an_instruction(gov, officers, world, store):
    act = gov.submit(officers.statement("instruction.propose", proposal(world), officer="gov-alice", at=NOW), now=NOW)
    assert act.officer == "gov-alice" and store.get_instruction("OFGEM-1").status is InstructionStatus.PROPOSED
    gov.submit(officers.statement("instruction.approve", {"reference": "OFGEM-1", "reason": "checked"}, officer="gov-bob", at=NOW), now=NOW)
    assert store.get_instruction("OFGEM-1").status is InstructionStatus.ACTIVE
    logged = [e for e in store.audit_entries() if e.kind == "statement"]
    assert [e.payload_data()["action"] for e in logged] == ["instruction.propose", "instruction.approve"]
    assert logged[0].payload_data()["envelope"]["signatures"]  # the log holds the proof of authority


def test_self_approval_is_refused(gov, officers, world):
    gov.submit(officers.statement("instruction.propose", proposal(world), officer="gov-alice", at=NOW), now=NOW)
    refused("R6.four-eyes", gov, officers.statement("instruction.approve", {"reference": "OFGEM-1", "reason": "mine"}, officer="gov-alice", at=NOW))


def test_a_second_name_for_herself_needs_a_second_officer(gov, officers, world, store):
    """Red team: Alice registers gov-alice2 (a key she holds) to approve her own proposal."""
    params = {"officer": "gov-alice2", "name": "Alice again", "public_key": officers.public("gov-alice2")}
    refused("governance.four-eyes", gov, officers.statement("officer.register-governance", params, officer="gov-alice", at=NOW))
    assert store.get_officer("gov-alice2") is None
    # With Bob's co-signature a new governance officer is registered: four eyes, two keys.
    params = {"officer": "gov-carol", "name": "Carol", "public_key": officers.public("gov-carol")}
    act = gov.submit(officers.statement("officer.register-governance", params, officer="gov-alice", cosigner="gov-bob", at=NOW), now=NOW)
    assert act.cosigners == ("gov-bob",) and store.get_officer("gov-carol").active


def test_typing_another_officers_name_proves_nothing(gov, officers, world, store):
    """Red team: an ARO of another Party types the Party's ARO name."""
    store_item = _held_item(gov, officers, world, store)
    forged = officers.statement("quarantine.release", {"item": store_item, "reason": "mine"}, officer="aro-ann", at=NOW, key_of="aro-otto")
    refused("statement.unknown-key", gov, forged)  # aro-otto is no registered officer: his key is unknown
    err = refused("statement.not-the-officer", gov,
                  officers.statement("quarantine.release", {"item": store_item, "reason": "mine"}, officer="aro-ann", at=NOW, key_of="sro-sam"))
    assert "did not sign it" in err.message
    assert store.get_quarantine(store_item).held


def test_one_key_one_officer(gov, officers, world, store):
    """Red team: the same public key for an SRO and an ARO."""
    params = {"officer": "aro-axel", "name": "Axel", "party": world.solr_party, "public_key": officers.public("sro-sam")}
    refused("governance.key-in-use", gov, officers.statement("officer.appoint-aro", params, officer="sro-sam", at=NOW))
    assert store.get_officer("aro-axel") is None


def test_srp_registration_is_a_signed_governance_act(gov, officers, world, store):
    """Red team: `srp add` needed no officer and took any endpoint."""
    params = {"srp": "SRP-X", "name": "X", "endpoint": "http://evil.example/alerts", "serves": [world.failed_supplier]}
    refused("R7.srp-endpoint", gov, officers.statement("srp.register", params, officer="gov-alice", at=NOW))
    refused("governance.officer-kind", gov, officers.statement("srp.register", {**params, "endpoint": "https://srp.example/a"}, officer="aro-ann", at=NOW))
    act = gov.submit(officers.statement("srp.register", {**params, "endpoint": "https://srp.example/a"}, officer="gov-alice", at=NOW), now=NOW)
    assert act.action == "srp.register" and store.srp_for_supplier(world.failed_supplier).id == "SRP-X"


def test_an_unsigned_or_tampered_statement_is_refused(gov, officers, world):
    import json

    envelope = json.loads(officers.statement("instruction.propose", proposal(world), officer="gov-alice", at=NOW))
    envelope["signatures"] = []
    refused("statement.malformed", gov, json.dumps(envelope))
    envelope = json.loads(officers.statement("instruction.propose", proposal(world), officer="gov-alice", at=NOW))
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][:-8] + "AAAAAAA="
    refused("statement.bad-signature", gov, json.dumps(envelope))


def test_a_statement_applies_at_most_once(gov, officers, world):
    envelope = officers.statement("instruction.propose", proposal(world), officer="gov-alice", at=NOW)
    gov.submit(envelope, now=NOW)
    refused("statement.replayed", gov, envelope)


def test_a_stale_or_future_statement_is_refused_by_the_service_clock(gov, officers, world):
    old = officers.statement("instruction.propose", proposal(world), officer="gov-alice", at=NOW - timedelta(hours=1))
    refused("statement.stale", gov, old)
    ahead = officers.statement("instruction.propose", proposal(world), officer="gov-alice", at=NOW + timedelta(hours=1))
    refused("statement.future", gov, ahead)


def test_a_removed_officer_signs_nothing(gov, officers, world):
    gov.submit(officers.statement("officer.remove", {"officer": "aro-ann", "reason": "left"}, officer="sro-sam", at=NOW), now=NOW)
    refused("statement.unknown-key", gov, officers.statement("quarantine.discard", {"item": 1, "reason": "x"}, officer="aro-ann", at=NOW))


def test_a_rotated_key_replaces_the_old_one(gov, officers, world):
    new = Signatories()
    gov.submit(officers.statement("officer.rotate-key", {"officer": "aro-ann", "public_key": new.public("aro-ann"), "reason": "lost laptop"},
                                  officer="sro-sam", at=NOW), now=NOW)
    refused("statement.unknown-key", gov, officers.statement("quarantine.discard", {"item": 1, "reason": "x"}, officer="aro-ann", at=NOW))
    with pytest.raises(GovernanceRefused) as info:  # the new key works: the act itself is then judged
        gov.submit(new.statement("quarantine.discard", {"item": 99, "reason": "x"}, officer="aro-ann", at=NOW), now=NOW)
    assert info.value.rule == "R4.quarantine-unknown"


# -- init ----------------------------------------------------------------------------------------
def test_init_registers_the_first_officers_and_is_the_first_entry(tmp_path):
    from solr_policy.store import SqliteStore

    store = SqliteStore(tmp_path / "new.db")
    keys = Signatories()
    with pytest.raises(GovernanceRefused) as info:
        init_store(store, [("gov-a", "A", keys.public("gov-a"))], at=NOW)
    assert info.value.rule == "init.officers"
    init_store(store, [("gov-a", "A", keys.public("gov-a")), ("gov-b", "B", keys.public("gov-b"))], at=NOW)
    assert store.audit_entries()[0].kind == "init"
    with pytest.raises(GovernanceRefused) as info:
        init_store(store, [("gov-c", "C", keys.public("gov-c")), ("gov-d", "D", keys.public("gov-d"))], at=NOW)
    assert info.value.rule == "init.not-empty"


def _held_item(gov, officers, world, store) -> int:
    """A request held in quarantine, for release attempts; and another Party's ARO, otto."""
    from solr_policy.world import Party

    store.put_party(Party(id="OTHER-SOLR", name="Another SoLR Party"))
    gov.submit(officers.statement("officer.register-sro", {"officer": "sro-sue", "name": "Sue", "party": "OTHER-SOLR",
                                                           "public_key": officers.public("sro-sue")}, officer="gov-alice", at=NOW), now=NOW)
    quarantine_item = store.add_quarantine(at=NOW, originator=world.user_eui, device=world.device("electricity meter (SMETS1)"),
                                           srv="1.6", counter=1, raw=b"<held/>", decision={})
    return quarantine_item
