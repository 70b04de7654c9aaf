"""The verifiable log on a store that other nodes keep writing to: verifying it and signing
checkpoints while decisions are appended elsewhere finds no problem that is not there."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from solr_policy.engine import Engine
from solr_policy.policy import PolicySet
from solr_policy.store import open_store
from solr_policy.testing.scenario import SolrScenario
from solr_policy.transparency.checkpoint import generate_log_key
from solr_policy.transparency.log import LogKeeper

from store import pg

POLICIES = Path(__file__).resolve().parents[1] / "policies"
NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)


@pytest.fixture()
def nodes(db, pki):
    """Two stores on one database, the scenario installed, and requests for node B to decide."""
    node_a, node_b = open_store(db), open_store(db)
    scenario = SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": 5, "per_day": 1000}}).install(node_a, now=NOW)
    ask = scenario.requests(counter=100)
    meter = scenario.device("electricity meter (SMETS1)")
    raws = [ask.switch_to_credit(meter) for _ in range(400)]  # allowed, then held over the threshold
    yield node_a, node_b, raws
    node_a.close()
    node_b.close()


def test_verifying_the_log_while_another_node_decides_finds_nothing_wrong(nodes):
    node_a, node_b, raws = nodes
    key = generate_log_key()
    keeper = LogKeeper(node_a, key.public_key(), key=key)
    keeper.checkpoint(NOW)
    engine_b = Engine(node_b, PolicySet.load_dir(POLICIES))
    stop = threading.Event()
    decided: list[str] = []

    def decide() -> None:
        for raw in raws:
            if stop.is_set():
                return
            decided.append(engine_b.decide(raw, now=NOW).outcome)

    writer = threading.Thread(target=decide, daemon=True)
    writer.start()
    checks = []
    try:
        while writer.is_alive() and len(checks) < 8:
            checks.append(keeper.verify())
            keeper.checkpoint(NOW)  # signed while the other node appends: still a checkpoint of this log
    finally:
        stop.set()
        writer.join(timeout=60)
    assert len(checks) >= 2 and decided  # verified while the other node was deciding
    for check in checks:
        assert check.intact, (check.messages, check.differences)
    final = keeper.verify()
    assert final.intact and final.entries == len(node_a.audit_entries()), (final.messages, final.differences)


def test_the_newest_checkpoint_never_goes_back_when_two_nodes_sign_at_once(nodes, monkeypatch):
    """Node A reads the log's head to sign it; meanwhile node B decides and signs a checkpoint
    of the longer log. The store's newest checkpoint (what GET /v1/audit/checkpoint serves and
    proofs are made against) must not then become A's shorter one: a monitor that saw the log
    at B's size would see it shrink."""
    node_a, node_b, raws = nodes
    key = generate_log_key()
    keeper_a = LogKeeper(node_a, key.public_key(), key=key)
    keeper_b = LogKeeper(node_b, key.public_key(), key=key)
    engine_b = Engine(node_b, PolicySet.load_dir(POLICIES))
    signed: list[int] = []
    read_head = node_a.log_head
    other: list[threading.Thread] = []

    def on_node_b() -> None:
        for raw in raws[:2]:
            engine_b.decide(raw, now=NOW)
        signed.append(keeper_b.checkpoint(NOW)[0].size)

    def log_head():
        head = read_head()
        if not other:  # the first read of A's checkpoint: B gets a second to decide and sign
            other.append(threading.Thread(target=on_node_b, daemon=True))
            other[0].start()
            other[0].join(timeout=1.0)
        return head

    monkeypatch.setattr(node_a, "log_head", log_head)
    signed.append(keeper_a.checkpoint(NOW)[0].size)
    other[0].join(timeout=60)
    assert not other[0].is_alive() and len(signed) == 2
    monkeypatch.undo()
    newest = node_a.latest_checkpoint()
    assert newest is not None and newest.size == max(signed), signed
    last = node_a.log_head().size
    assert newest.size == last
    keeper_a.prove_inclusion(last)  # every entry a checkpoint covered can be proved


def _restore_to(db: str, tmp_path: Path, entries: int, counter: int) -> None:
    """The database as a backup taken when the log had ``entries`` entries and the User's
    counter was ``counter`` left it (restored under a running node): later entries, their
    checkpoints and counters gone."""
    statements = [
        "DELETE FROM audit WHERE seq > {n}",
        "UPDATE audit_head SET seq = {n}, hash = (SELECT hash FROM audit WHERE seq = {n}) WHERE id = 1",
        "DELETE FROM checkpoints WHERE size > {n}",
        "UPDATE counters SET last_counter = '{c:020d}'",
    ]
    if db.startswith("postgresql"):
        schema = pg.schema_of(tmp_path)
        for sql in statements:
            pg.admin(f'SET search_path TO "{schema}"; ' + sql.format(n=entries, c=counter))
        pg.admin("SET search_path TO DEFAULT")
    else:
        import sqlite3

        with sqlite3.connect(db) as conn:
            for sql in statements:
                conn.execute(sql.format(n=entries, c=counter))


def test_a_node_without_a_checkpoint_file_refuses_a_store_restored_behind_a_checkpoint_it_signed(nodes, db, tmp_path):
    """PostgreSQL nodes keep their checkpoints in the store: a database restored from a backup
    brings back its own checkpoints too, so only what a node signed tells it the log went back.
    A node that signed a checkpoint refuses to decide on a log restored to before it: a
    decision lost with the restore would otherwise be allowed again (a replay)."""
    node_a, _, raws = nodes
    key = generate_log_key()
    keeper = LogKeeper(node_a, key.public_key(), key=key)  # no checkpoint file: as on PostgreSQL
    engine = Engine(node_a, PolicySet.load_dir(POLICIES), audit_log=keeper)
    first, second = raws[0], raws[1]
    allowed = engine.decide(first, now=NOW)
    assert allowed.outcome == "allow"
    before = node_a.log_head().size
    counter_before = node_a.get_counter(allowed.request["originator"].replace("-", ""))
    assert counter_before is not None
    assert engine.decide(second, now=NOW).outcome == "allow"
    keeper.checkpoint(NOW)  # the node's checkpoint loop signs the log with the second decision
    _restore_to(db, tmp_path, before, counter_before)
    again = engine.decide(second, now=NOW)
    assert again.outcome == "reject" and again.reasons[0].rule == "log.behind-checkpoint", again.reasons
