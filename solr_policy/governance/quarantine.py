"""Quarantined requests (over an ADT threshold): released or discarded by a named officer."""

from __future__ import annotations

from datetime import datetime, timezone

from solr_policy.errors import GovernanceRefused
from solr_policy.governance.officers import ARO, GOVERNANCE, require_officer


def _authorise(store, item: int, officer: str) -> dict:
    held = store.get_quarantine(item)
    if held is None:
        raise GovernanceRefused("R4.quarantine-unknown", f"no quarantined request {item}")
    if held["status"] != "held":
        raise GovernanceRefused("R4.quarantine-not-held", f"quarantined request {item} was already {held['status']}")
    user = store.get_user(held["originator"])
    require_officer(store, officer, (ARO, GOVERNANCE), party=user.party if user else None)
    return held


def release(engine, item: int, *, officer: str, reason: str, now: datetime | None = None):
    """Let a held request through: it is decided again, without its threshold."""
    now = now or datetime.now(timezone.utc)
    _authorise(engine.store, item, officer)
    engine.store.append_audit("quarantine.release", {"item": item, "reason": reason}, at=now, actor=officer)
    return engine.release(item, officer=officer, now=now)


def discard(store, item: int, *, officer: str, reason: str, now: datetime | None = None) -> None:
    now = now or datetime.now(timezone.utc)
    with store.transaction():
        held = _authorise(store, item, officer)
        store.resolve_quarantine(item, status="discarded", by=officer, at=now, reason=reason)
        store.append_audit("quarantine.discard", {"item": item, "reason": reason}, at=now, actor=officer, originator=held["originator"], device=held["device"])
