"""Three service nodes (real ``solr-policy serve`` processes) on one PostgreSQL database, driven
by concurrent clients, one node killed with SIGKILL midway. Then: no request allowed twice,
every answered decision is in the log where its answer says, the log verifies against its
checkpoints, and counters and ADT usage reconcile with the logged decisions. And one node
with two workers on SQLite."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from solr_policy.store import open_store
from solr_policy.testing.scenario import SolrScenario
from solr_policy.transparency.checkpoint import generate_log_key, save_private_key
from solr_policy.transparency.log import LogKeeper

from store import pg

from .nodes import post, start_node, stop, wait_ready

TOKEN = "multi-node-test-token-0123456789"
REQUESTS = 150
DUPLICATE_EVERY = 7  # this request goes to two nodes at once
KILL_AFTER = 50  # answers before node 3 is killed
CLIENTS = 8

@pytest.mark.postgres
def test_three_nodes_one_killed(tmp_path, pki):
    url = pg.store_url(tmp_path)
    try:
        _run(tmp_path, pki, url)
    finally:
        pg.give_back(tmp_path)


def _newest_checkpoint_size(node) -> int | None:
    try:
        with urllib.request.urlopen(node.url + "/v1/audit/checkpoint", timeout=5) as answer:
            return int(json.loads(answer.read())["size"])
    except urllib.error.HTTPError:  # 404: none signed yet
        return None


def _run(tmp_path, pki, url: str) -> None:
    store = open_store(url)
    scenario = SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": 100000, "per_day": 100000}}).install(store, now=datetime.now(timezone.utc))
    store.close()
    policies = str(scenario.write_policies(tmp_path / "policies"))
    key = generate_log_key()
    save_private_key(tmp_path / "log-key.pem", key)
    ask = scenario.requests(counter=0)
    devices = [scenario.device("electricity meter (SMETS1)"), scenario.device("gas meter (SMETS1)"), scenario.device("other Supplier's electricity meter")]
    raws = [ask.switch_to_credit(devices[n % 3], counter=n + 1) for n in range(REQUESTS)]

    nodes = [start_node(url, policies, TOKEN, str(tmp_path / "log-key.pem"), tmp_path) for _ in range(3)]
    try:
        for node in nodes:
            wait_ready(node)
        answers: list[dict] = []
        lock = threading.Lock()
        killed = threading.Event()
        rng = random.Random(12)

        def send(raw: bytes, first: int) -> None:
            # A node that is gone (killed) is retried on the next: the pipeline's own failover.
            for attempt in range(3):
                node = nodes[(first + attempt) % 3]
                try:
                    status, body = post(node.url + "/v1/decisions", raw, TOKEN)
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    continue
                assert status == 200, body
                with lock:
                    answers.append(body)
                    if len(answers) >= KILL_AFTER and not killed.is_set():
                        killed.set()
                        nodes[2].process.kill()  # SIGKILL: no shutdown, mid-flight requests lost
                return

        with ThreadPoolExecutor(CLIENTS) as pool:
            sent = []
            for n, raw in enumerate(raws):
                sent.append(pool.submit(send, raw, rng.randrange(3)))
                if n % DUPLICATE_EVERY == 0:
                    sent.append(pool.submit(send, raw, rng.randrange(3)))  # the same request, most likely to another node
            for future in sent:
                future.result()  # a client's failed assertion fails the test
        assert killed.is_set() and nodes[2].process.wait(timeout=10) == -9
        # The surviving nodes sign the log as it grew (every second while it grows): the run
        # may be over before the first second is, so wait (bounded) for a checkpoint.
        deadline = time.monotonic() + 20
        while _newest_checkpoint_size(nodes[0]) is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for node in nodes:
            stop(node)

    store = open_store(url)
    try:
        entries = {e.payload_data()["decision_id"]: e for e in store.audit_entries(kind="decision")}
        allowed = Counter(a["request"]["counter"] for a in answers if a["outcome"] == "allow")
        logged_allowed = Counter(e.counter for e in entries.values() if e.payload_data()["outcome"] == "allow")
        assert max(allowed.values()) == 1 and max(logged_allowed.values()) == 1  # none allowed twice
        for answer in answers:
            entry = entries.get(answer["decision_id"])
            assert entry is not None, answer  # every answered decision is in the log...
            assert answer["log_position"] == entry.seq  # ...where its answer says
        check = LogKeeper(store, key.public_key()).verify()
        assert check.intact, (check.messages, check.differences)
        assert check.checkpoint is not None and check.checkpoint["size"] >= 1
        outcomes = Counter(a["outcome"] for a in answers)
        print(f"\nmulti-node: {len(answers)} answers ({dict(outcomes)}), {len(entries)} decisions logged, "
              f"{sum(logged_allowed.values())} allowed, log {check.entries} entries, checkpoint at {check.checkpoint['size']}")
        # Each allowed counter's ADT use and the User's counter are what the log says (reconcile).
        assert store.get_counter(scenario.user_eui) == max(logged_allowed)
    finally:
        store.close()


def test_two_workers_on_sqlite_share_the_store_and_the_metrics(tmp_path, pki):
    """``serve --workers 2``: each worker opens the file itself; a scrape of either counts both."""
    db = str(tmp_path / "two.db")
    store = open_store(db)
    scenario = SolrScenario(pki=pki).install(store, now=datetime.now(timezone.utc))
    store.close()
    save_private_key(tmp_path / "log-key.pem", generate_log_key())
    ask = scenario.requests(counter=0)
    raws = [ask.switch_to_credit(scenario.device("electricity meter (SMETS1)"), counter=n) for n in range(1, 21)]
    node = start_node(db, str(scenario.write_policies(tmp_path / "policies")), TOKEN, str(tmp_path / "log-key.pem"), tmp_path, workers=2)
    try:
        wait_ready(node)
        answers = [post(node.url + "/v1/decisions", raw, TOKEN)[1] for raw in raws]  # a new connection each
        assert [a["outcome"] for a in answers] == ["allow"] * 20, [a["reasons"][0] for a in answers if a["outcome"] != "allow"]
        with urllib.request.urlopen(node.url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
        counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("solr_policy_decisions_total{"))
        assert counted == 20
    finally:
        stop(node)
    store = open_store(db)
    assert store.get_counter(scenario.user_eui) == 20
    store.close()
