"""MP134B R1: a User Role defined like the DUIS roles; only its known, active Users act."""

from __future__ import annotations

from solr_policy.eui import duis_form
from solr_policy.rules.base import Facts, Outcome, fail, ok, skip
from solr_policy.world import UserStatus


def known_user(f: Facts) -> Outcome:
    rule = "R1.known-user"
    if f.user is None:
        return fail(rule, f"{duis_form(f.request.header.request_id.originator)} is not a known User", "E1")
    return ok(rule, f"User {duis_form(f.user.id)} of Party {f.user.party}")


def role_governed(f: Facts) -> Outcome:
    rule = "R1.user-role"
    if f.user is None:
        return skip(rule, "unknown User")
    if f.policy is None:
        return fail(rule, f"User Role {f.user.role} is not a role this engine authorises", "E1")
    return ok(rule, f"User Role {f.policy.role.code} ({f.policy.role.name}), policy {f.policy.policy} v{f.policy.version}")


def user_active(f: Facts) -> Outcome:
    rule = "R1.user-status"
    if f.user is None:
        return skip(rule, "unknown User")
    if f.user.status is not UserStatus.ACTIVE:
        return fail(rule, f"User status is {f.user.status.value}", "E3")
    return ok(rule, "User is active")
