"""Adversarial input (not a test): worst-case time per input, and memory over many requests.

    time    each input of an adversarial corpus up to the 1 MiB size limit (many attributes,
            namespaces, deep, wide, long text, unknown names, huge base64, comment, entity
            and whitespace floods, ...) decided --repeat times by Engine.decide on one core;
            the slowest wall and CPU time per input. Inputs that the pre-scan lets through
            carry a ds:Signature naming the stored User certificate (issuer and serial are
            public), so they reach the costly part: canonicalisation and the digest check.
    memory  RSS of one Engine over --requests adversarial requests, each with names,
            prefixes, namespace URIs or whitespace runs it has never seen (what grew lxml's
            name dictionary without bound), sampled ten times.

Usage: python scripts/adversarial.py [--repeat 5] [--requests 100000] [--only time|memory]
                                     [--without-prescan] [--json]

--without-prescan replaces the pre-scan by a no-op, to show what it prevents (comparison only).
"""

from __future__ import annotations

import argparse
import base64
import gc
import itertools
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509  # noqa: E402

from solr_policy import logs  # noqa: E402
from solr_policy.duis import parser as duis_parser  # noqa: E402
from solr_policy.duis.parser import parse_document  # noqa: E402
from solr_policy.duis.prescan import Scan  # noqa: E402
from solr_policy.duis.vocabulary import ELEMENT_NAMES  # noqa: E402
from solr_policy.engine import Engine  # noqa: E402
from solr_policy.errors import Refused  # noqa: E402
from solr_policy.policy import PolicySet  # noqa: E402
from solr_policy.store import SqliteStore  # noqa: E402
from solr_policy.testing.scenario import GCS02_CREDIT, SolrScenario  # noqa: E402

POLICIES = Path(__file__).resolve().parents[1] / "policies"
SR = "http://www.dccinterface.co.uk/ServiceUserGateway"
DS = "http://www.w3.org/2000/09/xmldsig#"
RA = "http://www.dccinterface.co.uk/ResponseAndAlert"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MIB = 1_048_576
BUDGET_MS = 50.0


class Corpus:
    """Requests built around one stored certificate, as an outsider would build them."""

    def __init__(self, scenario: SolrScenario) -> None:
        cert = x509.load_pem_x509_certificate(scenario.user.cert_pem)
        self.issuer = cert.issuer.rfc4514_string()
        self.serial = cert.serial_number
        self.user = scenario.user_eui
        self.device = scenario.device("electricity meter (SMETS2)")
        self.counter = itertools.count(10**9)

    def signature(self) -> str:
        """A ds:Signature naming the stored certificate, with made-up digest and value."""
        zeros = base64.b64encode(bytes(32)).decode()
        return (
            f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>'
            '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
            '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>'
            '<ds:Reference URI=""><ds:Transforms>'
            '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></ds:Transforms>'
            f'<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>{zeros}</ds:DigestValue>'
            f"</ds:Reference></ds:SignedInfo><ds:SignatureValue>{base64.b64encode(bytes(64)).decode()}</ds:SignatureValue>"
            f"<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>{self.issuer}</ds:X509IssuerName>"
            f"<ds:X509SerialNumber>{self.serial}</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo>"
            "</ds:Signature>"
        )

    def request(self, body: str, *, root: str = "", signed: bool = True, declarations: str = "") -> bytes:
        header = (
            f"<sr:Header><sr:RequestID>{_eui(self.user)}:{_eui(self.device)}:{next(self.counter)}</sr:RequestID>"
            "<sr:CommandVariant>4</sr:CommandVariant><sr:ServiceReference>1.6</sr:ServiceReference>"
            "<sr:ServiceReferenceVariant>1.6</sr:ServiceReferenceVariant></sr:Header>"
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<sr:Request xmlns:sr="{SR}"{declarations} schemaVersion="5.4"{root}>'
            f"{header}<sr:Body>{body}</sr:Body>{self.signature() if signed else ''}</sr:Request>"
        ).encode()


def _eui(plain: str) -> str:
    return "-".join(plain[i : i + 2] for i in range(0, 16, 2))


