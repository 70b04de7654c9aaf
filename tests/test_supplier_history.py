"""A Device's responsible Supplier as a history (issue 14): loaded from the world file, and
decided on at the decision time and at a future-dated request's execution time (R4, R6)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from solr_policy.engine import Engine
from solr_policy.policy import PolicySet, default_policy_dir
from solr_policy.testing.scenario import SolrScenario
from solr_policy.world import SupplierChange
from solr_policy.world_file import load_world
from solr_policy.yamlio import DataFileError

NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)
E1 = "electricity meter (SMETS1)"

WORLD = """\
parties: [{id: FAILED}, {id: SOLR}]
devices:
  - id: 00-DB-12-34-56-78-90-A0
    type: ESME
    smets: SMETS1
    supplier: FAILED
    supplier_history:
{history}
"""


def load(tmp_path: Path, store, history: str):
    path = tmp_path / "world.yaml"
    path.write_text(WORLD.replace("{history}", history))
    return load_world(path, store)


def test_the_world_file_loads_a_history_and_a_second_load_replaces_it(tmp_path, store):
    load(tmp_path, store, '      - {supplier: SOLR, from: "2026-11-20T00:00:00Z"}\n      - {supplier: FAILED, from: "2026-12-01T00:00:00+01:00"}')
    assert [(c.supplier, c.effective_from.isoformat()) for c in store.supplier_history("00DB1234567890A0")] == [
        ("SOLR", "2026-11-20T00:00:00+00:00"), ("FAILED", "2026-11-30T23:00:00+00:00")]
    load(tmp_path, store, "      []")
    assert store.supplier_history("00DB1234567890A0") == []


@pytest.mark.parametrize("history, says", [
    ('      - {supplier: NOBODY, from: "2026-11-20T00:00:00Z"}', "line 8, field devices.0.supplier_history.0.supplier: unknown Party 'NOBODY'"),
    ('      - {supplier: SOLR, from: "2026-11-20T00:00:00"}', "time zone"),
    ('      - {supplier: SOLR, from: "2026-11-21T00:00:00Z"}\n      - {supplier: FAILED, from: "2026-11-20T00:00:00Z"}', "time order"),
    ('      - {supplier: SOLR, when: "2026-11-21T00:00:00Z"}', "when"),
])
def test_a_bad_history_writes_nothing_and_names_the_line(tmp_path, store, history, says):
    with pytest.raises(DataFileError) as info:
        load(tmp_path, store, history)
    assert says in str(info.value) and "world.yaml" in str(info.value)
    assert store.get_device("00DB1234567890A0") is None and store.supplier_history("00DB1234567890A0") == []


@pytest.fixture()
def event(store):
    s = SolrScenario().install(store, now=NOW)
    return s, Engine(store, PolicySet.load_dir(default_policy_dir()))


def move(store, s: SolrScenario, at: datetime) -> None:
    store.put_supplier_history(s.device(E1), [SupplierChange(device=s.device(E1), effective_from=at, supplier=s.solr_party)])


def test_a_meter_already_moved_to_the_solr_is_refused_naming_its_supplier_now(store, event):
    s, engine = event
    move(store, s, NOW - timedelta(hours=2))
    decision = engine.decide(s.requests().switch_to_credit(s.device(E1)), now=NOW)
    assert decision.outcome == "reject" and decision.response_code == "E4"
    reason = next(r for r in decision.reasons if r.rule == "R6.device-of-failed-supplier")
    assert f"Supplier is now {s.solr_party}" in reason.message


def test_a_delayed_move_allows_requests_until_it_happens(store, event):
    s, engine = event
    move(store, s, NOW + timedelta(hours=1))
    requests = s.requests()
    assert engine.decide(requests.switch_to_credit(s.device(E1)), now=NOW).allowed
    later = engine.decide(requests.switch_to_credit(s.device(E1)), now=NOW + timedelta(hours=1))
    assert later.outcome == "reject" and "R6.device-of-failed-supplier" in [r.rule for r in later.reasons]


def test_a_future_dated_request_executing_after_the_move_is_refused(store, event):
    s, engine = event
    move(store, s, NOW + timedelta(days=1))
    requests = s.requests()
    after = engine.decide(requests.switch_to_credit(s.device(E1), execution=NOW + timedelta(days=2)), now=NOW)
    assert after.outcome == "reject"
    assert any("moves to Supplier" in r.message for r in after.reasons)
    before = engine.decide(requests.switch_to_credit(s.device(E1), execution=NOW + timedelta(hours=12)), now=NOW)
    assert before.allowed, before.reasons
