"""Benchmark (not a test): requests per second on one core, in one run.

    plain signxml   XMLVerifier().verify on the same signed request, certificate given
    fast verifier   the default verifier alone, certificate given: hardened parse + signature
                    shape + crypto.fastverify (C14N, SHA-256, ECDSA P-256)
    input layer     solr-policy's parse + signature shape + store look-ups + certificate
                    checks + verify + model (Verifier.verify_request), with the fast verifier
                    and, for comparison, with signxml (input_layer_signxml_per_s)
    full decision   Engine.decide: the above + GBCS + rules + counter and audit in one
                    durable SQLite transaction (a fresh RequestID counter each time)

Usage: python scripts/bench.py [--seconds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
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
from solr_policy.engine import Engine  # noqa: E402
from solr_policy.policy import PolicySet  # noqa: E402
from solr_policy.testing.scenario import GCS02_CREDIT, SolrScenario  # noqa: E402
from solr_policy.store import SqliteStore  # noqa: E402

POLICIES = Path(__file__).resolve().parents[1] / "policies"


def rate(fn, seconds: float) -> tuple[float, int]:
    fn()  # warm up
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        fn()
        count += 1
    return count / (time.perf_counter() - start), count


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
    expected = int(results["input_layer_per_s"] * args.seconds * 1.5) + 50
    requests = [ask.switch_to_credit(device) for _ in range(expected)]
    index = iter(requests)
    outcomes: dict[str, int] = {}

    def decide() -> None:
        decision = engine.decide(next(index), now=now)
        outcomes[decision.outcome] = outcomes.get(decision.outcome, 0) + 1

    results["full_decision_per_s"], results["decisions"] = rate(decide, args.seconds)
    results["outcomes"] = outcomes
    gbcs_requests = iter([ask.signed_pre_command(scenario.device("gas meter (SMETS2)"), GCS02_CREDIT) for _ in range(expected)])
    results["full_decision_pre_command_per_s"], _ = rate(lambda: engine.decide(next(gbcs_requests), now=now), args.seconds)
    results["audit_intact"] = store.verify_audit().intact
    results["ratio_fast_verifier_to_plain"] = results["fast_verifier_per_s"] / results["plain_signxml_per_s"]
    results["ratio_input_layer_to_plain"] = results["input_layer_per_s"] / results["plain_signxml_per_s"]
    results["ratio_decision_to_plain"] = results["full_decision_per_s"] / results["plain_signxml_per_s"]
    store.close()

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"plain signxml verify          {results['plain_signxml_per_s']:8.0f} /s")
        print(f"fast verifier alone           {results['fast_verifier_per_s']:8.0f} /s  ({results['ratio_fast_verifier_to_plain']:.0%} of plain)")
        print(f"input layer (verify_request)  {results['input_layer_per_s']:8.0f} /s  ({results['ratio_input_layer_to_plain']:.0%} of plain)")
        print(f"input layer, signxml backend  {results['input_layer_signxml_per_s']:8.0f} /s")
        print(f"full decision, CV 4           {results['full_decision_per_s']:8.0f} /s  ({results['ratio_decision_to_plain']:.0%} of plain)")
        print(f"full decision, Pre-Command    {results['full_decision_pre_command_per_s']:8.0f} /s")
        print(f"outcomes {outcomes}, audit intact: {results['audit_intact']}")
    return 0 if set(outcomes) == {"allow"} and results["audit_intact"] else 1


if __name__ == "__main__":
    sys.exit(main())
