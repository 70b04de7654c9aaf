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


def test_a_rotated_away_key_is_never_used_again(gov, officers, world, store):
    """Red team: the key Ann rotated away (a lost laptop) is registered for a new ARO, or given
    back to Ann: both refused; the log names the retired key by its fingerprint only."""
    old_key = officers.public("aro-ann")
    gov.submit(officers.statement("officer.rotate-key", {"officer": "aro-ann", "public_key": Signatories().public("aro-ann"), "reason": "lost laptop"},
                                  officer="sro-sam", at=NOW), now=NOW)
    appoint = {"officer": "aro-eve", "name": "Eve", "party": world.solr_party, "public_key": old_key}
    refused("governance.key-in-use", gov, officers.statement("officer.appoint-aro", appoint, officer="sro-sam", at=NOW))
    assert store.get_officer("aro-eve") is None
    back = {"officer": "aro-ann", "public_key": old_key, "reason": "found it"}
    refused("governance.key-in-use", gov, officers.statement("officer.rotate-key", back, officer="sro-sam", at=NOW))
    (rotated,) = store.audit_entries(kind="officer.rotate-key")
    assert "BEGIN PUBLIC KEY" not in rotated.payload and len(rotated.payload_data()["retired_key_sha256"]) == 64


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


# -- SMKI trust: anchors, imports, pins, CRLs ---------------------------------------------------
def test_anchors_need_two_officers_and_then_carry_authority(gov, officers, store):
    from solr_policy.governance.certificates import import_certificates
    from solr_policy.testing.pki import TestPki

    ca = TestPki("Z7")
    leaf = ca.issue("90B3D51F30010000", 135)
    before = import_certificates(store, leaf.cert_pem, source="leaf.pem", at=NOW)
    assert not before[0].imported and before[0].reason["rule"] == "certificate.untrusted"
    params = {"certificate": ca.ca_cert_pem.decode()}
    refused("governance.four-eyes", gov, officers.statement("anchor.add", params, officer="gov-alice", at=NOW))
    gov.submit(officers.statement("anchor.add", params, officer="gov-alice", cosigner="gov-bob", at=NOW), now=NOW)
    (result,) = import_certificates(store, leaf.cert_pem, source="leaf.pem", at=NOW)
    assert result.imported and result.certificate["provenance"].startswith("anchor:")
    assert store.audit_entries(kind="certificate.import")
    # A look-alike CA: same name, the victim's EUI-64 and role, another key.
    forged = TestPki("Z7").issue("90B3D51F30010000", 135)
    (refusal,) = import_certificates(store, forged.cert_pem, source="forged.pem", at=NOW)
    assert not refusal.imported and "verifies its signature" in refusal.reason["message"]


def test_import_warns_of_expired_and_legacy_certificates(gov, officers, store):
    from solr_policy.governance.certificates import import_certificates
    from solr_policy.testing.pki import TestPki

    ca = TestPki("Z6")
    gov.submit(officers.statement("anchor.add", {"certificate": ca.ca_cert_pem.decode()}, officer="gov-alice", cosigner="gov-bob", at=NOW), now=NOW)
    old = ca.issue("90B3D51F30010001", 135, not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1))
    (expired,) = import_certificates(store, old.cert_pem, source="old.pem", at=NOW)
    assert any("expired" in w for w in expired.warnings)
    legacy = ca.issue("90B3D51F30000002", 137, ou="137")
    (dcc,) = import_certificates(store, legacy.cert_pem, source="dcc.pem", at=NOW)
    assert dcc.imported and dcc.certificate["role"] == 137 and any("decimal" in w for w in dcc.warnings)


def test_a_pin_is_a_signed_act_and_shows_as_pinned(gov, officers, store):
    from solr_policy.testing.pki import TestPki

    cert = TestPki("ZAZ1-like").issue("90B3D51F30010003", 135)
    refused("governance.officer-kind", gov, officers.statement("certificate.pin", {"certificate": cert.cert_pem.decode(), "reason": "test PKI"}, officer="aro-ann", at=NOW))
    gov.submit(officers.statement("certificate.pin", {"certificate": cert.cert_pem.decode(), "reason": "ZAZ1 has no published CA"}, officer="gov-alice", at=NOW), now=NOW)
    (record,) = store.find_certificates(eui="90B3D51F30010003")
    assert record.provenance == "pinned" and record.summary()["pinned"] is True


