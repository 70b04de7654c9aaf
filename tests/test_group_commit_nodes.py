"""Group commit on several PostgreSQL nodes: two nodes deciding groups of the same Users'
requests at once wait for each other; they never deadlock (a deadlock costs PostgreSQL's
``deadlock_timeout`` and rolls a group back, to be decided again one request at a time)."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from solr_policy.engine import Engine
from solr_policy.policy import PolicySet
from solr_policy.store import open_store
from solr_policy.testing.scenario import SolrScenario

from store import pg

POLICIES = Path(__file__).resolve().parents[1] / "policies"
NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)


@pytest.mark.postgres
def test_two_nodes_deciding_the_same_users_in_opposite_orders_do_not_deadlock(tmp_path, pki, monkeypatch):
    pg.require_server()
    url = pg.store_url(tmp_path)
    node_a, node_b = open_store(url), open_store(url)
    try:
        first = SolrScenario(pki=pki).install(node_a, now=NOW)
        second = SolrScenario(pki=pki, user_eui="90B3D51F300F0002", adt_reference="ADT-SOLR-2026-002")
        second.officer_keys = first.officer_keys
        second.install(node_a, now=NOW)
        gas = first.device("gas meter (SMETS1)")
        a, b = first.requests(counter=100), second.requests(counter=500)
        a1, a2, b1, b2 = a.switch_to_credit(gas), a.switch_to_credit(gas), b.switch_to_credit(gas), b.switch_to_credit(gas)
        engine_a = Engine(node_a, PolicySet.load_dir(POLICIES))
        engine_b = Engine(node_b, PolicySet.load_dir(POLICIES))
        group_a = [engine_a.prepare(raw, NOW) for raw in (a1, b1)]  # first User, then the second
        group_b = [engine_b.prepare(raw, NOW) for raw in (b2, a2)]  # the other way round

        # Node B decides its group while node A is in the middle of its own (after its first
        # decision, holding what that took); node B gets two seconds to finish.
        decided_b: list = []
        other = threading.Thread(target=lambda: decided_b.extend(engine_b.decide_group(group_b)), daemon=True)
        decide_in_tx = Engine._decide_in_tx

        def interleaved(engine, pending, **kwargs):
            decision = decide_in_tx(engine, pending, **kwargs)
            if engine is engine_a and not other.is_alive() and not decided_b:
                other.start()
                other.join(timeout=2.0)
            return decision

        alone: list[str] = []
        run_admitted = Engine._run_admitted

        def decided_alone(engine, pending, **kwargs):
            alone.append(pending.decision_id)  # a group rolled back (a deadlock) is decided one by one
            return run_admitted(engine, pending, **kwargs)

        monkeypatch.setattr(Engine, "_decide_in_tx", interleaved)
        monkeypatch.setattr(Engine, "_run_admitted", decided_alone)
        decided_a = engine_a.decide_group(group_a)
        other.join(timeout=30)
        assert not other.is_alive()
        assert alone == []  # neither group was rolled back
        # Node A went first (node B waited for it), so every counter rose: all four allowed.
        assert [d.outcome for d in decided_a + decided_b] == ["allow"] * 4, [d.reasons for d in decided_a + decided_b]
    finally:
        node_a.close()
        node_b.close()
        pg.give_back(tmp_path)
