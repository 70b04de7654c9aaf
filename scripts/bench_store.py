"""Benchmark (not a test): the store under a decision's load, SQLite against PostgreSQL, in one run.

    full decision      Engine.decide, one thread: verify + rules + the decision's transaction
                       (counter, ADT usage, audit entry), a fresh RequestID counter each time;
                       rate and p50/p95/p99 latency
    decision commit    the store's share alone, one thread: a transaction that reads the User,
                       counter and ADT usage, sets the counter, counts usage, appends the audit
                       entry (what gather + commit do), rate and latency
    commit, N threads  the same from N threads, each for its own originator (PostgreSQL:
                       side by side but for the audit append; SQLite: one writer at a time)

PostgreSQL: the server of --postgres (default the local test server), in a schema made for
the run and dropped after it. Bounded: each measurement stops after --seconds.

Usage: python scripts/bench_store.py [--seconds 3] [--threads 4] [--postgres URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from solr_policy import logs  # noqa: E402
from solr_policy.engine import Engine  # noqa: E402
from solr_policy.policy import PolicySet  # noqa: E402
from solr_policy.store import open_store  # noqa: E402
from solr_policy.store.base import Store  # noqa: E402
from solr_policy.testing.scenario import SolrScenario  # noqa: E402
from solr_policy.world import User  # noqa: E402

POLICIES = Path(__file__).resolve().parents[1] / "policies"
NOW = datetime.now(timezone.utc)


def measure(fn: Callable[[], object], seconds: float) -> dict[str, float]:
    """Calls per second and latency percentiles (ms) of ``fn`` for ``seconds``."""
    fn()  # warm up
    times: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(times, n=100)
    return {"per_s": len(times) / elapsed, "p50_ms": cuts[49] * 1e3, "p95_ms": cuts[94] * 1e3, "p99_ms": cuts[98] * 1e3}


def commit_like_a_decision(store: Store, originator: str, counter: int) -> None:
    with store.transaction():
        store.get_user(originator)
        store.get_counter(originator)
        store.adt_usage(originator, "FAILED-ENERGY", "1.6", "hour", "2026-11-22T10:00Z")
        store.set_counter(originator, counter)
        store.add_adt_usage(originator, "FAILED-ENERGY", "1.6", "hour", "2026-11-22T10:00Z")
        store.append_audit("bench", {"counter": counter}, at=NOW, actor=originator, originator=originator)


def threaded_commits(store: Store, originators: list[str], seconds: float) -> float:
    """Commits per second from one thread per originator."""
    counts = [0] * len(originators)
    barrier = threading.Barrier(len(originators))

    def run(n: int) -> None:
        barrier.wait()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            counts[n] += 1
            commit_like_a_decision(store, originators[n], 10**6 + counts[n])

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(originators))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def bench(store: Store, seconds: float, threads: int) -> dict[str, object]:
    scenario = SolrScenario(thresholds={"1.6": {"per_hour": 10**9, "per_day": 10**9}}).install(store, now=NOW)
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    ask = scenario.requests(counter=1)
    device = scenario.device("electricity meter (SMETS1)")
    # Signed before: signing is not measured. Enough for 400 decisions/s.
    requests = iter([ask.switch_to_credit(device) for _ in range(int(400 * seconds) + 50)])
    outcomes: dict[str, int] = {}

    def decide() -> None:
        outcome = engine.decide(next(requests), now=NOW).outcome
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    result: dict[str, object] = {"full_decision": measure(decide, seconds), "outcomes": outcomes}
    counter = iter(range(10**7, 10**8))
    result["decision_commit"] = measure(lambda: commit_like_a_decision(store, scenario.user_eui, next(counter)), seconds)
    originators = [f"90B3D51F3010{n:04X}" for n in range(threads)]
    for eui in originators:
        store.put_user(User(id=eui, party=scenario.solr_party, role="SC"))
    result[f"decision_commit_{threads}_threads_per_s"] = threaded_commits(store, originators, seconds)
    result["audit_intact"] = store.verify_audit().intact
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logs.configure("json", level="WARNING", stream=open(os.devnull, "w"))

    results: dict[str, object] = {}
    folder = Path(tempfile.mkdtemp(prefix="solr-bench-"))
    sqlite = open_store(str(folder / "bench.db"))
    try:
        results["sqlite"] = bench(sqlite, args.seconds, args.threads)
    finally:
        sqlite.close()

    schema = f"solr_bench_{os.getpid()}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[arg-type]
        try:
            separator = "&" if "?" in args.postgres else "?"
            postgres = open_store(f"{args.postgres}{separator}options={quote(f'-csearch_path={schema}')}")
            try:
                results["postgres"] = bench(postgres, args.seconds, args.threads)
            finally:
                postgres.close()
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')  # type: ignore[arg-type]

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, result in results.items():
            assert isinstance(result, dict)
            print(f"{name}:")
            for key in ("full_decision", "decision_commit"):
                m = result[key]
                print(f"  {key:<18} {m['per_s']:7.0f} /s   p50 {m['p50_ms']:6.2f} ms   p95 {m['p95_ms']:6.2f} ms   p99 {m['p99_ms']:6.2f} ms")
            threaded = f"decision_commit_{args.threads}_threads_per_s"
            print(f"  commit, {args.threads} threads {result[threaded]:7.0f} /s")
            print(f"  outcomes {result['outcomes']}, audit intact: {result['audit_intact']}")
    ok = all(isinstance(r, dict) and set(r["outcomes"]) == {"allow"} and r["audit_intact"] for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
