"""Steps of "Governance you can prove": signed acts, trust anchors, pins, the signed log.

Every act here is a statement signed with the officer's own key (``solr_policy.testing
.governance.Signatories`` holds the keys the scenario made) and submitted to ``Governance``.
"""

from __future__ import annotations

import sqlite3

from pytest_bdd import given, then, when

from solr_policy.errors import GovernanceRefused
from solr_policy.governance.acts import Governance
from solr_policy.governance.certificates import import_certificates
from solr_policy.testing.governance import Signatories
from solr_policy.testing.pki import TestPki
from solr_policy.transparency.checkpoint import generate_log_key
from solr_policy.transparency.log import LogKeeper
from solr_policy.transparency.proofs import check_inclusion
from solr_policy.world import InstructionStatus

from .conftest import SOLR_USER, Scene, _switch, allowed, explain
from .steps_governance import OFFICERS, gstep

# Why an act is refused, in business words -> the rule the refusal must name.
ACT_REASONS = {
    "the officer it names did not sign it": "statement.not-the-officer",
    "two governance officers must sign it": "governance.four-eyes",
    "it was already applied": "statement.replayed",
    "the key is already another officer's": "governance.key-in-use",
}


def _signatories(scene: Scene) -> Signatories:
    return Signatories(keys=scene.solr.officer_keys)


def _gov(scene: Scene) -> Governance:
    return Governance(scene.store, engine=scene.engine, log=scene.keeper)


def _submit(scene: Scene, envelope: str) -> None:
    scene.last_envelope = envelope
    scene.refusal = None
    try:
        _gov(scene).submit(envelope, now=scene.now)
    except GovernanceRefused as refusal:
        scene.refusal = refusal


def _sign(scene: Scene, action: str, params: dict, officer: str, **kw) -> str:
    return _signatories(scene).statement(action, params, officer=OFFICERS[officer], at=scene.now, **kw)


def _proposal(scene: Scene) -> dict:
    from datetime import timedelta

    return {
        "reference": scene.solr.instruction_ref, "failed_supplier": scene.solr.failed_supplier, "solr_party": scene.solr.solr_party,
        "effective_from": (scene.now - timedelta(days=1)).isoformat(), "effective_until": (scene.now + timedelta(days=30)).isoformat(),
        "reason": "Ofgem's letter",
    }


@given("the service keeps a signed log")
def signed_log(scene: Scene):
    key = generate_log_key()
    scene.log_key = key
    scene.keeper = LogKeeper(scene.store, key.public_key(), key=key, checkpoint_file=scene.folder / "checkpoint")
    scene.use_policies(scene.folder / "policies" if (scene.folder / "policies").exists() else _published())


def _published():
    from .conftest import PUBLISHED_POLICIES

    return PUBLISHED_POLICIES


# -- instructions ------------------------------------------------------------------------------
@given(gstep("{officer:Officer} has signed a proposal of Ofgem's instruction for Failed Energy"))
@when(gstep("{officer:Officer} signs a proposal of Ofgem's instruction for Failed Energy"))
def sign_proposal(scene: Scene, officer: str):
    _submit(scene, _sign(scene, "instruction.propose", _proposal(scene), officer))
    assert scene.refusal is None or scene.refusal.rule, scene.refusal


@when(gstep("{officer:Officer} signs its approval"))
def sign_approval(scene: Scene, officer: str):
    _submit(scene, _sign(scene, "instruction.approve", {"reference": scene.solr.instruction_ref, "reason": "checked"}, officer))


@when(gstep("{officer:Officer} signs its approval in Bob's name"))
def sign_approval_as_bob(scene: Scene, officer: str):
    params = {"reference": scene.solr.instruction_ref, "reason": "checked"}
    _submit(scene, _signatories(scene).statement("instruction.approve", params, officer="gov-bob", at=scene.now, key_of=OFFICERS[officer]))


@given(gstep("{first:Officer} and {second:Officer} have signed Ofgem's instruction for Failed Energy into force"))
def instruction_signed_into_force(scene: Scene, first: str, second: str):
    sign_proposal(scene, first)
    sign_approval(scene, second)
    assert scene.refusal is None, scene.refusal
    instruction_in_force(scene)


@then("the instruction is in force")
def instruction_in_force(scene: Scene):
    assert scene.refusal is None, scene.refusal
    assert scene.instruction().status is InstructionStatus.ACTIVE and scene.instruction().in_force_at(scene.now)


@then("the instruction is not in force")
def instruction_not_in_force(scene: Scene):
    assert scene.instruction().status is not InstructionStatus.ACTIVE


@then("the log holds both signed statements")
def both_statements_logged(scene: Scene):
    statements = [e.payload_data() for e in scene.store.audit_entries(kind="statement")]
    assert [s["action"] for s in statements] == ["instruction.propose", "instruction.approve"]
    assert all(s["envelope"]["signatures"] for s in statements)


@then(gstep("the act is refused because {reason}"))
def act_refused(scene: Scene, reason: str):
    assert reason in ACT_REASONS, f"unknown reason {reason!r}; known: {sorted(ACT_REASONS)}"
    assert scene.refusal is not None, "the act was applied"
    assert scene.refusal.rule == ACT_REASONS[reason], scene.refusal
    (entry,) = [e for e in scene.store.audit_entries(kind="statement.refused")][-1:]
    assert entry.payload_data()["rule"] == ACT_REASONS[reason]


# -- officers ----------------------------------------------------------------------------------
@when(gstep("{officer:Officer} alone signs the registration of another governance officer"))
def register_governance_alone(scene: Scene, officer: str):
    params = {"officer": "gov-alice2", "name": "Alice again", "public_key": _signatories(scene).public("gov-alice2")}
    _submit(scene, _sign(scene, "officer.register-governance", params, officer))


