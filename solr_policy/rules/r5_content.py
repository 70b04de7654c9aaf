"""MP134B R5: the request content may only change the Payment Mode to Credit.

SMETS1 Devices: the Service Request body is what the DCC acts on, so it is checked.
SMETS2+ Devices: a Signed Pre-Command carries the GBCS command the Device will execute, so
its GBCS header is checked (Message Code, recipient, CRA flag); a Command Variant 4 Service
Request is checked by its body as for SMETS1.
"""

from __future__ import annotations

from typing import Callable

from solr_policy.duis.models import SignedPreCommand, UpdatePaymentMode
from solr_policy.gbcs import GbcsHeader
from solr_policy.gbcs.message_codes import lookup
from solr_policy.policy import SIGNED_PRE_COMMAND_CVS
from solr_policy.rules.base import (
    DEVICE,
    SRV,
    Facts,
    GbcsError,
    Rule,
    Verdict,
    duis,
    fail,
    ok,
    rule,
    skip,
)
from solr_policy.world import DeviceType, Smets

_NA = "not applicable"
_NO_PRE_COMMAND = f"{_NA}: no Signed Pre-Command"


@rule(
    "R5.device-type", "R5", code="E11", needs=(SRV, DEVICE),
    summary="a Device of a type the SRV does not address (SRV 1.6: electricity and gas meters)",
)
def device_type(f: Facts) -> Verdict:
    assert f.srv is not None and f.device is not None
    allowed = f.srv.device_types
    if allowed is None:
        return ok("the policy allows this SRV to any Device type")
    if f.device.type not in allowed:
        names = ", ".join(t.value for t in allowed)
        return fail(f"the Device is of type {f.device.type.value}; SRV {f.request.header.service_reference_variant} may address only {names}")
    return ok(f"the Device is of type {f.device.type.value}")


# Which meter a GBCS use case is for: ECS.. electricity (ESME), GCS.. gas (GSME).
_USE_CASE_DEVICE = {"ECS": DeviceType.ESME, "GCS": DeviceType.GSME}


@rule(
    "R5.gbcs-fits-device", "R5", code="E11", needs=(DEVICE,),
    summary="a GBCS command for an electricity meter sent to a gas meter, or the other way round",
)
def gbcs_fits_device(f: Facts) -> Verdict:
    assert f.device is not None
    if not isinstance(f.body, SignedPreCommand):
        return ok(_NO_PRE_COMMAND)
    if not isinstance(f.gbcs, GbcsHeader):
        return skip("GBCS payload unreadable")
    known = lookup(f.gbcs.message_code)
    meant = _USE_CASE_DEVICE.get(known.use_case[:3]) if known else None
    if meant is None:
        return fail(f"GBCS {f.gbcs.message_code_hex} is not a use case known to be for a {f.device.type.value}")
    if meant is not f.device.type:
        return fail(
            f"GBCS {f.gbcs.message_code_hex} {known.use_case if known else ''} is a command for a {meant.value}, "
            f"but Device {duis(f.device.id)} is of type {f.device.type.value}"
        )
    return ok(f"GBCS {known.use_case if known else f.gbcs.message_code_hex} is a command for a {meant.value}, as the Device is")


@rule("R5.payment-mode", "R5", code="E12", needs=(SRV,), summary="a Service Request body that switches to Prepayment")
def payment_mode(f: Facts) -> Verdict:
    assert f.srv is not None
    if not isinstance(f.body, UpdatePaymentMode):
        return ok(f"{_NA}: no Service Request payment mode in the body")
    wanted = f.srv.content.payment_mode
    if wanted is None:
        if f.srv.content.unconstrained:
            return ok("the policy leaves this content unconstrained")
        return fail("the policy states no payment mode for this SRV; refused by default", None)
    if f.body.mode != wanted:
        return fail(f"the request switches the Payment Mode to {f.body.mode.capitalize()}; only {wanted.capitalize()} is allowed")
    return ok(f"the request switches the Payment Mode to {wanted.capitalize()}")


@rule(
    "R5.smets1-service-request", "R5", code="E12", needs=(DEVICE,),
    summary="a Signed Pre-Command to a SMETS1 Device",
)
def smets1_service_request_only(f: Facts) -> Verdict:
    assert f.device is not None
    if f.device.smets is Smets.SMETS1 and f.cv in SIGNED_PRE_COMMAND_CVS:
        return fail("SMETS1 Devices take this SRV as a Service Request (Command Variant 4), not a Signed Pre-Command")
    return ok(f"{f.device.smets.value} Device, Command Variant {f.cv}")


