"""The decision engine: default deny, every failed rule listed, state changes only on allow,
thread safety, and the real DUIS templates and GBCS vectors."""

from __future__ import annotations

import base64
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from solr_policy.crypto.certs import read_certificate_file
from solr_policy.crypto.sign import sign_duis
from solr_policy.engine import Engine
from solr_policy.policy import PolicySet
from solr_policy.rules import RULES, evaluate
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
def engine(store):
    return Engine(store, PolicySet.load_dir(POLICIES))


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
    verified = engine.verifier.verify_request(raw, now=NOW)
    from solr_policy.engine import _decode_gbcs

    gbcs, err = _decode_gbcs(verified)
    facts = engine._facts(verified, gbcs, err, NOW)
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
        int(e.payload.split('"counter":')[1].split(",")[0]) for e in decisions if '"outcome":"allow"' in e.payload
    )


# -- real reference material ---------------------------------------------------------------
ZAZ1 = REFERENCE / "zaz1-test-pki"
TEMPLATES = REFERENCE / "duis-templates"
VECTORS = REFERENCE / "gbcs-vectors"
ZAZ1_USER = "90B3D51F30010000"  # the originator in every template and vector


def _reference_world(store, smets: Smets) -> Engine:
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
    return Engine(store, PolicySet.load_dir(POLICIES))


def _user_signs(pre_command: bytes) -> bytes:
    """Turn a real Pre-Command into a Signed Pre-Command: append the GBCS signature part."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key = serialization.load_pem_private_key((ZAZ1 / "xml-sign-90B3D51F30010000-ds.key.pem").read_bytes(), None)
    r, s = decode_dss_signature(key.sign(pre_command, ec.ECDSA(hashes.SHA256())))
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
    theirs = build_general_signing(message_code=GCS02_CREDIT, originator="90B3D51F30FF0099", recipient=device, counter=78, key=world.user.key)
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
def test_real_templates_resigned_for_a_solr_user(store, template, outcome, code, rule):
    engine = _reference_world(store, Smets.SMETS1)
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
def test_real_gbcs_precommands_wrapped_in_a_signed_pre_command(store, vector, outcome, rule):
    engine = _reference_world(store, Smets.SMETS2)
    payload = _user_signs(bytes.fromhex((VECTORS / vector).read_text().strip()))
    body = f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(payload).decode()}</sr:GBCSPayload></sr:SignedPreCommand>"
    raw = _zaz1_sign(request_document(originator=ZAZ1_USER, target="00DB1234567890A0", counter=5000, srv="1.6", cv=5, body=body))
    decision = engine.decide(raw, now=NOW)
    assert decision.outcome == outcome
    if rule:
        assert [r.rule for r in decision.reasons] == [rule]
        assert decision.response_code == "E12"


@pytest.mark.reference
def test_real_precommand_to_another_meter_is_refused(store):
    engine = _reference_world(store, Smets.SMETS2)
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
