"""Group commit decides exactly as one transaction per decision does: same outcomes, reasons,
counters, ADT usage, quarantine and audit entries, on a sequence with replays, quarantines,
input refusals and two originators. And concurrent callers sharing transactions add up."""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solr_policy.engine import Engine
from solr_policy.engine.authorize import Effects
from solr_policy import decision as decision_module
from solr_policy.decision import Decision, Reason
from solr_policy.engine.commit import _reason_text, audit_payload
from solr_policy.errors import StoreUnavailable
from solr_policy.policy import PolicySet
from solr_policy.store import SqliteStore
from solr_policy.store.audit_chain import canonical_payload
from solr_policy.testing.gbcs import build_general_signing
from solr_policy.testing.scenario import GCS02_CREDIT, SolrScenario

POLICIES = Path(__file__).resolve().parents[1] / "policies"
NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)


@pytest.fixture()
def world(tmp_path, pki):
    """One store with two SoLR Users, copied so that each way of deciding starts from the same bytes."""
    path = tmp_path / "seed.db"
    store = SqliteStore(path)
    first = SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": 6, "per_day": 1000}}).install(store, now=NOW)
    second = SolrScenario(pki=pki, user_eui="90B3D51F300F0002", adt_reference="ADT-SOLR-2026-002",
                          thresholds={"1.6": {"per_hour": 4, "per_day": 1000}})
    second.officer_keys = first.officer_keys
    second.install(store, now=NOW)
    store.close()
    return path, first, second


def _sequence(first: SolrScenario, second: SolrScenario) -> list[bytes]:
    a, b = first.requests(counter=100), second.requests(counter=500)
    elec, gas = first.device("electricity meter (SMETS1)"), first.device("gas meter (SMETS1)")
    other = first.device("other Supplier's electricity meter")
    raws: list[bytes] = []
    for n in range(14):
        raws.append(a.switch_to_credit(elec if n % 2 else gas))
        if n % 3 == 0:
            raws.append(b.switch_to_credit(gas))
        if n % 4 == 1:
            raws.append(raws[-2])  # a replay of a request already decided
        if n == 5:
            raws.append(a.switch_to_prepayment(elec))
            raws.append(b"<not xml")
            raws.append(raws[0].replace(b"<sr:Credit/>", b"<sr:Credit />"))  # altered after signing
        if n == 7:
            raws.append(a.switch_to_credit(other))
            raws.append(b.switch_to_credit(elec, counter=400))  # below b's last counter
    return raws


def _fingerprint(path: Path, decisions) -> dict:
    store = SqliteStore(path)
    try:
        entries = store.audit_entries()
        audit = []
        for entry in entries:
            payload = entry.payload_data()
            # Each payload is the canonical text of what it says (a decision's is made of its
            # reasons' kept texts: the same text).
            assert entry.payload == canonical_payload(payload)
            payload.pop("decision_id", None)
            audit.append((entry.seq, entry.kind, entry.originator, entry.device, entry.counter, payload))
        return {
            "decisions": [
                (d.outcome, d.response_code, [r.rule for r in d.reasons], d.quarantine_id, (d.request or {}).get("counter"))
                for d in decisions
            ],
            "counters": [store.get_counter(u) for u in ("90B3D51F300F0001", "90B3D51F300F0002")],
            "usage": [(u.user_id, u.supplier, u.srv, u.period, u.window_start, u.count) for u in store.all_adt_usage()],
            "quarantine": [(q.id, q.originator, q.device, q.counter, q.status) for q in store.list_quarantine()],
            "audit": audit,
            "intact": store.verify_audit().intact,
        }
    finally:
        store.close()


def _decide(path: Path, raws: list[bytes], how: str):
    engine = Engine(SqliteStore(path), PolicySet.load_dir(POLICIES), group_commit=how.startswith("writer"), group_max=5)
    try:
        if how == "one by one":
            return [engine.decide(raw, now=NOW) for raw in raws]
        if how == "decide_many":
            return list(engine.decide_many(raws, now=NOW, batch=4, workers=3))
        if how == "decide_many inline":
            return list(engine.decide_many(raws, now=NOW, batch=4, workers=0))
        if how == "writer, decide_many":  # handed to the writer in chunks of 4, groups of up to 5
            return list(engine.decide_many(raws, now=NOW, batch=4))
        return [engine.decide(raw, now=NOW) for raw in raws]  # the writer, one caller
    finally:
        engine.close()
        engine.store.close()


