"""Each endpoint of the decision service, on SQLite, through Starlette's TestClient."""

from __future__ import annotations

import base64
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from solr_policy.cli import app as cli_app
from solr_policy.engine import Engine
from solr_policy.service.app import create_app
from solr_policy.testing.governance import Signatories
from solr_policy.transparency.checkpoint import Checkpoint, sign_checkpoint, write_checkpoint_file
from solr_policy.transparency.proofs import check_consistency, check_inclusion

from .conftest import AUTH, TOKEN, XML, Service, build_service

ELEC = "electricity meter (SMETS1)"
GAS = "gas meter (SMETS1)"


def _problem(answer, status: int, rule: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["rule"] == rule and body["status"] == status and body["type"].endswith(rule)
    assert "Traceback" not in answer.text
    return body


def _log_size(service) -> int:
    store = service.store()
    try:
        return store.log_head().size
    finally:
        store.close()


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture()
def grouped(tmp_path, pki, monkeypatch):
    """A service whose engine counts the size of each group it decides in one transaction
    (patched before the service starts: its writer holds the method it was given); each group
    takes 50 ms more, so requests that arrive meanwhile make up the next one."""
    groups: list[int] = []
    decide_group = Engine.decide_group

    def counted(engine, group):
        groups.append(len(group))
        time.sleep(0.05)
        return decide_group(engine, group)

    monkeypatch.setattr(Engine, "decide_group", counted)
    config, scenario, key = build_service(tmp_path, pki)
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        yield Service(client, scenario, config, key, tmp_path), groups


class TestDecisions:
    def test_allowed_decision_names_its_policy_and_log_entry(self, service):
        ask = service.scenario.requests()
        answer = service.decide(ask.switch_to_credit(service.scenario.device(ELEC)))
        assert (answer["outcome"], answer["response_code"]) == ("allow", "I99")
        assert re.fullmatch(r"[0-9a-f]{64}", answer["content_sha256"])
        assert answer["policy"] and answer["policy_version"] and re.fullmatch(r"[0-9a-f]{64}", answer["policy_sha256"])
        store = service.store()
        [entry] = store.audit_entries(kind="decision")
        store.close()
        assert answer["log_position"] == entry.seq
        assert entry.payload_data()["decision_id"] == answer["decision_id"]

    def test_refused_decisions_carry_rule_and_duis_code(self, service):
        ask = service.scenario.requests()
        prepay = service.decide(ask.switch_to_prepayment(service.scenario.device(ELEC)))
        assert (prepay["outcome"], prepay["response_code"]) == ("reject", "E12")
        assert [r["rule"] for r in prepay["reasons"]] == ["R5.payment-mode"]
        raw = ask.switch_to_credit(service.scenario.device(GAS))
        assert service.decide(raw)["outcome"] == "allow"
        replay = service.decide(raw)
        assert replay["outcome"] == "reject" and replay["reasons"][0]["rule"] == "R6.counter-fresh"

    def test_bad_xml_is_a_decision_refused_at_the_boundary(self, service):
        answer = service.decide(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>")
        assert answer["outcome"] == "reject" and answer["reasons"][0]["rule"].startswith("xml.")

    def test_evaluation_changes_nothing(self, service):
        raw = service.scenario.requests().switch_to_credit(service.scenario.device(ELEC))
        before = _log_size(service)
        dry = service.decide(raw, "/v1/evaluations")
        assert dry["outcome"] == "allow" and dry["dry_run"] is True and dry["log_position"] is None
        assert _log_size(service) == before
        assert service.decide(raw)["outcome"] == "allow"  # the counter was not consumed

    def test_batch_keeps_each_originators_counter_order(self, service):
        ask = service.scenario.requests(counter=2000)
        raws = [ask.switch_to_credit(service.scenario.device(ELEC), counter=c) for c in (2003, 2001, 2002)]
        raws.append(b"not a request")
        body = {"requests": [base64.b64encode(r).decode() for r in raws]}
        answer = service.client.post("/v1/decisions:batch", json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text
        decisions = answer.json()["decisions"]
        assert [d["outcome"] for d in decisions] == ["allow", "allow", "allow", "reject"]
        assert [d["request"]["counter"] for d in decisions[:3]] == [2003, 2001, 2002]  # answered in the order sent
        positions = [d["log_position"] for d in decisions[:3]]
        assert positions[1] < positions[2] < positions[0]  # decided in counter order

    def test_batch_shares_transactions(self, grouped):
        # One originator's batch goes to the engine's writer together: a few transactions for
        # the whole batch, not one commit per request (each answer still after its commit).
        service, groups = grouped
        ask = service.scenario.requests(counter=3000)
        raws = [ask.switch_to_credit(service.scenario.device(ELEC if c % 2 else GAS), counter=c) for c in range(3001, 3041)]
        answer = service.client.post("/v1/decisions:batch", json={"requests": [base64.b64encode(r).decode() for r in raws]}, headers=AUTH)
        assert answer.status_code == 200, answer.text
        decisions = answer.json()["decisions"]
        assert [d["outcome"] for d in decisions] == ["allow"] * 40
        assert sum(groups) == 40 and len(groups) <= 2, groups
        positions = [d["log_position"] for d in decisions]
        assert positions == sorted(positions) and len(set(positions)) == 40
        store = service.store()
        try:
            entries = {e.seq: e.payload_data()["decision_id"] for e in store.audit_entries(kind="decision")}
        finally:
            store.close()
        assert all(entries[d["log_position"]] == d["decision_id"] for d in decisions)  # durable where the answer says

    def test_concurrent_requests_share_transactions(self, grouped):
        # Requests arriving together are decided in groups by one writer (group commit), each
        # answered with its own decision and log position.
        service, groups = grouped
        ask = service.scenario.requests(counter=5000)
        raws = [ask.switch_to_credit(service.scenario.device(ELEC), counter=5000 + c) for c in range(1, 13)]
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(service.decide, raws))
        assert len(groups) < 12 and sum(groups) == 12, groups
        assert len({a["decision_id"] for a in answers}) == len({a["log_position"] for a in answers}) == 12
        # one User's counters sent at once: each allowed, or refused as older than one decided before it
        assert all(a["outcome"] == "allow" or a["reasons"][0]["rule"] == "R6.counter-fresh" for a in answers)

    def test_batch_as_a_bare_list_or_multipart(self, service):
        ask = service.scenario.requests(counter=4000)
        raws = [ask.switch_to_credit(service.scenario.device(GAS), counter=c) for c in (4002, 4001)]
        listed = service.client.post("/v1/decisions:batch", json=[base64.b64encode(raws[0]).decode()], headers=AUTH)
        assert [d["outcome"] for d in listed.json()["decisions"]] == ["allow"]
        more = [ask.switch_to_credit(service.scenario.device(GAS), counter=c) for c in (4005, 4003)]
        boundary = "b0undary"
        parts = b"".join(f"--{boundary}\r\nContent-Type: application/xml\r\n\r\n".encode() + raw + b"\r\n" for raw in more)
        body = parts + f"--{boundary}--\r\n".encode()
        answer = service.client.post("/v1/decisions:batch", content=body, headers={**AUTH, "Content-Type": f"multipart/mixed; boundary={boundary}"})
        assert answer.status_code == 200, answer.text
        assert [(d["outcome"], d["request"]["counter"]) for d in answer.json()["decisions"]] == [("allow", 4005), ("allow", 4003)]
        text_part = f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n".encode()
        _problem(service.client.post("/v1/decisions:batch", content=text_part, headers={**AUTH, "Content-Type": f"multipart/mixed; boundary={boundary}"}), 415, "http.content-type")
        # Media types are case-insensitive (RFC 9110): read as multipart all the same, not as JSON.
        _problem(service.client.post("/v1/decisions:batch", content=text_part, headers={**AUTH, "Content-Type": f"Multipart/Mixed; boundary={boundary}"}), 415, "http.content-type")

    def test_out_of_order_singles_are_refused_as_replays(self, service):
        ask = service.scenario.requests(counter=3000)
        later, earlier = (ask.switch_to_credit(service.scenario.device(ELEC), counter=c) for c in (3002, 3001))
        assert service.decide(later)["outcome"] == "allow"
        assert service.decide(earlier)["reasons"][0]["rule"] == "R6.counter-fresh"

    def test_malformed_batches(self, service):
        post = lambda body: service.client.post("/v1/decisions:batch", content=body, headers={**AUTH, "Content-Type": "application/json"})  # noqa: E731
        _problem(post(b"[1,2"), 400, "batch.malformed")
        _problem(post(b'{"requests": []}'), 400, "batch.malformed")
        _problem(post(b'{"requests": [1]}'), 400, "batch.malformed")
        _problem(post(b'{"requests": ["***"]}'), 400, "batch.base64")
        _problem(post(b'{"requests": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), 400, "batch.malformed")  # deeper than recursion
        _problem(post(json.dumps({"requests": ["QQ=="] * 101}).encode()), 413, "batch.too-many")

    def test_a_batch_of_too_many_parts_is_refused_before_they_are_parsed(self, service):
        # The MIME parser builds a message per part (about 0.4 ms each): these 40,000 empty parts
        # (1.6 MiB) held the worker's event loop for some 16 s before the count refused them.
        part = b"--b\r\nContent-Type: application/xml\r\n\r\n\r\n"
        started = time.perf_counter()
        answer = service.client.post(
            "/v1/decisions:batch", content=part * 40_000 + b"--b--\r\n", headers={**AUTH, "Content-Type": "multipart/mixed; boundary=b"}
        )
        _problem(answer, 413, "batch.too-many")
        assert time.perf_counter() - started < 2


class TestBoundary:
    def test_no_or_wrong_token_refused_and_nothing_decided(self, service):
        raw = service.scenario.requests().switch_to_credit(service.scenario.device(ELEC))
        before = _log_size(service)
        _problem(service.client.post("/v1/decisions", content=raw, headers={"Content-Type": "application/xml"}), 401, "auth.token")
        wrong = {"Content-Type": "application/xml", "Authorization": "Bearer " + TOKEN[:-1] + "x"}
        _problem(service.client.post("/v1/decisions", content=raw, headers=wrong), 401, "auth.token")
        _problem(service.client.post("/v1/alerts", content=raw, headers={"Content-Type": "application/xml"}), 401, "auth.token")
        assert _log_size(service) == before

    def test_without_token_or_mtls_everything_is_refused(self, tmp_path, pki):
        config, scenario, _ = build_service(tmp_path, pki, api_token=None)
        with TestClient(create_app(config)) as client:
            raw = scenario.requests().switch_to_credit(scenario.device(ELEC))
            _problem(client.post("/v1/decisions", content=raw, headers={"Content-Type": "application/xml", "Authorization": "Bearer "}), 401, "auth.not-configured")

    def test_content_type_and_size(self, service):
        _problem(service.client.post("/v1/decisions", content=b"<x/>", headers={**AUTH, "Content-Type": "text/plain"}), 415, "http.content-type")
        big = b"<" + b"a" * (service.config.max_request_bytes + 1)
        _problem(service.client.post("/v1/decisions", content=big, headers=XML), 413, "http.body-too-large")

        def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(40):
                yield b"a" * 65536

        _problem(service.client.post("/v1/decisions", content=chunks(), headers=XML), 413, "http.body-too-large")

    def test_unknown_paths_and_methods(self, service):
        _problem(service.client.get("/v1/nothing"), 404, "http.not-found")
        _problem(service.client.get("/v1/decisions"), 405, "http.method")

    def test_internal_fault_is_problem_details_without_traceback(self, service, monkeypatch):
        def broken(self, raw, *, now=None):
            raise RuntimeError("secret internals")

        monkeypatch.setattr(Engine, "decide", broken)
        raw = service.scenario.requests().switch_to_credit(service.scenario.device(ELEC))
        body = _problem(service.client.post("/v1/decisions", content=raw, headers=XML), 500, "service.internal-error")
        assert "secret internals" not in json.dumps(body)

    def test_keeps_serving_after_a_flood_of_bad_input(self, service):
        for junk in (b"", b"\xff\xfe", b"<a>" * 5000, b"<?xml version='1.0'?><sr:Request/>", b"A" * 1000):
            assert service.decide(junk)["outcome"] == "reject"
        assert service.decide(service.scenario.requests().switch_to_credit(service.scenario.device(ELEC)))["outcome"] == "allow"


class TestAlertsAndGovernance:
    def test_alert_routed(self, service):
        scenario = service.scenario
        store = service.store()
        alerts = scenario.install_alerting(store)
        store.close()
        raw = alerts.device_alert(scenario.device(ELEC), scenario.failed_supplier_user)
        answer = service.client.post("/v1/alerts", content=raw, headers=XML)
        assert answer.status_code == 200 and answer.json()["status"] == "routed"
        assert answer.json()["targets"][0]["id"] == scenario.failed_supplier_user

    def test_what_an_operator_sees_of_waiting_and_refused_alerts(self, service):
        """R7 at the service: a failed Supplier's alert with no SRP waits (pending list, metrics:
        how many and since when); an SRP registered by signed statement takes it at once; a
        refused alert is kept and counted, for `alerts retry --refused`."""
        scenario = service.scenario
        store = service.store()
        alerts = scenario.install_alerting(store)
        scenario.revoke_certificates(store, scenario.failed_supplier)
        store.close()
        waiting = service.client.post("/v1/alerts", content=alerts.device_alert(scenario.device(ELEC), scenario.failed_supplier_user), headers=XML).json()
        assert waiting["status"] == "pending" and "no SRP" in waiting["reason"]
        refused = service.client.post("/v1/alerts", content=b"<sr:Response/>", headers=XML).json()
        assert refused["status"] == "refused"
        [listed] = service.client.get("/v1/alerts/pending").json()
        assert listed["id"] == waiting["delivery_id"] and listed["reason"] == waiting["reason"]
        time.sleep(1.1)  # the oldest waiting alert's age is measured from when it arrived
        metrics = service.client.get("/metrics").text
        assert _metric(metrics, "solr_policy_alerts_waiting") == 1
        assert _metric(metrics, "solr_policy_alerts_oldest_waiting_seconds") >= 1
        assert _metric(metrics, "solr_policy_alerts_refused_kept") == 1

        statement = Signatories(keys=scenario.officer_keys).statement(
            "srp.register", {"srp": "SRP-NORTH", "name": "North SRP Ltd", "endpoint": "https://srp-north.example/alerts", "serves": [scenario.failed_supplier]},
            officer="gov-alice", at=datetime.now(timezone.utc),
        )
        act = service.client.post("/v1/statements", content=statement, headers={"Content-Type": "application/json"})
        assert act.status_code == 200, act.text
        assert act.json()["alerts_routed_now"] == [waiting["delivery_id"]]
        assert service.client.get("/v1/alerts/pending").json() == []
        metrics = service.client.get("/metrics").text
        assert _metric(metrics, "solr_policy_alerts_waiting") == 0
        assert re.search(r"^solr_policy_alerts_oldest_waiting_seconds ", metrics, re.MULTILINE) is None  # none waits: no sample
        assert _metric(metrics, "solr_policy_alerts_refused_kept") == 1

    def test_signed_statement_applied_then_replay_refused(self, service):
        officers = Signatories(keys=service.scenario.officer_keys)
        envelope = officers.statement(
            "instruction.suspend", {"reference": service.scenario.instruction_ref, "reason": "Ofgem asked"},
            officer="gov-alice", at=datetime.now(timezone.utc),
        )
        post = lambda: service.client.post("/v1/statements", content=envelope, headers={"Content-Type": "application/json"})  # noqa: E731
        answer = post()
        assert answer.status_code == 200, answer.text
        assert answer.json()["action"] == "instruction.suspend" and answer.json()["checkpoint"] >= 1
        [instruction] = service.client.get("/v1/instructions").json()
        assert instruction["status"] == "suspended"
        _problem(post(), 422, "statement.replayed")

    def test_unsigned_or_forged_statements_refused(self, service):
        post = lambda body: service.client.post("/v1/statements", content=body, headers={"Content-Type": "application/json"})  # noqa: E731
        _problem(post(b'{"payloadType": 1}'), 422, "statement.malformed")
        forged = Signatories().statement(
            "instruction.end", {"reference": service.scenario.instruction_ref, "reason": "x"}, officer="gov-alice", at=datetime.now(timezone.utc)
        )
        answer = post(forged.encode())
        assert answer.status_code == 422 and answer.json()["rule"].startswith("statement.")
        assert service.client.get("/v1/instructions").json()[0]["status"] == "active"

    def test_reads(self, service):
        officers = service.client.get("/v1/officers").json()
        assert {o["id"] for o in officers} == {"gov-alice", "gov-bob", "sro-sam", "aro-ann"}
        assert all("public_key" not in o for o in officers)
        [adt] = service.client.get("/v1/adt-files").json()
        assert adt["reference"] == service.scenario.adt_reference
        assert service.client.get("/v1/quarantine?status=held").json() == []
        _problem(service.client.get("/v1/quarantine?status=maybe"), 400, "http.query")
        assert service.client.get("/v1/alerts/pending").json() == []


class TestEventAndAudit:
    def _some_decisions(self, service) -> None:
        ask = service.scenario.requests()
        service.decide(ask.switch_to_credit(service.scenario.device(ELEC)))
        service.decide(ask.switch_to_credit(service.scenario.device(GAS)))
        service.decide(ask.switch_to_prepayment(service.scenario.device(ELEC)))

    def test_event_view_and_status_command_agree(self, service):
        self._some_decisions(service)
        reference = service.scenario.instruction_ref
        view = service.client.get(f"/v1/events/{reference}").json()
        assert view["decisions"]["by_outcome"] == {"allow": 2, "reject": 1}
        assert view["decisions"]["by_code"] == {"E12": 1, "I99": 2}
        assert view["decisions"]["refusals_by_rule"] == {"R5.payment-mode": 1}
        assert view["log"]["size"] == _log_size(service)
        result = CliRunner().invoke(cli_app.cli, ["--db", service.config.db, "status", reference, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["decisions"] == view["decisions"]
        table = CliRunner().invoke(cli_app.cli, ["--db", service.config.db, "status"])
        assert table.exit_code == 0 and reference in table.output and "allow" in table.output
        _problem(service.client.get("/v1/events/NO-SUCH"), 404, "event.unknown")

    def test_checkpoint_and_proofs_verify(self, service):
        self._some_decisions(service)
        _problem(service.client.get("/v1/audit/checkpoint"), 404, "log.no-checkpoint")
        service.client.post("/v1/statements", content=Signatories(keys=service.scenario.officer_keys).statement(
            "instruction.suspend", {"reference": service.scenario.instruction_ref, "reason": "r"}, officer="gov-bob",
            at=datetime.now(timezone.utc)), headers={"Content-Type": "application/json"})
        checkpoint = service.client.get("/v1/audit/checkpoint").json()
        assert checkpoint["size"] == _log_size(service)
        proof = service.client.get("/v1/audit/proofs/inclusion/2")
        assert proof.status_code == 200
        assert check_inclusion(proof.text, service.key.public_key()).valid
        consistency = service.client.get("/v1/audit/proofs/consistency?first=1")
        assert consistency.status_code == 200 and json.loads(consistency.text)["second_size"] == checkpoint["size"]
        _problem(service.client.get("/v1/audit/proofs/consistency?first=x"), 400, "http.query")
        # An entry the log does not hold: said to be missing, not to wait for a checkpoint.
        _problem(service.client.get(f"/v1/audit/proofs/inclusion/{_log_size(service) + 5}"), 404, "log.no-entry")


class TestOperations:
    def test_health_and_readiness(self, service):
        assert service.client.get("/healthz").json() == {"alive": True}
        ready = service.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True

    def test_not_ready_and_refusing_when_the_log_is_behind_its_checkpoint(self, service):
        size = _log_size(service)
        forged = Checkpoint("solr-policy.audit", size + 5, b"\x00" * 32, datetime.now(timezone.utc))
        write_checkpoint_file(service.config.checkpoint_file, sign_checkpoint(forged, service.key))
        ready = service.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["log"]["ok"] is False
        answer = service.decide(service.scenario.requests().switch_to_credit(service.scenario.device(ELEC)))
        assert answer["reasons"][0]["rule"] == "log.behind-checkpoint"

    def test_metrics_count_decisions_and_read_the_store(self, service):
        before = service.client.get("/metrics").text
        ask = service.scenario.requests()
        service.decide(ask.switch_to_credit(service.scenario.device(ELEC)))
        service.decide(b"<x")
        service.client.post("/v1/decisions", content=b"<x/>", headers=AUTH)  # no content type
        after = service.client.get("/metrics").text
        allowed = dict(outcome="allow", code="I99", rule="-")
        assert _metric(after, "solr_policy_decisions_total", **allowed) - _metric(before, "solr_policy_decisions_total", **allowed) == 1
        assert _metric(after, "solr_policy_boundary_refusals_total", rule="http.content-type") - _metric(before, "solr_policy_boundary_refusals_total", rule="http.content-type") == 1
        assert _metric(after, "solr_policy_decision_seconds_count", endpoint="decision") - _metric(before, "solr_policy_decision_seconds_count", endpoint="decision") == 2
        assert _metric(after, "solr_policy_log_entries") == _log_size(service)
        assert _metric(after, "solr_policy_quarantine_depth") == 0


class TestServeCommand:
    def test_refuses_to_start_without_token_or_mutual_tls(self, tmp_path, monkeypatch):
        monkeypatch.delenv("SOLR_POLICY_API_TOKEN", raising=False)
        result = CliRunner().invoke(cli_app.cli, ["--db", str(tmp_path / "x.db"), "serve"])
        assert result.exit_code == 2 and "SOLR_POLICY_API_TOKEN" in result.output
        result = CliRunner().invoke(cli_app.cli, ["--db", str(tmp_path / "x.db"), "serve", "--ssl-ca-certs", __file__])
        assert result.exit_code == 2 and "--ssl-certfile" in result.output

    def test_a_short_token_is_a_settings_error(self, tmp_path, monkeypatch):
        monkeypatch.setenv("SOLR_POLICY_API_TOKEN", "short")
        result = CliRunner().invoke(cli_app.cli, ["--db", str(tmp_path / "x.db"), "serve"])
        assert result.exit_code == 2 and "SOLR_POLICY_API_TOKEN" in result.output
        assert "short" not in result.output  # the token is never echoed
