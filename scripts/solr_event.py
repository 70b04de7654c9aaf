"""A whole SoLR event at scale (not a test): a failed Supplier's meters, SRV 1.6 requests from
the SoLR Contingency User, decided through ``solr-policy decide --batch`` with durable state
(SQLite, synchronous=FULL), then the audit chain verified and the state reconciled with it.

    python scripts/solr_event.py                    # 300,000 meters, 600,000 requests
    python scripts/solr_event.py --meters 5000      # small: 10,000 requests
    python scripts/solr_event.py --json             # the report as JSON
    python scripts/solr_event.py --smki 1000000 --no-event   # only a synthetic SMKI extract synced

The mix (deterministic): about 92 % switches to Credit (CV 4) to the failed Supplier's
electricity and gas meters, 4 % switches to Prepayment (refused, R5), 3 % requests to another
Supplier's meters (refused, R6), 1 % replays of earlier requests (refused, counter), and the
ADT threshold set QUARANTINED below the Credit requests, so that the last ones are held (AD1).

Preparing (world, User, ADT file, the meters imported from a CSV inventory with
``world import-devices``'s library call, and signing every request, in processes on all cores) is
timed apart and cached in --dir between runs (keyed by the sizes). Each run decides on a fresh
copy of the prepared store, with admission in worker processes (``--admission``, ``--workers``).
Reported: decision time, decisions/s, CPU time (the workers' included), the peak RSS of the
deciding process and of each worker (sampled from /proc), outcome counts (checked against the
mix), the audit chain and the reconciliation (both streamed, with this process's peak RSS).
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solr_policy.store import SqliteStore  # noqa: E402
from solr_policy.testing.scenario import SolrScenario, request_document  # noqa: E402
from solr_policy.inventory import import_devices  # noqa: E402

QUARANTINED = 25
CREDIT = "<sr:UpdatePaymentMode><sr:Credit/></sr:UpdatePaymentMode>"
PREPAYMENT = (
    "<sr:UpdatePaymentMode><sr:Prepayment><sr:SuspendDebtDisabled>false</sr:SuspendDebtDisabled>"
    "<sr:SuspendDebtEmergency>false</sr:SuspendDebtEmergency><sr:DisablementThreshold>0</sr:DisablementThreshold>"
    "</sr:Prepayment></sr:UpdatePaymentMode>"
)
PREPARED_VERSION = 2  # bump when what prepare() writes changes


def meter_id(n: int) -> str:
    return f"00DB{n:012X}"


def other_meter_id(n: int) -> str:
    return f"00DC{n:012X}"


def plan(meters: int, total: int, seed: int = 13) -> tuple[list[tuple[str, str, int] | tuple[str, int]], dict[str, int]]:
    """The requests in order: ("credit"|"prepayment"|"other", device, counter) or ("replay", index)."""
    rng = random.Random(seed)
    items: list[tuple[str, str, int] | tuple[str, int]] = []
    allowed_credit: list[int] = []
    counter = 1000
    expected = {"credit": 0, "prepayment": 0, "other": 0, "replay": 0}
    meter = 0
    while len(items) < total:
        roll = rng.random()
        if roll < 0.01 and len(allowed_credit) > 50:
            # A copy of a Credit request sent at least 20 requests earlier: refused as a replay.
            items.append(("replay", allowed_credit[-rng.randint(20, 50)]))
            expected["replay"] += 1
            continue
        counter += 1
        if roll < 0.04:
            items.append(("other", other_meter_id(rng.randrange(max(1, meters // 100))), counter))
            expected["other"] += 1
        elif roll < 0.08:
            items.append(("prepayment", meter_id(rng.randrange(meters)), counter))
            expected["prepayment"] += 1
        else:
            items.append(("credit", meter_id(meter % meters), counter))
            allowed_credit.append(len(items) - 1)
            expected["credit"] += 1
            meter += 1
    return items, expected


def _sign_chunk(args: tuple[bytes, bytes, str, list[tuple[str, str, int]]]) -> list[bytes]:
    from solr_policy.crypto.sign import sign_duis

    key_pem, cert_pem, originator, chunk = args
    out = []
    for kind, device, counter in chunk:
        body = PREPAYMENT if kind == "prepayment" else CREDIT
        document = request_document(originator=originator, target=device, counter=counter, srv="1.6", cv=4, body=body)
        out.append(base64.b64encode(sign_duis(document, key_pem, cert_pem)))
    return out


def prepare(folder: Path, meters: int, total: int) -> dict:
    """The seed store and the request file, made once per size and kept in ``folder``."""
    tag = f"v{PREPARED_VERSION}-m{meters}-r{total}"
    seed, requests, meta_file = folder / f"seed-{tag}.db", folder / f"requests-{tag}.b64", folder / f"meta-{tag}.json"
    if meta_file.exists() and seed.exists() and requests.exists():
        meta = json.loads(meta_file.read_text())
        meta["cached"] = True
        return meta
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (seed, requests, meta_file):
        stale.unlink(missing_ok=True)
    items, expected = plan(meters, total)
    now = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)
    per_window = expected["credit"] - QUARANTINED
    started = time.perf_counter()
    store = SqliteStore(seed, synchronous="NORMAL")
    scenario = SolrScenario(thresholds={"1.6": {"per_hour": per_window, "per_day": per_window}}).install(store, now=now)
    inventory = folder / f"inventory-{tag}.csv"  # the meters as the DCC's inventory would list them
    with inventory.open("w", encoding="utf-8") as out:
        out.write("id,type,smets,supplier\n")
        for n in range(meters):
            out.write(f"{meter_id(n)},{'ESME' if n % 2 == 0 else 'GSME'},SMETS2+,{scenario.failed_supplier}\n")
        for n in range(max(1, meters // 100)):
            out.write(f"{other_meter_id(n)},ESME,SMETS2+,{scenario.other_supplier}\n")
    import_devices(inventory, store)
    store.close()
    world_seconds = time.perf_counter() - started

    started = time.perf_counter()
    assert scenario.user is not None
    fresh = [(i, item) for i, item in enumerate(items) if item[0] != "replay"]
    size = 2000
    chunks = [fresh[i:i + size] for i in range(0, len(fresh), size)]
    signed: dict[int, bytes] = {}
    with multiprocessing.get_context("spawn").Pool(os.cpu_count() or 1) as pool:
        work = [(scenario.user.key_pem, scenario.user.cert_pem, scenario.user_eui, [item for _, item in chunk]) for chunk in chunks]
        for chunk, lines in zip(chunks, pool.imap(_sign_chunk, work)):
            for (index, _), line in zip(chunk, lines):
                signed[index] = line
    with requests.open("wb") as out:
        for index, item in enumerate(items):
            line = signed[item[1]] if item[0] == "replay" else signed[index]  # type: ignore[index]
            out.write(line + b"\n")
    meta = {
        "meters": meters, "requests": total, "now": now.isoformat(), "expected": expected, "per_window": per_window,
        "seed": str(seed), "request_file": str(requests), "user": scenario.user_eui,
        "world_seconds": round(world_seconds, 1), "signing_seconds": round(time.perf_counter() - started, 1), "cached": False,
    }
    meta_file.write_text(json.dumps(meta, indent=2))
    return meta


class MemoryWatch:
    """Samples the memory of a process and of its descendants (the admission workers) from
    /proc while it runs. VmHWM is each process's own peak, so each worker's peak is known even
    between samples; the sum of the peaks bounds what they held at once from above, and the
    largest sampled total (VmRSS summed) bounds it from below."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peaks: dict[int, tuple[str, int]] = {}  # pid -> (role, VmHWM in KiB)
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds (user + system) at the last sample
        self.total_peak = 0  # KiB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        main = self.peaks.get(self.pid, ("decider", 0))[1]
        workers = [kib for pid, (role, kib) in self.peaks.items() if pid != self.pid and role == "worker"]
        others = [kib for pid, (role, kib) in self.peaks.items() if pid != self.pid and role != "worker"]
        return {
            "deciding_process_peak_rss_mib": round(main / 1024, 1),
            "workers": len(workers),
            "workers_peak_rss_mib_each": [round(k / 1024, 1) for k in sorted(workers, reverse=True)],
            "workers_peak_rss_mib_sum": round(sum(workers) / 1024, 1),
            "helpers_peak_rss_mib_sum": round(sum(others) / 1024, 1),  # multiprocessing's resource tracker
            "all_peaks_summed_mib": round((main + sum(workers) + sum(others)) / 1024, 1),
            "largest_sampled_total_rss_mib": round(self.total_peak / 1024, 1),
            # sampled, so each a little short: where the CPU went (the writer is the one process)
            "deciding_process_cpu_seconds": round(self.cpu.get(self.pid, 0.0), 1),
            "workers_cpu_seconds": round(sum(c for pid, c in self.cpu.items() if pid != self.pid and self.peaks[pid][0] == "worker"), 1),
        }

    def _run(self) -> None:
        while True:
            total = 0
            for pid in self._tree():
                status = _proc_status(pid)
                if status is None:
                    continue
                known = self.peaks.get(pid, ("", 0))[0]
                # A worker's command line is empty while it exits: once seen as a worker, it stays one.
                role = "decider" if pid == self.pid else known if known == "worker" else "worker" if "spawn_main" in _cmdline(pid) else "helper"
                self.peaks[pid] = (role, max(self.peaks.get(pid, (role, 0))[1], status.get("VmHWM", 0)))
                cpu = _proc_cpu(pid)
                if cpu is not None:
                    self.cpu[pid] = cpu
                total += status.get("VmRSS", 0)
            self.total_peak = max(self.total_peak, total)
            if self._stop.wait(self.interval):
                return

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found


