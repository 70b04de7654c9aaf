"""Steps for issue 14, "as the DCC does it": ADT exceptions, Exit Quarantine files, SMETS1
data-value limits and a Device's Supplier history (its Supplier changing mid-event)."""

from __future__ import annotations

from datetime import timedelta

from pytest_bdd import given, then, when

from solr_policy.eui import duis_form
from solr_policy.governance.acts import Governance
from solr_policy.governance.adt import sign_adt, submit_adt
from solr_policy.governance.exit_quarantine import exit_file_text
from solr_policy.requirements import REQUIREMENTS
from solr_policy.spec_report import RequirementStatus, render_markdown
from solr_policy.testing.governance import Signatories
from solr_policy.world import SupplierChange

from .conftest import DELETED, FAILED_SUPPLIER_METERS, OUTCOMES, SOLR_USER, Scene, _switch, explain
from .steps_governance import OFFICERS, attempt, done, gstep, party_id


# -- R4: ADT files with exceptions -------------------------------------------------------------
def _submit_adt(scene: Scene, officer: str, thresholds: dict, exceptions: list | None = None):
    reference = f"ADT-DCC-{len(scene.store.list_adt_files()) + 1:03d}"
    data = scene.solr.adt_file(reference=reference, thresholds={"1.6": thresholds}, exceptions=exceptions)
    aro = OFFICERS[officer]
    return submit_adt(scene.store, data, sign_adt(data, scene.solr.officer_keys[aro]), aro=aro, at=scene.now)


@given(gstep("{officer:Officer} has submitted an ADT file allowing {hour:d} switch to credit an hour, with {meter:Meter} exempt"))
def adt_with_exempt_meter(scene: Scene, officer: str, hour: int, meter: str):
    exempt = [{"name": "priority-care", "devices": [scene.meter_id(meter)], "exempt": True}]
    done(lambda: _submit_adt(scene, officer, {"per_hour": hour}, exempt))


@given(gstep("{officer:Officer} has submitted an ADT file allowing {hour:d} switches to credit an hour, with {meter:Meter} held to {n:d} every {minutes:d} minutes"))
def adt_with_own_threshold(scene: Scene, officer: str, hour: int, meter: str, n: int, minutes: int):
    own = [{"name": "trial-street", "devices": [scene.meter_id(meter)], "thresholds": {f"per_{minutes}_minutes": n}}]
    done(lambda: _submit_adt(scene, officer, {"per_hour": hour}, own))


@when(gstep("{officer:Officer} submits an ADT file allowing {n:d} switches to credit every {minutes:d} minutes"))
def adt_with_odd_window(scene: Scene, officer: str, n: int, minutes: int):
    attempt(scene, lambda: _submit_adt(scene, officer, {f"per_{minutes}_minutes": n}))


@then(gstep("the request was let through by the exception for {meter:Meter}"))
def let_through_by_exception(scene: Scene, meter: str):
    decision = scene.decision
    assert decision is not None and decision.request["target"] == duis_form(scene.meter_id(meter)), explain(decision)
    check = next(c for c in decision.checks if c.rule == "R4.adt-threshold")
    assert check.result == "pass" and "exempt" in check.message and "priority-care" in check.message, check



@given(gstep("{officer:Officer} has submitted an ADT file allowing {hour:d} switch to credit an hour"))
def adt_plain(scene: Scene, officer: str, hour: int):
    done(lambda: _submit_adt(scene, officer, {"per_hour": hour}))


# -- R4: Exit Quarantine files -----------------------------------------------------------------


@given(gstep("the SoLR Contingency user has sent {count:d} switches to credit this hour, the last {held:d} held in quarantine"))
def burst_held(scene: Scene, count: int, held: int):
    outcomes = [scene.decide(SOLR_USER, _switch(scene, SOLR_USER, FAILED_SUPPLIER_METERS[n % 4], "credit")) for n in range(count)]
    assert [d.outcome for d in outcomes[count - held:]] == ["quarantine"] * held, [explain(d) for d in outcomes]
    scene.notes["held"] = [d.quarantine_id for d in outcomes[count - held:]]


def _send_exit_file(scene: Scene, officer: str, items: list) -> None:
    aro = OFFICERS[officer]
    party = scene.store.get_officer(aro).party
    data = exit_file_text(reference=f"EQ-SPEC-{len(scene.notes.get('held', []))}", party=party, reason="checked with the operations team", items=items)
    signature = sign_adt(data, scene.solr.officer_keys[aro]).decode()
    envelope = Signatories(keys=scene.solr.officer_keys).statement(
        "quarantine.exit-file", {"file": data.decode(), "signature": signature}, officer=aro, at=scene.now)
    scene.notes["exit file"] = data
    attempt(scene, lambda: Governance(scene.store, engine=scene.engine).submit(envelope, now=scene.now))


@when(gstep("{officer:Officer} sends a signed Exit Quarantine file releasing the first two held requests and deleting the third"))
def exit_two_and_one(scene: Scene, officer: str):
    first, second, third = scene.notes["held"]
    _send_exit_file(scene, officer, [(first, "release"), (second, "release"), (third, "delete")])


@when(gstep("{officer:Officer} sends a signed Exit Quarantine file releasing the first held request and a request that was never held"))
def exit_with_unknown(scene: Scene, officer: str):
    _send_exit_file(scene, officer, [(scene.notes["held"][0], "release"), (max(scene.notes["held"]) + 100, "release")])


