"""Benchmark (not a test): the decision service on loopback, decisions per second and latency
percentiles for 1 and 2 worker processes, on SQLite and on PostgreSQL, in one run.

Each configuration gets a fresh store holding the SoLR scenario with --clients Contingency
Users (one per client, so each client's counters rise in order and none is refused as a
replay), one ``solr-policy serve --workers N`` node, and --clients threads each posting its
own pre-signed requests over one keep-alive connection. Bounded and self-stopping: each run
ends after --seconds or when a client has sent all its --per-client requests.

Usage: python scripts/bench_service.py [--seconds 5] [--clients 8] [--per-client 400] [--postgres URL] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from solr_policy.crypto.certs import read_certificates  # noqa: E402
from solr_policy.eui import duis_form  # noqa: E402
from solr_policy.governance.adt import adt_text, sign_adt, submit_adt  # noqa: E402
from solr_policy.store import open_store  # noqa: E402
from solr_policy.testing.scenario import RequestBuilder, SolrScenario  # noqa: E402
from solr_policy.transparency.checkpoint import generate_log_key, save_private_key  # noqa: E402
from solr_policy.world import User  # noqa: E402
from service.nodes import start_node, stop, wait_ready  # noqa: E402

TOKEN = "bench-service-token-0123456789"
DEVICE = "electricity meter (SMETS1)"


def prepare(db: str, folder: Path, clients: int, per_client: int) -> tuple[str, list[list[bytes]]]:
    """The scenario with one SoLR User per client (each with its ADT file), and their requests."""
    now = datetime.now(timezone.utc)
    store = open_store(db)
    scenario = SolrScenario(thresholds={"1.6": {"per_hour": 10**6, "per_day": 10**7}}).install(store, now=now)
    builders = [scenario.requests()]
    for n in range(1, clients):
        eui = f"90B3D51F300F{n + 1:04X}"
        issued = scenario.pki.issue(eui, 135)
        for record in read_certificates(issued.cert_pem):
            store.put_certificate(record)
        store.put_user(User(id=eui, party=scenario.solr_party, role="SC"))
        data = adt_text(reference=f"ADT-BENCH-{n}", party=scenario.solr_party, user=duis_form(eui),
                        supplier=scenario.failed_supplier, thresholds=scenario.thresholds)
        submit_adt(store, data, sign_adt(data, scenario.officer_keys["aro-ann"]), aro="aro-ann", at=now)
        builders.append(RequestBuilder(issued, 1000, gbcs_signer=scenario.pre_command_signer))
    store.close()
    device = scenario.device(DEVICE)
    requests = [[b.switch_to_credit(device) for _ in range(per_client)] for b in builders]
    return str(scenario.write_policies(folder / "policies")), requests


def drive(port: int, requests: list[list[bytes]], seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(raws: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, seen = [], {}
        for raw in raws:
            if time.monotonic() >= deadline:
                break
            started = time.perf_counter()
            conn.request("POST", "/v1/decisions", body=raw, headers={"Content-Type": "application/xml", "Authorization": f"Bearer {TOKEN}"})
            answer = json.loads(conn.getresponse().read())
            mine.append(time.perf_counter() - started)
            seen[answer.get("outcome", "error")] = seen.get(answer.get("outcome", "error"), 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for k, v in seen.items():
                outcomes[k] = outcomes.get(k, 0) + v

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(raws,)) for raws in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "decisions": len(latencies), "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 1), "p95_ms": round(cuts[94] * 1000, 1), "p99_ms": round(cuts[98] * 1000, 1),
        "allowed": outcomes.get("allow", 0), "other": sum(v for k, v in outcomes.items() if k != "allow"),
    }


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of ``pid`` and its descendants so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {pid}, True
    while grew:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    return sum(cpu.get(p, 0.0) for p in tree)


def run(kind: str, workers: int, args: argparse.Namespace, folder: Path) -> dict[str, object]:
    schema = None
    if kind == "postgresql":
        import psycopg

        schema = f"bench_service_{os.getpid()}_{workers}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[arg-type]
        db = f"{args.postgres}?options={quote(f'-csearch_path={schema}')}"
    else:
        db = str(folder / f"bench-{workers}.db")
    try:
        policies, requests = prepare(db, folder, args.clients, args.per_client)
        key = folder / "log-key.pem"
        if not key.exists():
            save_private_key(key, generate_log_key())
        node = start_node(db, policies, TOKEN, str(key), folder, workers=workers, checkpoint_interval=5)
        try:
            wait_ready(node, timeout=60)
            time.sleep(0.5 * workers)  # every worker up, not just the first to answer
            cpu_before = tree_cpu_seconds(node.process.pid)
            result = drive(node.port, requests, args.seconds)
            # The node's own CPU (its workers included) per decision: what a node costs,
            # whatever the clients beside it on this machine take.
            cpu = tree_cpu_seconds(node.process.pid) - cpu_before
            result["node_cpu_ms_per_decision"] = round(1000 * cpu / max(1, result["decisions"]), 2)
        finally:
            stop(node)
    finally:
        if schema is not None:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]
    return {"store": kind, "workers": workers, "clients": args.clients, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-client", type=int, default=400)
    parser.add_argument("--postgres", default=os.environ.get("SOLR_POLICY_TEST_POSTGRES") or "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "postgresql"):
            for workers in (1, 2):
                rows.append(run(kind, workers, args, Path(tmp)))
                if not args.json:
                    r = rows[-1]
                    print(f"{r['store']:<11} workers {r['workers']}  {r['per_second']:>7} decisions/s  p50 {r['p50_ms']} ms  "
                          f"p95 {r['p95_ms']} ms  p99 {r['p99_ms']} ms  node CPU {r['node_cpu_ms_per_decision']} ms/decision  "
                          f"({r['decisions']} decisions, {r['allowed']} allowed, {r['clients']} clients)")
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