def _proc_status(pid: int) -> dict[str, int] | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines) if k in ("VmHWM", "VmRSS") and v.strip()}


def _proc_cpu(pid: int) -> float | None:
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def decide(meta: dict, folder: Path, group: int, workers: int, admission: str) -> dict:
    """Run ``solr-policy decide --batch`` on a fresh copy of the seed; its time, CPU and memory."""
    db = folder / "event.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(meta["seed"], db)
    command = [
        sys.executable, "-m", "solr_policy.cli", "--db", str(db), "--log-level", "WARNING", "--synchronous", "FULL",
        "decide", "--batch", meta["request_file"], "--now", meta["now"], "--group", str(group), "--workers", str(workers),
        "--admission", admission,
    ]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=None, cwd=ROOT)
    watch = MemoryWatch(child.pid)
    assert child.stdout is not None
    output = child.stdout.read()
    memory = watch.stop()  # before the wait: the process's /proc entry goes with it
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"decide --batch failed ({os.waitstatus_to_exitcode(status)}): {output[-2000:]!r}")
    summary = json.loads(output)
    # The deciding process's own CPU and that of the workers it waited for (wait4 counts both):
    # the machine may be shared, and CPU time says what it cost.
    cpu = usage.ru_utime + usage.ru_stime
    return {"db": str(db), "seconds": seconds, "cpu_seconds": cpu, "memory": memory,
            # wait4's peak: the largest of the deciding process and its workers (never their sum)
            "peak_rss_mib": usage.ru_maxrss / 1024, "summary": summary}


