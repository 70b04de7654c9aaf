"""The audit trail as a verifiable log: checkpoints kept outside the store, offline proofs,
and every rollback of the log or the counters failing closed with a named reason."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from solr_policy.engine import Engine
from solr_policy.policy import PolicySet, default_policy_dir
from solr_policy.store import SqliteStore
from solr_policy.store.audit_chain import GENESIS, audit_hash
from solr_policy.testing.scenario import SolrScenario
from solr_policy.transparency.checkpoint import generate_log_key, public_key_pem
from solr_policy.transparency.log import LogKeeper
from solr_policy.transparency.proofs import check_consistency, check_inclusion

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
METER = "electricity meter (SMETS1)"


class World:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "solr.db"
        self.key = generate_log_key()
        self.checkpoint_file = folder / "solr.checkpoint"
        self.store = SqliteStore(self.db)
        self.scenario = SolrScenario().install(self.store, now=NOW)
        self.ask = self.scenario.requests()
        self.policies = PolicySet.load_dir(default_policy_dir())
        self.open(self.store)

    def open(self, store: SqliteStore) -> None:
        self.store = store
        self.keeper = LogKeeper(store, self.key.public_key(), key=self.key, checkpoint_file=self.checkpoint_file)
        self.engine = Engine(store, self.policies, audit_log=self.keeper)

    def credit(self, counter: int | None = None) -> bytes:
        return self.ask.switch_to_credit(self.scenario.device(METER), counter=counter)

    def sql(self, *statements: str) -> None:
        """What an attacker with write access to the database file can do."""
        self.store.close()
        conn = sqlite3.connect(self.db)
        for statement in statements:
            conn.execute(statement)
        conn.commit()
        conn.close()
        self.open(SqliteStore(self.db))


@pytest.fixture()
def world(tmp_path) -> World:
    return World(tmp_path)


def decided(world: World, n: int) -> list[bytes]:
    requests = [world.credit() for _ in range(n)]
    for raw in requests:
        assert world.engine.decide(raw, now=NOW).outcome == "allow"
    return requests


def test_checkpoint_kept_in_the_store_and_in_a_file_and_verified(world):
    decided(world, 3)
    checkpoint, note = world.keeper.checkpoint(NOW)
    assert checkpoint.size == len(world.store.audit_entries())
    assert world.checkpoint_file.read_text() == note == world.store.latest_checkpoint().note
    check = world.keeper.verify()
    assert check.intact, check
    assert check.checkpoint["size"] == checkpoint.size and check.differences == ()


def test_a_decision_is_proved_in_the_log_offline(world):
    decided(world, 2)
    world.keeper.checkpoint(NOW)
    entry = world.store.audit_entries(kind="decision")[-1]
    proof = world.keeper.prove_inclusion(entry.seq)
    # What an auditor has: the proof, the log's public key, the checkpoint it kept, the entry.
    verdict = check_inclusion(proof, world.key.public_key(), checkpoint=world.checkpoint_file.read_text(), leaf_data=bytes.fromhex(entry.hash))
    assert verdict.valid, verdict.reason
    other = world.store.audit_entries()[0]
    assert not check_inclusion(proof, world.key.public_key(), leaf_data=bytes.fromhex(other.hash)).valid
    assert not check_inclusion(proof, generate_log_key().public_key()).valid  # another key


def test_a_later_checkpoint_proves_it_extends_an_earlier_one(world):
    decided(world, 2)
    _, first = world.keeper.checkpoint(NOW)
    first_size = world.store.log_head().size
    decided(world, 3)
    world.keeper.checkpoint(NOW + timedelta(minutes=1))
    proof = world.keeper.prove_consistency(first_size)
    assert check_consistency(proof, world.key.public_key(), first_checkpoint=first).valid


# -- the rollbacks: each fails closed, with a reason -------------------------------------------
def _refused_behind(world: World) -> str:
    decision = world.engine.decide(world.credit(), now=NOW)
    assert decision.outcome == "reject" and decision.reasons[0].rule == "log.behind-checkpoint", decision.reasons
    return decision.reasons[0].message


def test_rewriting_the_whole_chain_and_its_head_is_detected(world):
    decided(world, 3)
    world.keeper.checkpoint(NOW)
    entries = world.store.audit_entries()
    # Change the first entry's payload and recompute every hash and the head, as an attacker would.
    statements, prev = [], GENESIS
    for e in entries:
        payload = e.payload.replace("gov-alice", "mallory") if e.seq == 1 else e.payload
        fields = {"actor": e.actor, "originator": e.originator, "device": e.device, "instruction": e.instruction, "counter": e.counter}
        digest = audit_hash(prev, e.seq, e.at, e.kind, fields, payload)
        statements.append(f"UPDATE audit SET payload = '{payload}', prev_hash = '{prev}', hash = '{digest}' WHERE seq = {e.seq}")
        prev = digest
    statements.append(f"UPDATE audit_head SET hash = '{prev}' WHERE id = 1")
    world.sql(*statements)
    assert world.store.verify_audit().intact  # the bare chain is fooled ...
    check = world.keeper.verify()
    assert not check.intact and any("rewritten" in m or "does not match" in m for m in check.messages), check
    assert "rewritten" in _refused_behind(world) or "tree" in _refused_behind(world)


def test_deleting_the_newest_entries_and_fixing_the_head_is_detected(world):
    decided(world, 3)
    world.keeper.checkpoint(NOW)
    last = world.store.audit_entries()[-3]
    world.sql(f"DELETE FROM audit WHERE seq > {last.seq}", f"UPDATE audit_head SET seq = {last.seq}, hash = '{last.hash}' WHERE id = 1")
    assert "entries were lost or removed" in _refused_behind(world)
    assert not world.keeper.verify().intact


def test_deleting_everything_is_detected(world):
    decided(world, 2)
    world.keeper.checkpoint(NOW)
    world.sql("DELETE FROM audit", "DELETE FROM audit_head", "DELETE FROM log_nodes", "DELETE FROM checkpoints")
    check = world.keeper.verify()
    assert not check.intact and check.entries == 0
    assert "entries were lost or removed" in _refused_behind(world)


def test_rolling_back_the_counters_table_lets_no_replay_through(world):
    first, second = decided(world, 2)
    world.sql("DELETE FROM counters")
    again = world.engine.decide(second, now=NOW)
    assert again.outcome == "reject" and again.reasons[0].rule == "R6.counter-fresh"
    check = world.keeper.verify()
    assert not check.intact and any("counter of" in d for d in check.differences)


def test_rolling_the_counter_back_to_an_older_value_lets_no_replay_through(world):
    first, second = decided(world, 2)
    world.sql("UPDATE counters SET last_counter = '00000000000000000001'")
    assert world.engine.decide(second, now=NOW).reasons[0].rule == "R6.counter-fresh"


def _crash_losing_the_wal(world, tmp_path) -> bytes:
    """One decision allowed and checkpointed, durable in the WAL only; then a crash loses the
    WAL and the store comes back with the main file. Returns that decision's request."""
    decided(world, 1)
    world.keeper.checkpoint(NOW)
    world.store.close()  # everything so far is in the main file
    world.open(SqliteStore(world.db))
    snapshot = tmp_path / "before.db"
    shutil.copy(world.db, snapshot)  # the main database file as it was, without the WAL
    second = world.credit()
    assert world.engine.decide(second, now=NOW).outcome == "allow"
    world.keeper.checkpoint(NOW)
    world.store.close()
    for suffix in ("-wal", "-shm"):
        Path(str(world.db) + suffix).unlink(missing_ok=True)
    shutil.copy(snapshot, world.db)
    world.open(SqliteStore(world.db))
    return second


