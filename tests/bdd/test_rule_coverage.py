"""Every rule a decision can refuse by, and every DUIS code those rules give, is exercised by
a scenario SECAS can read: a Then step of a feature whose words (REASONS, OUTCOMES in
conftest.py) make that step assert the rule and its code on the decision.

Read from the feature files with pytest-bdd's own parser, each Scenario Outline once per
example row; the steps' assertions themselves run in test_features.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from pytest_bdd.feature import get_features

from solr_policy.rules import RULES

from .conftest import OUTCOMES, REASONS, Expected

FEATURES = Path(__file__).resolve().parents[2] / "features"

# The two Then steps that check a decision's refusal against REASONS (conftest.refused).
REFUSAL = re.compile(r"^(?:the request|a request from the .+ to switch .+ to credit) is refused because (?P<reason>.+)$")


def _then_steps():
    """(feature file, scenario name, Then step text), outline rows rendered."""
    for feature in get_features([str(FEATURES)]):
        for scenario in feature.scenarios.values():
            contexts = [ctx for examples in scenario.examples for ctx in examples.as_contexts()] or [{}]
            for context in contexts:
                for step in scenario.render(context).steps:
                    if step.type == "then":
                        yield Path(feature.filename).name, scenario.name, step.name


def _checked() -> dict[str, list[tuple[Expected, str]]]:
    """rule id -> what the scenarios checking it expect, and where ("file: scenario")."""
    checked: dict[str, list[tuple[Expected, str]]] = {}
    for filename, scenario, text in _then_steps():
        match = REFUSAL.match(text)
        expected = REASONS.get(match["reason"]) if match else OUTCOMES.get(text)
        if expected is not None:
            checked.setdefault(expected.rule, []).append((expected, f"{filename}: {scenario}"))
    return checked


def test_every_rule_has_a_scenario_that_checks_it():
    checked = _checked()
    missing = [rule.id for rule in RULES if rule.id not in checked]
    assert not missing, f"rules no scenario checks (add one, and its words to REASONS in conftest.py): {missing}"


def test_every_duis_code_the_rules_give_is_checked_by_a_scenario_of_that_rule():
    checked = _checked()
    for rule in RULES:
        codes = {expected.code for expected, _ in checked.get(rule.id, [])}
        assert rule.code is None or rule.code in codes, f"{rule.id} gives {rule.code}; its scenarios check {codes or 'nothing'}"


def test_the_coverage_reader_finds_the_scenarios_it_should():
    # The reader above must see a refusal, an outline row and a Then-And step, or it proves nothing.
    checked = _checked()
    assert any("A user the DCC does not know is refused" in where for _, where in checked["R1.known-user"])
    assert any("not on the list" in where for _, where in checked["R3.srv-allowed"])  # a Scenario Outline
    assert any("An ADT file changed after it was signed" in where for _, where in checked["R4.adt-covers-supplier"])  # "And a request ..."
