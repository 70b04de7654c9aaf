"""What the contract suite cannot say about the PostgreSQL store: a whole SoLR event decided on
it, concurrent decisions and appends (threads sharing one pool), migrations when nodes start
together, locks waited on too long, the URL chosen by ``open_store``, ``--db`` and
``SOLR_POLICY_DB``, and the CI rule that a skipped PostgreSQL test is a failure."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from solr_policy.cli import cli
from solr_policy.engine import Engine
from solr_policy.errors import GovernanceRefused, StoreUnavailable
from solr_policy.governance import quarantine as held
from solr_policy.policy import PolicySet
from solr_policy.records import QuarantineStatus
from solr_policy.settings import Settings, SettingsError
from solr_policy.store import SqliteStore, open_store
from solr_policy.store.postgres import PostgresStore, lock_key, migrations, redacted
from solr_policy.testing.scenario import SolrScenario

from . import pg
from .kinds import POSTGRES

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)
MINUTE = timedelta(minutes=1)
METER = "electricity meter (SMETS1)"


@pytest.fixture()
def url(tmp_path) -> str:
    yield pg.store_url(tmp_path)
    pg.give_back(tmp_path)


@pytest.fixture()
def store(url):
    opened = PostgresStore(url)
    yield opened
    opened.close()


def run_threads(count: int, work) -> list:
    """``work(n)`` in ``count`` threads started together; their results, in thread order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(n: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[n] = work(n)
        except Exception as exc:  # noqa: BLE001 - reported in the results, asserted by the test
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


# -- choosing the store ----------------------------------------------------------------------
def test_open_store_takes_a_postgresql_url_and_anything_else_as_an_sqlite_file(url, tmp_path):
    for form in (url, url.replace("postgresql://", "postgres://", 1), "  " + url.replace("postgresql", "PostgreSQL", 1)):
        opened = open_store(form)
        try:
            assert isinstance(opened, PostgresStore) and opened.schema_version() == len(migrations())
        finally:
            opened.close()
    path = tmp_path / "postgresql.db"  # a file path that merely mentions the word
    opened = open_store(str(path))
    try:
        assert isinstance(opened, SqliteStore) and path.exists()
    finally:
        opened.close()


def test_settings_keep_a_url_as_text_and_refuse_one_libpq_cannot_read(url):
    assert Settings.load({"SOLR_POLICY_DB": url}).db == url  # Path() would fold the "//"
    assert Settings.load({}, db=url).db == url
    with pytest.raises(SettingsError) as raised:
        Settings.load({"SOLR_POLICY_DB": "postgresql://u:s3cret@127.0.0.1:port/test"})
    assert str(raised.value).startswith("SOLR_POLICY_DB: not a valid PostgreSQL URL (") and "s3cret" not in str(raised.value)
    with pytest.raises(SettingsError, match=r"^--db: not a valid PostgreSQL URL \(invalid URI query parameter"):
        Settings.load({}, db="postgresql://127.0.0.1/test?colour=blue")


def test_the_command_line_runs_on_a_url_from_the_flag_or_the_environment(url):
    runner = CliRunner()
    loaded = runner.invoke(cli, ["--db", url, "world", "load", str(ROOT / "examples" / "world.yaml")])
    assert loaded.exit_code == 0, loaded.output
    verified = runner.invoke(cli, ["audit", "verify"], env={"SOLR_POLICY_DB": url})
    assert verified.exit_code == 0, verified.output
    store = PostgresStore(url)
    try:
        assert store.list_parties() and store.verify_audit().intact
    finally:
        store.close()


def test_a_server_that_cannot_be_reached_is_one_line_and_exit_2_without_the_password():
    result = CliRunner().invoke(cli, ["--db", "postgresql://postgres:s3cret@127.0.0.1:1/test", "audit", "verify"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        'Error: store postgresql://postgres@127.0.0.1:1/test cannot be reached (connection to server at "127.0.0.1", port 1 failed: Connection refused)'
    ]
    assert "Traceback" not in result.output and "s3cret" not in result.output


def test_each_database_that_cannot_be_a_store_says_why(tmp_path):
    why = {
        "no server at the address": "cannot be reached",
        "not a URL libpq can read": "is not a valid PostgreSQL URL",
        "a user the server does not know": "refused the login",
        "a database that does not exist": "has no such database",
        "a schema that does not exist": "has no schema to create its tables in",
        "another application's tables": "holds tables of something else",
        "a store written by a newer solr-policy": f"was written by a newer solr-policy (schema 9999; this version knows {len(migrations())})",
    }
    try:
        ways = POSTGRES.unusable(tmp_path)
        assert set(ways) == set(why)
        for way, open_it in ways.items():
            with pytest.raises(StoreUnavailable) as raised:
                open_it().close()
            assert why[way] in raised.value.message, (way, raised.value.message)
    finally:
        POSTGRES.cleanup(tmp_path)


# -- a SoLR event, decided on PostgreSQL --------------------------------------------------------
def test_a_solr_event_is_decided_held_released_and_audited_on_postgresql(store, pki):
    scenario = SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": 3, "per_day": 5}}).install(store, now=NOW)
    engine = Engine(store, PolicySet.load_dir(POLICIES))
    ask = scenario.requests(counter=10)
    meter = scenario.device(METER)

    allowed = [engine.decide(ask.switch_to_credit(meter), now=NOW + n * MINUTE) for n in range(3)]
    assert [(d.outcome, d.response_code) for d in allowed] == [("allow", "I99")] * 3
    prepayment = engine.decide(ask.switch_to_prepayment(meter), now=NOW + 3 * MINUTE)
    assert prepayment.outcome == "reject" and "R5.payment-mode" in [r.rule for r in prepayment.reasons]
    other = engine.decide(ask.switch_to_credit(scenario.device("other Supplier's electricity meter")), now=NOW + 3 * MINUTE)
    assert other.outcome == "reject" and other.response_code == "E4"
    replay = engine.decide(ask.switch_to_credit(meter, counter=11), now=NOW + 3 * MINUTE)
    assert [r.rule for r in replay.reasons] == ["R6.counter-fresh"]

    over = [engine.decide(ask.switch_to_credit(meter), now=NOW + (4 + n) * MINUTE) for n in range(2)]
    assert [(d.outcome, d.response_code) for d in over] == [("quarantine", "AD1")] * 2
    first, second = (d.quarantine_id for d in over)
    assert [q.id for q in store.list_quarantine(status=QuarantineStatus.HELD)] == [first, second]

    # Two officers release the first held request at once: it is released once.
    outcomes = run_threads(
        2, lambda n: held.release(engine, first, officer=("aro-ann", "gov-alice")[n], reason="genuine", now=NOW + 10 * MINUTE)
    )
    assert sorted(o.outcome if not isinstance(o, GovernanceRefused) else o.rule for o in outcomes) == ["R4.quarantine-not-held", "allow"]
    held.discard(store, second, officer="gov-bob", reason="runaway", now=NOW + 11 * MINUTE)
    assert [(q.id, q.status) for q in store.list_quarantine()] == [(first, QuarantineStatus.RELEASED), (second, QuarantineStatus.DISCARDED)]

    hour = (NOW.strftime("%Y-%m-%dT%H:00Z"), NOW.strftime("%Y-%m-%d"))
    assert [store.adt_usage(scenario.user_eui, scenario.failed_supplier, "1.6", period, start) for period, start in zip(("hour", "day"), hour)] == [4, 4]
    assert store.get_counter(scenario.user_eui) == over[-1].request["counter"]
    decisions = [e.payload_data()["outcome"] for e in store.audit_entries(kind="decision")]
    assert Counter(decisions) == {"allow": 4, "reject": 3, "quarantine": 2}
    assert len(store.audit_entries(kind="quarantine.release")) == 1 and len(store.audit_entries(kind="quarantine.discard")) == 1
    check = store.verify_audit()
    assert check.intact and check.entries == len(store.audit_entries())


# -- concurrency within one process (threads sharing the pool) ------------------------------------
def test_threads_deciding_one_originators_requests_allow_each_once(url, pki):
    setup = PostgresStore(url)
    scenario = SolrScenario(pki=pki).install(setup, now=NOW)
    ask = scenario.requests(counter=100)
    raws = [ask.switch_to_credit(scenario.device(METER)) for _ in range(16)]
    setup.close()

    store = PostgresStore(url, max_connections=4)  # fewer connections than threads: they queue
    try:
        engine = Engine(store, PolicySet.load_dir(POLICIES))
        # Eight threads, each deciding every other request in turn, and each request twice
        # (by two threads at once, as a pipeline retrying on two nodes would).
        plan = [[raws[(n // 2 + k) % len(raws)] for k in range(0, len(raws), 2)] for n in range(8)]
        results = run_threads(8, lambda n: [engine.decide(raw, now=NOW) for raw in plan[n]])
        assert not [r for r in results if isinstance(r, Exception)], results
        decided = [d for thread in results for d in thread]
        taken = Counter(d.request["counter"] for d in decided if d.outcome == "allow")
        assert taken and max(taken.values()) == 1  # no request allowed twice
        assert all([r.rule for r in d.reasons] == ["R6.counter-fresh"] for d in decided if d.outcome != "allow")
        assert store.get_counter(scenario.user_eui) == max(taken)
        entries = store.audit_entries(kind="decision")
        assert len(entries) == len(decided)
        assert Counter((e.payload_data()["request"]["counter"], e.payload_data()["outcome"]) for e in entries) == Counter(
            (d.request["counter"], d.outcome) for d in decided
        )
        check = store.verify_audit()
        assert check.intact and check.entries == len(store.audit_entries())
    finally:
        store.close()


def test_nodes_deciding_groups_of_one_originators_requests_take_each_counter_and_threshold_once(url, pki):
    """Two nodes (engines on their own stores) are each given every request, and decide them in
    groups (one transaction each) at the same time: each request is taken once, by one node (the
    other's copy is a replay), and the ADT threshold holds across both nodes' groups, each
    group's overlay starting from what the other node committed before it."""
    setup = PostgresStore(url)
    scenario = SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": 30, "per_day": 1000}}).install(setup, now=NOW)
    ask = scenario.requests(counter=100)
    meters = [scenario.device(METER), scenario.device("gas meter (SMETS1)")]
    raws = [ask.switch_to_credit(meters[n % 2]) for n in range(48)]
    setup.close()

    nodes = [PostgresStore(url, max_connections=2) for _ in range(2)]
    try:
        engines = [Engine(node, PolicySet.load_dir(POLICIES)) for node in nodes]
        results = run_threads(2, lambda n: list(engines[n].decide_many(raws, now=NOW, batch=8, workers=1)))
        assert not [r for r in results if isinstance(r, Exception)], results
        decided = results[0] + results[1]
        taken = Counter(d.request["counter"] for d in decided if d.outcome in ("allow", "quarantine"))
        assert sorted(taken) == list(range(101, 149)) and set(taken.values()) == {1}  # each by one node
        outcomes = Counter(d.outcome for d in decided)
        assert outcomes == {"allow": 30, "quarantine": 18, "reject": 48}  # the threshold: 30 an hour, across both nodes
        assert all([r.rule for r in d.reasons] == ["R6.counter-fresh"] for d in decided if d.outcome == "reject")
        hour = NOW.strftime("%Y-%m-%dT%H:00Z")
        assert nodes[0].adt_usage(scenario.user_eui, scenario.failed_supplier, "1.6", "hour", hour) == 30
        assert nodes[0].get_counter(scenario.user_eui) == 148
        assert len(nodes[0].audit_entries(kind="decision")) == 96
        check = nodes[1].verify_audit()
        assert check.intact and check.entries == len(nodes[1].audit_entries())
    finally:
        for node in nodes:
            node.close()


def test_audit_appends_from_many_threads_form_one_linear_chain(store):
    def append(n: int) -> list[int]:
        seqs = []
        for k in range(10):
            with store.transaction():
                seqs.append(store.append_audit("test", {"thread": n, "k": k}, at=NOW, actor=f"thread-{n}"))
        return seqs

    results = run_threads(6, append)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(seq for seqs in results for seq in seqs) == list(range(1, 61))
    assert store.verify_audit().intact and store.verify_audit().entries == 60


def test_a_decision_waits_for_its_originator_no_longer_than_the_lock_timeout(url):
    store = PostgresStore(url, lock_timeout_ms=200)
    try:
        with psycopg.connect(url, autocommit=True) as other_node:
            with other_node.transaction():
                other_node.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("originator:90B3D51F300F0001"),))
                with pytest.raises(StoreUnavailable) as raised:
                    with store.transaction():
                        store.get_counter("90B3D51F300F0001")
                assert raised.value.message.startswith(f"store {store.name} is busy (a lock was held too long) (")
                assert store.get_counter("90B3D51F300F0001") is None  # a read outside a transaction never waits
                with store.transaction():
                    store.set_counter("90B3D51F300E0001", 5)  # another originator goes on meanwhile
        store.set_counter("90B3D51F300F0001", 7)  # and the store works once the lock is gone
        assert store.get_counter("90B3D51F300F0001") == 7
    finally:
        store.close()


# -- migrations ------------------------------------------------------------------------------
def test_nodes_starting_together_apply_each_migration_once(tmp_path):
    pg.require_server()
    schema = pg.scratch_schema(tmp_path)
    try:
        results = run_threads(4, lambda n: PostgresStore(pg.url_for_schema(schema)))
        assert all(isinstance(r, PostgresStore) for r in results), results
        for opened in results:
            opened.close()
        recorded = pg.admin(f'SELECT version, name, applied_at FROM "{schema}".schema_migrations ORDER BY version')
        assert [(version, name) for version, name, _ in recorded] == [(version, name) for version, name, _ in migrations()]
        PostgresStore(pg.url_for_schema(schema)).close()  # opening again applies nothing
        assert pg.admin(f'SELECT version, name, applied_at FROM "{schema}".schema_migrations ORDER BY version') == recorded
    finally:
        pg.give_back(tmp_path)


# -- CI: a skipped PostgreSQL test is a failure ------------------------------------------------
def test_without_a_server_a_postgresql_test_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(pg, "server_problem", lambda: "PostgreSQL test server x not reachable: Connection refused")
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL test server x not reachable: Connection refused"):
        pg.store_url(Path("anywhere"))


def test_under_ci_a_skipped_postgresql_test_fails_the_run():
    test = "tests/store/test_contract.py::test_a_counter_is_replaced_not_added"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", f"{test}[sqlite]", f"{test}[postgres]"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "CI": "true", "SOLR_POLICY_TEST_POSTGRES": "postgresql://postgres@127.0.0.1:1/test"},
    )
    assert done.returncode == 1, done.stdout
    assert "1 passed, 1 error" in done.stdout  # the SQLite copy ran; the PostgreSQL one failed in set-up
    assert "a PostgreSQL test may not be skipped under CI (PostgreSQL test server postgresql://postgres@127.0.0.1:1/test not reachable" in done.stdout


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://solr:s3cret@db.example:5432/solr?sslmode=verify-full", "postgresql://solr@db.example:5432/solr"),
        ("postgresql://db.example/solr?user=solr&password=s3cret", "postgresql://db.example/solr"),
        ("postgres://solr:s3cret@[::1]:5433/solr", "postgres://solr@[::1]:5433/solr"),
        ("postgresql://solr:s3cret@db.example:port/solr", "postgresql://solr@db.example:port/solr"),
    ],
)
def test_the_store_is_named_without_its_password(url, shown):
    assert redacted(url) == shown