def test_a_status_change_by_hand_is_a_signed_logged_act(gov, officers, store, world):
    (record,) = store.find_certificates(eui=world.user_eui)
    params = {"issuer": record.issuer, "serial": record.serial, "status": "R", "reason": "compromised"}
    gov.submit(officers.statement("certificate.set-status", params, officer="gov-bob", at=NOW), now=NOW)
    assert store.get_certificate(record.issuer, record.serial).status.value == "R"
    (entry,) = store.audit_entries(kind="certificate.set-status")
    assert entry.actor == "gov-bob" and entry.payload_data()["to"] == "R"


def test_a_crl_from_an_anchor_revokes_a_look_alike_crl_does_not(gov, officers, store):
    from solr_policy.errors import GovernanceRefused as Refusal
    from solr_policy.governance.certificates import import_certificates, import_crl
    from solr_policy.testing.pki import TestPki

    ca = TestPki("Z5")
    gov.submit(officers.statement("anchor.add", {"certificate": ca.ca_cert_pem.decode()}, officer="gov-alice", cosigner="gov-bob", at=NOW), now=NOW)
    leaf = ca.issue("90B3D51F30010004", 135)
    import_certificates(store, leaf.cert_pem, source="leaf.pem", at=NOW)
    with pytest.raises(Refusal) as info:
        import_crl(store, TestPki("Z5").crl_pem([leaf.serial]), source="forged.crl", at=NOW)
    assert info.value.rule == "crl.untrusted"
    assert import_crl(store, ca.crl_pem([leaf.serial]), source="z5.crl", at=NOW)["revoked"] == [str(leaf.serial)]
    (record,) = store.find_certificates(eui="90B3D51F30010004")
    assert record.status.value == "R"


# -- recovering the log after a rollback ---------------------------------------------------------
def test_after_a_rollback_only_a_two_officer_recovery_reopens_the_engine(store, officers, world, tmp_path):
    import sqlite3

    from solr_policy.transparency.checkpoint import generate_log_key
    from solr_policy.transparency.log import LogKeeper

    key = generate_log_key()
    keeper = LogKeeper(store, key.public_key(), key=key, checkpoint_file=tmp_path / "cp")
    engine = Engine(store, PolicySet.load_dir(default_policy_dir()), audit_log=keeper)
    gov = Governance(store, engine=engine, log=keeper)
    gov.submit(officers.statement("instruction.propose", proposal(world), officer="gov-alice", at=NOW), now=NOW)
    gov.submit(officers.statement("instruction.approve", {"reference": "OFGEM-1", "reason": "ok"}, officer="gov-bob", at=NOW), now=NOW)
    ask = world.requests()
    assert engine.decide(ask.switch_to_credit(world.device("electricity meter (SMETS1)")), now=NOW).outcome == "allow"
    keeper.checkpoint(NOW)
    head = store.audit_entries()[-2]
    conn = sqlite3.connect(store.path)
    conn.execute(f"DELETE FROM audit WHERE seq > {head.seq}")
    conn.execute(f"UPDATE audit_head SET seq = {head.seq}, hash = '{head.hash}' WHERE id = 1")
    conn.commit()
    conn.close()
    decision = engine.decide(ask.switch_to_credit(world.device("electricity meter (SMETS1)")), now=NOW)
    assert decision.reasons[0].rule == "log.behind-checkpoint"
    refused("log.behind-checkpoint", gov, officers.statement("instruction.end", {"reference": "OFGEM-1", "reason": "x"}, officer="gov-alice", at=NOW))
    refused("governance.four-eyes", gov, officers.statement("log.recover", {"reason": "restored backup"}, officer="gov-alice", at=NOW))
    gov.submit(officers.statement("log.recover", {"reason": "restored backup"}, officer="gov-alice", cosigner="gov-bob", at=NOW), now=NOW)
    (entry,) = store.audit_entries(kind="log.recover")
    assert "lost or removed" in entry.payload_data()["problem"] or "rewritten" in entry.payload_data()["problem"]
    assert engine.decide(ask.switch_to_credit(world.device("electricity meter (SMETS1)")), now=NOW).outcome == "allow"
