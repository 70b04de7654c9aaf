"""MP134B R6: only during a Supplier failure, on an active Authority instruction.

The instruction must name the User's Party as the SoLR Party and be in force at the
decision time; the Device must belong to the failed Supplier it names; a future-dated
request must execute inside the instruction's window; replays are refused.
"""

from __future__ import annotations

from datetime import datetime, timezone

from solr_policy.duis.models import SignedPreCommand, UpdatePaymentMode
from solr_policy.rules.base import (
    DEVICE,
    POLICY,
    USER,
    Facts,
    Verdict,
    duis,
    fail,
    ok,
    rule,
    skip,
)

# The DUIS cancels a future-dated command by re-sending it with this execution time.
DUIS_CANCELLATION = datetime(3000, 12, 31, tzinfo=timezone.utc)


@rule("R6.device-known", "R6", code="E19", summary="an unknown Device")
def device_known(f: Facts) -> Verdict:
    target = f.request.header.request_id.target
    if f.device is None:
        return fail(f"Device {duis(target)} does not exist")
    return ok(f"Device {duis(target)} is a {f.device.smets.value} {f.device.type.value} of Supplier {f.supplier}")


@rule(
    "R6.instruction-active", "R6", code="E3", needs=(USER, POLICY),
    summary="no active Authority instruction naming the User's Party at the decision time",
)
def instruction_active(f: Facts) -> Verdict:
    assert f.policy is not None and f.user is not None
    if not f.policy.requires_authority_instruction:
        return ok("the policy needs no Authority instruction")
    active = f.active_instructions
    if not active:
        return fail(f"no Authority instruction naming Party {f.user.party} is active at {f.now.isoformat()}")
    return ok("active Authority instruction(s): " + ", ".join(i.reference for i in active))


@rule(
    "R6.device-of-failed-supplier", "R6", code="E4", needs=(POLICY,),
    summary="a Device of another Supplier, or outside the instruction's scope",
)
def device_of_failed_supplier(f: Facts) -> Verdict:
    assert f.policy is not None
    if f.policy.device_scope == "any":
        return ok("the policy allows any known Device")
    if f.device is None:
        return skip(DEVICE.missing)
    active = f.active_instructions
    if not active:
        return skip("no active Authority instruction")
    supplier, change = f.supplier_at(f.now)
    matching = [i for i in active if i.failed_supplier == supplier]
    if not matching:
        failed = ", ".join(sorted({i.failed_supplier for i in active}))
        if change is not None:
            return fail(f"the Device's Supplier is now {supplier} (since {change.effective_from.isoformat()}), not the failed Supplier ({failed}) of the active instruction")
        return fail(f"the Device belongs to Supplier {supplier}, not to the failed Supplier ({failed}) of the active instruction")
    in_scope = [i for i in matching if i.covers(f.device.id)]
    if not in_scope:
        return fail(f"the Device is not in the scope of instruction {matching[0].reference}")
    when = _execution_time(f)
    if when is not None and when > f.now and not _is_cancellation(f):
        later, moved = f.supplier_at(when)
        if later != supplier and moved is not None:
            return fail(f"the Device moves to Supplier {later} at {moved.effective_from.isoformat()}, before the request executes at {when.isoformat()}; not to the failed Supplier ({supplier})")
    return ok(f"the Device belongs to failed Supplier {supplier} (instruction {in_scope[0].reference})")


def _execution_time(f: Facts) -> datetime | None:
    if isinstance(f.body, (UpdatePaymentMode, SignedPreCommand)):
        return f.body.execution_date_time
    return None


def _is_cancellation(f: Facts) -> bool:
    return _execution_time(f) == DUIS_CANCELLATION


@rule(
    "R6.no-cancellation", "R6", code="E4",
    summary="the DUIS cancellation of a future-dated command, unless the policy says allow_cancellation",
)
def not_a_cancellation(f: Facts) -> Verdict:
    if not _is_cancellation(f):
        return ok("not a cancellation")
    if f.policy is not None and f.policy.allow_cancellation:
        return ok("the request cancels a future-dated command; the policy allows cancellations")
    return fail("the request cancels a future-dated command (ExecutionDateTime 3000-12-31T00:00:00Z); the policy does not allow cancellations")


@rule("R6.execution-window", "R6", code="E4", summary="a future execution date outside the instruction's window")
def execution_in_window(f: Facts) -> Verdict:
    when = _execution_time(f)
    if when is None:
        return ok("executes immediately")
    if _is_cancellation(f):
        if f.policy is not None and f.policy.allow_cancellation:
            return ok("a cancellation executes nothing")
        return skip("cancellation")
    if f.policy is not None and not f.policy.requires_authority_instruction:
        return ok("the policy needs no Authority instruction")
    if f.device is None:
        return skip(DEVICE.missing)
    matching = [i for i in f.active_instructions if i.failed_supplier == f.supplier]
    if not matching:
        return skip("no active Authority instruction for the Device's Supplier")
    for instruction in matching:
        if instruction.window_contains(when):
            return ok(f"executes at {when.isoformat()}, inside instruction {instruction.reference}")
    return fail(f"the request is future dated to {when.isoformat()}, outside the window of instruction {matching[0].reference}")


@rule("R6.counter-fresh", "R6", code=None, summary="a RequestID counter not above the last accepted (replay)")
def counter_fresh(f: Facts) -> Verdict:
    counter = f.request.header.request_id.counter
    if f.release is not None:
        return ok(f"RequestID counter {counter} was taken when the request was quarantined")
    if f.last_counter is not None and counter <= f.last_counter:
        return fail(f"RequestID counter {counter} is not above {f.last_counter}, the last accepted from this User (replay)")
    return ok(f"RequestID counter {counter} is new")
