"""The ``solr-policy`` command for the world and decisions: ``world load``, ``world show`` and
``decide`` (file or stdin, ``--now``, ``--json`` or text), with the documented exit codes:
0 allow/success, 1 reject/invalid, 2 usage error or unreadable input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from solr_policy.cli import cli
from solr_policy.service.config import MAX_REQUEST_BYTES
from solr_policy.testing.scenario import SolrScenario
from solr_policy.store import SqliteStore
from solr_policy.world import Instruction

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
DECISION_KEYS = {
    "decision_id", "outcome", "response_code", "reasons", "request", "content_sha256",
    "policy", "policy_version", "policy_sha256", "quarantine_id", "decided_at", "dry_run", "log_position",
}

SC_METER = "electricity meter (SMETS1)"
OTHER_METER = "other Supplier's electricity meter"


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def run(db: Path, *args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, ["--db", str(db), *args], input=input)


@pytest.fixture()
def db(tmp_path) -> Path:
    return tmp_path / "solr.db"


@pytest.fixture()
def scenario(db) -> SolrScenario:
    store = SqliteStore(db)
    try:
        return SolrScenario().install(store, now=NOW)
    finally:
        store.close()


@pytest.fixture()
def credit_file(scenario, tmp_path) -> Path:
    path = tmp_path / "credit.xml"
    path.write_bytes(scenario.requests().switch_to_credit(scenario.device(SC_METER)))
    return path


def decide(db: Path, source: str | Path, *extra: str, input: bytes | None = None, now: datetime | None = NOW):
    args = ["decide", str(source), "--policies", str(POLICIES), *extra]
    if now is not None:
        args += ["--now", iso(now)]
    return run(db, *args, input=input)


def store_bytes(db: Path) -> str:
    """The database file and its write-ahead log, as one digest."""
    digest = hashlib.sha256(db.read_bytes())
    wal = db.with_name(db.name + "-wal")
    digest.update(wal.read_bytes() if wal.exists() else b"")
    return digest.hexdigest()


def as_json(result) -> dict:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return json.loads(result.stdout)


def no_traceback(result) -> None:
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


# -- world load / world show -------------------------------------------------------------------
WORLD = """\
parties:
  - id: FAILED-ENERGY
    name: Failed Energy Ltd
  - id: SOLR-PARTY
  - id: READER
users:
  - id: 90-B3-D5-1F-30-0F-00-01
    party: SOLR-PARTY
    role: SC
  - id: 90-B3-D5-1F-30-0F-00-09
    party: READER
    role: MDR
devices:
  - id: 00-DB-12-34-56-78-90-A0
    type: ESME
    smets: SMETS1
    supplier: FAILED-ENERGY
"""

# What issue 10 found loading with exit 0: an Authority instruction nobody signed.
FORGED_INSTRUCTION = """\
instructions:
  - reference: OFGEM-SOLR-FORGED
    failed_supplier: FAILED-ENERGY
    solr_party: SOLR-PARTY
    effective_from: {start}
    status: active
    proposed_by: mallory
    approved_by: mallory
