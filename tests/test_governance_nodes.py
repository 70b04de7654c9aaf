"""Governance acts on several nodes of one database: an act on one node and an act on another
at the same moment are applied one after the other, each judged against what the other did.
The authority of an act (its signers' keys, whether they are still active) is checked in the
transaction that applies it, never from a read made before another node's act committed."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from solr_policy.engine import Engine
from solr_policy.engine.overlay import Overlay
from solr_policy.errors import GovernanceRefused
from solr_policy.governance.acts import Governance
from solr_policy.governance.bootstrap import init_store
from solr_policy.policy import PolicySet
from solr_policy.store import open_store
from solr_policy.testing.governance import Signatories
from solr_policy.testing.scenario import SolrScenario


POLICIES = Path(__file__).resolve().parents[1] / "policies"
NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)


@pytest.fixture()
def nodes(db, pki):
    """Two stores on one database (two nodes), the scenario's officers registered."""
    node_a, node_b = open_store(db), open_store(db)
    scenario = SolrScenario(pki=pki).install(node_a, now=NOW, instruction_status=None)
    yield node_a, node_b, Signatories(keys=scenario.officer_keys)
    node_a.close()
    node_b.close()


def _while_keys_are_read(gov: Governance, monkeypatch, other_act) -> list[threading.Thread]:
    """Run ``other_act`` on another node just after ``gov`` has read the officers' keys, and
    give it a second to commit: it does unless ``gov`` holds what it needs to wait for."""
    read_keys = Governance.officer_keys
    started: list[threading.Thread] = []

    def officer_keys(self):
        keys = read_keys(self)
        if self is gov and not started:
            thread = threading.Thread(target=other_act, daemon=True)
            started.append(thread)
            thread.start()
            thread.join(timeout=1.0)
        return keys

    monkeypatch.setattr(Governance, "officer_keys", officer_keys)
    return started


def test_an_act_signed_with_a_key_rotated_away_on_another_node_meanwhile_is_not_applied(nodes, monkeypatch):
    """Node A rotates Sam's key (a lost laptop) while node B applies a statement signed with
    his old key appointing an ARO: applied before the rotation or refused, never after it."""
    node_a, node_b, officers = nodes
    gov_a, gov_b = Governance(node_a), Governance(node_b)
    rotation = officers.statement(
        "officer.rotate-key", {"officer": "sro-sam", "public_key": Signatories().public("sro-sam"), "reason": "lost laptop"},
        officer="gov-alice", at=NOW,
    )
    eve = {"officer": "aro-eve", "name": "Eve", "party": node_a.get_officer("sro-sam").party, "public_key": officers.public("aro-eve")}
    with_old_key = officers.statement("officer.appoint-aro", eve, officer="sro-sam", at=NOW)
    started = _while_keys_are_read(gov_b, monkeypatch, lambda: gov_a.submit(rotation, now=NOW))

    try:
        gov_b.submit(with_old_key, now=NOW)
    except GovernanceRefused as refused:
        assert refused.rule == "statement.unknown-key", refused.message  # the old key: no officer's any more
    started[0].join(timeout=60)
    assert not started[0].is_alive()
    assert node_b.get_officer("sro-sam").public_key != officers.public("sro-sam")  # rotated either way
    seq = {(e.kind, e.payload_data().get("officer")): e.seq for e in node_b.audit_entries()}
    if node_b.get_officer("aro-eve") is not None:
        # Applied with Sam's old key: only while it was his, so before the rotation.
        assert seq[("officer.appoint-aro", "aro-eve")] < seq[("officer.rotate-key", "sro-sam")]


def test_an_act_cosigned_by_an_officer_removed_on_another_node_meanwhile_is_not_applied(nodes, monkeypatch):
    """Four eyes: node B applies a statement co-signed by Bob while node A removes Bob: B's act
    is applied before the removal or refused, never applied after it."""
    node_a, node_b, officers = nodes
    gov_a, gov_b = Governance(node_a), Governance(node_b)
    carol = {"officer": "gov-carol", "name": "Carol", "public_key": officers.public("gov-carol")}
    gov_a.submit(officers.statement("officer.register-governance", carol, officer="gov-alice", cosigner="gov-bob", at=NOW), now=NOW)
    removal = officers.statement(
        "officer.remove", {"officer": "gov-bob", "reason": "left"}, officer="gov-alice", cosigner="gov-carol", at=NOW,
    )
    dave = {"officer": "gov-dave", "name": "Dave", "public_key": officers.public("gov-dave")}
    cosigned_by_bob = officers.statement("officer.register-governance", dave, officer="gov-carol", cosigner="gov-bob", at=NOW)
    started = _while_keys_are_read(gov_b, monkeypatch, lambda: gov_a.submit(removal, now=NOW))

    try:
        gov_b.submit(cosigned_by_bob, now=NOW)
    except GovernanceRefused as refused:
        assert refused.rule == "statement.unknown-key", refused.message  # Bob's key: no longer an active officer's
    started[0].join(timeout=60)
    assert not started[0].is_alive() and not node_b.get_officer("gov-bob").active
    seq = {(e.kind, e.payload_data().get("officer")): e.seq for e in node_b.audit_entries()}
    if node_b.get_officer("gov-dave") is not None:
        # Applied with Bob's co-signature: only while Bob was an officer, so before his removal.
        assert seq[("officer.register-governance", "gov-dave")] < seq[("officer.remove", "gov-bob")]


