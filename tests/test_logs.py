"""Library logging: silent when embedded, one JSON event per decision on stderr once the
application configures it, never a key or a whole certificate."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from solr_policy import logs
from solr_policy.engine import Engine
from solr_policy.policy import PolicySet
from solr_policy.testing import SolrScenario, TestPki, capture_logs

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def unconfigured():
    logs.reset()  # as a program that embeds the library finds it
    yield
    logs.reset()


@pytest.fixture()
def scenario(store, pki) -> SolrScenario:
    return SolrScenario(pki=pki).install(store, now=NOW)


@pytest.fixture()
def engine(store) -> Engine:
    return Engine(store, PolicySet.load_dir(POLICIES))


def decide_two(scenario: SolrScenario, engine: Engine, counter: int = 1000) -> None:
    """One allowed, one refused with two reasons (give a higher counter to decide again)."""
    ask = scenario.requests(counter=counter)
    assert engine.decide(ask.switch_to_credit(scenario.device("electricity meter (SMETS1)")), now=NOW).outcome == "allow"
    refused = engine.decide(ask.switch_to_prepayment(scenario.device("other Supplier's electricity meter")), now=NOW)
    assert refused.outcome == "reject"


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_embedded_engine_prints_nothing(scenario, engine, capfd):
    decide_two(scenario, engine)
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_embedded_in_a_fresh_process_prints_nothing(tmp_path):
    # No pytest handlers, no earlier configure(): what an embedding pipeline sees.
    script = textwrap.dedent(
        f"""
        from datetime import datetime, timezone
        from solr_policy.engine import Engine
        from solr_policy.store import SqliteStore
        from solr_policy.testing import SolrScenario

        now = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
        store = SqliteStore({str(tmp_path / "embedded.db")!r})
        scenario = SolrScenario().install(store, now=now)
        engine = Engine.open({str(tmp_path / "embedded.db")!r})
        ask = scenario.requests()
        for raw in (ask.switch_to_credit(scenario.device("electricity meter (SMETS1)")), b"<not-a-request/>"):
            assert engine.decide(raw, now=now).outcome in ("allow", "reject")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""
    assert done.stderr == b""


def test_configured_json_is_one_event_per_decision_on_stderr(scenario, engine, capfd):
    logs.configure(fmt="json")
    decide_two(scenario, engine)
    captured = capfd.readouterr()
    assert captured.out == ""
    events = json_lines(captured.err)
    assert [(e["event"], e["outcome"]) for e in events] == [("decision", "allow"), ("decision", "reject")]
    assert all(e["level"] == "info" and e["timestamp"].endswith("Z") for e in events)
    allowed, refused = events
    assert "R3.srv-allowed" in [r["rule"] for r in allowed["reasons"]]  # the rules that passed
    assert {r["rule"] for r in refused["reasons"]} >= {"R6.device-of-failed-supplier", "R5.payment-mode"}
    assert allowed["decision_id"] and allowed["content_sha256"] and allowed["policy_sha256"]
    assert refused["response_code"] and refused["request"]["srv"] == "1.6"


def test_configured_level_filters(scenario, engine, capfd):
    logs.configure(fmt="json", level="WARNING")
    decide_two(scenario, engine)
    assert capfd.readouterr().err == ""


def test_console_format(scenario, engine, capfd):
    logs.configure(fmt="console")
    decide_two(scenario, engine)
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 2 and all("decision" in line and "outcome=" in line for line in lines)


def test_configure_twice_replaces_and_reset_silences(scenario, engine, capfd):
    logs.configure(fmt="json")
    logs.configure(fmt="json")
    decide_two(scenario, engine)
    assert len(json_lines(capfd.readouterr().err)) == 2  # not four
    logs.reset()
    decide_two(scenario, engine, counter=2000)
    assert capfd.readouterr().err == ""


def test_configure_refuses_unknown_values():
    with pytest.raises(ValueError, match="log format 'xml'"):
        logs.configure(fmt="xml")
    with pytest.raises(ValueError, match="log level 'LOUD'"):
        logs.configure(fmt="json", level="LOUD")


def test_configure_to_a_stream(scenario, engine, tmp_path):
    path = tmp_path / "decisions.log"
    with path.open("w", encoding="utf-8") as stream:
        logs.configure(fmt="json", stream=stream)
        decide_two(scenario, engine)
    assert [e["outcome"] for e in json_lines(path.read_text())] == ["allow", "reject"]


def test_the_application_routes_events_through_logging(scenario, engine):
    # An embedding program that configures logging itself receives the events.
    received: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = received.append  # type: ignore[method-assign]
    app_logger = logging.getLogger("solr_policy")
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)
    try:
        decide_two(scenario, engine)
    finally:
        app_logger.removeHandler(handler)
    assert [r.name for r in received] == ["solr_policy.decision"] * 2
    assert [r.msg["outcome"] for r in received] == ["allow", "reject"]


def test_keys_and_certificates_are_never_logged(scenario, engine, capfd):
    logs.configure(fmt="json")
    decide_two(scenario, engine)
    other = TestPki("LEAK").issue("90-B3-D5-1F-30-0F-00-09", 135)
    log = logs.get_logger("solr_policy.test")
    log.info(
        "careless", key=other.key_pem.decode(), cert=other.cert_pem.decode(), der=b"\x30\x82",
        nested={"reasons": ["fine", other.cert_pem.decode()], "pair": ("ok", other.key_pem)},
    )
    err = capfd.readouterr().err
    assert "PRIVATE KEY" not in err and "CERTIFICATE" not in err
    for pem in (scenario.user.cert_pem, scenario.user.key_pem, other.cert_pem, other.key_pem):
        body = b"".join(pem.splitlines()[1:-1]).decode()
        assert body[:40] not in err
    careless = json_lines(err)[-1]
    assert (careless["key"], careless["cert"], careless["der"]) == ("<redacted>", "<redacted>", "<2 bytes>")
    assert careless["nested"] == {"reasons": ["fine", "<redacted>"], "pair": ["ok", f"<{len(other.key_pem)} bytes>"]}


def test_capture_logs_sees_the_events_as_dicts(scenario, engine, capfd):
    with capture_logs() as events:
        decide_two(scenario, engine)
    assert [(e["event"], e["outcome"]) for e in events] == [("decision", "allow"), ("decision", "reject")]
    assert events[1]["reasons"]
    assert capfd.readouterr().err == ""  # capturing prints nothing
    decide_two(scenario, engine, counter=2000)
    assert len(events) == 2  # and stops with the block


def test_a_group_of_decisions_is_one_event_each_and_none_when_nobody_listens(scenario, engine):
    ask = scenario.requests(counter=3000)
    meter = scenario.device("electricity meter (SMETS1)")
    with capture_logs() as events:
        decided = list(engine.decide_many([ask.switch_to_credit(meter), ask.switch_to_prepayment(meter), ask.switch_to_credit(meter)], now=NOW))
    assert [(e["event"], e["decision_id"], e["outcome"]) for e in events] == [("decision", d.decision_id, d.outcome) for d in decided]
    assert [d.outcome for d in decided] == ["allow", "reject", "allow"]
    with capture_logs(level="WARNING") as events:
        assert [d.outcome for d in engine.decide_many([ask.switch_to_credit(meter)], now=NOW)] == ["allow"]
    assert events == []


def test_library_loggers_live_under_solr_policy():
    with pytest.raises(ValueError, match="under 'solr_policy'"):
        logs.get_logger("elsewhere")
