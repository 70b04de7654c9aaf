"""MP134B R5: the request content may only change the Payment Mode to Credit.

SMETS1 Devices: the Service Request body is what the DCC acts on, so it is checked.
SMETS2+ Devices: a Signed Pre-Command carries the GBCS command the Device will execute, so
its GBCS header is checked (Message Code, recipient, CRA flag); a Command Variant 4 Service
Request is checked by its body as for SMETS1.
"""

from __future__ import annotations

from typing import Callable

from solr_policy.duis.models import SignedPreCommand, UpdatePaymentMode
from solr_policy.eui import duis_form
from solr_policy.gbcs import GbcsHeader
from solr_policy.gbcs.message_codes import lookup
from solr_policy.policy import SIGNED_PRE_COMMAND_CVS
from solr_policy.rules.base import Facts, Outcome, fail, ok, skip
from solr_policy.world import Smets

_NA = "not applicable"


def payment_mode(f: Facts) -> Outcome:
    rule = "R5.payment-mode"
    if f.srv is None:
        return skip(rule, "SRV not allowed")
    if not isinstance(f.body, UpdatePaymentMode):
        return ok(rule, f"{_NA}: no Service Request payment mode in the body")
    wanted = f.srv.content.payment_mode
    if wanted is None:
        if f.srv.content.unconstrained:
            return ok(rule, "the policy leaves this content unconstrained")
        return fail(rule, "the policy states no payment mode for this SRV; refused by default")
    if f.body.mode != wanted:
        return fail(rule, f"the request switches the Payment Mode to {f.body.mode.capitalize()}; only {wanted.capitalize()} is allowed", "E12")
    return ok(rule, f"the request switches the Payment Mode to {wanted.capitalize()}")


def smets1_service_request_only(f: Facts) -> Outcome:
    rule = "R5.smets1-service-request"
    if f.device is None:
        return skip(rule, "unknown Device")
    if f.device.smets is Smets.SMETS1 and f.cv in SIGNED_PRE_COMMAND_CVS:
        return fail(rule, "SMETS1 Devices take this SRV as a Service Request (Command Variant 4), not a Signed Pre-Command", "E12")
    return ok(rule, f"{f.device.smets.value} Device, Command Variant {f.cv}")


def gbcs_message_code(f: Facts) -> Outcome:
    rule = "R5.gbcs-message-code"
    if not isinstance(f.body, SignedPreCommand):
        return ok(rule, f"{_NA}: no Signed Pre-Command")
    if f.gbcs is None:
        return fail(rule, f"the GBCS payload cannot be read: {f.gbcs_error}", "E12")
    if f.srv is None:
        return skip(rule, "SRV not allowed")
    allowed = f.srv.content.gbcs_message_codes
    code = f.gbcs.message_code
    known = lookup(code)
    label = f"{f.gbcs.message_code_hex}" + (f" {known.use_case} {known.name}" if known else "")
    if allowed is None:
        if f.srv.content.unconstrained:
            return ok(rule, f"GBCS {label}; the policy leaves it unconstrained")
        return fail(rule, "the policy states no GBCS Message Codes for this SRV; refused by default")
    if code not in allowed:
        names = ", ".join(f"0x{c:04X}" for c in allowed)
        return fail(rule, f"the GBCS command is {label}; only {names} may be sent", "E12")
    return ok(rule, f"the GBCS command is {label}")


def _gbcs_header_rule(rule: str, check: Callable[[Facts, GbcsHeader], Outcome]) -> Callable[[Facts], Outcome]:
    """A rule on the decoded GBCS header: n/a without a Signed Pre-Command, not checked
    (so not passed) when the payload could not be decoded (gbcs_message_code says why)."""

    def evaluate(f: Facts) -> Outcome:
        if not isinstance(f.body, SignedPreCommand):
            return ok(rule, f"{_NA}: no Signed Pre-Command")
        if f.gbcs is None:
            return skip(rule, "GBCS payload unreadable")
        return check(f, f.gbcs)

    evaluate.__name__ = rule.split(".")[1].replace("-", "_")
    evaluate.__doc__ = check.__doc__
    return evaluate


def _recipient(f: Facts, gbcs: GbcsHeader) -> Outcome:
    """The GBCS command is addressed to the request's own Device."""
    target = f.request.header.request_id.target
    if gbcs.recipient != target:
        return fail("R5.gbcs-recipient", f"the GBCS command is addressed to {duis_form(gbcs.recipient)}, not to the request's Device {duis_form(target)}", "E12")
    return ok("R5.gbcs-recipient", "the GBCS command is addressed to the request's Device")


def _command(f: Facts, gbcs: GbcsHeader) -> Outcome:
    """The CRA flag says command (not a response or alert)."""
    if gbcs.cra != "command":
        return fail("R5.gbcs-command", f"the GBCS CRA flag says {gbcs.cra}, not command", "E12")
    return ok("R5.gbcs-command", "the GBCS CRA flag says command")


def _originator(f: Facts, gbcs: GbcsHeader) -> Outcome:
    """The Pre-Command must be the requesting User's own: GBCS originator = RequestID originator."""
    originator = f.request.header.request_id.originator
    if gbcs.originator != originator:
        return fail("R5.gbcs-originator", f"the GBCS command was made for {duis_form(gbcs.originator)}, not for the requesting User {duis_form(originator)}", "E12")
    return ok("R5.gbcs-originator", "the GBCS command names the requesting User as originator")


def _signed(f: Facts, gbcs: GbcsHeader) -> Outcome:
    """A Signed Pre-Command carries the User's GBCS signature; an unsigned Pre-Command is not one."""
    if not gbcs.signed:
        return fail("R5.gbcs-signed", "the GBCS command carries no signature; a Signed Pre-Command must be signed", "E12")
    return ok("R5.gbcs-signed", f"the GBCS command carries a {gbcs.signature_length}-byte signature")


gbcs_recipient = _gbcs_header_rule("R5.gbcs-recipient", _recipient)
gbcs_is_command = _gbcs_header_rule("R5.gbcs-command", _command)
gbcs_originator = _gbcs_header_rule("R5.gbcs-originator", _originator)
gbcs_signed = _gbcs_header_rule("R5.gbcs-signed", _signed)
