"""Steps for issue 14, "as the DCC does it": ADT exceptions, Exit Quarantine files, SMETS1
data-value limits and a Device's Supplier history (its Supplier changing mid-event)."""

from __future__ import annotations

from pytest_bdd import given, then, when

from solr_policy.eui import duis_form
from solr_policy.governance.adt import sign_adt, submit_adt

from .conftest import Scene, explain
from .steps_governance import OFFICERS, attempt, done, gstep


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

