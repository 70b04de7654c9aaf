"""Several processes deciding against ONE store at once, as several nodes do: nothing lost,
nothing counted twice, no request allowed twice (some are sent by two processes at once).
And a process deciding with group commit killed with SIGKILL (admission in its threads, or in
worker processes of its own): nothing answered is lost.
Decisions, counters, ADT usage, quarantine and the audit chain must add up exactly. Runs on
an SQLite file and on a PostgreSQL database (each process with its own connection pool)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from solr_policy.testing.scenario import SolrScenario
from solr_policy.store import open_store

from store import pg

POLICIES = Path(__file__).resolve().parents[1] / "policies"
# 10:30 UTC today: inside the validity of the certificates the test PKI issues now.
NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)
WORKERS = 4
REQUESTS = 120
# Low enough that the threshold is reached whatever the interleaving (each worker's own
# share alone holds more than PER_HOUR fresh counters), so quarantine is exercised too.
PER_HOUR = 12
FIRST_COUNTER = 1001
# Every DUPLICATE_EVERY-th request is sent by two processes at once.
DUPLICATE_EVERY = 10


def _worker(index: int, db: str, policies: str, raws: list[bytes], now: str, barrier, results) -> None:
    """One process: its own store connection and engine; decide its share at a fixed time."""
    try:
        from solr_policy.engine import Engine
        from solr_policy.policy import PolicySet

        store = open_store(db)
        engine = Engine(store, PolicySet.load_dir(policies))
        when = datetime.fromisoformat(now)
        barrier.wait(timeout=60)
        out = []
        for raw in raws:
            decision = engine.decide(raw, now=when)
            out.append(
                {
                    "counter": decision.request["counter"] if decision.request else None,
                    "target": decision.request["target"] if decision.request else None,
                    "outcome": decision.outcome,
                    "code": decision.response_code,
                    "rules": [r.rule for r in decision.reasons],
                    "quarantine_id": decision.quarantine_id,
                }
            )
        store.close()
        results.put((index, out, None))
    except BaseException as exc:  # noqa: BLE001 - report to the parent instead of hanging it
        results.put((index, [], f"{type(exc).__name__}: {exc}"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_db(request, tmp_path, pki):
    if request.param == "postgres":
        db = pg.store_url(tmp_path)
        request.addfinalizer(lambda: pg.give_back(tmp_path))
    else:
        db = str(tmp_path / "shared.db")
    store = open_store(db)
    scenario = SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": PER_HOUR, "per_day": 1000}}).install(store, now=NOW)
    ask = scenario.requests(counter=FIRST_COUNTER - 1)
    targets = [scenario.device("electricity meter (SMETS1)"), scenario.device("gas meter (SMETS1)")]
    other = scenario.device("other Supplier's electricity meter")
    raws = []
    for n in range(REQUESTS):
        # Every 20th request goes to another Supplier's meter: refused whatever the order.
        device = other if n % 20 == 19 else targets[n % 2]
        raws.append(ask.switch_to_credit(device, counter=FIRST_COUNTER + n))
    store.close()
    return db, scenario, raws


def test_processes_sharing_one_database_add_up_exactly(shared_db):
    db, scenario, raws = shared_db
    other = scenario.device("other Supplier's electricity meter")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    shares = [raws[i::WORKERS] for i in range(WORKERS)]  # interleaved counters: replays happen
    # The same request from two processes at once: each copy at the same place in its share.
    twice = raws[::DUPLICATE_EVERY]
    for n, raw in enumerate(twice):
        owner = raws.index(raw) % WORKERS
        other_share = shares[(owner + 1) % WORKERS]
        other_share.insert(min(shares[owner].index(raw), len(other_share)), raw)
    processes = [
        ctx.Process(target=_worker, args=(i, db, str(POLICIES), shares[i], NOW.isoformat(), barrier, results))
        for i in range(WORKERS)
    ]
    for p in processes:
        p.start()
    try:
        returned = [results.get(timeout=120) for _ in processes]
    finally:
        for p in processes:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errors = [err for _, _, err in returned if err]
    assert not errors, errors
    assert all(p.exitcode == 0 for p in processes)
    decided = [d for _, out, _ in returned for d in out]
    assert len(decided) == REQUESTS + len(twice)
    assert sorted({d["counter"] for d in decided}) == list(range(FIRST_COUNTER, FIRST_COUNTER + REQUESTS))
    # No request allowed (or held) twice: a counter is taken once, whichever copy won.
    taken_per_counter = Counter(d["counter"] for d in decided if d["outcome"] != "reject")
    assert max(taken_per_counter.values()) == 1

    outcomes = Counter(d["outcome"] for d in decided)
    allowed, quarantined = outcomes["allow"], outcomes["quarantine"]
    assert allowed + quarantined + outcomes["reject"] == len(decided)
    assert allowed >= 1 and quarantined >= 1
    # The threshold is checked and counted in one transaction: never more than PER_HOUR
    # allowed, and nothing quarantined before PER_HOUR were.
    assert allowed <= PER_HOUR
    assert quarantined == 0 or allowed == PER_HOUR

    for d in decided:
        if d["target"].replace("-", "") == other:
            assert d["outcome"] == "reject" and d["code"] == "E4"
        elif d["outcome"] == "reject":
            assert d["rules"] == ["R6.counter-fresh"], d  # the only other reason to refuse: a replay

    store = open_store(db)
    try:
        # One decision audit entry per request decided, with the outcome the worker saw.
        entries = store.audit_entries(kind="decision")
        assert len(entries) == len(decided)
        payloads = [e.payload_data() for e in entries]
        assert Counter(p["outcome"] for p in payloads) == outcomes
        assert Counter((p["request"]["counter"], p["outcome"]) for p in payloads) == Counter((d["counter"], d["outcome"]) for d in decided)

        # In commit order, the counters taken (allow or quarantine) strictly increase, and
        # every replay refused was at or below the counter last taken before it.
        last = None
        for p in payloads:
            counter = p["request"]["counter"]
            if p["outcome"] != "reject":
                assert last is None or counter > last
                last = counter
            elif [r["rule"] for r in p["reasons"]] == ["R6.counter-fresh"]:
                assert last is not None and counter <= last
        taken = [d["counter"] for d in decided if d["outcome"] != "reject"]
        assert store.get_counter(scenario.user_eui) == max(taken) == last

        # ADT usage counts exactly the allowed requests, in the hour and in the day window.
        rows = store.all_adt_usage()
        hour = [r for r in rows if r.period == "hour"]
        day = [r for r in rows if r.period == "day"]
        assert [r.window_start for r in hour] == [NOW.strftime("%Y-%m-%dT%H:00Z")]
        assert [r.window_start for r in day] == [NOW.strftime("%Y-%m-%d")]
        assert sum(r.count for r in hour) == allowed == sum(r.count for r in day)

        # Every quarantine outcome, and only those, is durably held.
        held = store.list_quarantine()
        assert len(held) == quarantined
        assert sorted(q.id for q in held) == sorted(d["quarantine_id"] for d in decided if d["outcome"] == "quarantine")
        assert all(q.status == "held" for q in held)
        assert sorted(q.counter for q in held) == sorted(d["counter"] for d in decided if d["outcome"] == "quarantine")

        # The chain is intact and every seq is there exactly once.
        check = store.verify_audit()
        assert check.intact, check.message
        seqs = [e.seq for e in store.audit_entries()]
        assert seqs == list(range(1, len(seqs) + 1)) and check.entries == len(seqs)
    finally:
        store.close()


def _group_commit_child(db: str, policies: str, raws: list[bytes], now: str, conn) -> None:
    """Decides with group commit from three threads; sends each answer the moment it has it."""
    from solr_policy.engine import Engine
    from solr_policy.policy import PolicySet

    engine = Engine(open_store(db), PolicySet.load_dir(policies), group_commit=True, group_max=16, group_wait=0.003)
    when = datetime.fromisoformat(now)
    send = threading.Lock()

    def caller(share: list[bytes]) -> None:
        for raw in share:
            d = engine.decide(raw, now=when)
            with send:
                conn.send((d.request["counter"], d.outcome, d.decision_id))

    threads = [threading.Thread(target=caller, args=(raws[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conn.send(None)


def _pool_child(db: str, policies: str, raws: list[bytes], now: str, conn) -> None:
    """Decides the stream with admission in two worker processes; sends each answer (and the
    workers' pids first) the moment it has it."""
    from solr_policy.engine import Engine
    from solr_policy.policy import PolicySet

    engine = Engine(open_store(db), PolicySet.load_dir(policies))
    for n, d in enumerate(engine.decide_many(raws, now=datetime.fromisoformat(now), batch=8, workers=2, processes=True)):
        if n == 0:
            conn.send([p.pid for p in multiprocessing.active_children()])
        conn.send((d.request["counter"], d.outcome, d.decision_id))
    conn.send(None)


@pytest.mark.parametrize("admission", ["threads", "processes"])
def test_kill_9_during_group_commit_loses_nothing_answered(shared_db, admission):
    """kill -9 while transactions of many decisions are in flight: every decision a caller was
    given is in the store with the outcome it was given; the store is whole and consistent.
    With admission in worker processes, the orphaned workers end too."""
    db, scenario, raws = shared_db
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    target = _group_commit_child if admission == "threads" else _pool_child
    process = ctx.Process(target=target, args=(db, str(POLICIES), raws, NOW.isoformat(), child))
    process.start()
    workers: list[int] = []
    if admission == "processes":
        assert parent.poll(120), "no answer from the deciding process"
        workers = parent.recv()
        assert workers, "the deciding process started no worker"
    child.close()
    answered = []
    try:
        while len(answered) < REQUESTS // 3:
            assert parent.poll(120), "no answer from the deciding process"
            message = parent.recv()
            assert message is not None, "the process finished before it could be killed"
            answered.append(message)
        os.kill(process.pid, signal.SIGKILL)
        # Answers already in the pipe were given before the kill: they count too.
        while parent.poll(0.5):
            try:
                message = parent.recv()
            except EOFError:
                break
            if message is None:
                break
            answered.append(message)
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    assert process.exitcode == -signal.SIGKILL
    store = open_store(db)
    try:
        check = store.verify_audit()
        assert check.intact, check.message
        recorded = {p["decision_id"]: p for p in (e.payload_data() for e in store.audit_entries(kind="decision"))}
        # Nothing answered is lost: each answer is recorded, with the outcome given.
        for counter, outcome, decision_id in answered:
            assert decision_id in recorded, (counter, outcome)
            assert recorded[decision_id]["outcome"] == outcome
        # Whatever was committed but not answered is whole: counter, usage and log agree.
        taken = [p["request"]["counter"] for p in recorded.values() if p["outcome"] != "reject"]
        assert store.get_counter(scenario.user_eui) == max(taken)
        allowed = sum(1 for p in recorded.values() if p["outcome"] == "allow")
        assert sum(r.count for r in store.all_adt_usage() if r.period == "hour") == allowed
        assert len(store.list_quarantine()) == sum(1 for p in recorded.values() if p["outcome"] == "quarantine")
        assert len(recorded) < REQUESTS  # killed before the end: the test did test a kill
    finally:
        store.close()
    for pid in workers:  # each worker sees its parent gone and exits (not a process left waiting for ever)
        assert _gone(pid, timeout=30), f"admission worker {pid} outlived its killed parent"


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie counts as gone: its parent (init, or a subreaper) reaps it
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False
