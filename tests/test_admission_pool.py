"""Admission in worker processes (``Engine.decide_many(..., processes=True)``, engine/pool.py)
decides exactly as admission in threads: same outcomes, rule ids, counters, ADT usage,
quarantine and audit chain, on a mixed batch. A worker that raises refuses only its request; a
worker that dies, or cannot start, ends the run with a clear error, never a hang; closing the
stream early stops the workers. The kill -9 durability test for the process path is in
test_multiprocess.py."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from solr_policy.bulk import BatchItem, decide_batch
from solr_policy.engine import Engine, pool
from solr_policy.engine.admit import InputRefusal
from solr_policy.engine.pool import AUTO_MIN_REQUESTS, AdmissionFailed, AdmissionSetup, ProcessesUnavailable
from solr_policy.policy import PolicySet
from solr_policy.store import SqliteStore

from test_group_commit import NOW, POLICIES, _fingerprint, _sequence, world  # noqa: F401 - the same world, mixed batch and fingerprint

# Long enough for a loaded machine to spawn workers; far shorter than a hang.
DEADLINE_S = 120


def _mixed(first, second) -> list[bytes]:
    """test_group_commit's sequence (allowed, quarantined, replays, prepayment, another
    Supplier's meter, malformed, altered after signing) with a wrong SRV and Pre-Commands."""
    raws = _sequence(first, second)
    ask = first.requests(counter=900)
    elec = first.device("electricity meter (SMETS1)")
    tampered = ask.switch_to_credit(elec, counter=923).replace(b":923<", b":924<")  # changed after signing
    assert tampered.count(b":924<") == 1
    raws[7:7] = [ask.update_meter_balance(elec), ask.signed_pre_command(first.device("electricity meter (SMETS2)"), 0x001A),
                 ask.signed_pre_command(elec, 0x001A, payload=b"\xdf\x09"), b"", b"\xff" * 40, tampered]
    return raws


def _engine(path: Path) -> Engine:
    return Engine(SqliteStore(path), PolicySet.load_dir(POLICIES))


