"""MP134B R2: the role never holds Digital Signing certificates for Critical Commands."""

from __future__ import annotations

from solr_policy.rules.base import USER, Facts, Verdict, fail, ok, rule


@rule(
    "R2.no-digital-signing-certificate", "R2", code="E1", needs=(USER,),
    summary="a SoLR User for whom the store holds a (non-revoked) Supplier Digital Signing certificate",
)
def no_digital_signing_certificate(f: Facts) -> Verdict:
    if f.policy is None or f.policy.role.code != "SC":
        return ok("not the SoLR Contingency role")
    if f.signing_certificates:
        serials = ", ".join(f.signing_certificates)
        return fail(f"the store holds Digital Signing certificate(s) {serials} for this SoLR Contingency User; MP134B forbids them")
    return ok("no Digital Signing certificate is held for this User")
