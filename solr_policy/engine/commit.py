"""Stage 4, commit: carry out a decision's effects and record it, inside the caller's transaction.

The counter, ADT usage, quarantine row and audit entry of one decision are written in one
transaction: a decision is never recorded without its counter, nor the other way round. They
go through the transaction's ``Overlay`` (``engine.overlay``): the next decision in the same
transaction sees them at once, and the store gets them all in the overlay's ``flush``, before
the transaction commits.
"""

from __future__ import annotations

from solr_policy.decision import Decision, Reason
from solr_policy.engine.authorize import Effects
from solr_policy.engine.overlay import Overlay
from solr_policy.records import AdtUsageKey, QuarantineStatus
from solr_policy.store.audit_chain import canonical_payload, canonical_payload_with
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
        "decision", audit_payload(decision, effects), at=decision.decided_at, actor=effects.originator,
        originator=effects.originator, device=effects.device, instruction=effects.instruction,
        counter=effects.counter[1] if effects.counter else None,
    )
    if overlay is None:
        writes.flush()
    return decision


def audit_payload(decision: Decision, effects: Effects) -> str:
    """The canonical text of the decision's audit payload, ``{**decision.record(), "effects":
    effects.record()}``. Its reasons are mostly the ones decisions share (``decision._reason``):
    the text of each is made once and kept."""
    about = decision.record(reasons=False)
    about["effects"] = effects.record()
    reasons = "[" + ",".join([_reason_text(r) for r in decision.reasons]) + "]"
    return canonical_payload_with(about, "reasons", reasons)


# The canonical text of the reasons decisions share, by the reason object (kept with it, so
# its id is not reused while here). A reason is kept from the second time it is met: one made
# for one decision alone ("RequestID counter 7 is new") is met once, and then left to die with
# its decision. Bounded: each emptied when full.
_REASON_TEXTS: dict[int, tuple[Reason, str]] = {}
_REASONS_MET: set[int] = set()
_MOST = 8192


def _reason_text(reason: Reason) -> str:
    key = id(reason)
    found = _REASON_TEXTS.get(key)
    if found is not None and found[0] is reason:
        return found[1]
    text = canonical_payload(reason.model_dump())
    if key in _REASONS_MET:  # (or another reason, since dead, had this id: then one entry of no use)
        if len(_REASON_TEXTS) >= _MOST:
            _REASON_TEXTS.clear()
        _REASON_TEXTS[key] = (reason, text)
    else:
        if len(_REASONS_MET) >= _MOST:
            _REASONS_MET.clear()
        _REASONS_MET.add(key)
    return text
