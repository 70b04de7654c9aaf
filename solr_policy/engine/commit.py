"""Stage 4, commit: carry out a decision's effects and record it, inside the caller's transaction.

The counter, ADT usage, quarantine row and audit entry of one decision are written in one
transaction: a decision is never recorded without its counter, nor the other way round. They
go through the transaction's ``Overlay`` (``engine.overlay``): the next decision in the same
transaction sees them at once, and the store gets them all in the overlay's ``flush``, before
the transaction commits.
"""

from __future__ import annotations

from solr_policy.decision import Decision
from solr_policy.engine.authorize import Effects
from solr_policy.engine.overlay import Overlay
from solr_policy.records import AdtUsageKey, QuarantineStatus
from solr_policy.store.base import Store


def commit(store: Store, decision: Decision, effects: Effects, *, raw: bytes, overlay: Overlay | None = None) -> Decision:
    """Record ``effects`` and the audit entry; returns the decision with its quarantine id, if
    held. Without ``overlay``, written to the store before returning."""
    writes = overlay if overlay is not None else Overlay(store)
    if effects.counter is not None:
        writes.set_counter(*effects.counter)
    if effects.gbcs_counter is not None:
        writes.set_counter(*effects.gbcs_counter)
    for use in effects.usage:
        writes.add_adt_usage(AdtUsageKey(use.user, use.supplier, use.srv, use.period, use.window_start))
    if effects.hold is not None:
        held = effects.hold
        item = store.add_quarantine(
            at=decision.decided_at, originator=held.originator, device=held.device, srv=held.srv,
            counter=held.counter, raw=raw, decision=decision.to_json_dict(),
        )
        decision = decision.model_copy(update={"quarantine_id": item})
    if effects.release is not None:
        store.resolve_quarantine(
            effects.release.item, status=QuarantineStatus.RELEASED, by=effects.release.officer, at=decision.decided_at,
            reason="released and allowed",
        )
    writes.append_audit(
        "decision", {**decision.record(), "effects": effects.record()}, at=decision.decided_at, actor=effects.originator,
        originator=effects.originator, device=effects.device, instruction=effects.instruction,
        counter=effects.counter[1] if effects.counter else None,
    )
    if overlay is None:
        writes.flush()
    return decision
