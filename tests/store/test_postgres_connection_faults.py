"""A PostgreSQL connection lost in a decision's transaction: before COMMIT the decision is
refused (nothing written) and the node goes on with a new connection; lost while COMMIT is
answered (the server committed, the node never heard) the decision is the one committed,
not a refusal the log contradicts."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from solr_policy.engine import Engine
from solr_policy.engine.overlay import Overlay
from solr_policy.policy import PolicySet
from solr_policy.store import open_store
from solr_policy.store.postgres import PostgresStore
from solr_policy.testing.scenario import SolrScenario

from . import pg

pytestmark = pytest.mark.postgres

POLICIES = Path(__file__).resolve().parents[2] / "policies"
NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)


@pytest.fixture()
def node(tmp_path, pki):
    store = open_store(pg.store_url(tmp_path))
    scenario = SolrScenario(pki=pki).install(store, now=NOW)
    ask = scenario.requests(counter=10)
    meter = scenario.device("electricity meter (SMETS1)")
    yield store, lambda: ask.switch_to_credit(meter)
    store.close()
    pg.give_back(tmp_path)


def _cut(store: PostgresStore) -> None:
    """The server ends the connection of this thread's transaction (a restart, a network cut)."""
    pg.admin("SELECT pg_terminate_backend(?)", (store._local.conn.info.backend_pid,))


def _entries_of(store, decision_id: str) -> list[dict]:
    return [e.payload_data() for e in store.audit_entries(kind="decision") if e.payload_data().get("decision_id") == decision_id]


@pytest.mark.parametrize("group", [False, True], ids=["alone", "group-commit"])
def test_a_connection_cut_before_commit_refuses_nothing_written_and_the_node_goes_on(node, monkeypatch, group):
    store, request = node
    engine = Engine(store, PolicySet.load_dir(POLICIES), group_commit=group)
    try:
        flush = Overlay.flush
        cut: list[bool] = []

        def cut_then_flush(self):
            if not cut:
                cut.append(True)
                _cut(store)
            return flush(self)

        monkeypatch.setattr(Overlay, "flush", cut_then_flush)
        raw = request()
        first = engine.decide(raw, now=NOW)
        monkeypatch.undo()
        if group:  # the group was rolled back and its request decided alone, on a new connection
            assert first.outcome == "allow", first.reasons
        else:
            assert first.outcome == "reject" and first.reasons[0].rule == "store.unavailable"
            assert [e["outcome"] for e in _entries_of(store, first.decision_id)] == ["reject"]  # the refusal, logged
            assert engine.decide(raw, now=NOW).outcome == "allow"  # nothing was taken: sent again, allowed
        assert store.verify_audit().intact
    finally:
        engine.close()


@pytest.mark.parametrize("group", [False, True], ids=["alone", "group-commit"])
def test_a_connection_lost_while_commit_is_answered_gives_the_committed_decision(node, monkeypatch, group):
    store, request = node
    engine = Engine(store, PolicySet.load_dir(POLICIES), group_commit=group)
    try:
        execute = psycopg.Connection.execute
        lost: list[bool] = []

        def commit_then_lose_the_answer(self, query, *args, **kwargs):
            result = execute(self, query, *args, **kwargs)
            if query == "COMMIT" and not lost:
                lost.append(True)
                pg.admin("SELECT pg_terminate_backend(?)", (self.info.backend_pid,))
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return result

        monkeypatch.setattr(psycopg.Connection, "execute", commit_then_lose_the_answer)
        decision = engine.decide(request(), now=NOW)
        monkeypatch.undo()
        assert lost
        logged = _entries_of(store, decision.decision_id)
        assert [e["outcome"] for e in logged] == ["allow"], logged  # once, as committed
        assert decision.outcome == "allow", decision.reasons  # the answer is what the log says
        assert decision.log_position is not None
        assert store.verify_audit().intact
    finally:
        engine.close()