def test_losing_the_wal_after_a_crash_is_detected(world, tmp_path):
    second = _crash_losing_the_wal(world, tmp_path)
    assert "entries were lost or removed" in _refused_behind(world)
    assert world.engine.decide(second, now=NOW).reasons[0].rule == "log.behind-checkpoint"  # no replay


def test_an_intact_store_decides_after_a_restart(world):
    decided(world, 2)
    world.keeper.checkpoint(NOW)
    world.store.close()
    world.open(SqliteStore(world.db))
    assert world.engine.decide(world.credit(), now=NOW).outcome == "allow"


def test_a_forged_checkpoint_file_is_not_trusted(world):
    decided(world, 1)
    world.keeper.checkpoint(NOW)
    forged = LogKeeper(world.store, generate_log_key().public_key(), key=generate_log_key(), checkpoint_file=world.folder / "other")
    forged.checkpoint(NOW, accept_rollback=True)  # a forger's key signs whatever it is given
    world.checkpoint_file.write_bytes((world.folder / "other").read_bytes())
    message = _refused_behind(world)
    assert "cannot be read or trusted" in message


def test_public_key_pem_round_trip(world):
    assert b"BEGIN PUBLIC KEY" in public_key_pem(world.key)


def test_a_rolled_back_store_gets_no_checkpoint_until_officers_recover_it(world, tmp_path):
    """The service signs a checkpoint whenever the log has grown (its checkpoint loop). After a
    lost WAL, the log grows again (an alert routed, a world load): signing it then would make
    the rolled-back log the newest checkpoint's, and the decisions lost with the WAL could be
    replayed. The keeper refuses to sign a log behind its newest checkpoint."""
    from solr_policy.transparency.merkle import LogRefused

    second = _crash_losing_the_wal(world, tmp_path)
    for n in range(3):  # the log grows past the lost entries by what needs no decision
        world.store.append_audit("world.load", {"file": f"world-{n}.yaml"}, at=NOW)
    kept = world.checkpoint_file.read_text()
    with pytest.raises(LogRefused) as refused:
        world.keeper.checkpoint(NOW)  # what the service's checkpoint loop does
    assert refused.value.rule == "log.behind-checkpoint"
    assert world.checkpoint_file.read_text() == kept
    assert world.engine.decide(second, now=NOW).reasons[0].rule == "log.behind-checkpoint"  # still no replay


def test_the_check_fails_as_decisions_do_when_the_checkpoint_file_is_missing(world):
    """The file outside the store is what catches a store restored with its own older
    checkpoints: with it gone (a mistyped setting, a file removed), decisions are refused, and
    the check of the log says why rather than "intact"."""
    decided(world, 1)
    world.keeper.checkpoint(NOW)
    assert world.keeper.verify().intact
    world.checkpoint_file.unlink()
    check = world.keeper.verify()
    assert not check.intact
    assert any(f"checkpoint file {world.checkpoint_file} is missing" in m for m in check.messages), check.messages
    assert world.engine.decide(world.credit(), now=NOW).reasons[0].rule == "log.behind-checkpoint"