@pytest.fixture()
def event(db, pki):
    """Two nodes on one database with an active instruction, a User allowed one request an hour
    (the second is held), and the requests to send."""
    node_a, node_b = open_store(db), open_store(db)
    scenario = SolrScenario(pki=pki, thresholds={"1.6": {"per_hour": 1, "per_day": 100}}).install(node_a, now=NOW)
    policies = PolicySet.load_dir(POLICIES)
    ask = scenario.requests(counter=10)
    meter = scenario.device("electricity meter (SMETS1)")
    yield node_a, node_b, scenario, Signatories(keys=scenario.officer_keys), policies, lambda: ask.switch_to_credit(meter)
    node_a.close()
    node_b.close()


def _act_while_deciding(engine: Engine, raw: bytes, act) -> tuple[object, list[BaseException]]:
    """Decide ``raw`` with ``engine``; once the decision has read its facts (and holds its
    originator), run ``act`` on another node, giving it a second before the decision goes on."""
    flush = Overlay.flush
    errors: list[BaseException] = []
    started: list[threading.Thread] = []

    def run_act() -> None:
        try:
            act()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    def paused_flush(self):
        if self.store is engine.store and not started:
            started.append(threading.Thread(target=run_act, daemon=True))
            started[0].start()
            started[0].join(timeout=1.0)
        return flush(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Overlay, "flush", paused_flush)
        decision = engine.decide(raw, now=NOW)
    started[0].join(timeout=60)
    assert not started[0].is_alive()
    return decision, errors


def test_an_instruction_ended_on_another_node_allows_nothing_logged_after_its_end(event):
    """Node A ends the instruction while node B is deciding a request under it: B's decision
    is logged before the end (decided while it was active) or refused, never an allow that
    the log shows after the end the officer was told of."""
    node_a, node_b, scenario, officers, policies, request = event
    gov_a = Governance(node_a)
    end = officers.statement("instruction.end", {"reference": scenario.instruction(NOW).reference, "reason": "done"},
                             officer="gov-alice", at=NOW)
    decision, errors = _act_while_deciding(Engine(node_b, policies), request(), lambda: gov_a.submit(end, now=NOW))
    assert errors == []
    seq = {e.kind: e.seq for e in node_a.audit_entries()}
    assert decision.outcome != "reject" or "store.unavailable" not in [r.rule for r in decision.reasons]
    if decision.allowed:
        assert decision.log_position < seq["instruction.end"], "allowed after the instruction's end was logged"


def test_a_release_on_another_node_and_a_decision_of_the_same_user_both_go_through(event):
    """An ARO releases a held request on node A while node B decides the same User's next
    request: both finish (one after the other), neither is refused for a lock it waited on."""
    node_a, node_b, scenario, officers, policies, request = event
    engine_a = Engine(node_a, policies)
    assert engine_a.decide(request(), now=NOW).outcome == "allow"
    held = engine_a.decide(request(), now=NOW)
    assert held.outcome == "quarantine"
    gov_a = Governance(node_a, engine=engine_a)
    release = officers.statement("quarantine.release", {"item": held.quarantine_id, "reason": "checked"}, officer="aro-ann", at=NOW)
    decision, errors = _act_while_deciding(Engine(node_b, policies), request(), lambda: gov_a.submit(release, now=NOW))
    assert errors == [], errors
    assert [r.rule for r in decision.reasons if r.rule == "store.unavailable"] == [], decision.reasons
    assert decision.outcome == "quarantine"  # over the hour's threshold, as the one before it
    assert node_a.get_quarantine(held.quarantine_id).status.value == "released"


def test_two_nodes_running_init_at_once_register_one_set_of_founders(db, monkeypatch):
    """init run on every node as it starts (a deployment's start-up step): one of them starts
    the store, as the log's first entry; the other is refused as not empty, adding nothing."""
    node_a, node_b = open_store(db), open_store(db)
    try:
        keys = Signatories()
        first = [("gov-a", "A", keys.public("gov-a")), ("gov-b", "B", keys.public("gov-b"))]
        second = [("gov-c", "C", keys.public("gov-c")), ("gov-d", "D", keys.public("gov-d"))]
        outcomes: list[str] = []

        def init_on(store, founders) -> None:
            try:
                init_store(store, founders, at=NOW)
                outcomes.append("done")
            except GovernanceRefused as refusal:
                outcomes.append(refusal.rule)

        read_certificates = node_b.list_certificates
        other: list[threading.Thread] = []

        def list_certificates():
            found = read_certificates()
            if not other:  # node B has looked at the store: node A gets a second to start it
                other.append(threading.Thread(target=init_on, args=(node_a, first), daemon=True))
                other[0].start()
                other[0].join(timeout=1.0)
            return found

        monkeypatch.setattr(node_b, "list_certificates", list_certificates)
        init_on(node_b, second)
        other[0].join(timeout=60)
        assert not other[0].is_alive()
        monkeypatch.undo()
        assert sorted(outcomes) == ["done", "init.not-empty"]
        entries = node_a.audit_entries()
        assert [e.kind for e in entries].count("init") == 1 and entries[0].kind == "init"
        assert len(node_a.list_officers()) == 2
    finally:
        node_a.close()
        node_b.close()