"""


class TestWorld:
    def test_load_then_show(self, db, tmp_path):
        world = tmp_path / "world.yaml"
        world.write_text(WORLD)
        result = run(db, "world", "load", str(world), "--policies", str(POLICIES))
        assert result.exit_code == 0, result.output + result.stderr
        sha256 = hashlib.sha256(world.read_bytes()).hexdigest()
        assert json.loads(result.stdout) == {"loaded": str(world), "parties": 3, "users": 2, "devices": 1, "sha256": sha256, "alerts_routed": 0}
        (logged,) = json.loads(run(db, "audit", "show", "--kind", "world.load").stdout)
        assert logged["payload"] == {"file": str(world), "parties": 3, "users": 2, "devices": 1, "sha256": sha256}
        # Instructions come by governance, not by the world file; `world show` shows them.
        store = SqliteStore(db)
        try:
            store.put_instruction(
                Instruction(reference="OFGEM-SOLR-2026-001", failed_supplier="FAILED-ENERGY", solr_party="SOLR-PARTY",
                            effective_from=datetime(2026, 11, 21, tzinfo=timezone.utc))
            )
        finally:
            store.close()
        shown = run(db, "world", "show")
        assert shown.exit_code == 0
        data = json.loads(shown.stdout)
        assert set(data) == {"parties", "users", "devices", "instructions"}
        assert data["parties"] == [
            {"id": "FAILED-ENERGY", "name": "Failed Energy Ltd"}, {"id": "READER", "name": ""}, {"id": "SOLR-PARTY", "name": ""},
        ]
        assert {u["id"]: u["role"] for u in data["users"]} == {"90B3D51F300F0001": "SC", "90B3D51F300F0009": "MDR"}
        assert data["devices"] == [{"id": "00DB1234567890A0", "type": "ESME", "smets": "SMETS1", "supplier": "FAILED-ENERGY"}]
        (instruction,) = data["instructions"]
        assert instruction["reference"] == "OFGEM-SOLR-2026-001"
        assert datetime.fromisoformat(instruction["effective_from"]) == datetime(2026, 11, 21, tzinfo=timezone.utc)
        assert instruction["effective_until"] is None and instruction["status"] == "active"

    def test_load_twice_same_world(self, db, tmp_path):
        world = tmp_path / "world.yaml"
        world.write_text(WORLD)
        assert run(db, "world", "load", str(world), "--policies", str(POLICIES)).exit_code == 0
        first = run(db, "world", "show").stdout
        assert run(db, "world", "load", str(world), "--policies", str(POLICIES)).exit_code == 0
        assert run(db, "world", "show").stdout == first

    def test_roles_come_from_the_policies_folder(self, db, tmp_path):
        # MDR is known only because a policy in the folder defines it.
        world = tmp_path / "world.yaml"
        world.write_text(WORLD)
        only_sc = tmp_path / "only-sc"
        only_sc.mkdir()
        (only_sc / "sc.yaml").write_text((POLICIES / "solr-contingency.yaml").read_text())
        result = run(db, "world", "load", str(world), "--policies", str(only_sc))
        assert result.exit_code == 1
        assert "field users.1.role: unknown User Role 'MDR'" in result.stderr

    def test_load_error_names_the_line(self, db, tmp_path):
        world = tmp_path / "world.yaml"
        text = WORLD.replace("    supplier: FAILED-ENERGY", "    supplier: NOBODY")
        world.write_text(text)
        line = text.splitlines().index("    supplier: NOBODY") + 1
        result = run(db, "world", "load", str(world), "--policies", str(POLICIES))
        assert result.exit_code == 1
        assert result.stderr.strip() == f"error: {world} line {line}, field devices.0.supplier: unknown Party 'NOBODY'"
        assert result.stdout == ""
        no_traceback(result)
        # All or nothing: not even the parties before the mistake were written.
        assert json.loads(run(db, "world", "show").stdout)["parties"] == []

    def test_load_refuses_an_instruction_and_R6_still_refuses(self, db, tmp_path):
        # Red team (issue 10): a self-approved instruction in a world file. Refused, named, and
        # nothing written: the SoLR User's next request is still refused for want of one.
        store = SqliteStore(db)
        try:
            scenario = SolrScenario().install(store, now=NOW, instruction_status=None)
        finally:
            store.close()
        before = store_bytes(db)
        world = tmp_path / "forged.yaml"
        world.write_text(FORGED_INSTRUCTION.format(start=iso(NOW - timedelta(days=1))))
        result = run(db, "world", "load", str(world), "--policies", str(POLICIES))
        assert result.exit_code == 1
        no_traceback(result)
        assert result.stderr.startswith(f"error: {world} line 1, section instructions: a world file holds reference data only")
        assert "solr-policy instruction propose ... --key FILE" in result.stderr
        assert result.stdout == ""
        assert store_bytes(db) == before
        request = tmp_path / "credit.xml"
        request.write_bytes(scenario.requests().switch_to_credit(scenario.device(SC_METER)))
        decided = decide(db, request, "--json")
        assert decided.exit_code == 1
        assert [r["rule"] for r in as_json(decided)["reasons"]] == ["R6.instruction-active"]

    def test_load_missing_file(self, db, tmp_path):
        result = run(db, "world", "load", str(tmp_path / "absent.yaml"), "--policies", str(POLICIES))
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: {tmp_path / 'absent.yaml'}: cannot read")

    def test_bad_policies_folder_is_a_usage_error(self, db, tmp_path):
        world = tmp_path / "world.yaml"
        world.write_text(WORLD)
        result = run(db, "world", "load", str(world), "--policies", str(tmp_path / "nowhere"))
        assert result.exit_code == 2
        assert "no such policy folder" in result.stderr

    def test_show_empty_store(self, db):
        result = run(db, "world", "show")
        assert result.exit_code == 0
        assert json.loads(result.stdout) == {"parties": [], "users": [], "devices": [], "instructions": []}


# -- decide --------------------------------------------------------------------------------------
class TestDecide:
    def test_allowed_json(self, db, scenario, credit_file):
        result = decide(db, credit_file, "--json")
        assert result.exit_code == 0, result.output
        data = as_json(result)
        assert set(data) == DECISION_KEYS
        assert data["outcome"] == "allow"
        assert data["response_code"] == "I99"
        assert data["policy"] == "solr-contingency"
        assert datetime.fromisoformat(data["decided_at"]) == NOW
        assert data["request"]["srv"] == "1.6"
        assert data["request"]["command_variant"] == 4
        assert data["request"]["target"] == "00-DB-12-34-56-78-90-A0"
        rules = [r["rule"] for r in data["reasons"]]
        assert "R6.instruction-active" in rules and "R5.payment-mode" in rules
        assert all(r["code"] is None for r in data["reasons"])
        # Its audit entry's position, as the service answers it: the entry that records this decision.
        entry = json.loads(run(db, "audit", "show", "--kind", "decision").stdout)[-1]
        assert data["log_position"] == entry["seq"] and entry["payload"]["decision_id"] == data["decision_id"]

    def test_dry_run_leaves_the_store_byte_for_byte_unchanged(self, db, scenario, credit_file):
        before = store_bytes(db)
        result = decide(db, credit_file, "--json", "--dry-run")
        assert result.exit_code == 0, result.output
        data = as_json(result)
        assert data["outcome"] == "allow" and data["dry_run"] is True and data["log_position"] is None
        assert store_bytes(db) == before
        # Nothing was consumed: the same request is then decided for real, and allowed once.
        assert decide(db, credit_file, "--json").exit_code == 0
        assert store_bytes(db) != before
        again = decide(db, credit_file, "--json", "--dry-run")
        assert as_json(again)["reasons"][0]["rule"] == "R6.counter-fresh"

    def test_dry_run_text_says_so(self, db, scenario, credit_file):
        result = decide(db, credit_file, "--dry-run")
        assert result.exit_code == 0 and "dry run: nothing was recorded" in result.stdout

    def test_refused_json(self, db, scenario, tmp_path):
        path = tmp_path / "prepay.xml"
        path.write_bytes(scenario.requests().switch_to_prepayment(scenario.device(SC_METER)))
        result = decide(db, path, "--json")
        assert result.exit_code == 1
        data = as_json(result)
        assert data["outcome"] == "reject"
        assert data["response_code"] == "E12"
        assert data["reasons"] == [
            {"rule": "R5.payment-mode", "code": "E12", "message": "the request switches the Payment Mode to Prepayment; only Credit is allowed"}
        ]

    def test_refused_device_of_another_supplier(self, db, scenario, tmp_path):
        path = tmp_path / "other.xml"
        path.write_bytes(scenario.requests().switch_to_credit(scenario.device(OTHER_METER)))
        result = decide(db, path, "--json")
        assert result.exit_code == 1
        data = as_json(result)
        assert data["response_code"] == "E4"
        assert ("R6.device-of-failed-supplier", "E4") in [(r["rule"], r["code"]) for r in data["reasons"]]

    def test_stdin(self, db, scenario):
        raw = scenario.requests().switch_to_credit(scenario.device(SC_METER))
        result = decide(db, "-", "--json", input=raw)
        assert result.exit_code == 0, result.output
        assert as_json(result)["outcome"] == "allow"

    def test_stdin_refused(self, db, scenario):
        raw = scenario.requests().switch_to_prepayment(scenario.device(SC_METER))
        result = decide(db, "-", "--json", input=raw)
        assert result.exit_code == 1
        assert as_json(result)["response_code"] == "E12"

    def test_now_is_honoured(self, db, scenario, credit_file):
        # The instruction runs from NOW - 1 day to NOW + 30 days.
        late = decide(db, credit_file, "--json", now=NOW + timedelta(days=40))
        assert late.exit_code == 1
        data = as_json(late)
        assert data["response_code"] == "E3"
        assert [(r["rule"], r["code"]) for r in data["reasons"]] == [("R6.instruction-active", "E3")]
        assert datetime.fromisoformat(data["decided_at"]) == NOW + timedelta(days=40)
        # A refused request leaves no counter behind: the same bytes, in the window, pass.
        in_window = decide(db, credit_file, "--json", now=NOW + timedelta(days=29))
        assert in_window.exit_code == 0
        assert as_json(in_window)["outcome"] == "allow"

    def test_now_with_offset(self, db, scenario, credit_file):
        # An offset other than Z: the same instant, just past the end of the window.
        late = (NOW + timedelta(days=30, seconds=1)).astimezone(timezone(timedelta(hours=5))).isoformat()
        result = run(db, "decide", str(credit_file), "--json", "--policies", str(POLICIES), "--now", late)
        assert result.exit_code == 1
        assert as_json(result)["response_code"] == "E3"

    def test_without_now_uses_the_clock(self, db, scenario, credit_file):
        result = decide(db, credit_file, "--json", now=None)
        assert result.exit_code == 0, result.output
        decided = datetime.fromisoformat(as_json(result)["decided_at"])
        assert abs(decided - datetime.now(timezone.utc)) < timedelta(minutes=5)

    def test_state_persists_between_runs(self, db, scenario, credit_file):
        assert decide(db, credit_file, "--json").exit_code == 0
        replay = decide(db, credit_file, "--json")
        assert replay.exit_code == 1
        assert [r["rule"] for r in as_json(replay)["reasons"]] == ["R6.counter-fresh"]
        store = SqliteStore(db)
        try:
            assert [e.payload_data()["outcome"] for e in store.audit_entries(kind="decision")] == ["allow", "reject"]
            assert store.verify_audit().intact
        finally:
            store.close()

    def test_missing_file(self, db, scenario, tmp_path):
        result = decide(db, tmp_path / "absent.xml", "--json")
        assert result.exit_code == 2
        assert "cannot read" in result.stderr and "absent.xml" in result.stderr
        assert result.stdout == ""

    def test_an_input_too_large_to_be_a_request_is_not_read_whole(self, db, scenario, tmp_path):
        # As the service's body limit: a usage error, nothing decided; read one byte past the
        # limit only, so a huge file (or /dev/zero, an endless pipe) costs no memory or time.
        huge = tmp_path / "huge.xml"
        with open(huge, "wb") as handle:
            handle.truncate(64 * 1024 * 1024)  # sparse: no disk used
        for command in ("decide", "verify"):
            tracemalloc.start()
            try:
                result = run(db, command, str(huge))
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert result.exit_code == 2, result.output
            assert f"larger than {MAX_REQUEST_BYTES:,} bytes" in result.stderr and result.stdout == ""
            no_traceback(result)
            assert peak < 16 * 1024 * 1024, f"{command}: {peak:,} bytes allocated for a 64 MiB file"
        store = SqliteStore(db)
        try:
            assert store.audit_entries(kind="decision") == []
        finally:
            store.close()

    @pytest.mark.parametrize(
        "now, says", [("yesterday", "is not an ISO 8601 date-time"), ("2026-11-22T10:00:00", "give a time zone")]
    )
    def test_bad_now(self, db, scenario, credit_file, now, says):
        result = run(db, "decide", str(credit_file), "--json", "--policies", str(POLICIES), "--now", now)
        assert result.exit_code == 2
        assert "--now" in result.stderr and says in result.stderr
        assert result.stdout == ""
        no_traceback(result)

    def test_bad_policies_folder(self, db, scenario, credit_file, tmp_path):
        result = run(db, "decide", str(credit_file), "--policies", str(tmp_path / "nowhere"))
        assert result.exit_code == 2
        assert "no such policy folder" in result.stderr

    @pytest.mark.parametrize(
        "raw, rule",
        [
            (b"\x00\xff\xfe garbage \x80\x81<<<", "xml.malformed"),
            (b"", "xml.empty"),
            (b"<sr:Request xmlns:sr='http://www.dccinterface.co.uk/ServiceUserGateway'", "xml.malformed"),
            (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "xml.dtd"),
        ],
    )
    def test_garbage_input(self, db, scenario, tmp_path, raw, rule):
        path = tmp_path / "garbage.bin"
        path.write_bytes(raw)
        result = decide(db, path, "--json")
        assert result.exit_code == 1
        no_traceback(result)
        data = as_json(result)
        assert data["outcome"] == "reject"
        assert data["request"] is None
        assert [r["rule"] for r in data["reasons"]] == [rule]

    def test_unsigned_request(self, db, scenario, tmp_path):
        from solr_policy.testing.scenario import request_document

        path = tmp_path / "unsigned.xml"
        path.write_bytes(request_document(originator=scenario.user_eui, target=scenario.device(SC_METER), counter=5, srv="1.6", cv=4,
                                          body="<sr:UpdatePaymentMode><sr:Credit/></sr:UpdatePaymentMode>"))
        result = decide(db, path, "--json")
        assert result.exit_code == 1
        assert [r["rule"] for r in as_json(result)["reasons"]] == ["signature.missing"]

    def test_text_output_refused(self, db, scenario, tmp_path):
        path = tmp_path / "prepay.xml"
        path.write_bytes(scenario.requests().switch_to_prepayment(scenario.device(SC_METER)))
        result = decide(db, path)
        assert result.exit_code == 1
        lines = result.stdout.splitlines()
        assert lines[0] == "REJECT (E12)  SRV 1.6 CV 4 from 90-B3-D5-1F-30-0F-00-01 to 00-DB-12-34-56-78-90-A0"
        assert lines[1:] == ["  - R5.payment-mode [E12]: the request switches the Payment Mode to Prepayment; only Credit is allowed"]

    def test_text_output_allowed(self, db, scenario, credit_file):
        result = decide(db, credit_file)
        assert result.exit_code == 0
        assert result.stdout.startswith("ALLOW (I99)  SRV 1.6 CV 4 from 90-B3-D5-1F-30-0F-00-01")
        assert "  - R6.instruction-active: active Authority instruction(s): OFGEM-SOLR-2026-001" in result.stdout

    def test_text_output_garbage(self, db, scenario, tmp_path):
        path = tmp_path / "garbage.bin"
        path.write_bytes(b"not xml at all")
        result = decide(db, path)
        assert result.exit_code == 1
        assert result.stdout.startswith("REJECT (no DUIS code)\n  - xml.malformed: ")
        no_traceback(result)


# -- the real console entry point ---------------------------------------------------------------
def test_main_exit_codes(db, scenario, credit_file, tmp_path):
    """``main()`` in a real process: 0 allow, 1 reject (here a replay of the same bytes), 2 usage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLR_POLICY_")}
    env["PYTHONPATH"] = str(ROOT)

    def main(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "solr_policy.cli", "--db", str(db), *args],
            capture_output=True, env=env, cwd=tmp_path, timeout=60,
        )

    common = ("--json", "--policies", str(POLICIES), "--now", iso(NOW))
    allowed = main("decide", str(credit_file), *common)
    assert allowed.returncode == 0, allowed.stderr.decode()
    assert json.loads(allowed.stdout)["response_code"] == "I99"

    replay = main("decide", str(credit_file), *common)
    assert replay.returncode == 1, replay.stderr.decode()
    assert [r["rule"] for r in json.loads(replay.stdout)["reasons"]] == ["R6.counter-fresh"]

    missing = main("decide", str(tmp_path / "absent.xml"), *common)
    assert missing.returncode == 2
    assert b"cannot read" in missing.stderr and b"Traceback" not in missing.stderr
    assert missing.stdout == b""
