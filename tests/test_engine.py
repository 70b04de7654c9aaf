"""The decision engine: default deny, every failed rule listed, state changes only on allow,
thread safety, and the real DUIS templates and GBCS vectors."""

from __future__ import annotations

import base64
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from solr_policy.crypto.certs import read_certificate_file, read_certificates
from solr_policy.crypto.sign import sign_duis
from solr_policy.engine import Engine
from solr_policy.engine.admit import admit
from solr_policy.engine.gather import gather
from solr_policy.policy import PolicySet
from solr_policy.rules import RULES, evaluate
from solr_policy.testing.pki import TestPki
from solr_policy.testing.scenario import ECS03_PREPAYMENT, GCS02_CREDIT, SolrScenario, request_document
from solr_policy.world import Device, DeviceType, Instruction, Party, Smets, User

from conftest import REFERENCE

POLICIES = Path(__file__).resolve().parents[1] / "policies"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


@pytest.fixture()
def world(store, pki):
    scenario = SolrScenario(pki=pki).install(store, now=NOW)
    return scenario


@pytest.fixture()
def engine(store, world, tmp_path):
    """The published policies, but trusting the scenario's Pre-Command signer (CV 5-7)."""
    return Engine(store, PolicySet.load_dir(world.write_policies(tmp_path / "policies")))


def audit_count(store) -> int:
    return len(store.audit_entries(kind="decision"))


def test_allow_has_I99_every_rule_passed_and_moves_the_counter(world, engine, store):
    ask = world.requests(counter=41)
    decision = engine.decide(ask.switch_to_credit(world.device("electricity meter (SMETS1)")), now=NOW)
    assert decision.outcome == "allow" and decision.response_code == "I99"
    assert {c.result for c in decision.checks} == {"pass"}
    assert len(decision.checks) == len(RULES)
    assert decision.request["srv"] == "1.6" and decision.request["counter"] == 42
    assert store.get_counter(world.user_eui) == 42


def test_a_refusal_lists_every_failed_rule_not_only_the_first(world, engine):
    ask = world.requests()
    # Another Supplier's meter AND prepayment: two independent failures.
    raw = ask.switch_to_prepayment(world.device("other Supplier's electricity meter"))
    decision = engine.decide(raw, now=NOW)
    rules = [r.rule for r in decision.reasons]
    assert decision.outcome == "reject"
    assert "R6.device-of-failed-supplier" in rules and "R5.payment-mode" in rules
    assert decision.response_code == "E4"  # the first coded reason in pipeline order


def test_refusal_changes_no_counter_but_is_audited(world, engine, store):
    ask = world.requests(counter=10)
    before = audit_count(store)
    decision = engine.decide(ask.switch_to_prepayment(world.device("electricity meter (SMETS1)")), now=NOW)
    assert decision.outcome == "reject"
    assert store.get_counter(world.user_eui) is None
    assert audit_count(store) == before + 1
    assert store.audit_entries()[-1].kind == "decision"


def test_replay_refused_and_the_refusal_changes_no_counter(world, engine, store):
    ask = world.requests(counter=100)
    device = world.device("electricity meter (SMETS1)")
    first = ask.switch_to_credit(device, counter=200)
    assert engine.decide(first, now=NOW).outcome == "allow"
    again = engine.decide(first, now=NOW)
    assert again.outcome == "reject" and [r.rule for r in again.reasons] == ["R6.counter-fresh"]
    older = engine.decide(ask.switch_to_credit(device, counter=150), now=NOW)
    assert older.outcome == "reject"
    assert store.get_counter(world.user_eui) == 200
    assert engine.decide(ask.switch_to_credit(device, counter=201), now=NOW).outcome == "allow"


def test_bad_input_is_a_reject_with_the_boundary_rule_and_is_audited(engine, store):
    before = audit_count(store)
    decision = engine.decide(b"<not xml", now=NOW)
    assert decision.outcome == "reject" and decision.reasons[0].rule == "xml.malformed"
    assert decision.request is None
    assert audit_count(store) == before + 1


def test_default_deny_when_no_rule_evaluates(world, store):
    engine = Engine(store, PolicySet.load_dir(POLICIES), rules=())
    decision = engine.decide(world.requests().switch_to_credit(world.device("electricity meter (SMETS1)")), now=NOW)
    assert decision.outcome == "reject"
    assert decision.reasons[0].rule == "engine.no-rules"