@rule(
    "R5.gbcs-message-code", "R5", code="E12",
    summary="a GBCS command that is not one the SRV allows (ECS02/GCS02 for 1.6), or cannot be read",
)
def gbcs_message_code(f: Facts) -> Verdict:
    if not isinstance(f.body, SignedPreCommand):
        return ok(_NO_PRE_COMMAND)
    if isinstance(f.gbcs, GbcsError) or f.gbcs is None:
        why = f.gbcs.message if f.gbcs is not None else "not decoded"
        return fail(f"the GBCS payload cannot be read: {why}")
    if f.srv is None:
        return skip(SRV.missing)
    allowed = f.srv.content.gbcs_message_codes
    code = f.gbcs.message_code
    known = lookup(code)
    label = f"{f.gbcs.message_code_hex}" + (f" {known.use_case} {known.name}" if known else "")
    if allowed is None:
        if f.srv.content.unconstrained:
            return ok(f"GBCS {label}; the policy leaves it unconstrained")
        return fail("the policy states no GBCS Message Codes for this SRV; refused by default", None)
    if code not in allowed:
        names = ", ".join(f"0x{c:04X}" for c in allowed)
        return fail(f"the GBCS command is {label}; only {names} may be sent")
    return ok(f"the GBCS command is {label}")


def _gbcs_header_rule(id: str, summary: str) -> Callable[[Callable[[Facts, GbcsHeader], Verdict]], Rule]:
    """A rule on the decoded GBCS header: n/a without a Signed Pre-Command, not checked
    (so not passed) when the payload could not be decoded (gbcs-message-code says why)."""

    def declare(check: Callable[[Facts, GbcsHeader], Verdict]) -> Rule:
        @rule(id, "R5", code="E12", summary=summary)
        def on_header(f: Facts) -> Verdict:
            if not isinstance(f.body, SignedPreCommand):
                return ok(_NO_PRE_COMMAND)
            if not isinstance(f.gbcs, GbcsHeader):
                return skip("GBCS payload unreadable")
            return check(f, f.gbcs)

        return on_header

    return declare


@_gbcs_header_rule("R5.gbcs-recipient", "a GBCS command addressed to another Device")
def gbcs_recipient(f: Facts, gbcs: GbcsHeader) -> Verdict:
    target = f.request.header.request_id.target
    if gbcs.recipient != target:
        return fail(f"the GBCS command is addressed to {duis(gbcs.recipient)}, not to the request's Device {duis(target)}")
    return ok("the GBCS command is addressed to the request's Device")


@_gbcs_header_rule("R5.gbcs-command", "a GBCS message that is not a command (CRA flag)")
def gbcs_is_command(f: Facts, gbcs: GbcsHeader) -> Verdict:
    if gbcs.cra != "command":
        return fail(f"the GBCS CRA flag says {gbcs.cra}, not command")
    return ok("the GBCS CRA flag says command")


@_gbcs_header_rule("R5.gbcs-originator", "a GBCS command made for another User")
def gbcs_originator(f: Facts, gbcs: GbcsHeader) -> Verdict:
    """The Pre-Command must be the requesting User's own: GBCS originator = RequestID originator."""
    originator = f.request.header.request_id.originator
    if gbcs.originator != originator:
        return fail(f"the GBCS command was made for {duis(gbcs.originator)}, not for the requesting User {duis(originator)}")
    return ok("the GBCS command names the requesting User as originator")


@_gbcs_header_rule("R5.gbcs-counter-fresh", "a GBCS originator counter not above the last accepted from the User (replay)")
def gbcs_counter_fresh(f: Facts, gbcs: GbcsHeader) -> Verdict:
    """The GBCS command has its own replay protection, beside the DUIS RequestID counter: a
    stale Pre-Command inside a fresh DUIS request is a replay of the command the Device runs."""
    if f.release is not None:
        return ok(f"GBCS originator counter {gbcs.originator_counter} was taken when the request was quarantined")
    if f.last_gbcs_counter is not None and gbcs.originator_counter <= f.last_gbcs_counter:
        return fail(
            f"the GBCS originator counter {gbcs.originator_counter} is not above {f.last_gbcs_counter}, "
            "the last accepted from this User (a replayed command)"
        )
    return ok(f"GBCS originator counter {gbcs.originator_counter} is new")


@_gbcs_header_rule(
    "R5.gbcs-signed", "a GBCS command whose signature is missing, or does not verify with a trusted Pre-Command signer's key"
)
def gbcs_signed(f: Facts, gbcs: GbcsHeader) -> Verdict:
    """A Signed Pre-Command is only as good as its GBCS signature, verified with the key of a
    signer the role's policy trusts. MP134B R2 lets the role itself hold no Digital Signing key."""
    if not gbcs.signed:
        return fail("the GBCS command carries no signature (a Pre-Command ready to be signed is not a Signed Pre-Command)")
    if f.policy is None or not f.policy.pre_command_signers:
        return fail(
            "the policy names no trusted Pre-Command signer: under MP134B R2 the role holds no Digital Signing "
            "certificate, so it may send SRV 1.6 as a Service Request (Command Variant 4) only"
        )
    check = f.gbcs_signature
    if check is None or not check.tried:
        names = ", ".join(duis(s.eui) for s in f.policy.pre_command_signers)
        return fail(f"no In use Digital Signing certificate of a trusted Pre-Command signer ({names}) is in the store")
    if check.verified_by is None:
        return fail(
            f"the {gbcs.signature_length}-byte GBCS signature does not verify with the key of any trusted "
            f"Pre-Command signer (tried {', '.join(check.tried)})"
        )
    return ok(f"the GBCS signature verifies with {check.verified_by}, a trusted Pre-Command signer")
