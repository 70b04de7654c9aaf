"""MP134B R1: a User Role defined like the DUIS roles; only its known, active Users act."""

from __future__ import annotations

from solr_policy.rules.base import USER, Facts, Verdict, duis, fail, ok, rule
from solr_policy.world import UserStatus


@rule("R1.originator-is-signer", "R1", code="E1", summary="a RequestID originator that is not the signer of the request")
def originator_is_signer(f: Facts) -> Verdict:
    originator = f.request.header.request_id.originator
    signer = f.signer.certificate
    if originator != signer.subject_eui:
        signed_by = duis(signer.subject_eui) if signer.subject_eui else "(the certificate names no EUI-64)"
        return fail(f"the RequestID originator {duis(originator)} is not the signer {signed_by} (certificate serial {signer.serial})")
    return ok(f"the RequestID originator {duis(originator)} signed the request (certificate serial {signer.serial})")


@rule("R1.known-user", "R1", code="E1", summary="an originator that is not a known User")
def known_user(f: Facts) -> Verdict:
    if f.user is None:
        return fail(f"{duis(f.request.header.request_id.originator)} is not a known User")
    return ok(f"User {duis(f.user.id)} of Party {f.user.party}")


@rule("R1.user-role", "R1", code="E1", needs=(USER,), summary="a User whose role no policy governs")
def role_governed(f: Facts) -> Verdict:
    assert f.user is not None
    if f.policy is None:
        return fail(f"User Role {f.user.role} is not a role this engine authorises")
    return ok(f"User Role {f.policy.role.code} ({f.policy.role.name}), policy {f.policy.policy} v{f.policy.version}")


@rule("R1.user-status", "R1", code="E3", needs=(USER,), summary="a suspended or withdrawn User")
def user_active(f: Facts) -> Verdict:
    assert f.user is not None
    if f.user.status is not UserStatus.ACTIVE:
        return fail(f"User status is {f.user.status.value}")
    return ok("User is active")