def test_an_internal_fault_is_a_reject_and_rolls_back(world, store):
    def broken(_facts):
        raise RuntimeError("bug")

    engine = Engine(store, PolicySet.load_dir(POLICIES), rules=RULES + (broken,))
    decision = engine.decide(world.requests(counter=5).switch_to_credit(world.device("electricity meter (SMETS1)")), now=NOW)
    assert decision.outcome == "reject" and decision.reasons[0].rule == "engine.internal-error"
    assert store.get_counter(world.user_eui) is None
    assert store.verify_audit().intact


def test_rules_are_pure_functions_of_their_facts(world, engine, store):
    """Same facts in, same outcomes out; no rule touches the store."""
    raw = world.requests().signed_pre_command(world.device("gas meter (SMETS2)"), GCS02_CREDIT)
    admitted = admit(raw, engine.verifier, NOW)
    facts = gather(store, admitted, engine.policies, NOW)
    store.close()  # a rule that reached for the store would now fail
    first = evaluate(facts)
    assert first == evaluate(facts)
    assert all(o.passed for o in first)
    later = replace(facts, now=NOW + timedelta(days=365))
    failed = {o.rule for o in evaluate(later) if not o.passed and not o.skipped}
    assert failed == {"R6.instruction-active"}


def test_concurrent_copies_of_one_request_allow_exactly_one(world, store):
    raw = world.requests(counter=7000).switch_to_credit(world.device("gas meter (SMETS1)"))
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def worker():
        barrier.wait()
        outcomes.append(engine.decide(raw, now=NOW).outcome)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["allow"] + ["reject"] * 5
    assert len(store.audit_entries(kind="decision")) == 6
    assert store.verify_audit().intact


