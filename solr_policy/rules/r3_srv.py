"""MP134B R3: only the SRVs on the role's allowlist, with the Command Variants it allows."""

from __future__ import annotations

from solr_policy.policy import SERVICE_REQUEST_CVS, SIGNED_PRE_COMMAND_CVS
from solr_policy.rules.base import Facts, Outcome, fail, ok, skip


def srv_allowed(f: Facts) -> Outcome:
    rule = "R3.srv-allowed"
    variant = f.request.header.service_reference_variant
    if f.policy is None:
        return skip(rule, "no policy for the User Role")
    if f.srv is None:
        allowed = ", ".join(sorted(f.policy.srvs)) or "none"
        return fail(rule, f"SRV {variant} is not allowed for the {f.policy.role.name} role (allowed: {allowed})", "E2")
    return ok(rule, f"SRV {variant} {f.srv.name} is allowed")


def srv_consistent(f: Facts) -> Outcome:
    rule = "R3.srv-consistent"
    header = f.request.header
    variant, reference = header.service_reference_variant, header.service_reference
    if variant != reference and not variant.startswith(reference + "."):
        return fail(rule, f"ServiceReferenceVariant {variant} does not belong to ServiceReference {reference}", "E12")
    return ok(rule, f"ServiceReference {reference} matches variant {variant}")


def command_variant(f: Facts) -> Outcome:
    rule = "R3.command-variant"
    if f.srv is None:
        return skip(rule, "SRV not allowed")
    if f.cv not in f.srv.command_variants:
        allowed = ", ".join(str(cv) for cv in f.srv.command_variants)
        return fail(rule, f"Command Variant {f.cv} is not allowed for SRV {f.request.header.service_reference_variant} (allowed: {allowed})", "E12")
    return ok(rule, f"Command Variant {f.cv} is allowed")


def body_matches(f: Facts) -> Outcome:
    """The Body must be the SRV's own: SRV 1.6 cannot carry another SRV's body."""
    rule = "R3.body-matches-srv"
    if f.srv is None:
        return skip(rule, "SRV not allowed")
    element = f.request.body_element
    if f.cv in SIGNED_PRE_COMMAND_CVS:
        expected = "SignedPreCommand"
    elif f.cv in SERVICE_REQUEST_CVS:
        expected = f.srv.service_request_body
    else:
        return fail(rule, f"Command Variant {f.cv} carries no body this role may send", "E12")
    if element != expected:
        return fail(rule, f"Command Variant {f.cv} of SRV {f.request.header.service_reference_variant} needs a {expected} body, not {element}", "E12")
    return ok(rule, f"Body {element} fits the SRV and Command Variant")
