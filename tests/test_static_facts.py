"""The engine keeps static world facts between decisions, and sees any change to them at the
next decision: made through its own store, by another node (another store on the same
database), inside a batch between two groups; the store's generation moves in the same
transaction as the change and only then."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from solr_policy.engine import Engine
from solr_policy.policy import PolicySet
from solr_policy.store import open_store
from solr_policy.testing.scenario import SolrScenario
from solr_policy.world import InstructionStatus, User, UserStatus


POLICIES = Path(__file__).resolve().parents[1] / "policies"
NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)


def _rules(decision) -> list[str]:
    return [r.rule for r in decision.reasons]


@pytest.fixture()
def installed(db, pki):
    """A store with the scenario, a request builder and an engine on it."""
    store = open_store(db)
    scenario = SolrScenario(pki=pki).install(store, now=NOW)
    yield store, scenario, scenario.requests(counter=10), Engine(store, PolicySet.load_dir(POLICIES))
    store.close()


def test_a_change_by_another_node_is_seen_by_the_next_decision(db, pki):
    node_a, node_b = open_store(db), open_store(db)
    try:
        scenario = SolrScenario(pki=pki).install(node_a, now=NOW)
        ask = scenario.requests(counter=10)
        meter = scenario.device("electricity meter (SMETS1)")
        engine = Engine(node_a, PolicySet.load_dir(POLICIES))
        assert engine.decide(ask.switch_to_credit(meter), now=NOW).outcome == "allow"
        assert engine.decide(ask.switch_to_credit(meter), now=NOW).outcome == "allow"  # from the cache

        before = node_a.world_generation()
        node_b.put_user(User(id=scenario.user_eui, party=scenario.solr_party, role="SC", status=UserStatus.SUSPENDED))
        assert node_a.world_generation() != before
        refused = engine.decide(ask.switch_to_credit(meter), now=NOW)
        assert refused.outcome == "reject" and "R1.user-status" in _rules(refused)

        node_b.put_user(User(id=scenario.user_eui, party=scenario.solr_party, role="SC"))
        assert engine.decide(ask.switch_to_credit(meter), now=NOW).outcome == "allow"
        node_b.put_instruction(scenario.instruction(NOW, status=InstructionStatus.ENDED))
        ended = engine.decide(ask.switch_to_credit(meter), now=NOW)
        assert ended.outcome == "reject" and "R6.instruction-active" in _rules(ended)
    finally:
        node_a.close()
        node_b.close()


def test_decisions_and_rolled_back_changes_do_not_move_the_generation(installed):
    store, scenario, ask, engine = installed
    generation = store.world_generation()
    engine.decide(ask.switch_to_credit(scenario.device("gas meter (SMETS1)")), now=NOW)
    assert store.world_generation() == generation  # counters, usage and the log are not static facts
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put_user(User(id=scenario.user_eui, party=scenario.solr_party, role="SC", status=UserStatus.WITHDRAWN))
            raise RuntimeError("rolled back")
    assert store.world_generation() == generation


def test_a_change_between_groups_of_a_batch_is_seen(installed):
    store, scenario, ask, engine = installed
    meter = scenario.device("electricity meter (SMETS1)")
    raws = [ask.switch_to_credit(meter) for _ in range(6)]
    outcomes = []
    for n, decision in enumerate(engine.decide_many(raws, now=NOW, batch=2, workers=1)):
        outcomes.append(decision.outcome)
        if n == 1:
            # Groups 1 and 2 were admitted; group 2 is decided after this change.
            store.put_user(User(id=scenario.user_eui, party=scenario.solr_party, role="SC", status=UserStatus.SUSPENDED))
    assert outcomes == ["allow", "allow", "reject", "reject", "reject", "reject"]
