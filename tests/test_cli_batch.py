"""``solr-policy decide --batch``: a folder, a file of base64 lines and stdin give the same
decisions as deciding each alone, with admission in threads or in worker processes; unreadable
lines are named, not decided; a JSON summary."""

from __future__ import annotations

import base64
import json
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from solr_policy.cli import cli
from solr_policy.service.config import MAX_REQUEST_BYTES
from solr_policy.store import SqliteStore
from solr_policy.testing.scenario import SolrScenario

NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)
NOW_TEXT = NOW.isoformat().replace("+00:00", "Z")


def run(db: Path, *args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, ["--db", str(db), "--log-level", "WARNING", *args], input=input)


@pytest.fixture()
def batch(tmp_path, pki):
    db = tmp_path / "solr.db"
    store = SqliteStore(db)
    scenario = SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": 3, "per_day": 100}}).install(store, now=NOW)
    store.close()
    ask = scenario.requests(counter=10)
    meter = scenario.device("electricity meter (SMETS1)")
    raws = [ask.switch_to_credit(meter) for _ in range(4)]
    raws.insert(2, raws[1])  # a replay
    raws.append(ask.switch_to_credit(scenario.device("other Supplier's electricity meter")))
    return db, raws


def _lines(raws: list[bytes]) -> bytes:
    return b"".join(base64.b64encode(r) + b"\n" for r in raws)


EXPECTED = ["allow", "allow", "reject", "allow", "quarantine", "reject"]


@pytest.mark.parametrize("form,admission", [("file", "threads"), ("folder", "auto"), ("stdin", "auto"), ("file", "processes"), ("stdin", "processes")])
def test_batch_forms_decide_in_order(batch, tmp_path, form, admission):
    db, raws = batch
    feed = None
    if form == "file":
        source = tmp_path / "requests.b64"
        source.write_bytes(_lines(raws[:3]) + b"not base64 at all!\n\n" + _lines(raws[3:]))
        where = str(source)
    elif form == "folder":
        source = tmp_path / "requests"
        source.mkdir()
        for n, raw in enumerate(raws):
            (source / f"{n:03d}.xml").write_bytes(raw)
        where = str(source)
    else:
        where, feed = "-", _lines(raws)
    out = tmp_path / "decisions.jsonl"
    result = run(db, "decide", "--batch", where, "--now", NOW_TEXT, "--group", "2", "--decisions", str(out), "--admission", admission,
                 "--workers", "2", input=feed)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["decided"] == len(raws)
    assert (summary["allow"], summary["reject"], summary["quarantine"]) == (3, 2, 1)
    assert summary["not_allowed_by_rule"] == {"R6.counter-fresh": 1, "R6.device-of-failed-supplier": 1, "R4.adt-threshold": 1}
    decided = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["outcome"] for d in decided] == EXPECTED
    if form == "file":
        assert summary["unreadable"] == 1
        assert summary["unreadable_lines"] == [{"where": f"{where} line 4", "error": "not base64"}]
        assert decided[3]["source"] == f"{where} line 6"
    store = SqliteStore(db)
    try:
        assert len(store.audit_entries(kind="decision")) == len(raws)
        assert store.verify_audit().intact
    finally:
        store.close()


def test_batch_usage_errors(batch, tmp_path):
    db, raws = batch
    missing = run(db, "decide", "--batch", str(tmp_path / "nope.b64"))
    assert missing.exit_code == 2 and "cannot read" in missing.output and "Traceback" not in missing.output
    both = run(db, "decide", "x.xml", "--batch", "-")
    assert both.exit_code == 2 and "--batch takes no SOURCE" in both.output


def _peak_allocated(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_batch_names_a_file_or_line_too_large_to_be_a_request_without_holding_it(batch, tmp_path):
    """Larger than the service's body limit: named, not decided, and never read whole (a huge
    file, a stream with no line break); the rest of the batch is decided."""
    db, raws = batch
    folder = tmp_path / "requests"
    folder.mkdir()
    (folder / "000.xml").write_bytes(raws[0])
    with open(folder / "001.xml", "wb") as huge:
        huge.truncate(64 * 1024 * 1024)  # sparse: no disk used
    results = []
    peak = _peak_allocated(lambda: results.append(run(db, "decide", "--batch", str(folder), "--now", NOW_TEXT)))
    summary = json.loads(results[0].stdout)
    assert results[0].exit_code == 0, results[0].output
    assert (summary["decided"], summary["allow"]) == (1, 1)
    assert summary["unreadable_lines"] == [{"where": str(folder / "001.xml"), "error": f"larger than {MAX_REQUEST_BYTES:,} bytes"}]
    assert peak < 16 * 1024 * 1024, f"{peak:,} bytes allocated for a 64 MiB file"

    long_line = b"A" * (24 * 1024 * 1024)  # base64 of 18 MiB, without a line break until its end
    feed = long_line + b"\n" + _lines(raws[1:2])
    results.clear()
    peak = _peak_allocated(lambda: results.append(run(db, "decide", "--batch", "-", "--now", NOW_TEXT, input=feed)))
    summary = json.loads(results[0].stdout)
    assert (summary["decided"], summary["allow"]) == (1, 1)
    assert summary["unreadable_lines"] == [{"where": "stdin line 1", "error": f"larger than {MAX_REQUEST_BYTES:,} bytes"}]
    assert peak < 16 * 1024 * 1024, f"{peak:,} bytes allocated for a {len(long_line):,} byte line"
    store = SqliteStore(db)
    try:
        assert len(store.audit_entries(kind="decision")) == 2  # the oversize ones decided nothing
    finally:
        store.close()
