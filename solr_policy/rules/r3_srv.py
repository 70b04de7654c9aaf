"""MP134B R3: only the SRVs on the role's allowlist, with the Command Variants it allows."""

from __future__ import annotations

from solr_policy.policy import SERVICE_REQUEST_CVS, SIGNED_PRE_COMMAND_CVS
from solr_policy.rules.base import POLICY, SRV, Facts, Verdict, fail, ok, rule


@rule("R3.srv-allowed", "R3", code="E2", needs=(POLICY,), summary="an SRV not on the role's allowlist")
def srv_allowed(f: Facts) -> Verdict:
    assert f.policy is not None
    variant = f.request.header.service_reference_variant
    if f.srv is None:
        allowed = ", ".join(sorted(f.policy.srvs)) or "none"
        return fail(f"SRV {variant} is not allowed for the {f.policy.role.name} role (allowed: {allowed})")
    return ok(f"SRV {variant} {f.srv.name} is allowed")


@rule("R3.srv-consistent", "R3", code="E12", summary="a ServiceReferenceVariant that is a variant of another ServiceReference")
def srv_consistent(f: Facts) -> Verdict:
    header = f.request.header
    variant, reference = header.service_reference_variant, header.service_reference
    if variant != reference and not variant.startswith(reference + "."):
        return fail(f"ServiceReferenceVariant {variant} does not belong to ServiceReference {reference}")
    return ok(f"ServiceReference {reference} matches variant {variant}")


@rule("R3.command-variant", "R3", code="E12", needs=(SRV,), summary="a Command Variant the SRV does not allow")
def command_variant(f: Facts) -> Verdict:
    assert f.srv is not None
    if f.cv not in f.srv.command_variants:
        allowed = ", ".join(str(cv) for cv in f.srv.command_variants)
        return fail(f"Command Variant {f.cv} is not allowed for SRV {f.request.header.service_reference_variant} (allowed: {allowed})")
    return ok(f"Command Variant {f.cv} is allowed")


@rule("R3.body-matches-srv", "R3", code="E12", needs=(SRV,), summary="a Body that is not the SRV's own")
def body_matches(f: Facts) -> Verdict:
    """The Body must be the SRV's own: SRV 1.6 cannot carry another SRV's body."""
    assert f.srv is not None
    element = f.request.body_element
    expected: str | None
    if f.cv in SIGNED_PRE_COMMAND_CVS:
        expected = "SignedPreCommand"
    elif f.cv in SERVICE_REQUEST_CVS:
        expected = f.srv.service_request_body
    else:
        return fail(f"Command Variant {f.cv} carries no body this role may send")
    if element != expected:
        return fail(f"Command Variant {f.cv} of SRV {f.request.header.service_reference_variant} needs a {expected} body, not {element}")
    return ok(f"Body {element} fits the SRV and Command Variant")
