"""Benchmark (not a test): requests per second on one core, in one run.

    plain signxml   XMLVerifier().verify on the same signed request, certificate given
    fast verifier   the default verifier alone, certificate given: hardened parse + signature
                    shape + crypto.fastverify (C14N, SHA-256, ECDSA P-256)
    input layer     solr-policy's parse + signature shape + store look-ups + certificate
                    checks + verify + model (Verifier.verify_request), with the fast verifier
                    and, for comparison, with signxml (input_layer_signxml_per_s)
    full decision   the above + GBCS + rules + counter and audit, durable in SQLite
                    (synchronous=FULL), a fresh RequestID counter each time:
                    full_decision_per_s             one caller, group commit (Engine.decide_many)
                    full_decision_concurrent_per_s  CALLERS threads calling Engine.decide with
                                                    group commit (one writer thread)
                    full_decision_single_tx_per_s   one caller, one transaction per decision

Usage: python scripts/bench.py [--seconds 3] [--json]   (pinned to one core)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509  # noqa: E402
from signxml import XMLVerifier  # noqa: E402

from solr_policy import logs  # noqa: E402
from solr_policy.crypto import fastverify  # noqa: E402
from solr_policy.crypto.profile import check_shape  # noqa: E402
from solr_policy.crypto.verify import Verifier  # noqa: E402
from solr_policy.duis.parser import parse_document  # noqa: E402
from solr_policy.decision import Decision  # noqa: E402
from solr_policy.engine import Engine  # noqa: E402
from solr_policy.engine.facts import uncached  # noqa: E402
from solr_policy.policy import PolicySet  # noqa: E402
from solr_policy.testing.scenario import GCS02_CREDIT, SolrScenario  # noqa: E402
from solr_policy.store import SqliteStore  # noqa: E402

POLICIES = Path(__file__).resolve().parents[1] / "policies"
CALLERS = 4


class _Shared:
    """One iterator of pre-signed requests drawn on by several threads."""

    def __init__(self, it, lock: threading.Lock) -> None:
        self.it, self.lock = it, lock

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        with self.lock:
            return next(self.it)


def rate(fn, seconds: float) -> tuple[float, int]:
    fn()  # warm up
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        fn()
        count += 1
    return count / (time.perf_counter() - start), count


def statements_per_decision(store: SqliteStore, ask, device: str, now: datetime, *, cached: bool, n: int = 50) -> float:
    """SQL statements one decision runs (admission's certificate look-ups included), counted
    by SQLite's trace hook on this thread's connection; ``cached=False``: without the static
    facts cache (each decision reads the User, instructions, ADT files and certificates)."""
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    if not cached:
        engine.static_facts.at_generation = lambda _store: uncached()  # type: ignore[method-assign]
    raws = [ask.switch_to_credit(device) for _ in range(n + 1)]
    engine.decide(raws[0], now=now)  # warm: the cache filled
    statements: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(statements.append)
    try:
        for raw in raws[1:]:
            engine.decide(raw, now=now)
    finally:
        conn.set_trace_callback(None)
    return len(statements) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    logs.configure("json", level="WARNING", stream=open(os.devnull, "w"))

    folder = Path(tempfile.mkdtemp(prefix="solr-bench-"))
    store = SqliteStore(folder / "bench.db")
    now = datetime.now(timezone.utc)
    # Thresholds far above what a run sends: this measures decisions, not quarantine.
    scenario = SolrScenario(thresholds={"1.6": {"per_hour": 10**9, "per_day": 10**9}}).install(store, now=now)
    ask = scenario.requests(counter=1)
    device = scenario.device("electricity meter (SMETS1)")
    sample = ask.switch_to_credit(device)
    cert = x509.load_pem_x509_certificate(scenario.user.cert_pem)
    verifier = Verifier(store)

    key = cert.public_key()

    def fast_verify() -> None:
        fastverify.verify(check_shape(parse_document(sample)).parts, key)

    results = {}
    results["plain_signxml_per_s"], _ = rate(lambda: XMLVerifier().verify(sample, x509_cert=cert), args.seconds)
    results["fast_verifier_per_s"], _ = rate(fast_verify, args.seconds)
    results["input_layer_per_s"], _ = rate(lambda: verifier.verify_request(sample, now=now), args.seconds)
    signxml_verifier = Verifier(store, backend="signxml")
    results["input_layer_signxml_per_s"], _ = rate(lambda: signxml_verifier.verify_request(sample, now=now), args.seconds)

    engine = Engine(store, PolicySet.load_dir(POLICIES))
    # Pre-sign enough fresh requests so that signing is not measured.
    # (four runs of the decision draw on it: one at a time, decide_many, concurrent callers)
    expected = int(results["input_layer_per_s"] * args.seconds * 4.5) + 500
    lock = threading.Lock()
    requests = [ask.switch_to_credit(device) for _ in range(expected)]
    index = _Shared(iter(requests), lock)
    outcomes: dict[str, int] = {}

    def count(decision: Decision) -> None:
        outcomes[decision.outcome] = outcomes.get(decision.outcome, 0) + 1

    def decide() -> None:
        count(engine.decide(next(index), now=now))

    results["full_decision_single_tx_per_s"], _ = rate(decide, args.seconds)

    # Group commit, one caller: decide_many over a stream of fresh requests, for the same time.
    many = engine.decide_many(index, now=now)
    results["full_decision_per_s"], results["decisions"] = rate(lambda: count(next(many)), args.seconds)
    many.close()

    # Group commit, concurrent callers: each thread decides and waits for its own durable answer.
    grouped = Engine(store, PolicySet.load_dir(POLICIES), group_commit=True)
    stop = time.perf_counter() + args.seconds
    done = [0] * CALLERS
    # One User's requests from several threads: some arrive after a higher counter and are
    # refused as replays (still full decisions); counted apart from the one-caller outcomes.
    concurrent: dict[str, int] = {}

    def caller(slot: int) -> None:
        while time.perf_counter() < stop:
            decision = grouped.decide(next(index), now=now)
            with lock:
                concurrent[decision.outcome] = concurrent.get(decision.outcome, 0) + 1
            done[slot] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results["full_decision_concurrent_per_s"] = sum(done) / (time.perf_counter() - started)
    grouped.close()
    results["outcomes"] = outcomes
    results["concurrent_outcomes"] = concurrent
    gbcs_requests = iter([ask.signed_pre_command(scenario.device("gas meter (SMETS2)"), GCS02_CREDIT) for _ in range(expected)])
    results["full_decision_pre_command_per_s"], _ = rate(lambda: engine.decide(next(gbcs_requests), now=now), args.seconds)
    results["statements_per_decision"] = statements_per_decision(store, ask, device, now, cached=True)
    results["statements_per_decision_uncached"] = statements_per_decision(store, ask, device, now, cached=False)
    results["audit_intact"] = store.verify_audit().intact
    results["ratio_fast_verifier_to_plain"] = results["fast_verifier_per_s"] / results["plain_signxml_per_s"]
    results["ratio_input_layer_to_plain"] = results["input_layer_per_s"] / results["plain_signxml_per_s"]
    results["ratio_decision_to_plain"] = results["full_decision_per_s"] / results["plain_signxml_per_s"]
    results["ratio_concurrent_to_plain"] = results["full_decision_concurrent_per_s"] / results["plain_signxml_per_s"]
    store.close()

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"plain signxml verify          {results['plain_signxml_per_s']:8.0f} /s")
        print(f"fast verifier alone           {results['fast_verifier_per_s']:8.0f} /s  ({results['ratio_fast_verifier_to_plain']:.0%} of plain)")
        print(f"input layer (verify_request)  {results['input_layer_per_s']:8.0f} /s  ({results['ratio_input_layer_to_plain']:.0%} of plain)")
        print(f"input layer, signxml backend  {results['input_layer_signxml_per_s']:8.0f} /s")
        print(f"full decision, one tx each    {results['full_decision_single_tx_per_s']:8.0f} /s")
        print(f"full decision, group commit   {results['full_decision_per_s']:8.0f} /s  ({results['ratio_decision_to_plain']:.0%} of plain)")
        print(f"  {CALLERS} concurrent callers      {results['full_decision_concurrent_per_s']:8.0f} /s  ({results['ratio_concurrent_to_plain']:.0%} of plain)")
        print(f"full decision, Pre-Command    {results['full_decision_pre_command_per_s']:8.0f} /s")
        print(f"SQL statements per decision   {results['statements_per_decision']:.1f} (without the facts cache {results['statements_per_decision_uncached']:.1f})")
        print(f"outcomes {outcomes}, audit intact: {results['audit_intact']}")
    return 0 if set(outcomes) == {"allow"} and results["audit_intact"] else 1


if __name__ == "__main__":
    sys.exit(main())
