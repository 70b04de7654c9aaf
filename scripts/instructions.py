"""Benchmark (not a test): CPU instructions per operation, counted by valgrind's callgrind.

Wall-clock rates (scripts/bench.py) move by a third from run to run on a shared machine;
instruction counts move by well under 1 %, so they compare two versions of the code, and they
show what sets the floor under a decision: the work done in C libraries that no Python change
can remove. Each figure is the instructions of one operation, averaged over N:

    plain_signxml       XMLVerifier().verify on a signed request, certificate given (bench.py's baseline)
    ecdsa_p256_verify   cryptography's ECDSA P-256 verify alone, key loaded once
    lxml_parse          lxml parsing the request (no checks)
    exclusive_c14n      lxml's exclusive C14N of the parsed request
    sha256_audit_entry  SHA-256 of a typical audit entry's bytes
    admission           Engine.prepare: bounds, parse, shape, C14N, digest, ECDSA, certificate
                        checks, typed request (what scripts/bench.py calls the input layer, and more)
    decide_and_record   Engine.decide_group on admitted requests: facts, rules, decision, counter,
                        audit entry, one durable commit per 256
    full_decision       Engine.decide_many on one thread: admission + decide_and_record

Usage: python scripts/instructions.py [-n 256] [--json]        (needs valgrind on PATH)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REGIONS = (
    "plain_signxml", "ecdsa_p256_verify", "lxml_parse", "exclusive_c14n", "sha256_audit_entry",
    "admission", "decide_and_record", "full_decision",
)


def prepare(folder: Path, n: int) -> None:
    """The store and the signed requests the measured run reads (made here, not measured)."""
    from solr_policy.store import SqliteStore
    from solr_policy.testing.scenario import SolrScenario

    now = datetime.now(timezone.utc)
    store = SqliteStore(folder / "world.db")
    # Thresholds far above what a run sends: this measures decisions, not quarantine.
    scenario = SolrScenario(thresholds={"1.6": {"per_hour": 10**9, "per_day": 10**9}}).install(store, now=now)
    ask = scenario.requests(counter=1)
    device = scenario.device("electricity meter (SMETS1)")
    requests = [ask.switch_to_credit(device) for _ in range(3 * n + 64)]
    store.close()
    assert scenario.user is not None  # installed
    (folder / "inputs.pickle").write_bytes(pickle.dumps((now, scenario.user.cert_pem, requests)))


def measure(folder: Path, n: int) -> None:
    """Runs under callgrind with instrumentation off; each region is switched on, run and
    dumped (which zeroes the counters) by callgrind_control, a separate process."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from lxml import etree
    from signxml import XMLVerifier

    from solr_policy import logs
    from solr_policy.decision import Decision
    from solr_policy.engine import Engine
    from solr_policy.policy import PolicySet
    from solr_policy.store import SqliteStore

    logs.configure("json", level="WARNING", stream=open(os.devnull, "w"))
    now, cert_pem, requests = pickle.loads((folder / "inputs.pickle").read_bytes())
    cert = x509.load_pem_x509_certificate(cert_pem)
    sample = requests[0]
    key = ec.generate_private_key(ec.SECP256R1())
    public, message = key.public_key(), b"<ds:SignedInfo>" + b"x" * 600 + b"</ds:SignedInfo>"
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    tree = etree.fromstring(sample)
    entry = b"x" * 2600  # an allowed decision's audit entry is about 2.6 KB of canonical JSON
    store = SqliteStore(folder / "world.db")
    engine = Engine(store, PolicySet.load_dir(ROOT / "policies"))
    decided = iter(requests[1:])
    # Warm: caches filled, code paths taken once.
    list(engine.decide_many([next(decided) for _ in range(32)], now=now, workers=0))
    XMLVerifier().verify(sample, x509_cert=cert)
    pending = [engine.prepare(next(decided), now) for _ in range(n)]
    groups = [pending[i:i + 256] for i in range(0, n, 256)]
    fresh = [next(decided) for _ in range(n)]
    admitted_again = [next(decided) for _ in range(n)]
    pid = str(os.getpid())

    def region(name: str, run: Callable[[], object]) -> None:
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
        run()
        subprocess.run(["callgrind_control", "-d", name, pid], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)

    outcomes: set[str] = set()

    def seen(decisions: Iterable[Decision]) -> None:
        outcomes.update(d.outcome for d in decisions)
    region("plain_signxml", lambda: [XMLVerifier().verify(sample, x509_cert=cert) for _ in range(n)])
    region("ecdsa_p256_verify", lambda: [public.verify(signature, message, ec.ECDSA(hashes.SHA256())) for _ in range(n)])
    region("lxml_parse", lambda: [etree.fromstring(sample) for _ in range(n)])
    region("exclusive_c14n", lambda: [etree.tostring(tree, method="c14n", exclusive=True) for _ in range(n)])
    region("sha256_audit_entry", lambda: [hashlib.sha256(entry).hexdigest() for _ in range(n)])
    region("admission", lambda: [engine.prepare(raw, now) for raw in admitted_again])
    region("decide_and_record", lambda: seen(d for g in groups for d in engine.decide_group(g)))
    region("full_decision", lambda: seen(engine.decide_many(fresh, now=now, workers=0)))
    store.close()
    if outcomes != {"allow"}:
        raise SystemExit(f"expected every request allowed, got {sorted(outcomes)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=256, help="operations per figure (default 256)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the run under callgrind
    args = parser.parse_args()
    if args.measure is not None:
        measure(args.measure, args.n)
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("needs valgrind (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="solr-instructions-"))
    try:
        prepare(folder, args.n)
        out = folder / "callgrind.out"
        # The venv's python itself, not a wrapper script: callgrind follows no child process.
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
             sys.executable, __file__, "-n", str(args.n), "--measure", str(folder)],
            capture_output=True, text=True,
        )
        if run.returncode != 0:
            print(run.stdout + run.stderr[-4000:], file=sys.stderr)
            return 1
        totals: dict[str, float] = {}
        for dump in folder.glob("callgrind.out.*"):
            text = dump.read_text(errors="replace")
            found = re.search(r"^desc: Trigger: dump (\S+)", text, re.M)
            total = re.search(r"^totals: (\d+)", text, re.M)
            if found and total:
                totals[found.group(1)] = int(total.group(1)) / args.n
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    results: dict[str, object] = {name: round(totals[name]) for name in REGIONS if name in totals}
    missing = [name for name in REGIONS if name not in totals]
    if missing:
        print(f"no count for {missing}", file=sys.stderr)
        return 1
    floor = totals["ecdsa_p256_verify"] + totals["lxml_parse"] + totals["exclusive_c14n"] + totals["sha256_audit_entry"]
    results["c_library_floor"] = round(floor)
    results["ratio_decision_to_plain"] = totals["plain_signxml"] / totals["full_decision"]
    results["ratio_floor_to_plain"] = totals["plain_signxml"] / floor
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name in REGIONS:
            print(f"{name:22s} {totals[name]:12,.0f} instructions")
        print(f"{'c_library_floor':22s} {floor:12,.0f} instructions  (ECDSA + parse + C14N + SHA-256)")
        print(f"plain signxml / full decision: {results['ratio_decision_to_plain']:.2f}"
              f"  (at most {results['ratio_floor_to_plain']:.2f} if all but the floor cost nothing)")
        target = totals["plain_signxml"] / 1.5
        print(f"a ratio of 1.5 needs a full decision within {target:,.0f}: {target - floor:,.0f} for all but the floor"
              f" (now {totals['full_decision'] - floor:,.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