def test_group_commit_decides_as_one_by_one(world, tmp_path):
    seed, first, second = world
    raws = _sequence(first, second)
    results = {}
    for how in ("one by one", "decide_many", "decide_many inline", "writer", "writer, decide_many"):
        path = tmp_path / f"{how.replace(' ', '_').replace(',', '')}.db"
        shutil.copy(seed, path)
        results[how] = _fingerprint(path, _decide(path, raws, how))
    expected = results["one by one"]
    outcomes = Counter(d[0] for d in expected["decisions"])
    rules = {rule for d in expected["decisions"] for rule in d[2]}
    # The sequence exercises what must come out the same: all three outcomes, replays, refusals at the boundary.
    assert outcomes["allow"] and outcomes["quarantine"] and outcomes["reject"], outcomes
    assert {"R6.counter-fresh", "R5.payment-mode", "R6.device-of-failed-supplier"} <= rules, rules
    assert any(rule.startswith("xml.") or rule.startswith("signature.") for rule in rules), rules
    assert expected["intact"]
    assert len(expected["audit"]) > len(raws)
    assert results["decide_many"] == expected
    assert results["decide_many inline"] == expected
    assert results["writer"] == expected
    assert results["writer, decide_many"] == expected


def test_a_decisions_audit_entry_says_what_its_record_says(world, tmp_path):
    """The entry's payload is the decision's record and its effects, whatever the outcome."""
    seed, first, second = world
    path = tmp_path / "records.db"
    shutil.copy(seed, path)
    engine = Engine(SqliteStore(path), PolicySet.load_dir(POLICIES))
    try:
        decided = engine.decide_group([engine.prepare(raw, NOW) for raw in _sequence(first, second)])
        entries = engine.store.audit_entries(kind="decision")[-len(decided):]
    finally:
        engine.store.close()
    assert {d.outcome for d in decided} == {"allow", "reject", "quarantine"}
    for decision, entry in zip(decided, entries, strict=True):
        # Made of kept parts, the payload is its canonical text, and its JSON string is that of the text.
        text, text_json = audit_payload(decision, Effects())
        assert text == canonical_payload(json.loads(text)) and text_json == json.dumps(text)
        payload = entry.payload_data()
        assert set(payload.pop("effects")) == {"counter", "gbcs_counter", "usage", "hold", "release"}
        assert payload == json.loads(json.dumps(decision.record(), default=str))


def test_a_fault_in_one_decision_does_not_decide_the_others(world, tmp_path, monkeypatch):
    """One decision of a group fails inside the transaction: the group is undone and each is
    decided alone, so only that one is refused (engine.internal-error), as one by one."""
    seed, first, second = world
    a = first.requests(counter=100)
    raws = [a.switch_to_credit(first.device("gas meter (SMETS1)")) for _ in range(5)]
    path = tmp_path / "fault.db"
    shutil.copy(seed, path)
    engine = Engine(SqliteStore(path), PolicySet.load_dir(POLICIES))
    import solr_policy.engine as engine_module

    real = engine_module.authorize
    calls = {"n": 0}

    def flaky(facts, rules, **kw):
        calls["n"] += 1
        if facts.request.header.request_id.counter == 103:
            raise RuntimeError("boom")
        return real(facts, rules, **kw)

    monkeypatch.setattr(engine_module, "authorize", flaky)
    decided = list(engine.decide_many(raws, now=NOW, batch=5))
    engine.store.close()
    assert [d.outcome for d in decided] == ["allow", "allow", "reject", "allow", "allow"]
    assert [r.rule for r in decided[2].reasons] == ["engine.internal-error"]
    fp = _fingerprint(path, decided)
    assert fp["counters"][0] == 105 and fp["intact"]
    assert len([e for e in fp["audit"] if e[1] == "decision"]) == 5


def test_concurrent_callers_share_transactions_and_add_up(world, tmp_path):
    seed, first, second = world
    a, b = first.requests(counter=100), second.requests(counter=500)
    gas = first.device("gas meter (SMETS1)")
    streams = [[a.switch_to_credit(gas) for _ in range(20)], [b.switch_to_credit(gas) for _ in range(20)]]
    path = tmp_path / "concurrent.db"
    shutil.copy(seed, path)
    engine = Engine(SqliteStore(path), PolicySet.load_dir(POLICIES), group_commit=True, group_max=64, group_wait=0.005)
    out: dict[int, list] = {}

    def caller(i: int) -> None:
        out[i] = [engine.decide(raw, now=NOW) for raw in streams[i]]

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.close()
    engine.store.close()
    # Each caller's own stream is decided in its order: the thresholds (6 and 4 an hour) are
    # what limits, never a replay.
    for i, limit in ((0, 6), (1, 4)):
        assert [d.outcome for d in out[i]] == ["allow"] * limit + ["quarantine"] * (20 - limit)
    fp = _fingerprint(path, out[0] + out[1])
    assert fp["counters"] == [120, 520] and fp["intact"]
    assert len(fp["quarantine"]) == 30


