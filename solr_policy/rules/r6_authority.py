"""MP134B R6: only during a Supplier failure, on an active Authority instruction.

The instruction must name the User's Party as the SoLR Party and be in force at the
decision time; the Device must belong to the failed Supplier it names; a future-dated
request must execute inside the instruction's window; replays are refused.
"""

from __future__ import annotations

from datetime import datetime, timezone

from solr_policy.duis.models import SignedPreCommand, UpdatePaymentMode
from solr_policy.eui import duis_form
from solr_policy.rules.base import Facts, Outcome, fail, ok, skip

# The DUIS cancels a future-dated command by re-sending it with this execution time.
DUIS_CANCELLATION = datetime(3000, 12, 31, tzinfo=timezone.utc)


def device_known(f: Facts) -> Outcome:
    rule = "R6.device-known"
    target = f.request.header.request_id.target
    if f.device is None:
        return fail(rule, f"Device {duis_form(target)} does not exist", "E19")
    return ok(rule, f"Device {duis_form(target)} is a {f.device.smets.value} {f.device.type.value} of Supplier {f.device.supplier}")


def instruction_active(f: Facts) -> Outcome:
    rule = "R6.instruction-active"
    if f.policy is None or f.user is None:
        return skip(rule, "no User or policy")
    if not f.policy.requires_authority_instruction:
        return ok(rule, "the policy needs no Authority instruction")
    active = f.active_instructions
    if not active:
        return fail(rule, f"no Authority instruction naming Party {f.user.party} is active at {f.now.isoformat()}", "E3")
    return ok(rule, "active Authority instruction(s): " + ", ".join(i.reference for i in active))


def device_of_failed_supplier(f: Facts) -> Outcome:
    rule = "R6.device-of-failed-supplier"
    if f.policy is None:
        return skip(rule, "no policy")
    if f.policy.device_scope == "any":
        return ok(rule, "the policy allows any known Device")
    if f.device is None:
        return skip(rule, "unknown Device")
    active = f.active_instructions
    if not active:
        return skip(rule, "no active Authority instruction")
    matching = [i for i in active if i.failed_supplier == f.device.supplier]
    if not matching:
        failed = ", ".join(sorted({i.failed_supplier for i in active}))
        return fail(rule, f"the Device belongs to Supplier {f.device.supplier}, not to the failed Supplier ({failed}) of the active instruction", "E4")
    in_scope = [i for i in matching if i.covers(f.device.id)]
    if not in_scope:
        return fail(rule, f"the Device is not in the scope of instruction {matching[0].reference}", "E4")
    return ok(rule, f"the Device belongs to failed Supplier {f.device.supplier} (instruction {in_scope[0].reference})")


def _execution_time(f: Facts) -> datetime | None:
    if isinstance(f.body, (UpdatePaymentMode, SignedPreCommand)):
        return f.body.execution_date_time
    return None


def not_a_cancellation(f: Facts) -> Outcome:
    rule = "R6.no-cancellation"
    when = _execution_time(f)
    if when is not None and when == DUIS_CANCELLATION:
        return fail(rule, "the request cancels a future-dated command (ExecutionDateTime 3000-12-31T00:00:00Z); cancellations are not allowed", "E4")
    return ok(rule, "not a cancellation")


def execution_in_window(f: Facts) -> Outcome:
    rule = "R6.execution-window"
    when = _execution_time(f)
    if when is None:
        return ok(rule, "executes immediately")
    if when == DUIS_CANCELLATION:
        return skip(rule, "cancellation")
    if f.policy is not None and not f.policy.requires_authority_instruction:
        return ok(rule, "the policy needs no Authority instruction")
    if f.device is None:
        return skip(rule, "unknown Device")
    matching = [i for i in f.active_instructions if i.failed_supplier == f.device.supplier]
    if not matching:
        return skip(rule, "no active Authority instruction for the Device's Supplier")
    for instruction in matching:
        if instruction.window_contains(when):
            return ok(rule, f"executes at {when.isoformat()}, inside instruction {instruction.reference}")
    return fail(rule, f"the request is future dated to {when.isoformat()}, outside the window of instruction {matching[0].reference}", "E4")


def counter_fresh(f: Facts) -> Outcome:
    rule = "R6.counter-fresh"
    counter = f.request.header.request_id.counter
    if f.released_by is not None:
        return ok(rule, f"RequestID counter {counter} was taken when the request was quarantined")
    if f.last_counter is not None and counter <= f.last_counter:
        return fail(rule, f"RequestID counter {counter} is not above {f.last_counter}, the last accepted from this User (replay)")
    return ok(rule, f"RequestID counter {counter} is new")
