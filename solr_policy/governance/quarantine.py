"""Quarantined requests (over an ADT threshold): released or discarded by a named officer."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from solr_policy.errors import GovernanceRefused
from solr_policy.governance.officers import ARO, GOVERNANCE, require_officer
from solr_policy.records import QuarantineItem, QuarantineStatus
from solr_policy.store.base import Store

if TYPE_CHECKING:
    from solr_policy.decision import Decision
    from solr_policy.engine import Engine


def _authorise(store: Store, item: int, officer: str) -> QuarantineItem:
    held = store.get_quarantine(item)
    if held is None:
        raise GovernanceRefused("R4.quarantine-unknown", f"no quarantined request {item}")
    if not held.held:
        raise GovernanceRefused("R4.quarantine-not-held", f"quarantined request {item} was already {held.status.value}")
    user = store.get_user(held.originator)
    require_officer(store, officer, (ARO, GOVERNANCE), party=user.party if user else None)
    return held


def release(engine: Engine, item: int, *, officer: str, reason: str, now: datetime | None = None) -> Decision:
    """Let a held request through: it is decided again, without its threshold.

    The officer's entry is written once the outcome is known: ``quarantine.release`` when the
    request was released, ``quarantine.release.refused`` when the new decision refused it (it
    stays held). Written before, it recorded releases that never happened: a refused one, or
    the loser of two officers releasing at once (whose attempt is refused as no longer held).
    """
    now = now or datetime.now(timezone.utc)
    held = _authorise(engine.store, item, officer)
    decision = engine.release(item, officer=officer, now=now)
    engine.store.append_audit(
        "quarantine.release" if decision.allowed else "quarantine.release.refused",
        {"item": item, "reason": reason, "outcome": decision.outcome},
        at=now,
        actor=officer,
        originator=held.originator,
        device=held.device,
    )
    return decision


def discard(store: Store, item: int, *, officer: str, reason: str, now: datetime | None = None) -> None:
    now = now or datetime.now(timezone.utc)
    with store.transaction():
        held = _authorise(store, item, officer)
        store.resolve_quarantine(item, status=QuarantineStatus.DISCARDED, by=officer, at=now, reason=reason)
        store.append_audit("quarantine.discard", {"item": item, "reason": reason}, at=now, actor=officer, originator=held.originator, device=held.device)
