"""Each rule called directly on hand-built facts: no signing, no store, no engine.

One table, at least one row per rule id that fails or holds, and a test that the table
covers every rule in the pipeline. The baseline (``allowed_facts``) passes every rule.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from solr_policy.duis.models import OtherBody, PrepaymentSettings, SignedPreCommand, UpdatePaymentMode
from solr_policy.gbcs import decode_general_signing
from solr_policy.policy import PreCommandSigner, ValueLimit
from solr_policy.rules import RULES, RULES_BY_ID, GbcsError, PreCommandSignature, Release, evaluate
from solr_policy.rules.base import Facts
from solr_policy.testing.facts import DEVICE_EUI, FAILED, NOW, SOLR, USER_EUI, adt_file, allowed_facts, signer, with_request
from solr_policy.testing.gbcs import build_general_signing
from solr_policy.world import Device, DeviceType, Instruction, InstructionStatus, Smets, SupplierChange, User, UserStatus

ECS02, ECS03, GCS02 = 0x001A, 0x001B, 0x006C
OTHER_EUI = "90B3D51F30010099"
PREPAYMENT = UpdatePaymentMode(
    mode="prepayment",
    prepayment=PrepaymentSettings(suspend_debt_disabled=False, suspend_debt_emergency=False, disablement_threshold=0),
)


def pre_command(code: int = ECS02, *, originator: str = USER_EUI, recipient: str = DEVICE_EUI, cra: int = 0x01, signed: bool = True):
    payload = build_general_signing(
        message_code=code, originator=originator, recipient=recipient, counter=7, cra=cra,
        key=ec.generate_private_key(ec.SECP256R1()) if signed else None,
    )
    return SignedPreCommand(gbcs_payload=payload), decode_general_signing(payload)


SIGNER = "00-00-00-00-00-00-00-01"
TRUSTED = PreCommandSignature(tried=("certificate serial 9",), verified_by="certificate serial 9")


def signed_pre_command(
    code: int = ECS02, smets: Smets = Smets.SMETS2, device_type: DeviceType = DeviceType.ESME,
    signature: PreCommandSignature | None = TRUSTED, signers: tuple = (PreCommandSigner(eui=SIGNER),), **kw,
) -> Facts:
    body, header = pre_command(code, **kw)
    facts = with_request(allowed_facts(), cv=5, body=body)
    device = Device(id=DEVICE_EUI, type=device_type, smets=smets, supplier=FAILED)
    policy = facts.policy.model_copy(update={"pre_command_signers": signers})
    return replace(facts, gbcs=header, device=device, policy=policy, gbcs_signature=signature)


def cancellation(allowed: bool) -> Facts:
    facts = with_request(allowed_facts(), body=UpdatePaymentMode(mode="credit", execution_date_time="3000-12-31T00:00:00Z"))
    return replace(facts, policy=facts.policy.model_copy(update={"allow_cancellation": allowed}))


def instruction(**changes) -> Instruction:
    base = dict(reference="OFGEM-1", failed_supplier=FAILED, solr_party="SOLR-1", effective_from=NOW - timedelta(days=1))
    return Instruction(**{**base, **changes})


def adt(thresholds: dict) -> tuple:
    return (adt_file(thresholds),)


def data_limited(threshold: int, smets: Smets = Smets.SMETS1) -> Facts:
    """A switch carrying DisablementThreshold ``threshold``, under SRV 1.6 bounded to 0..500."""
    facts = with_request(allowed_facts(), body=UpdatePaymentMode(mode="prepayment", prepayment=PrepaymentSettings(
        suspend_debt_disabled=False, suspend_debt_emergency=False, disablement_threshold=threshold)))
    srv = facts.policy.srvs["1.6"].model_copy(update={"smets1_data_value_limits": {"DisablementThreshold": ValueLimit(min=0, max=500)}})
    policy = facts.policy.model_copy(update={"srvs": {**facts.policy.srvs, "1.6": srv}})
    return replace(facts, policy=policy, device=facts.device.model_copy(update={"smets": smets}))


def moved(hours: int, supplier: str = SOLR) -> tuple[SupplierChange, ...]:
    """The Device's Supplier changes to ``supplier`` ``hours`` from NOW."""
    return (SupplierChange(device=DEVICE_EUI, effective_from=NOW + timedelta(hours=hours), supplier=supplier),)


