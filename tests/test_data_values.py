"""SMETS1 data-value limits (issue 14): a policy bounds the values a SMETS1 Service Request
carries; a breach is deleted (outcome ``delete``), as the DCC does, never quarantined."""

from __future__ import annotations

import typing
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from solr_policy.cli.decide import DECISION_EXIT
from solr_policy.decision import Decision, from_outcomes
from solr_policy.duis.models import PrepaymentSettings, UpdatePaymentMode
from solr_policy.engine import Engine
from solr_policy.policy import PolicySet, ValueLimit
from solr_policy.rules import RULES_BY_ID
from solr_policy.rules.base import Outcome
from solr_policy.testing.facts import allowed_facts, with_request
from solr_policy.testing.scenario import SOLR_POLICY_FILE, SolrScenario
from solr_policy.world import Smets
from solr_policy.yamlio import DataFileError

RULE = RULES_BY_ID["R4.smets1-data-values"]
NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)


def limited(facts, limits: dict):
    """``facts`` under the shipped SoLR policy with SRV 1.6 bounded by ``limits``."""
    policy = facts.policy
    srv = policy.srvs["1.6"].model_copy(update={"smets1_data_value_limits": {k: ValueLimit(**v) for k, v in limits.items()}})
    return replace(facts, policy=policy.model_copy(update={"srvs": {**policy.srvs, "1.6": srv}}))


def prepayment(threshold: int) -> UpdatePaymentMode:
    return UpdatePaymentMode(mode="prepayment", prepayment=PrepaymentSettings(suspend_debt_disabled=False, suspend_debt_emergency=False, disablement_threshold=threshold))


def facts(threshold: int, limits: dict, smets: Smets = Smets.SMETS1):
    base = limited(allowed_facts(), limits)
    return replace(with_request(base, body=prepayment(threshold)), device=base.device.model_copy(update={"smets": smets}))


@pytest.mark.parametrize("threshold, limits, smets, status", [
    (900, {"DisablementThreshold": {"max": 500}}, Smets.SMETS1, "delete"),
    (-5, {"DisablementThreshold": {"min": 0}}, Smets.SMETS1, "delete"),
    (500, {"DisablementThreshold": {"min": 0, "max": 500}}, Smets.SMETS1, "pass"),
    (900, {"DisablementThreshold": {"max": 500}}, Smets.SMETS2, "pass"),
])
def test_the_rule_deletes_a_smets1_value_outside_its_limits(threshold, limits, smets, status):
    outcome = RULE(facts(threshold, limits, smets))
    assert ("pass" if outcome.passed else "delete" if outcome.delete else "other") == status, outcome
    if status == "delete":
        assert outcome.code == "AD1" and f"DisablementThreshold {threshold}" in outcome.message and not outcome.quarantine


def test_a_credit_switch_carries_no_value_and_passes():
    assert RULE(limited(allowed_facts(), {"DisablementThreshold": {"max": 1}})).passed


def test_delete_beats_a_hold_and_a_refusal_beats_delete():
    deleted = Outcome("R4.smets1-data-values", False, "outside", "AD1", delete=True)
    held = Outcome("R4.adt-threshold", False, "over", "AD1", quarantine=True)
    refused = Outcome("R5.payment-mode", False, "prepayment", "E12")
    about = {"decided_at": NOW}
    only = from_outcomes([Outcome("x", True, "ok"), deleted, held], **about)
    assert (only.outcome, only.response_code, [r.rule for r in only.reasons]) == ("delete", "AD1", ["R4.smets1-data-values"])
    assert [c.result for c in only.checks] == ["pass", "delete", "hold"]
    assert from_outcomes([deleted, refused], **about).outcome == "reject"


def test_every_outcome_has_an_exit_code():
    outcomes = typing.get_args(Decision.model_fields["outcome"].annotation)
    assert set(DECISION_EXIT) == set(outcomes) and DECISION_EXIT["delete"] == DECISION_EXIT["reject"]


@pytest.mark.parametrize("limits, says", [
    ({"Credit": {"max": 1}}, "Credit is not a data value of UpdatePaymentMode (it carries: DisablementThreshold)"),
    ({"DisablementThreshold": {"min": 5, "max": 1}}, "min 5 is above max 1"),
    ({"DisablementThreshold": {}}, "give min, max or both"),
])
def test_a_policy_naming_a_value_the_srv_does_not_carry_is_refused(tmp_path, limits, says):
    folder = SolrScenario().write_policies(tmp_path / "policies")
    path = folder / SOLR_POLICY_FILE
    data = yaml.safe_load(path.read_text())
    data["srvs"]["1.6"]["smets1_data_value_limits"] = limits
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(DataFileError) as info:
        PolicySet.load_dir(folder)
    assert says in str(info.value) and "line" in str(info.value)


def test_in_the_engine_a_deleted_request_takes_no_counter_and_is_logged(store, tmp_path: Path):
    s = SolrScenario().install(store, now=NOW)
    folder = s.write_policies(tmp_path / "policies")
    path = folder / SOLR_POLICY_FILE
    data = yaml.safe_load(path.read_text())
    # A role allowed to switch to prepayment (not MP134B's), to reach a value that can breach.
    data["srvs"]["1.6"]["content"]["payment_mode"] = "prepayment"
    data["srvs"]["1.6"]["smets1_data_value_limits"] = {"DisablementThreshold": {"min": 100}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    engine = Engine(store, PolicySet.load_dir(folder))
    requests = s.requests()
    deleted = engine.decide(requests.switch_to_prepayment(s.device("electricity meter (SMETS1)")), now=NOW)
    assert deleted.outcome == "delete" and deleted.response_code == "AD1" and deleted.quarantine_id is None
    assert store.get_counter(s.user_eui) is None and store.list_quarantine() == []
    (entry,) = store.audit_entries(kind="decision")
    assert entry.payload_data()["outcome"] == "delete"
    smets2 = engine.decide(requests.switch_to_prepayment(s.device("electricity meter (SMETS2)")), now=NOW)
    assert smets2.allowed, smets2.reasons