# -- one transaction, many decisions: each sees what the ones before it took ------------------
def _group(path: Path, raws: list[bytes], policies: Path = POLICIES):
    engine = Engine(SqliteStore(path), PolicySet.load_dir(policies))
    try:
        return engine.decide_group([engine.prepare(raw, NOW) for raw in raws]), _fingerprint(path, [])
    finally:
        engine.store.close()


def test_a_request_replayed_within_one_group_is_refused(world, tmp_path):
    seed, first, second = world
    path = tmp_path / "replay.db"
    shutil.copy(seed, path)
    a, b = first.requests(counter=100), second.requests(counter=500)
    gas, elec = first.device("gas meter (SMETS1)"), first.device("electricity meter (SMETS1)")
    once = a.switch_to_credit(gas)  # 101
    theirs = b.switch_to_credit(gas)  # 501: another originator's counter is its own
    later = a.switch_to_credit(elec)  # 102
    reused = a.switch_to_credit(elec, counter=101)  # a new request with a counter taken earlier in the group
    decided, fp = _group(path, [once, theirs, once, later, reused, b.switch_to_credit(gas, counter=501)])
    assert [d.outcome for d in decided] == ["allow", "allow", "reject", "allow", "reject", "reject"]
    assert all([r.rule for r in decided[n].reasons] == ["R6.counter-fresh"] for n in (2, 4, 5))
    assert fp["counters"] == [102, 501] and fp["intact"]
    assert [e[4] for e in fp["audit"] if e[1] == "decision"] == [101, 501, None, 102, None, None]  # the counter each took
    # Only the allowed requests were counted against the ADT thresholds.
    assert sorted((u[0], u[3], u[5]) for u in fp["usage"]) == [
        ("90B3D51F300F0001", "day", 2), ("90B3D51F300F0001", "hour", 2), ("90B3D51F300F0002", "day", 1), ("90B3D51F300F0002", "hour", 1),
    ]


def test_a_gbcs_command_replayed_within_one_group_is_refused(world, tmp_path):
    """The GBCS originator counter too: a stale Pre-Command inside a fresh DUIS request."""
    seed, first, _ = world
    path = tmp_path / "gbcs.db"
    shutil.copy(seed, path)
    policies = first.write_policies(tmp_path / "policies")
    a = first.requests(counter=100)
    meter = first.device("gas meter (SMETS2)")
    stale = build_general_signing(message_code=GCS02_CREDIT, originator=first.user_eui, recipient=meter, counter=101,
                                  key=first.pre_command_signer.key)
    raws = [a.signed_pre_command(meter, GCS02_CREDIT), a.signed_pre_command(meter, GCS02_CREDIT, payload=stale)]  # DUIS 101, 102
    decided, fp = _group(path, raws, policies)
    assert [d.outcome for d in decided] == ["allow", "reject"]
    assert [r.rule for r in decided[1].reasons] == ["R5.gbcs-counter-fresh"]
    assert fp["counters"][0] == 101 and fp["intact"]


@pytest.mark.parametrize("groups", [(9,), (4, 5), (1, 1, 1, 1, 1, 1, 1, 1, 1)])
def test_adt_usage_counted_within_a_group_reaches_the_threshold_exactly(world, tmp_path, groups):
    """The first User may send 6 an hour: of 9 requests, the 7th is the first held, however
    they are split into groups (one transaction each)."""
    seed, first, _ = world
    path = tmp_path / "threshold.db"
    shutil.copy(seed, path)
    a = first.requests(counter=100)
    meters = [first.device("gas meter (SMETS1)"), first.device("electricity meter (SMETS1)")]
    raws = [a.switch_to_credit(meters[n % 2]) for n in range(9)]
    engine = Engine(SqliteStore(path), PolicySet.load_dir(POLICIES))
    decided, start = [], 0
    for size in groups:
        decided += engine.decide_group([engine.prepare(raw, NOW) for raw in raws[start : start + size]])
        start += size
    engine.store.close()
    assert [d.outcome for d in decided] == ["allow"] * 6 + ["quarantine"] * 3
    held = next(c for c in decided[6].checks if c.rule == "R4.adt-threshold")
    assert held.result == "hold" and held.message.startswith("6 SRV 1.6 requests this hour already reach the ADT threshold of 6")
    fp = _fingerprint(path, decided)
    assert sorted((u[3], u[5]) for u in fp["usage"]) == [("day", 6), ("hour", 6)]
    assert fp["counters"][0] == 109 and len(fp["quarantine"]) == 3 and fp["intact"]