# (rule id, what changes, facts, expected result, expected DUIS code, words in the message)
CASES = [
    ("R1.originator-is-signer", "another certificate signed it", allowed_facts(signer=signer(OTHER_EUI)), "fail", "E1", "is not the signer"),
    ("R1.known-user", "unknown originator", allowed_facts(user=None), "fail", "E1", "is not a known User"),
    ("R1.user-role", "a role no policy governs", allowed_facts(policy=None), "fail", "E1", "is not a role this engine authorises"),
    ("R1.user-role", "needs a User", allowed_facts(user=None), "skip", None, "unknown User"),
    ("R1.user-status", "suspended User", allowed_facts(user=User(id=USER_EUI, party="SOLR-1", role="SC", status=UserStatus.SUSPENDED)), "fail", "E3", "suspended"),
    ("R2.no-digital-signing-certificate", "a Digital Signing certificate is held", allowed_facts(signing_certificates=("77",)), "fail", "E1", "MP134B forbids them"),
    ("R3.srv-allowed", "SRV 1.5", with_request(allowed_facts(), srv="1.5"), "fail", "E2", "is not allowed"),
    ("R3.srv-consistent", "variant of another reference", with_request(allowed_facts(), srv="1.6", service_reference="1.5"), "fail", "E12", "does not belong"),
    ("R3.command-variant", "CV 1", with_request(allowed_facts(), cv=1), "fail", "E12", "Command Variant 1 is not allowed"),
    ("R3.body-matches-srv", "another SRV's body", with_request(allowed_facts(), body=OtherBody(element="ReadInstantaneousImportRegisters")), "fail", "E12", "needs a UpdatePaymentMode body"),
    ("R3.body-matches-srv", "needs an allowed SRV", with_request(allowed_facts(), srv="1.5"), "skip", None, "SRV not allowed"),
    ("R6.device-known", "unknown Device", allowed_facts(device=None), "fail", "E19", "does not exist"),
    ("R6.instruction-active", "no instruction", allowed_facts(instructions=()), "fail", "E3", "is active"),
    ("R6.instruction-active", "instruction suspended", allowed_facts(instructions=(instruction(status=InstructionStatus.SUSPENDED),)), "fail", "E3", "is active"),
    ("R6.instruction-active", "instruction ended before now", allowed_facts(instructions=(instruction(effective_until=NOW - timedelta(hours=1)),)), "fail", "E3", "is active"),
    ("R6.device-of-failed-supplier", "another Supplier's meter", allowed_facts(device=Device(id=DEVICE_EUI, type=DeviceType.ESME, smets=Smets.SMETS1, supplier="OTHER")), "fail", "E4", "not to the failed Supplier"),
    ("R6.device-of-failed-supplier", "outside the scope", allowed_facts(instructions=(instruction(scope=["00DB1234567890A1"]),)), "fail", "E4", "not in the scope"),
    ("R6.no-cancellation", "the DUIS cancellation date", cancellation(False), "fail", "E4", "does not allow cancellations"),
    ("R6.no-cancellation", "a policy that allows cancellations", cancellation(True), "pass", None, "allows cancellations"),
    ("R6.execution-window", "an allowed cancellation executes nothing", cancellation(True), "pass", None, "executes nothing"),
    ("R6.device-of-failed-supplier", "the identifiers already moved to the SoLR", allowed_facts(supplier_history=moved(-1)), "fail", "E4", "Supplier is now SOLR-1"),
    ("R6.device-of-failed-supplier", "a delayed move, not yet happened", allowed_facts(supplier_history=moved(24)), "pass", None, "failed Supplier FAILED-ENERGY"),
    ("R6.device-of-failed-supplier", "future dated past a scheduled move", with_request(allowed_facts(supplier_history=moved(24)), body=UpdatePaymentMode(mode="credit", execution_date_time=NOW + timedelta(days=2))), "fail", "E4", "moves to Supplier SOLR-1"),
    ("R6.device-of-failed-supplier", "future dated before a scheduled move", with_request(allowed_facts(supplier_history=moved(72)), body=UpdatePaymentMode(mode="credit", execution_date_time=NOW + timedelta(days=2))), "pass", None, "failed Supplier"),
    ("R6.device-of-failed-supplier", "moved back to the failed Supplier", allowed_facts(supplier_history=moved(-2) + moved(-1, FAILED)), "pass", None, "failed Supplier"),
    ("R4.adt-covers-supplier", "the identifiers already moved to the SoLR", allowed_facts(supplier_history=moved(-1)), "fail", "E4", "Devices of Supplier SOLR-1"),
    ("R4.smets1-data-values", "a SMETS1 value over its limit", data_limited(900), "delete", "AD1", "deleted"),
    ("R4.smets1-data-values", "a SMETS1 value within its limits", data_limited(500), "pass", None, "within limits"),
    ("R4.smets1-data-values", "a SMETS2 Device is not limited", data_limited(900, Smets.SMETS2), "pass", None, "SMETS1 Devices only"),
    ("R6.execution-window", "future date after the window", replace(with_request(allowed_facts(), body=UpdatePaymentMode(mode="credit", execution_date_time=NOW + timedelta(days=3))), instructions=(instruction(effective_until=NOW + timedelta(days=1)),)), "fail", "E4", "outside the window"),
    ("R5.device-type", "a communications hub", allowed_facts(device=Device(id=DEVICE_EUI, type=DeviceType.COMMS_HUB, smets=Smets.SMETS1, supplier=FAILED)), "fail", "E11", "may address only ESME, GSME"),
    ("R5.gbcs-fits-device", "ECS02 (electricity) to a gas meter", signed_pre_command(ECS02, device_type=DeviceType.GSME), "fail", "E11", "is a command for a ESME, but Device"),
    ("R5.gbcs-fits-device", "GCS02 (gas) to an electricity meter", signed_pre_command(GCS02, device_type=DeviceType.ESME), "fail", "E11", "is a command for a GSME"),
    ("R5.gbcs-fits-device", "GCS02 to a gas meter", signed_pre_command(GCS02, device_type=DeviceType.GSME), "pass", None, "as the Device is"),
    ("R5.payment-mode", "to Prepayment", with_request(allowed_facts(), body=PREPAYMENT), "fail", "E12", "only Credit is allowed"),
    ("R5.smets1-service-request", "Pre-Command to SMETS1", signed_pre_command(smets=Smets.SMETS1), "fail", "E12", "SMETS1 Devices"),
    ("R5.gbcs-message-code", "ECS03 (to Prepayment)", signed_pre_command(ECS03), "fail", "E12", "only 0x001A, 0x006C"),
    ("R5.gbcs-message-code", "unreadable payload", replace(signed_pre_command(), gbcs=GbcsError("tag is 0000, expected DF09", 0)), "fail", "E12", "cannot be read"),
    ("R5.gbcs-recipient", "addressed to another Device", signed_pre_command(recipient="00DB1234567890A1"), "fail", "E12", "not to the request's Device"),
    ("R5.gbcs-recipient", "not checked when unreadable", replace(signed_pre_command(), gbcs=GbcsError("bad", 3)), "skip", None, "unreadable"),
    ("R5.gbcs-command", "a response, not a command", signed_pre_command(cra=0x02), "fail", "E12", "not command"),
    ("R5.gbcs-originator", "made for another User", signed_pre_command(originator=OTHER_EUI), "fail", "E12", "not for the requesting User"),
    ("R5.gbcs-signed", "unsigned", signed_pre_command(signed=False, signature=None), "fail", "E12", "carries no signature"),
    ("R5.gbcs-signed", "the shipped policy trusts no signer", signed_pre_command(signers=()), "fail", "E12", "names no trusted Pre-Command signer"),
    ("R5.gbcs-signed", "no certificate of the trusted signer", signed_pre_command(signature=PreCommandSignature((), None)), "fail", "E12", "no In use Digital Signing certificate"),
    ("R5.gbcs-signed", "a signature that does not verify", signed_pre_command(signature=PreCommandSignature(("certificate serial 9",), None)), "fail", "E12", "does not verify"),
    ("R5.gbcs-counter-fresh", "a stale GBCS counter in a fresh request", replace(signed_pre_command(), last_gbcs_counter=7), "fail", "E12", "not above 7"),
    ("R5.gbcs-counter-fresh", "a newer GBCS counter", replace(signed_pre_command(), last_gbcs_counter=6), "pass", None, "is new"),
    ("R4.adt-covers-supplier", "no ADT file for the Supplier", allowed_facts(adt_files=()), "fail", "E4", "no current ADT file"),
    ("R4.adt-threshold", "hourly threshold reached", allowed_facts(adt_files=adt({"1.6": {"per_hour": 2}}), adt_usage={"hour": 2, "day": 2}), "hold", "AD1", "quarantined"),
    ("R4.adt-threshold", "daily threshold reached", allowed_facts(adt_files=adt({"1.6": {"per_hour": 50, "per_day": 5}}), adt_usage={"hour": 1, "day": 5}), "hold", "AD1", "per day"),
    ("R4.adt-threshold", "released from quarantine", allowed_facts(adt_files=adt({"1.6": {"per_hour": 2}}), adt_usage={"hour": 9, "day": 9}, release=Release(3, "aro-ann")), "pass", None, "released"),
    ("R6.counter-fresh", "a replayed counter", allowed_facts(last_counter=1), "fail", None, "replay"),
    ("R6.counter-fresh", "an older counter", allowed_facts(last_counter=5), "fail", None, "not above 5"),
]


