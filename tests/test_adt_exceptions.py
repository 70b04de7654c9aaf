"""ADT files with windows other than the hour and the day, and exceptions: named Device sets
exempt from the file's thresholds or held to their own (issue 14, R4)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from solr_policy.engine import Engine
from solr_policy.errors import GovernanceRefused
from solr_policy.governance.adt import adt_text, parse_adt
from solr_policy.policy import PolicySet
from solr_policy.rules.r4_adt import usage_windows, window_start
from solr_policy.testing.scenario import SolrScenario

POLICIES = Path(__file__).resolve().parents[1] / "policies"
NOW = datetime.now(timezone.utc).replace(hour=10, minute=31, second=0, microsecond=0)
E1, G1, E2 = "electricity meter (SMETS1)", "gas meter (SMETS1)", "electricity meter (SMETS2)"


def text(**changes) -> bytes:
    values = dict(reference="ADT-X", party="SOLR", user="90B3D51F300F0001", supplier="FAILED",
                  thresholds={"1.6": {"per_hour": 5}}, exceptions=None)
    values.update(changes)
    return adt_text(**values)


def refusal(data: bytes) -> str:
    with pytest.raises(GovernanceRefused) as info:
        parse_adt(data, "adt.yaml")
    assert info.value.rule == "R4.adt-format"
    return info.value.message


def test_a_file_may_name_minute_and_several_hour_windows():
    adt = parse_adt(text(thresholds={"1.6": {"per_15_minutes": 2, "per_6_hours": 9, "per_day": 20}}))
    assert adt.thresholds["1.6"] == {"per_15_minutes": 2, "per_6_hours": 9, "per_day": 20}


@pytest.mark.parametrize("window", ["per_7_minutes", "per_week", "per_5_hours", "per_0_minutes", "hourly"])
def test_a_window_that_does_not_tile_the_day_is_refused_naming_the_forms(window):
    message = refusal(text(thresholds={"1.6": {window: 3}}))
    assert window in message and "per_N_minutes" in message and "line" in message


@pytest.mark.parametrize("count", ["-1", "many", "true", "1.5"])
def test_a_count_must_be_a_whole_number(count):
    data = text().replace(b"per_hour: 5", b"per_hour: " + count.encode())
    assert "per_hour" in refusal(data)


def test_an_exception_is_either_exempt_or_has_its_own_thresholds():
    exempt = text(exceptions=[{"name": "x", "devices": ["00DB1234567890A0"], "exempt": True}])
    assert "either exempt" in refusal(exempt + b"    thresholds: {per_hour: 1}\n")
    data = text(exceptions=[{"name": "x", "devices": ["00DB1234567890A0"], "thresholds": {"per_hour": 1}}]).replace(b"    thresholds: {per_hour: 1}\n", b"")
    assert "either exempt" in refusal(data)


def test_a_device_in_two_exceptions_for_one_srv_is_refused():
    twice = [
        {"name": "a", "devices": ["00DB1234567890A0"], "exempt": True},
        {"name": "b", "devices": ["00-DB-12-34-56-78-90-A0"], "srvs": ["1.6"], "thresholds": {"per_hour": 1}},
    ]
    message = refusal(text(exceptions=twice))
    assert "00DB1234567890A0" in message and "a and b" in message
    apart = [
        {"name": "a", "devices": ["00DB1234567890A0"], "srvs": ["1.5"], "exempt": True},
        {"name": "b", "devices": ["00DB1234567890A0"], "srvs": ["1.6"], "exempt": True},
    ]
    assert len(parse_adt(text(exceptions=apart)).exceptions) == 2


def test_exception_names_are_unique_and_devices_are_eui64():
    same = [{"name": "a", "devices": ["00DB1234567890A0"], "exempt": True}, {"name": "a", "devices": ["00DB1234567890A1"], "exempt": True}]
    assert "named twice" in refusal(text(exceptions=same))
    assert "devices" in refusal(text(exceptions=[{"name": "a", "devices": ["not-a-device"], "exempt": True}]))


def test_windows_are_fixed_utc_windows():
    at = datetime(2026, 11, 22, 13, 47, tzinfo=timezone.utc)
    assert [window_start(p, at) for p in ("15_minutes", "hour", "6_hours", "day")] == [
        "2026-11-22T13:45Z", "2026-11-22T13:00Z", "2026-11-22T12:00Z", "2026-11-22"]
    assert usage_windows(at, {"per_30_minutes": 1}, "hospital") == {"hospital/30_minutes": "2026-11-22T13:30Z"}


# -- in the engine --------------------------------------------------------------------------
@pytest.fixture()
def event(store, pki):
    s = SolrScenario(pki=pki).install(store, now=NOW)
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    return s, engine


def submit(store, s: SolrScenario, thresholds, exceptions) -> None:
    s.submit_adt(store, now=NOW, reference="ADT-EXC", thresholds=thresholds, exceptions=exceptions)


def test_an_exempt_device_is_never_held_and_others_still_are(store, event):
    s, engine = event
    submit(store, s, {"1.6": {"per_hour": 1}}, [{"name": "priority-care", "devices": [s.device(E2)], "exempt": True}])
    requests = s.requests()
    assert engine.decide(requests.switch_to_credit(s.device(E1)), now=NOW).outcome == "allow"
    for _ in range(3):
        decision = engine.decide(requests.switch_to_credit(s.device(E2)), now=NOW)
        assert decision.outcome == "allow", decision.reasons
    check = next(c for c in decision.checks if c.rule == "R4.adt-threshold")
    assert "exempt" in check.message and "priority-care" in check.message
    held = engine.decide(requests.switch_to_credit(s.device(G1)), now=NOW)
    assert held.outcome == "quarantine" and held.response_code == "AD1"


def test_an_exception_holds_its_devices_to_its_own_threshold_counted_apart(store, event):
    s, engine = event
    submit(store, s, {"1.6": {"per_hour": 10}}, [{"name": "pilot", "devices": [s.device(E2)], "thresholds": {"per_15_minutes": 1}}])
    requests = s.requests()
    assert engine.decide(requests.switch_to_credit(s.device(E2)), now=NOW).allowed
    second = engine.decide(requests.switch_to_credit(s.device(E2)), now=NOW)
    assert second.outcome == "quarantine"
    assert "per 15 minutes" in second.reasons[0].message and "exception pilot" in second.reasons[0].message
    # the other Devices are counted on the file's threshold, not the exception's
    assert engine.decide(requests.switch_to_credit(s.device(E1)), now=NOW).allowed
    assert store.adt_usage(s.user_eui, s.failed_supplier, "1.6", "pilot/15_minutes", "%s" % window_start("15_minutes", NOW)) == 1
    assert store.adt_usage(s.user_eui, s.failed_supplier, "1.6", "hour", window_start("hour", NOW)) == 1
    # the next quarter of an hour, the exception's Device flows again
    later = engine.decide(requests.switch_to_credit(s.device(E2)), now=NOW + timedelta(minutes=15))
    assert later.allowed, later.reasons


def test_exceptions_are_stored_with_the_file_and_logged(store, event):
    s, _ = event
    submit(store, s, {"1.6": {"per_hour": 10}}, [{"name": "pilot", "devices": [s.device(E2)], "thresholds": {"per_hour": 1}}])
    record = store.get_adt_file("ADT-EXC")
    assert record.exceptions == ({"name": "pilot", "devices": [s.device(E2)], "exempt": False, "thresholds": {"per_hour": 1}},)
    entry = [e for e in store.audit_entries(kind="adt.submit") if e.payload_data()["reference"] == "ADT-EXC"][0]
    assert entry.payload_data()["exceptions"] == [{"name": "pilot", "devices": 1}]