@when("the same signed proposal is submitted again")
def submit_again(scene: Scene):
    _submit(scene, scene.last_envelope)


@given(gstep("{officer:Officer} has registered Sam as the SRO of SoLR Contingency Services by signed act"))
def sro_by_act(scene: Scene, officer: str):
    scene.store.list_officers()
    params = {"officer": "sro-sam", "name": "Sam", "party": scene.solr.solr_party, "public_key": _signatories(scene).public("sro-sam")}
    if scene.store.get_officer("sro-sam") is None:
        _submit(scene, _sign(scene, "officer.register-sro", params, officer))
        assert scene.refusal is None, scene.refusal


@when(gstep("{officer:Officer} signs the appointment of an ARO who would hold Sam's own key"))
def aro_with_sros_key(scene: Scene, officer: str):
    sro = scene.store.get_officer("sro-sam")
    params = {"officer": "aro-axel", "name": "Axel", "party": scene.solr.solr_party, "public_key": sro.public_key}
    _submit(scene, _sign(scene, "officer.appoint-aro", params, officer))


# -- certificates --------------------------------------------------------------------------------
@given("two governance officers have signed the addition of the SMKI Organisation CA as a trust anchor")
def anchor_added(scene: Scene):
    scene.smki_ca = TestPki("SMKI-ORG-CA")
    envelope = _signatories(scene).statement("anchor.add", {"certificate": scene.smki_ca.ca_cert_pem.decode()}, officer="gov-alice",
                                             cosigner="gov-bob", at=scene.now)
    _submit(scene, envelope)
    assert scene.refusal is None, scene.refusal


@when("a certificate that the SMKI Organisation CA issued is imported")
def import_genuine(scene: Scene):
    (scene.imported,) = import_certificates(scene.store, scene.smki_ca.issue("90B3D51F300F0010", 135).cert_pem, source="genuine.pem", at=scene.now)


@when("a certificate that a look-alike authority with the same name issued is imported")
def import_look_alike(scene: Scene):
    forged = TestPki("SMKI-ORG-CA").issue("90B3D51F300F0010", 135)
    (scene.imported,) = import_certificates(scene.store, forged.cert_pem, source="look-alike.pem", at=scene.now)


@then("it is imported")
def it_is_imported(scene: Scene):
    assert scene.imported.imported, scene.imported


@then("it is refused because no trust anchor issued it")
def it_is_refused(scene: Scene):
    assert not scene.imported.imported and scene.imported.reason["rule"] == "certificate.untrusted", scene.imported


@when(gstep("{officer:Officer} signs a pin of a test certificate"))
def sign_pin(scene: Scene, officer: str):
    cert = TestPki("ZAZ1-LIKE").issue("90B3D51F300F0011", 135)
    _submit(scene, _sign(scene, "certificate.pin", {"certificate": cert.cert_pem.decode(), "reason": "a test PKI with no published CA"}, officer))


@then("the certificate is shown as pinned")
def shown_pinned(scene: Scene):
    assert scene.refusal is None, scene.refusal
    (record,) = scene.store.find_certificates(eui="90B3D51F300F0011")
    assert record.summary()["pinned"] is True


# -- the log -------------------------------------------------------------------------------------
@given("the service has signed a checkpoint of its log")
@when("the service signs a checkpoint of its log")
def checkpoint(scene: Scene):
    scene.checkpoint_note = scene.keeper.checkpoint(scene.now)[1]


@then("an auditor with that checkpoint and the log's public key can prove the decision is in the log")
def auditor_proves(scene: Scene):
    entry = [e for e in scene.store.audit_entries(kind="decision") if e.payload_data()["outcome"] == "allow"][-1]
    proof = scene.keeper.prove_inclusion(entry.seq)
    verdict = check_inclusion(proof, scene.log_key.public_key(), checkpoint=scene.checkpoint_note, leaf_data=bytes.fromhex(entry.hash))
    assert verdict.valid, verdict.reason


@given("the newest entries have been removed from the database")
@when("the newest entries are removed from the database")
def remove_newest(scene: Scene):
    keep = scene.store.audit_entries()[-3]
    conn = sqlite3.connect(scene.store.path)
    conn.execute("DELETE FROM audit WHERE seq > ?", (keep.seq,))
    conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (keep.seq, keep.hash))
    conn.commit()
    conn.close()


@given(gstep("a request to switch {meter:Meter} to credit has been refused because the database is behind its checkpoint"))
@then(gstep("a request to switch {meter:Meter} to credit is refused because the database is behind its checkpoint"))
def refused_behind(scene: Scene, meter: str):
    decision = scene.decide(SOLR_USER, _switch(scene, SOLR_USER, meter, "credit"))
    assert decision.outcome == "reject" and decision.reasons[0].rule == "log.behind-checkpoint", explain(decision)


@then(gstep("a request to switch {meter:Meter} to credit is allowed"))
def request_allowed(scene: Scene, meter: str):
    scene.decide(SOLR_USER, _switch(scene, SOLR_USER, meter, "credit"))
    allowed(scene)


@when(gstep("{first:Officer} and {second:Officer} sign a recovery of the log"))
def sign_recovery(scene: Scene, first: str, second: str):
    envelope = _signatories(scene).statement("log.recover", {"reason": "database restored from a backup"}, officer=OFFICERS[first],
                                             cosigner=OFFICERS[second], at=scene.now)
    _submit(scene, envelope)
    assert scene.refusal is None, scene.refusal