def _fill(unit: str, size: int = MIB - 4096) -> int:
    return max(1, size // len(unit))


def corpus(c: Corpus, scenario: SolrScenario) -> list[tuple[str, bytes]]:
    ask = scenario.requests(counter=2 * 10**9)
    vocabulary = sorted(ELEMENT_NAMES)
    cases: list[tuple[str, bytes]] = [
        ("normal signed request (baseline)", ask.switch_to_credit(c.device)),
        ("95,000 attributes on the root", c.request("<sr:UpdatePaymentMode><sr:Credit/></sr:UpdatePaymentMode>",
                                                    root="".join(f' a{i}="1"' for i in range(95_000)))),
        ("16 attributes x 256 elements, long values", c.request(
            "".join("<sr:Credit" + "".join(f' {n}="{"x" * 230}"' for n in
                    ("index", "identifier", "name", "type", "format", "id", "sequence", "Index", "Position",
                     "ClockStatus", "MessageSuccess", "ResponseCode", "TimeStatusCode", "isFromGSME",
                     "auxiliaryControllerN")) + "/>" for _ in range(256)))),
        ("16,000 namespace declarations on the root", c.request("", root="".join(f' xmlns:p{i}="{SR}"' for i in range(16_000)))),
        ("95,000 attributes on ds:SignedInfo", c.request("<sr:UpdatePaymentMode><sr:Credit/></sr:UpdatePaymentMode>")
            .replace(b"<ds:SignedInfo>", ("<ds:SignedInfo" + "".join(f' a{i}="1"' for i in range(95_000)) + ">").encode())),
        ("29 namespace declarations, 10,000 elements", c.request(
            "".join(f'<n{i}:Credit xmlns:n{i}="{SR}"/>' for i in range(29)) + "<sr:Credit/>" * 9_900)),
        ("10,000 sibling elements", c.request("<sr:Credit/>" * 9_950)),
        ("9,900 elements, 1 MiB of text", c.request(("<sr:Credit>" + "x" * 80 + "</sr:Credit>") * 9_900)),
        ("200,000 sibling elements", c.request("<sr:Credit/>" * _fill("<sr:Credit/>"))),
        ("nested 5,000 deep", c.request("<sr:Body>" * 5_000 + "</sr:Body>" * 5_000)),
        ("nested 32 deep, 9,900 elements", c.request(("<sr:Body>" * 30 + "</sr:Body>" * 30) * 330)),
        ("one 512 KiB text node", c.request(f"<sr:Credit>{'x' * (512 * 1024 - 64)}</sr:Credit>")),
        ("one 1 MiB text node", c.request(f"<sr:Credit>{'x' * (MIB - 2048)}</sr:Credit>", signed=False)),
        ("100 unknown element names", c.request("".join(f"<sr:New{i}/>" for i in range(100)))),
        ("230 distinct DUIS names", c.request("".join(f"<sr:{n}/>" for n in vocabulary[:230]))),
        ("1,198 distinct DUIS names", c.request("".join(f"<sr:{n}/>" for n in vocabulary))),
        ("unknown namespace URIs", c.request("".join(f'<x:Credit xmlns:x="urn:x:{i}"/>' for i in range(30)))),
        ("xml:id values", c.request("".join(f'<sr:Credit xml:id="i{i}"/>' for i in range(3_000)))),
        ("comment flood", c.request("<!---->" * _fill("<!---->"), signed=False)),
        ("comment splitting the counter", ask.switch_to_credit(c.device).replace(b"</sr:RequestID>", b"<!---->7</sr:RequestID>")),
        ("CDATA flood", c.request("<sr:Credit><![CDATA[x]]></sr:Credit>" * 20_000, signed=False)),
        ("&amp; flood (100,000)", c.request(f"<sr:Credit>{'&amp;' * 100_000}</sr:Credit>")),
        ("character reference flood", c.request(f"<sr:Credit>{'&#x41;' * 85_000}</sr:Credit>")),
        ("1,024 references (the limit)", c.request(f"<sr:Credit>{'&amp;' * 1_000}</sr:Credit>")),
        ("undefined entity flood", c.request(f"<sr:Credit>{'&e;' * 200_000}</sr:Credit>", signed=False)),
        ("'>' flood in text", c.request(f"<sr:Credit>{'>' * 500_000}</sr:Credit>")),
        ("'<' flood", c.request("<" * _fill("<"), signed=False)),
        ("unclosed quotes", c.request('<sr:Credit index="' * _fill('<sr:Credit index="'), signed=False)),
        ("257 whitespace forms", c.request("".join(f"<sr:Credit/>{' ' * (i % 50)}\n{' ' * (i // 50)}" for i in range(257)))),
        ("whitespace mixing tabs and spaces", c.request("".join(f"<sr:Credit/>{format(i, 'b').replace('0', ' ').replace('1', chr(9))}" for i in range(2, 2000)))),
        ("billion laughs", b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>'),
        ("UTF-16 request", c.request("<sr:UpdatePaymentMode><sr:Credit/></sr:UpdatePaymentMode>").decode()
            .replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")),
        ("huge base64 Pre-Command, signed by the User", ask.other(
            scenario.device("gas meter (SMETS2)"), srv="1.6", cv=5,
            body=f"<sr:SignedPreCommand><sr:GBCSPayload>{base64.b64encode(os.urandom(380_000)).decode()}</sr:GBCSPayload></sr:SignedPreCommand>")),
        ("10,000 elements, signed by the User", ask.other(c.device, srv="1.5", cv=4, body="<sr:Credit/>" * 9_950)),
        ("Pre-Command, signed by the User", ask.signed_pre_command(scenario.device("gas meter (SMETS2)"), GCS02_CREDIT)),
    ]
    return cases


def measure_time(engine: Engine, cases: list[tuple[str, bytes]], repeat: int, now: datetime) -> list[dict]:
    for _, raw in cases[1:4]:  # warm up (compiled patterns, caches, the first transaction), no replay
        engine.decide(raw, now=now)
    rows = []
    for name, raw in cases:
        walls, cpus, result = [], [], ""
        for attempt in range(repeat):
            gc.collect()
            wall, cpu = time.perf_counter(), time.thread_time()
            decision = engine.decide(raw, now=now)
            cpus.append((time.thread_time() - cpu) * 1e3)
            walls.append((time.perf_counter() - wall) * 1e3)
            if attempt == 0:  # later ones are replays of an allowed request
                result = decision.outcome if decision.outcome == "allow" else decision.reasons[0].rule
        parses = []
        for _ in range(repeat):  # the first parse alone: pre-scan, lxml, unsigned additions
            cpu = time.thread_time()
            try:
                parse_document(raw)
            except Refused:
                pass
            parses.append((time.thread_time() - cpu) * 1e3)
        rows.append({"input": name, "bytes": len(raw), "result": result, "worst_wall_ms": max(walls),
                     "worst_cpu_ms": max(cpus), "median_cpu_ms": sorted(cpus)[len(cpus) // 2],
                     "parse_worst_cpu_ms": max(parses)})
    return rows


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def adversarial_requests(c: Corpus):
    """Endless requests, each with strings lxml has never seen: four kinds in turn."""
    prefixes = [f"{a}{b}{d}" for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnopqrstuvwxyz0123456789"
                for d in "abcdefghijklmnopqrstuvwxyz0123456789" if f"{a}{b}{d}" not in ("xml", "xsi")]
    # Every whitespace run the pre-scan lets through that libxml2 would intern: at most two
    # line breaks, spaces or tabs, under 60 bytes (the set is finite: that is the point).
    blanks = [f"{pad * a}\n{pad * b}\n{pad * c}" for pad in (" ", "\t") for a in range(20) for b in range(19) for c in range(18)]
    for n in itertools.count():
        kind = n % 4
        if kind == 0:  # the experiment: 100 new element and attribute names
            body = "".join(f'<sr:E{n}x{i} a{n}x{i}="1"/>' for i in range(50))
            yield c.request(body, signed=False)
        elif kind == 1:  # new namespace URIs
            yield c.request("".join(f'<sr:Credit xmlns:x="urn:n{n}:{i}"/>' for i in range(20)), signed=False)
        elif kind == 2:  # new prefixes (the allowed set is finite: this walks through it)
            chosen = [prefixes[(n * 10 + i) % len(prefixes)] for i in range(10)]
            yield c.request("".join(f'<{p}:Credit xmlns:{p}="{SR}"/>' for p in chosen), signed=False)
        else:  # new whitespace runs of the allowed forms (libxml2 interns those under 60 bytes)
            runs = [blanks[(n * 5 + i) % len(blanks)] for i in range(20)]
            yield c.request("".join(f"<sr:Credit/>{run}" for run in runs), signed=False)


def measure_memory(engine: Engine, c: Corpus, count: int, now: datetime) -> dict:
    samples = []
    step = max(1, count // 10)
    outcomes: dict[str, int] = {}
    started = time.perf_counter()
    for n, raw in enumerate(itertools.islice(adversarial_requests(c), count), start=1):
        decision = engine.decide(raw, now=now)
        rule = decision.reasons[0].rule if decision.reasons else decision.outcome
        outcomes[rule] = outcomes.get(rule, 0) + 1
        if n == 1 or n % step == 0:
            gc.collect()
            samples.append((n, round(_rss_mib(), 1)))
    return {
        "requests": count,
        "seconds": round(time.perf_counter() - started, 1),
        "rss_mib": samples,
        "growth_after_first_tenth_mib": round(samples[-1][1] - samples[1][1], 1) if len(samples) > 2 else None,
        "outcomes": outcomes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--only", choices=("time", "memory"))
    parser.add_argument("--without-prescan", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    logs.configure("json", level="WARNING", stream=open(os.devnull, "w"))
    if args.without_prescan:
        duis_parser.prescan = lambda raw, limits: Scan()

    folder = Path(tempfile.mkdtemp(prefix="solr-adversarial-"))
    store = SqliteStore(folder / "adversarial.db")
    now = datetime.now(timezone.utc)
    scenario = SolrScenario(thresholds={"1.6": {"per_hour": 10**9, "per_day": 10**9}}).install(store, now=now)
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    c = Corpus(scenario)
    results: dict = {"without_prescan": args.without_prescan, "store": str(folder / "adversarial.db")}
    if args.only in (None, "time"):
        results["load_average"] = os.getloadavg()
        results["time"] = measure_time(engine, corpus(c, scenario), args.repeat, now)
        results["worst_cpu_ms"] = max(r["worst_cpu_ms"] for r in results["time"])
        results["worst_wall_ms"] = max(r["worst_wall_ms"] for r in results["time"])
    if args.only in (None, "memory"):
        results["memory"] = measure_memory(engine, c, args.requests, now)
    store.close()

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if "time" in results:
        print(f"{'':85}{'Engine.decide':^33} {'parse only':>10}")
        print(f"{'input':46} {'KiB':>6}  {'result':30} {'worst wall':>10} {'worst CPU':>10} {'median CPU':>10} {'worst CPU':>10}")
        for r in results["time"]:
            flag = "" if r["worst_cpu_ms"] < BUDGET_MS else "  OVER BUDGET"
            print(f"{r['input'][:46]:46} {r['bytes'] / 1024:6.0f}  {r['result'][:30]:30} "
                  f"{r['worst_wall_ms']:8.1f}ms {r['worst_cpu_ms']:8.1f}ms {r['median_cpu_ms']:8.1f}ms "
                  f"{r['parse_worst_cpu_ms']:8.1f}ms{flag}")
        print(f"worst of all: {results['worst_wall_ms']:.1f} ms wall, {results['worst_cpu_ms']:.1f} ms CPU "
              f"(budget {BUDGET_MS:.0f} ms per input, one core; load average {results['load_average'][0]:.1f})")
    if "memory" in results:
        m = results["memory"]
        print(f"\nmemory over {m['requests']} adversarial requests ({m['seconds']} s): RSS MiB by request")
        print("  " + "  ".join(f"{n}:{rss}" for n, rss in m["rss_mib"]))
        print(f"  growth after the first tenth: {m['growth_after_first_tenth_mib']} MiB; outcomes {m['outcomes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