def _no_children_left(timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while multiprocessing.active_children():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_processes_decide_exactly_as_threads(world, tmp_path):
    seed, first, second = world
    raws = _mixed(first, second)
    results = {}
    for how in ("threads", "processes"):
        path = tmp_path / f"{how}.db"
        shutil.copy(seed, path)
        engine = _engine(path)
        try:
            decided = list(engine.decide_many(raws, now=NOW, batch=4, workers=2, processes=how == "processes"))
        finally:
            engine.store.close()
        results[how] = _fingerprint(path, decided)
    expected = results["threads"]
    rules = Counter(rule for d in expected["decisions"] for rule in d[2])
    # The batch holds what must come out the same: every outcome and the refusals at each stage.
    assert {d[0] for d in expected["decisions"]} == {"allow", "reject", "quarantine"}
    assert {"R6.counter-fresh", "R5.payment-mode", "R6.device-of-failed-supplier", "R4.adt-threshold"} <= set(rules), rules
    assert "R3.srv-allowed" in rules and "R5.gbcs-message-code" in rules, rules  # the wrong SRV (1.5), a bad GBCS payload
    assert any(r.startswith("xml.") for r in rules) and any(r.startswith("signature.") for r in rules), rules
    assert len(expected["decisions"]) == len(raws) and expected["intact"]
    assert results["processes"] == expected
    assert _no_children_left()


def test_auto_chooses_processes_only_for_long_input_on_a_reopenable_store(world, tmp_path):
    seed, _, _ = world
    engine = _engine(seed)
    try:
        short = [b"%d" % n for n in range(AUTO_MIN_REQUESTS - 1)]
        raws, setup = pool.choose(engine, iter(short), None)
        assert setup is None and list(raws) == short
        long = [b"%d" % n for n in range(AUTO_MIN_REQUESTS + 5)]
        raws, setup = pool.choose(engine, iter(long), None)
        assert setup is not None and setup.store == str(seed.resolve()) and list(raws) == long  # nothing lost in looking
        assert pool.choose(engine, long, False)[1] is None
    finally:
        engine.store.close()


def test_processes_refused_for_a_store_no_other_process_can_open(world):
    engine = Engine(_NotReopenable(), PolicySet.load_dir(POLICIES))  # type: ignore[arg-type]
    with pytest.raises(ProcessesUnavailable):
        list(engine.decide_many([b"x"], now=NOW, processes=True))
    assert pool.choose(engine, [b"x"] * (AUTO_MIN_REQUESTS + 1), None)[1] is None  # auto: threads


class _NotReopenable:
    """A store object that is neither an SQLite file nor a PostgreSQL URL."""


def test_an_exception_in_admission_refuses_only_that_request(world, tmp_path, monkeypatch):
    """In a worker, a request that makes admission raise is refused (engine.internal-error) and
    recorded; the others of its chunk are admitted as usual."""
    seed, first, _ = world
    ask = first.requests(counter=100)
    raws = [ask.switch_to_credit(first.device("gas meter (SMETS1)")) for _ in range(3)]
    real = pool.admit

    def flaky(raw, verifier, when, **kwargs):
        if raw is raws[1]:
            raise RuntimeError("boom")
        return real(raw, verifier, when, **kwargs)

    # The worker's own function, run here: a spawned worker cannot be monkeypatched.
    engine = _engine(seed)
    setup = pool.setup_for(engine)
    engine.store.close()
    assert setup is not None
    previous = signal.getsignal(signal.SIGINT)
    try:
        pool._start_worker(setup)
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.setattr(pool, "admit", flaky)
    generation, admitted = pool._result(_done(pool._admit_chunk(raws, NOW)), 1)
    assert generation is not None  # the certificates' generation, checked by the writer
    assert [type(a).__name__ for _, _, a in admitted] == ["Admitted", "InputRefusal", "Admitted"]
    refusal = admitted[1][2]
    assert isinstance(refusal, InputRefusal) and refusal.rule == "engine.internal-error" and "RuntimeError" in refusal.message
    # Decided and recorded from what came back, as the writer does.
    from solr_policy.engine import Pending

    engine = _engine(seed)
    try:
        decisions = engine.decide_group([Pending(raw, when, did, a, generation) for raw, (when, did, a) in zip(raws, admitted)])
        assert [d.outcome for d in decisions] == ["allow", "reject", "allow"]
        assert [r.rule for r in decisions[1].reasons] == ["engine.internal-error"]
        assert engine.store.verify_audit().intact
    finally:
        engine.store.close()


def _done(data: bytes):
    from concurrent.futures import Future

    future: Future[bytes] = Future()
    future.set_result(data)
    return future


def test_the_compact_form_rebuilds_what_admission_made(world):
    """What the writer unpickles equals what admission built (models, signer, signed bytes)."""
    import pickle

    seed, first, _ = world
    ask = first.requests(counter=100)
    elec = first.device("electricity meter (SMETS2)")
    raws = [ask.switch_to_credit(elec), ask.switch_to_prepayment(elec), ask.signed_pre_command(elec, 0x001A), b"<x/>"]
    engine = _engine(seed)
    try:
        made = [(p.now, p.decision_id, p.admitted) for p in (engine.prepare(raw, NOW) for raw in raws)]
    finally:
        engine.store.close()
    generation, back = pickle.loads(pool._dumps((7, made)))
    assert generation == 7 and back == made
    assert back[0][2].signer is back[1][2].signer  # one copy of the User's signer per chunk
    assert back[2][2].gbcs is not None and back[2][2].request.body.kind == "SignedPreCommand"
    with pytest.raises(Exception):  # frozen, as built
        back[0][2].request.header.request_id.counter = 1


def test_a_killed_worker_ends_the_batch_with_a_clear_error(world, tmp_path):
    """SIGKILL to a worker mid-stream: the batch stops with an error in its summary within the
    deadline; what was decided before is recorded and whole; no worker is left running."""
    seed, first, _ = world
    ask = first.requests(counter=100)
    gas = first.device("gas meter (SMETS1)")
    raws = [ask.switch_to_credit(gas) for _ in range(60)]
    path = tmp_path / "killed.db"
    shutil.copy(seed, path)
    engine = _engine(path)
    killed: list[int] = []

    def items():
        for n, raw in enumerate(raws):
            if n == 24:  # chunks of 4: several are in flight by now
                victims = [p for p in multiprocessing.active_children() if p.is_alive()]
                assert victims, "no worker process to kill"
                os.kill(victims[0].pid, signal.SIGKILL)
                killed.append(victims[0].pid)
            yield BatchItem(f"item {n}", raw)

    out: dict = {}
    runner = threading.Thread(target=lambda: out.update(summary=decide_batch(engine, items(), now=NOW, group=4, workers=2, processes=True)))
    started = time.monotonic()
    runner.start()
    runner.join(DEADLINE_S)
    assert not runner.is_alive(), "the batch hung after a worker was killed"
    assert killed and time.monotonic() - started < DEADLINE_S
    summary = out["summary"]
    assert summary.error is not None and "worker" in summary.error and "the rest not decided" in summary.error
    assert summary.decided < len(raws)
    assert summary.record()["error"] == summary.error
    try:
        assert engine.store.verify_audit().intact
        recorded = engine.store.audit_entries(kind="decision")
        assert len(recorded) == summary.decided  # every decision given is recorded, nothing more
        assert engine.store.get_counter(first.user_eui) == (100 + summary.decided if summary.decided else None)
    finally:
        engine.store.close()
    assert _no_children_left()


def test_a_worker_that_cannot_start_is_a_clear_error(tmp_path):
    folder = tmp_path / "not-a-store"
    folder.mkdir()
    setup = AdmissionSetup(str(folder), None, _limits(), "fast")
    started = time.monotonic()
    with pytest.raises(AdmissionFailed, match="worker"):
        list(pool.admit_in_processes(setup, [b"<x/>"] * 10, now=NOW, batch=4, workers=2))
    assert time.monotonic() - started < DEADLINE_S
    assert _no_children_left()


def _limits():
    from solr_policy.duis.parser import DEFAULT_LIMITS

    return DEFAULT_LIMITS


def test_closing_the_stream_early_stops_the_workers(world, tmp_path):
    seed, first, _ = world
    ask = first.requests(counter=100)
    gas = first.device("gas meter (SMETS1)")
    raws = [ask.switch_to_credit(gas) for _ in range(40)]
    path = tmp_path / "closed.db"
    shutil.copy(seed, path)
    engine = _engine(path)
    try:
        decisions = engine.decide_many(raws, now=NOW, batch=4, workers=2, processes=True)
        taken = [next(decisions) for _ in range(5)]
        assert multiprocessing.active_children()
        decisions.close()
        assert _no_children_left()
        assert [d.outcome for d in taken] == ["allow"] * 5
        # Decided in whole groups: what was handed out, and the rest of its group, is recorded.
        assert len(engine.store.audit_entries(kind="decision")) == 8 and engine.store.verify_audit().intact
    finally:
        engine.store.close()


def test_now_left_to_the_workers_is_each_request_s_own_time(world, tmp_path):
    seed, first, _ = world
    ask = first.requests(counter=100)
    raws = [ask.switch_to_credit(first.device("gas meter (SMETS1)")) for _ in range(3)]
    engine = _engine(seed)
    setup = pool.setup_for(engine)
    engine.store.close()
    assert setup is not None
    before = datetime.now(NOW.tzinfo)
    groups = list(pool.admit_in_processes(setup, raws, now=None, batch=2, workers=1))
    pendings = [p for g in groups for p in g]
    assert [p.raw for p in pendings] == raws and len({p.decision_id for p in pendings}) == 3
    assert all(before <= p.now <= datetime.now(NOW.tzinfo) for p in pendings)
    assert _no_children_left()


XSD_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "duis-xsd"


@pytest.mark.reference
@pytest.mark.skipif(not XSD_DIR.is_dir(), reason="../shared/reference is absent")
def test_workers_validate_against_the_engine_s_schema(world, tmp_path):
    from solr_policy.duis.xsd import DuisSchema

    seed, first, second = world
    raws = _mixed(first, second)[:12]
    # Refused only by the schema (two Credit elements): the workers must have loaded it.
    raws.insert(3, first.requests(counter=950).other(first.device("electricity meter (SMETS1)"), srv="1.6", cv=4,
                                                     body="<sr:UpdatePaymentMode><sr:Credit/><sr:Credit/></sr:UpdatePaymentMode>"))
    results = {}
    for how in ("threads", "processes"):
        path = tmp_path / f"{how}.db"
        shutil.copy(seed, path)
        engine = Engine(SqliteStore(path), PolicySet.load_dir(POLICIES), schema=DuisSchema.from_folder(XSD_DIR))
        try:
            setup = pool.setup_for(engine)
            assert setup is not None and Path(setup.schema_dir or "") == XSD_DIR.resolve()
            decided = list(engine.decide_many(raws, now=NOW, batch=4, workers=2, processes=how == "processes"))
        finally:
            engine.store.close()
        results[how] = _fingerprint(path, decided)
    assert results["threads"]["decisions"][3][2] == ["duis.schema"]
    assert results["processes"] == results["threads"]


def test_ctrl_c_stops_a_batch_and_its_workers(world, tmp_path):
    """SIGINT to ``decide --batch`` while worker processes admit: it ends with 'aborted' (exit
    2, no traceback), its workers end with it, and what was decided is recorded and whole."""
    import base64
    import subprocess
    import sys

    seed, first, _ = world
    ask = first.requests(counter=100)
    distinct = [ask.switch_to_credit(first.device("gas meter (SMETS1)")) for _ in range(20)]
    source = tmp_path / "requests.b64"
    source.write_bytes(b"".join(base64.b64encode(distinct[n % 20]) + b"\n" for n in range(20_000)))  # replays after the first 20
    db = tmp_path / "solr.db"
    shutil.copy(seed, db)
    command = [sys.executable, "-m", "solr_policy.cli", "--db", str(db), "--log-level", "WARNING", "decide", "--batch", str(source),
               "--now", NOW.isoformat(), "--group", "64", "--workers", "2", "--admission", "processes"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    try:
        workers = _wait_for_workers(process.pid, 2, timeout=DEADLINE_S)
        _wait_for_decisions(db, timeout=DEADLINE_S)  # interrupted mid-stream, not while starting
        assert process.poll() is None, "the batch finished before it could be interrupted"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 2 and b"aborted" in err and b"Traceback" not in err, err[-2000:]
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"worker {pid} outlived the interrupted batch"
    store = SqliteStore(db)
    try:
        assert store.verify_audit().intact
        decided = store.audit_entries(kind="decision")
        assert 0 < len(decided) < 20_000
    finally:
        store.close()


def _wait_for_workers(pid: int, count: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    if ppid == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                        found.append(int(entry.name))
                except (OSError, IndexError, ValueError):
                    continue
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {count} admission workers under process {pid}")


def _wait_for_decisions(db: Path, timeout: float) -> None:
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            if conn.execute("SELECT count(*) FROM audit WHERE kind = 'decision'").fetchone()[0]:
                return
        finally:
            conn.close()
        time.sleep(0.05)
    raise AssertionError("no decision was recorded")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_revocation_after_a_worker_admitted_is_seen_by_the_writer(world):
    """A worker admits a chunk with the certificates of the generation it read; a revocation
    (another node) before the writer decides it makes the writer admit it again: refused."""
    from solr_policy.records import SmkiStatus

    seed, first, _ = world
    ask = first.requests(counter=300)
    elec = first.device("electricity meter (SMETS1)")
    raws = [ask.switch_to_credit(elec) for _ in range(3)]
    engine, other = _engine(seed), SqliteStore(seed)
    try:
        setup = pool.setup_for(engine)
        assert setup is not None
        groups = pool.admit_in_processes(setup, raws, now=NOW, batch=3, workers=1, timeout=DEADLINE_S)
        (group,) = list(groups)
        assert all(p.certificates_at is not None and not isinstance(p.admitted, InputRefusal) for p in group)
        (record,) = other.find_certificates(eui=first.user_eui, role=135)
        other.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
        decided = engine.decide_group(group)
    finally:
        engine.store.close()
        other.close()
    assert [(d.outcome, d.reasons[0].rule) for d in decided] == [("reject", "signature.certificate_revoked")] * 3
