"""MP134B R2: the role never holds Digital Signing certificates for Critical Commands."""

from __future__ import annotations

from solr_policy.rules.base import Facts, Outcome, fail, ok, skip


def no_digital_signing_certificate(f: Facts) -> Outcome:
    rule = "R2.no-digital-signing-certificate"
    if f.user is None:
        return skip(rule, "unknown User")
    if f.policy is None or f.policy.role.code != "SC":
        return ok(rule, "not the SoLR Contingency role")
    if f.signing_certificates:
        serials = ", ".join(f.signing_certificates)
        return fail(rule, f"the store holds Digital Signing certificate(s) {serials} for this SoLR Contingency User; MP134B forbids them", "E1")
    return ok(rule, "no Digital Signing certificate is held for this User")