def check(meta: dict, db: str) -> dict:
    """The audit chain walked, and counters, usage and quarantine reconciled with the log, both
    streamed (this process's peak RSS is reported)."""
    from solr_policy.transparency.log import reconcile

    store = SqliteStore(db)
    try:
        started = time.perf_counter()
        chain = store.verify_audit()
        differences = reconcile(store, store.audit_stream())  # streamed: constant memory
        return {
            "audit_intact": chain.intact, "audit_entries": chain.entries, "reconciled": not differences,
            "differences": differences[:10], "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    finally:
        store.close()


def prepare_smki(folder: Path, records: int) -> dict:
    """A synthetic extract of ``records`` records (1 % Organisation Certificates from a test CA
    that the seed store trusts, the rest Device Certificates) and its seed store; cached."""
    import gzip
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from solr_policy.records import TrustAnchor
    from solr_policy.testing.pki import TestPki

    tag = f"v{PREPARED_VERSION}-s{records}"
    extract, seed = folder / f"SMKIKR_FULL_{tag}.xml.gz", folder / f"smki-seed-{tag}.db"
    if extract.exists() and seed.exists():
        return {"extract": str(extract), "seed": str(seed), "cached": True}
    folder.mkdir(parents=True, exist_ok=True)
    seed.unlink(missing_ok=True)
    pki = TestPki("SMKI")
    anchor = x509.load_pem_x509_certificate(pki.ca_cert_pem).public_bytes(Encoding.DER)
    store = SqliteStore(seed, synchronous="NORMAL")
    store.add_trust_anchor(TrustAnchor(fingerprint=hashlib.sha256(anchor).hexdigest(), subject="OU=07,CN=SMKI", der=anchor,
                                       added_at=datetime.now(timezone.utc), added_by="setup"))
    store.close()
    organisations = [
        base64.b64encode(x509.load_pem_x509_certificate(pki.issue(f"90B3D51F40{n:06X}", 135).cert_pem).public_bytes(Encoding.DER)).decode()
        for n in range(min(500, max(1, records // 100)))
    ]
    rng = random.Random(7)
    device_body = base64.b64encode(rng.randbytes(420)).decode()  # skipped unread: any bytes will do
    with gzip.open(extract, "wt", encoding="utf-8", compresslevel=1) as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<Extract xmlns="http://example.invalid/smki"><Certificates>\n')
        for n in range(records):
            if n % 100 == 0:
                body, name = organisations[(n // 100) % len(organisations)], "<CertificateSubjectName>CN=org</CertificateSubjectName>"
            else:
                body, name = device_body, f"<CertificateSubjectAltName>00-DB-{n:012X}</CertificateSubjectAltName>"
            out.write(f"<CertificateResponse><CertificateStatus>I</CertificateStatus><CertificateBody>{body}</CertificateBody>{name}</CertificateResponse>\n")
        out.write("</Certificates></Extract>\n")
    return {"extract": str(extract), "seed": str(seed), "cached": False}


def sync_smki(folder: Path, records: int) -> dict:
    """``solr-policy certs sync`` on the extract, in a child process: time and peak RSS."""
    prepared = prepare_smki(folder, records)
    db = folder / "smki.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(prepared["seed"], db)
    command = [sys.executable, "-m", "solr_policy.cli", "--db", str(db), "--log-level", "WARNING", "certs", "sync", prepared["extract"]]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"certs sync failed: {output[-2000:]!r}")
    return {"records": records, "seconds": round(time.perf_counter() - started, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "counts": json.loads(output), "prepared_cached": prepared["cached"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=300_000)
    parser.add_argument("--requests", type=int, help="default: two per meter")
    parser.add_argument("--dir", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "solr-event"))
    parser.add_argument("--group", type=int, default=256, help="decisions per transaction")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (or threads) verifying signatures")
    parser.add_argument("--admission", choices=("processes", "threads", "auto"), default="processes",
                        help="decide --batch --admission: verify in worker processes (default) or in threads")
    parser.add_argument("--smki", type=int, default=0, metavar="N",
                        help="also sync a synthetic N-record SMKI extract, and one of N/10 to compare memory")
    parser.add_argument("--no-event", action="store_true", help="only the SMKI sync")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.no_event:
        smki = [sync_smki(Path(args.dir), n) for n in (max(1, args.smki // 10), args.smki)]
        print(json.dumps({"smki": smki}, indent=2))
        return 0
    folder = Path(args.dir)
    total = args.requests or 2 * args.meters

    if args.prepare_only:
        print(json.dumps(prepare(folder, args.meters, total)))
        return 0
    # Prepared in a process of its own: a child forked from a parent holding the signed
    # requests would count the parent's pages in the deciding process's peak RSS.
    meta = json.loads(subprocess.run(
        [sys.executable, __file__, "--prepare-only", "--meters", str(args.meters), "--requests", str(total), "--dir", str(folder)],
        check=True, stdout=subprocess.PIPE,
    ).stdout)
    run = decide(meta, folder, args.group, args.workers, args.admission)
    checked = check(meta, run["db"])
    summary = run["summary"]
    e = meta["expected"]
    expected = {
        "allow": e["credit"] - QUARANTINED, "quarantine": QUARANTINED, "reject": e["prepayment"] + e["other"] + e["replay"],
    }
    got = {k: summary[k] for k in expected}
    report = {
        "meters": args.meters, "requests": total,
        "prepare": {"cached": meta["cached"], "world_seconds": meta["world_seconds"], "signing_seconds": meta["signing_seconds"]},
        "decide_seconds": round(run["seconds"], 1),
        "decisions_per_second": round(summary["decided"] / run["seconds"], 1),
        "decide_cpu_seconds": round(run["cpu_seconds"], 1),
        "decisions_per_cpu_second": round(summary["decided"] / run["cpu_seconds"], 1),
        "admission": args.admission, "workers": args.workers,
        "peak_rss_mib": round(run["peak_rss_mib"], 1),
        "memory": run["memory"],
        "outcomes": got, "expected": expected, "as_expected": got == expected,
        "not_allowed_by_rule": summary["not_allowed_by_rule"],
        "check": checked,
        "minutes_for_600000_at_this_rate": round(600_000 / (summary["decided"] / run["seconds"]) / 60, 1),
    }
    if args.smki:
        report["smki"] = [sync_smki(folder, n) for n in (max(1, args.smki // 10), args.smki)]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.meters:,} meters, {total:,} requests; prepared in {meta['world_seconds']} s (world) + "
              f"{meta['signing_seconds']} s (signing){' (cached)' if meta['cached'] else ''}")
        memory = run["memory"]
        print(f"decided in {report['decide_seconds']} s: {report['decisions_per_second']:,.0f}/s"
              f" (admission in {args.admission}, {args.workers} workers); {report['decide_cpu_seconds']} CPU s with the workers"
              f" ({report['decisions_per_cpu_second']:,.0f} decisions per CPU second)")
        print(f"peak RSS: deciding process {memory['deciding_process_peak_rss_mib']:.0f} MiB, {memory['workers']} workers"
              f" {memory['workers_peak_rss_mib_sum']:.0f} MiB summed {memory['workers_peak_rss_mib_each']},"
              f" all peaks summed {memory['all_peaks_summed_mib']:.0f} MiB (largest sampled total {memory['largest_sampled_total_rss_mib']:.0f} MiB)")
        print(f"CPU: deciding process {memory['deciding_process_cpu_seconds']} s, workers {memory['workers_cpu_seconds']} s (sampled)")
        print(f"outcomes {got} (expected {expected}); refused by rule {summary['not_allowed_by_rule']}")
        print(f"audit intact: {checked['audit_intact']} ({checked['audit_entries']:,} entries), reconciled: {checked['reconciled']}"
              f" (checked in {checked['seconds']} s, peak RSS {checked['peak_rss_mib']:.0f} MiB)")
        for smki in report.get("smki", []):
            print(f"SMKI extract of {smki['records']:,} records synced in {smki['seconds']} s, peak RSS {smki['peak_rss_mib']:.0f} MiB: {smki['counts']}")
    ok = got == expected and checked["audit_intact"] and checked["reconciled"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