def test_a_group_rolled_back_leaves_nothing_of_its_writes_behind(world, tmp_path, monkeypatch):
    """The group's writes fail at its commit: nothing it took stays, in the store or in what the
    next decisions see. Each is decided again alone, as if the group had never been tried."""
    seed, first, _ = world
    path = tmp_path / "rolled-back.db"
    shutil.copy(seed, path)
    a = first.requests(counter=100)
    gas = first.device("gas meter (SMETS1)")
    once, again = a.switch_to_credit(gas), a.switch_to_credit(gas)  # 101, 102
    real = SqliteStore.append_audits
    calls = []

    def fails_first(self, entries):
        calls.append(len(entries))
        if len(calls) == 1:
            raise StoreUnavailable("the disk is full")
        return real(self, entries)

    monkeypatch.setattr(SqliteStore, "append_audits", fails_first)
    decided, fp = _group(path, [once, again, once])
    assert calls == [3, 1, 1, 1]  # the group's three entries, refused; then each decision's own
    # Had the group's counters (102) or usage (2) outlived it, the first would now be a replay
    # and the counts would be too high.
    assert [d.outcome for d in decided] == ["allow", "allow", "reject"]
    assert fp["counters"][0] == 102 and fp["intact"]
    assert sorted((u[3], u[5]) for u in fp["usage"]) == [("day", 2), ("hour", 2)]
    assert [e[4] for e in fp["audit"] if e[1] == "decision"] == [101, 102, None]


@settings(max_examples=300, deadline=None)
@given(rule=st.text(max_size=30), code=st.none() | st.text(max_size=5), message=st.text(max_size=80))
def test_a_reasons_audit_text_is_its_canonical_json(rule, code, message):
    reason = Reason(rule, code, message)
    _, text, text_json = _reason_text(reason)
    assert text == canonical_payload(reason.model_dump()) and '"' + text_json + '"' == json.dumps(text)


def test_a_decision_built_without_validation_is_the_one_model_construct_builds(world, tmp_path):
    """from_outcomes builds its Decision without model_construct's walk through the fields:
    the same instance, field for field, for each outcome (and model_construct where it must)."""
    seed, first, second = world
    path = tmp_path / "built.db"
    shutil.copy(seed, path)
    engine = Engine(SqliteStore(path), PolicySet.load_dir(POLICIES))
    try:
        decided = engine.decide_group([engine.prepare(raw, NOW) for raw in _sequence(first, second)])
    finally:
        engine.store.close()
    assert {d.outcome for d in decided} == {"allow", "reject", "quarantine"}
    for decision in decided:
        if not decision.checks:
            continue  # refused at the boundary: made by refused_input
        values = {name: getattr(decision, name) for name in decision.model_fields_set if name != "quarantine_id"}
        built, constructed = decision_module._trusted(**values), Decision.model_construct(**values)
        assert list(vars(built).items()) == list(vars(constructed).items())
        assert built.model_fields_set == constructed.model_fields_set
        assert (built.__pydantic_extra__, built.__pydantic_private__) == (constructed.__pydantic_extra__, constructed.__pydantic_private__)
        assert built == constructed and repr(built) == repr(constructed) and built.to_json_dict() == constructed.to_json_dict()
        assert built.model_copy(update={"quarantine_id": 7}).quarantine_id == 7
    partial = decision_module._trusted(outcome="reject", response_code=None, reasons=[], decided_at=NOW)  # no checks given
    assert list(vars(partial).items()) == list(vars(Decision.model_construct(outcome="reject", response_code=None, reasons=[], decided_at=NOW)).items())


def test_each_decision_knows_the_position_of_its_audit_entry(world, tmp_path):
    """decide, decide_many and the group-commit writer give each decision the sequence number of
    its own entry (refusals at the boundary included); a dry run has none."""
    seed, first, second = world
    raws = _sequence(first, second)
    for how in ("one by one", "decide_many", "writer"):
        path = tmp_path / f"pos_{how.replace(' ', '_')}.db"
        shutil.copy(seed, path)
        decided = _decide(path, raws, how)
        store = SqliteStore(path)
        try:
            where = {e.payload_data()["decision_id"]: e.seq for e in store.audit_entries(kind="decision")}
        finally:
            store.close()
        assert [d.log_position for d in decided] == [where[d.decision_id] for d in decided], how
        assert len(set(where.values())) == len(decided)
    engine = Engine(SqliteStore(path), PolicySet.load_dir(POLICIES))
    try:
        assert engine.evaluate(raws[0], now=NOW).log_position is None
        assert "log_position" not in engine.evaluate(raws[0], now=NOW).to_json_dict()
    finally:
        engine.store.close()
