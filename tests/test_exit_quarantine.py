"""Exit Quarantine files (issue 14, R4): an ARO releases or deletes held requests in bulk,
by a signed file, all or nothing, each item logged."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from solr_policy.engine import Engine
from solr_policy.errors import GovernanceRefused
from solr_policy.eui import duis_form
from solr_policy.governance.acts import Governance
from solr_policy.governance.adt import sign_adt
from solr_policy.governance.exit_quarantine import exit_file_text, parse_exit_file
from solr_policy.policy import PolicySet, default_policy_dir
from solr_policy.records import QuarantineStatus
from solr_policy.testing.governance import Signatories
from solr_policy.testing.scenario import SolrScenario
from solr_policy.world import UserStatus

NOW = datetime.now(timezone.utc).replace(hour=10, minute=30, second=0, microsecond=0)
METERS = ("electricity meter (SMETS1)", "gas meter (SMETS1)", "electricity meter (SMETS2)", "gas meter (SMETS2)")


@pytest.fixture()
def event(store):
    """Four requests over a threshold of 1 an hour: three held (ids in ``held``)."""
    s = SolrScenario().install(store, now=NOW)
    s.submit_adt(store, now=NOW, reference="ADT-ONE", thresholds={"1.6": {"per_hour": 1}})
    engine = Engine(store, PolicySet.load_dir(default_policy_dir()))
    requests = s.requests()
    decisions = [engine.decide(requests.switch_to_credit(s.device(m)), now=NOW) for m in METERS]
    assert [d.outcome for d in decisions] == ["allow", "quarantine", "quarantine", "quarantine"]
    s.held = [d.quarantine_id for d in decisions[1:]]
    return s, Governance(store, engine=engine), Signatories(keys=s.officer_keys)


def submit(gov: Governance, officers: Signatories, data: bytes, *, aro: str = "aro-ann", signed: bytes | None = None):
    signature = sign_adt(signed if signed is not None else data, officers.key_for(aro)).decode()
    envelope = officers.statement("quarantine.exit-file", {"file": data.decode(), "signature": signature}, officer=aro, at=NOW)
    return gov.submit(envelope, now=NOW)


def statuses(store, ids) -> list[str]:
    return [store.get_quarantine(i).status.value for i in ids]


def test_one_file_releases_two_held_requests_and_deletes_one(store, event):
    s, gov, officers = event
    first, second, third = s.held
    item = store.get_quarantine(third)
    request_id = f"{duis_form(item.originator)}:{duis_form(item.device)}:{item.counter}"  # the third by its DUIS RequestID
    data = exit_file_text(reference="EQ-1", party=s.solr_party, reason="checked with the operations team",
                          items=[(first, "release"), (second, "release"), (request_id, "delete")])
    act = submit(gov, officers, data)
    assert statuses(store, s.held) == ["released", "released", "discarded"]
    assert [i["action"] for i in act.result["items"]] == ["release", "release", "delete"]
    releases = [e.payload_data() for e in store.audit_entries(kind="quarantine.release")]
    assert sorted(r["item"] for r in releases) == [first, second] and {r["exit_file"] for r in releases} == {"EQ-1"}
    (discard,) = [e.payload_data() for e in store.audit_entries(kind="quarantine.discard")]
    assert discard["item"] == third and discard["exit_file"] == "EQ-1"
    (whole,) = store.audit_entries(kind="quarantine.exit-file")
    assert whole.actor == "aro-ann" and [i["item"] for i in whole.payload_data()["items"]] == [first, second, third]
    assert store.verify_audit().intact


def test_one_bad_item_applies_nothing(store, event):
    s, gov, officers = event
    first, second, third = s.held
    held_requests = len(store.list_quarantine(status=QuarantineStatus.HELD))
    data = exit_file_text(reference="EQ-2", party=s.solr_party, reason="r", items=[(first, "release"), (second, "delete"), (999, "release")])
    with pytest.raises(GovernanceRefused) as info:
        submit(gov, officers, data)
    assert info.value.rule == "R4.exit-quarantine" and "item 999" in info.value.message and "nothing" in info.value.message
    assert statuses(store, s.held) == ["held"] * 3 and len(store.list_quarantine(status=QuarantineStatus.HELD)) == held_requests
    assert store.audit_entries(kind="quarantine.release") == [] and store.audit_entries(kind="quarantine.discard") == []


def test_an_item_refused_when_decided_again_rolls_back_the_releases_before_it(store, event):
    s, gov, officers = event
    first, second, _ = s.held
    store.put_user(store.get_user(s.user_eui).model_copy(update={"status": UserStatus.SUSPENDED}))
    data = exit_file_text(reference="EQ-3", party=s.solr_party, reason="r", items=[(first, "delete"), (second, "release")])
    with pytest.raises(GovernanceRefused) as info:
        submit(gov, officers, data)
    assert f"item {second}" in info.value.message and "refused when decided again" in info.value.message
    assert statuses(store, s.held) == ["held"] * 3


def test_the_same_item_twice_and_another_partys_aro_are_refused(store, event):
    s, gov, officers = event
    first = s.held[0]
    twice = exit_file_text(reference="EQ-4", party=s.solr_party, reason="r", items=[(first, "release"), (first, "delete")])
    with pytest.raises(GovernanceRefused, match="named twice"):
        submit(gov, officers, twice)
    other = exit_file_text(reference="EQ-5", party=s.other_supplier, reason="r", items=[(first, "release")])
    with pytest.raises(GovernanceRefused, match="is an officer of"):
        submit(gov, officers, other)
    assert statuses(store, s.held) == ["held"] * 3


def test_a_file_changed_after_signing_is_refused(store, event):
    s, gov, officers = event
    signed = exit_file_text(reference="EQ-6", party=s.solr_party, reason="r", items=[(s.held[0], "delete")])
    changed = signed.replace(b"delete", b"release")
    with pytest.raises(GovernanceRefused, match="does not verify"):
        submit(gov, officers, changed, signed=signed)
    assert statuses(store, s.held) == ["held"] * 3


@pytest.mark.parametrize("items, says", [
    ("[{id: 1, action: keep}]", "action"),
    ("[{id: 1, request_id: 'x', action: release}]", "one of them"),
    ("[{request_id: 'not-a-request-id', action: delete}]", "originator:target:counter"),
    ("[]", "items"),
])
def test_malformed_files_say_what_is_wrong(items, says):
    data = f"exit_quarantine_version: 1\nreference: EQ-7\nparty: P\nreason: r\nitems: {items}\n".encode()
    with pytest.raises(GovernanceRefused) as info:
        parse_exit_file(data, "eq.yaml")
    assert info.value.rule == "R4.exit-quarantine" and says in info.value.message