def result_of(outcome) -> str:
    if outcome.passed:
        return "pass"
    return "skip" if outcome.skipped else ("hold" if outcome.quarantine else ("delete" if outcome.delete else "fail"))


@pytest.mark.parametrize("rule_id, change, facts, expected, code, words", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_rule(rule_id, change, facts, expected, code, words):
    outcome = RULES_BY_ID[rule_id](facts)
    assert outcome.rule == rule_id
    assert result_of(outcome) == expected, outcome.message
    assert outcome.code == code
    assert words in outcome.message


def test_the_baseline_passes_every_rule():
    """So that each row above fails for the one thing it changes."""
    outcomes = evaluate(allowed_facts())
    assert [o.rule for o in outcomes if not o.passed] == []
    assert all(o.passed for o in evaluate(signed_pre_command()))


def test_every_rule_has_a_refusing_row():
    refused = {rule_id for rule_id, _, _, expected, _, _ in CASES if expected in ("fail", "hold", "delete")}
    assert refused == {r.id for r in RULES}


def test_every_rule_declares_its_requirement_and_a_summary():
    for rule in RULES:
        assert rule.requirement in {f"R{n}" for n in range(1, 8)} and rule.id.startswith(rule.requirement + ".")
        assert rule.summary


def test_a_rule_code_is_its_declared_code_unless_it_says_otherwise():
    # The policy-misconfiguration refusals carry no DUIS code; every other failure carries the rule's.
    for rule_id, _, facts, expected, code, _ in CASES:
        if expected == "fail" and code is not None:
            assert RULES_BY_ID[rule_id].code == code


def test_the_readme_table_is_the_rules_own_metadata():
    from pathlib import Path

    from solr_policy.rules import markdown_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n", readme.index("<!-- rules:begin")) + 1
    assert readme[start : readme.index("<!-- rules:end -->")] == markdown_table()


def test_the_rules_command_lists_every_rule():

    from click.testing import CliRunner

    from solr_policy.cli import cli

    result = CliRunner().invoke(cli, ["rules", "--json"])
    assert result.exit_code == 0
    assert [r["rule"] for r in json.loads(result.stdout)] == [r.id for r in RULES]