@then("the first two held requests are released and allowed, and the third is deleted")
def exit_applied(scene: Scene):
    assert scene.refusal is None, f"the file was refused: {scene.refusal}"
    assert [scene.store.get_quarantine(i).status.value for i in scene.notes["held"]] == ["released", "released", "discarded"]
    decisions = [e.payload_data() for e in scene.store.audit_entries(kind="decision")]
    released = [d for d in decisions if d["effects"]["release"] in scene.notes["held"]]
    assert [d["outcome"] for d in released] == ["allow", "allow"], released


@then(gstep("each of the three is recorded as done by {officer:Officer} under that Exit Quarantine file"))
def exit_logged(scene: Scene, officer: str):
    held = scene.notes["held"]
    for kind, items in (("quarantine.release", held[:2]), ("quarantine.discard", held[2:])):
        logged = [e for e in scene.store.audit_entries(kind=kind, actor=OFFICERS[officer])]
        assert sorted(e.payload_data()["item"] for e in logged) == items, logged
        assert all(e.payload_data()["exit_file"].startswith("EQ-SPEC") for e in logged)


@then("the three requests are still held")
def three_still_held(scene: Scene):
    assert [scene.store.get_quarantine(i).status.value for i in scene.notes["held"]] == ["held"] * 3
    assert scene.store.audit_entries(kind="quarantine.release") == [] and scene.store.audit_entries(kind="quarantine.discard") == []


# -- R6: a meter whose Supplier changes mid-event ------------------------------------------------
def _move(scene: Scene, meter: str, party: str, at) -> None:
    device = scene.meter_id(meter)
    scene.store.put_supplier_history(device, [SupplierChange(device=device, effective_from=at, supplier=party_id(scene, party))])


@given(gstep("the market identifiers of {meter:Meter} moved to {party:Party} an hour ago"))
def identifiers_moved(scene: Scene, meter: str, party: str):
    _move(scene, meter, party, scene.now - timedelta(hours=1))


@given(gstep("the move of {meter:Meter}'s market identifiers to {party:Party} is delayed until tomorrow"))
def move_delayed(scene: Scene, meter: str, party: str):
    _move(scene, meter, party, scene.now + timedelta(days=1))


@then(gstep("the reason names {party:Party} as the meter's Supplier now"))
def reason_names_owner(scene: Scene, party: str):
    decision = scene.decision
    assert decision is not None, "no decision"
    messages = [r.message for r in decision.reasons if r.rule == "R6.device-of-failed-supplier"]
    assert any(f"Supplier is now {party_id(scene, party)}" in m for m in messages), explain(decision)


# -- R4: SMETS1 data-value limits ----------------------------------------------------------------
@given(gstep("the policy lets the role set prepayment, with the disablement threshold of SMETS1 meters at least {least:d}"))
def policy_bounds_values(scene: Scene, least: int):
    def change(policy: dict) -> None:
        policy["srvs"]["1.6"]["content"]["payment_mode"] = "prepayment"
        policy["srvs"]["1.6"]["smets1_data_value_limits"] = {"DisablementThreshold": {"min": least}}

    scene.changed_policy(change)


@then(DELETED)
def request_deleted(scene: Scene):
    decision, expected = scene.decision, OUTCOMES[DELETED]
    assert decision is not None and decision.outcome == "delete", explain(decision)
    assert decision.response_code == expected.code and [r.rule for r in decision.reasons] == [expected.rule], explain(decision)
    assert decision.quarantine_id is None and scene.store.list_quarantine() == []
    assert scene.store.get_counter(scene.solr.user_eui) is None, "a deleted request took its counter"


# -- labels: SEC text and this project's reading ---------------------------------------------------
READING_TOPICS = {
    "the role code": "Role code SC", "the allowlist": "The 1.6-only allowlist", "the ADT rules for the role": "ADT rules for the role",
    "cancellations": "Cancellations", "the Pre-Command signers": "Pre-Command signers", "the file formats": "File formats",
}


@when("the specification report is written for SECAS")
def report_written(scene: Scene):
    statuses = {code: RequirementStatus(code, text) for code, text in REQUIREMENTS.items()}
    scene.notes["report"] = render_markdown(statuses, [], generated=scene.now)


def _reading_rows(scene: Scene) -> dict[str, list[str]]:
    text = str(scene.notes["report"])
    section = text[text.index("## SEC text and this project's reading"):]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ") and "This project's reading:" in line]
    return {row[0].lstrip("| "): row for row in rows}


@then("it marks the role code, the allowlist, the ADT rules for the role, cancellations, the Pre-Command signers and the file formats as this project's reading")
def readings_marked(scene: Scene):
    rows = _reading_rows(scene)
    for topic in READING_TOPICS.values():
        assert topic in rows and rows[topic][3].startswith("**This project's reading:**"), (topic, sorted(rows))


@then("each reading is shown beside what SEC text says, with an open question for SECAS")
def readings_questioned(scene: Scene):
    for topic, row in _reading_rows(scene).items():
        sec_text, question = row[2], row[4].rstrip(" |")
        assert sec_text and question.endswith("?"), (topic, row)


@then("it has a glossary explaining SRV, CV, ADT, SRO, ARO, SRP, SMETS, GBCS, Pre-Command and the DUIS codes it uses")
def glossary_present(scene: Scene):
    text = str(scene.notes["report"])
    glossary = text[text.index("**Glossary**"):]
    for term in ("SRV", "CV", "ADT", "SRO", "ARO", "SRP", "SMETS", "GBCS", "Pre-Command", "I99", "E1", "E4", "E12", "AD1"):
        assert f"| {term} | " in glossary and len(glossary.split(f"| {term} | ")[1].split(" |")[0]) > 10, term