def test_threads_deciding_different_requests_all_count(world, store):
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    ask = world.requests(counter=1)
    device = world.device("electricity meter (SMETS1)")
    requests = [ask.switch_to_credit(device) for _ in range(24)]
    results: list[str] = []
    lock = threading.Lock()

    def worker(chunk):
        for raw in chunk:
            outcome = engine.decide(raw, now=NOW).outcome
            with lock:
                results.append(outcome)

    # Each thread takes every 4th request; later counters may land first, so some
    # earlier ones are legitimately refused as replays. What must hold: nothing is lost.
    threads = [threading.Thread(target=worker, args=(requests[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 24 and "allow" in results
    decisions = store.audit_entries(kind="decision")
    assert len(decisions) == 24
    assert store.get_counter(world.user_eui) == max(
        e.payload_data()["request"]["counter"] for e in decisions if e.payload_data()["outcome"] == "allow"
    )


# -- real reference material ---------------------------------------------------------------
ZAZ1 = REFERENCE / "zaz1-test-pki"
TEMPLATES = REFERENCE / "duis-templates"
VECTORS = REFERENCE / "gbcs-vectors"
ZAZ1_USER = "90B3D51F30010000"  # the originator in every template and vector


# Signs the real Pre-Commands as a party the policy trusts (the ZAZ1 Supplier Digital Signing
# certificate has the User's own EUI, which R2 forbids the role to hold, and has expired).
REFERENCE_SIGNER = TestPki("RS").issue("90B3D51F300C0001", 2)


def _reference_world(store, smets: Smets, folder: Path) -> Engine:
    for party in ("FAILED", "OTHER", "SOLR"):
        store.put_party(Party(id=party, name=party))
    for record in read_certificate_file(ZAZ1 / "xml-sign-90B3D51F30010000-ds.pem"):
        store.put_certificate(record)
    store.put_user(User(id=ZAZ1_USER, party="SOLR", role="SC"))
    store.put_device(Device(id="00DB1234567890A0", type=DeviceType.ESME, smets=smets, supplier="FAILED"))
    store.put_device(Device(id="00DB1234567890A1", type=DeviceType.GSME, smets=smets, supplier="FAILED"))
    store.put_instruction(Instruction(reference="OFGEM-1", failed_supplier="FAILED", solr_party="SOLR", effective_from=NOW - timedelta(days=1)))
    # The Party's ARO names FAILED in an ADT file (R4), through the governance API.
    scenario = SolrScenario(solr_party="SOLR", failed_supplier="FAILED", user_eui=ZAZ1_USER)
    scenario._install_officers(store, NOW)
    scenario.submit_adt(store, now=NOW)
    for record in read_certificates(REFERENCE_SIGNER.cert_pem):
        store.put_certificate(record)
    return Engine(store, PolicySet.load_dir(scenario.write_policies(folder)))


def _user_signs(pre_command: bytes) -> bytes:
    """Turn a real Pre-Command into a Signed Pre-Command: append the GBCS signature part."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(REFERENCE_SIGNER.key.sign(pre_command[1:], ec.ECDSA(hashes.SHA256())))
    return pre_command + b"\x40" + r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_an_unsigned_pre_command_is_not_a_signed_pre_command(world, engine):
    from solr_policy.testing.gbcs import build_general_signing

    device = world.device("gas meter (SMETS2)")
    unsigned = build_general_signing(message_code=GCS02_CREDIT, originator=world.user_eui, recipient=device, counter=77)
    decision = engine.decide(world.requests().signed_pre_command(device, GCS02_CREDIT, payload=unsigned), now=NOW)
    assert [r.rule for r in decision.reasons] == ["R5.gbcs-signed"]


def test_a_pre_command_made_for_another_user_is_refused(world, engine):
    from solr_policy.testing.gbcs import build_general_signing

    device = world.device("gas meter (SMETS2)")
    theirs = build_general_signing(message_code=GCS02_CREDIT, originator="90B3D51F30FF0099", recipient=device, counter=78, key=world.pre_command_signer.key)
    decision = engine.decide(world.requests().signed_pre_command(device, GCS02_CREDIT, payload=theirs), now=NOW)
    assert [r.rule for r in decision.reasons] == ["R5.gbcs-originator"] and decision.response_code == "E12"


def _zaz1_sign(document: bytes) -> bytes:
    return sign_duis(document, (ZAZ1 / "xml-sign-90B3D51F30010000-ds.key.pem").read_bytes(), (ZAZ1 / "xml-sign-90B3D51F30010000-ds.pem").read_bytes())


@pytest.mark.reference
@pytest.mark.parametrize(
    ("template", "outcome", "code", "rule"),
    [
        ("ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS_REQUEST_DUIS.XML", "allow", "I99", None),
        ("GCS02_1.6_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML", "allow", "I99", None),
        ("ECS03_1.6_IMMEDIATE_SINGLE_SUCCESS_REQUEST_DUIS.XML", "reject", "E12", "R5.payment-mode"),
        ("ECS04a_1.5_SUCCESS_REQUEST_DUIS.XML", "reject", "E2", "R3.srv-allowed"),
    ],
)
def test_real_templates_resigned_for_a_solr_user(store, template, outcome, code, rule, tmp_path):
    engine = _reference_world(store, Smets.SMETS1, tmp_path)
    decision = engine.decide(_zaz1_sign((TEMPLATES / template).read_bytes()), now=NOW)
    assert (decision.outcome, decision.response_code) == (outcome, code)
    if rule:
        assert rule in [r.rule for r in decision.reasons]


@pytest.mark.reference
@pytest.mark.parametrize(
    ("vector", "outcome", "rule"),
    [
        ("ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS_PRECOMMAND_GBCS.HEX", "allow", None),
        ("ECS03_1.6_IMMEDIATE_SINGLE_SUCCESS_PRECOMMAND_GBCS.HEX", "reject", "R5.gbcs-message-code"),
    ],
)
def test_real_gbcs_precommands_wrapped_in_a_signed_pre_command(store, vector, outcome, rule, tmp_path):
    engine = _reference_world(store, Smets.SMETS2, tmp_path)
    payload = _user_signs(bytes.fromhex((VECTORS / vector).read_text().strip()))
    body = f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(payload).decode()}</sr:GBCSPayload></sr:SignedPreCommand>"
    raw = _zaz1_sign(request_document(originator=ZAZ1_USER, target="00DB1234567890A0", counter=5000, srv="1.6", cv=5, body=body))
    decision = engine.decide(raw, now=NOW)
    assert decision.outcome == outcome
    if rule:
        assert [r.rule for r in decision.reasons] == [rule]
        assert decision.response_code == "E12"


@pytest.mark.reference
def test_real_precommand_to_another_meter_is_refused(store, tmp_path):
    engine = _reference_world(store, Smets.SMETS2, tmp_path)
    payload = _user_signs(bytes.fromhex((VECTORS / "ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS_PRECOMMAND_GBCS.HEX").read_text().strip()))
    body = f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(payload).decode()}</sr:GBCSPayload></sr:SignedPreCommand>"
    raw = _zaz1_sign(request_document(originator=ZAZ1_USER, target="00DB1234567890A1", counter=5001, srv="1.6", cv=5, body=body))
    decision = engine.decide(raw, now=NOW)
    assert decision.outcome == "reject"
    assert "R5.gbcs-recipient" in [r.rule for r in decision.reasons]


def test_pre_command_prepayment_refused_even_with_a_valid_signature(world, engine):
    raw = world.requests().signed_pre_command(world.device("electricity meter (SMETS2)"), ECS03_PREPAYMENT)
    decision = engine.decide(raw, now=NOW)
    assert decision.outcome == "reject" and decision.response_code == "E12"


def test_a_decision_identifies_itself_and_its_audit_entry_names_it(world, engine, store):
    import hashlib

    from lxml import etree

    raw = world.requests(counter=300).switch_to_credit(world.device("electricity meter (SMETS1)"))
    first = engine.decide(raw, now=NOW)
    second = engine.decide(raw, now=NOW)  # the replay: a decision of its own
    assert first.decision_id and second.decision_id and first.decision_id != second.decision_id
    signed = engine.verifier.verify(raw, now=NOW).signed_root
    canonical = etree.tostring(signed, method="c14n", exclusive=True)
    assert first.content_sha256 == hashlib.sha256(canonical).hexdigest() == second.content_sha256
    # What a pipeline forwards is exactly what was decided: the canonical signed bytes.
    assert first.signed_content == canonical and "signed_content" not in first.to_json_dict()
    policy_file = Path(engine.policies.sources["SC"])
    assert (first.policy, first.policy_version) == ("solr-contingency", 1)
    assert first.policy_sha256 == hashlib.sha256(policy_file.read_bytes()).hexdigest()
    logged = [e.payload_data() for e in store.audit_entries(kind="decision")][-2:]
    assert [p["decision_id"] for p in logged] == [first.decision_id, second.decision_id]
    assert logged[0]["content_sha256"] == first.content_sha256


def test_a_boundary_refusal_has_an_id_but_no_content_digest(engine):
    decision = engine.decide(b"<not xml", now=NOW)
    assert decision.decision_id and decision.content_sha256 is None


def test_evaluate_changes_nothing(world, engine, store):
    raw = world.requests(counter=400).switch_to_credit(world.device("electricity meter (SMETS1)"))
    entries = len(store.audit_entries())
    dry = engine.evaluate(raw, now=NOW)
    assert dry.outcome == "allow"
    assert store.get_counter(world.user_eui) is None and len(store.audit_entries()) == entries
    assert engine.evaluate(raw, now=NOW).outcome == "allow"  # still not consumed
    assert engine.decide(raw, now=NOW).outcome == "allow"
    assert engine.evaluate(raw, now=NOW).reasons[0].rule == "R6.counter-fresh"


def test_evaluate_of_a_request_over_the_threshold_holds_nothing(world, store):
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    device = world.device("electricity meter (SMETS1)")
    ask = world.requests(counter=500)
    for n in range(1, 200):
        decision = engine.evaluate(ask.switch_to_credit(device, counter=500 + n), now=NOW)
        assert decision.outcome == "allow"  # evaluations are never counted against the threshold
    assert store.list_quarantine() == []


# -- R5 to the last byte: GBCS signatures verified, and commands that fit the meter ----------
def _pre_command(world, device_label: str, code: int, *, key=None, signature: bytes | None = None) -> bytes:
    from solr_policy.testing.gbcs import build_general_signing

    device = world.device(device_label)
    ask = world.requests()
    counter = ask.counter + 1
    payload = build_general_signing(message_code=code, originator=world.user_eui, recipient=device, counter=counter, key=key)
    if signature is not None:
        payload += bytes([len(signature)]) + signature
    return ask.signed_pre_command(device, code, counter=counter, payload=payload)


def test_the_published_policy_trusts_no_pre_command_signer(world, store):
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    decision = engine.decide(world.requests().signed_pre_command(world.device("gas meter (SMETS2)"), GCS02_CREDIT), now=NOW)
    assert [r.rule for r in decision.reasons] == ["R5.gbcs-signed"] and decision.response_code == "E12"
    assert "names no trusted Pre-Command signer" in decision.reasons[0].message


@pytest.mark.parametrize(
    "signature", [b"\x01", b"\x00" * 64], ids=["a 1-byte signature", "64 zero bytes"]
)
def test_a_signature_that_is_only_present_is_refused(world, engine, signature):
    decision = engine.decide(_pre_command(world, "gas meter (SMETS2)", GCS02_CREDIT, signature=signature), now=NOW)
    assert [r.rule for r in decision.reasons] == ["R5.gbcs-signed"]
    assert "does not verify" in decision.reasons[0].message


def test_a_valid_signature_by_an_untrusted_key_is_refused(world, engine):
    raw = _pre_command(world, "gas meter (SMETS2)", GCS02_CREDIT, key=world.user.key)  # the User's own XML key
    decision = engine.decide(raw, now=NOW)
    assert [r.rule for r in decision.reasons] == ["R5.gbcs-signed"]


def test_the_trusted_signers_revoked_certificate_verifies_nothing(world, engine, store):
    from solr_policy.records import SmkiStatus

    for record in store.find_certificates(eui=world.pre_command_signer_eui):
        store.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
    decision = engine.decide(world.requests().signed_pre_command(world.device("gas meter (SMETS2)"), GCS02_CREDIT), now=NOW)
    assert [r.rule for r in decision.reasons] == ["R5.gbcs-signed"]
    assert "no In use Digital Signing certificate" in decision.reasons[0].message


@pytest.mark.parametrize(
    "meter, code, fuel",
    [("gas meter (SMETS2)", 0x001A, "ESME"), ("electricity meter (SMETS2)", GCS02_CREDIT, "GSME")],
    ids=["ECS02 to a gas meter", "GCS02 to an electricity meter"],
)
def test_a_gbcs_command_for_the_other_fuel_is_refused(world, engine, meter, code, fuel):
    decision = engine.decide(world.requests().signed_pre_command(world.device(meter), code), now=NOW)
    assert [r.rule for r in decision.reasons] == ["R5.gbcs-fits-device"] and decision.response_code == "E11"
    assert f"is a command for a {fuel}" in decision.reasons[0].message


@pytest.mark.parametrize("srv, element", [("7.13", "SetAuxiliaryControllerState"), ("7.16", "LimitAPCLevel")])
def test_a_schema_valid_body_with_its_declared_attribute_is_refused_by_the_role_not_as_malformed(world, engine, srv, element):
    body = (
        f'<sr:{element} auxiliaryControllerN="1"><sr:StartDateTime>2026-11-23T00:00:00Z</sr:StartDateTime>'
        f"<sr:EndDateTime>2026-11-24T00:00:00Z</sr:EndDateTime></sr:{element}>"
    )
    raw = world.requests().other(world.device("electricity meter (SMETS2)"), srv=srv, cv=1, body=body)
    decision = engine.decide(raw, now=NOW)
    assert decision.outcome == "reject" and decision.response_code == "E2"
    assert decision.reasons[0].rule == "R3.srv-allowed"


def test_a_stale_gbcs_counter_inside_a_fresh_duis_request_is_refused(world, engine, store):
    from solr_policy.testing.gbcs import build_general_signing

    device = world.device("gas meter (SMETS2)")
    ask = world.requests(counter=700)
    assert engine.decide(ask.signed_pre_command(device, GCS02_CREDIT, counter=701), now=NOW).outcome == "allow"
    # The same GBCS command (counter 701) re-wrapped in a new DUIS request with counter 702.
    old = build_general_signing(message_code=GCS02_CREDIT, originator=world.user_eui, recipient=device, counter=701, key=world.pre_command_signer.key)
    decision = engine.decide(ask.signed_pre_command(device, GCS02_CREDIT, counter=702, payload=old), now=NOW)
    assert [r.rule for r in decision.reasons] == ["R5.gbcs-counter-fresh"] and decision.response_code == "E12"
    assert store.get_counter(world.user_eui) == 701  # the refused request took no counter


def test_a_store_fault_during_a_decision_is_a_default_deny_not_a_traceback(world, engine, store):
    import sqlite3

    conn = sqlite3.connect(store.path)
    conn.execute("DROP TABLE devices")
    conn.commit()
    conn.close()
    decision = engine.decide(world.requests(counter=900).switch_to_credit(world.device("electricity meter (SMETS1)")), now=NOW)
    assert decision.outcome == "reject" and decision.reasons[0].rule == "store.unavailable"
    assert "refused by default" in decision.reasons[0].message
