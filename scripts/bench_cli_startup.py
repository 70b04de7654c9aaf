"""Benchmark (not a test): start-up cost of the ``solr-policy`` command.

CPU time (user + system) of fresh interpreters running ``solr-policy ARGS``, median and
minimum of N runs. CPU time rather than wall time: it varies less on a shared machine. The
commands are the light ones (no decision made), where start-up is most of the cost; each
imports only its own command module (``solr_policy/cli/app.py``), ``--help`` imports them all.

Usage: python scripts/bench_cli_startup.py [--runs 9] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (("--help",), ("rules",), ("gbcs", "inspect", "00"), ("certs", "list"), ("audit", "verify"))


def cpu_seconds(args: tuple[str, ...], db: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLR_POLICY_")}
    env["PYTHONPATH"] = str(ROOT)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "solr_policy.cli", "--db", str(db), *args], capture_output=True, env=env, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        for args in COMMANDS:
            times = [cpu_seconds(args, db) for _ in range(options.runs)]
            results[" ".join(args)] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)}
    if options.json:
        print(json.dumps(results, indent=2))
        return
    for name, result in results.items():
        print(f"solr-policy {name:20} CPU median {result['median_s']:.3f} s   min {result['min_s']:.3f} s")


if __name__ == "__main__":
    main()
