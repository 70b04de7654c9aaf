"""Stage 4, commit: carry out a decision's effects and record it, inside the caller's transaction.

The counter, ADT usage, quarantine row and audit entry of one decision are written in one
transaction: a decision is never recorded without its counter, nor the other way round. They
go through the transaction's ``Overlay`` (``engine.overlay``): the next decision in the same
transaction sees them at once, and the store gets them all in the overlay's ``flush``, before
the transaction commits.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii

from solr_policy.decision import Decision, Reason, shared_reason
from solr_policy.engine.authorize import Effects
from solr_policy.engine.overlay import Overlay
from solr_policy.records import QuarantineStatus
from solr_policy.store.audit_chain import canonical_around, canonical_payload, json_string_inner
from solr_policy.store.base import Store


def commit(store: Store, decision: Decision, effects: Effects, *, raw: bytes, overlay: Overlay | None = None) -> Decision:
    """Record ``effects`` and the audit entry; returns the decision with its quarantine id, if
    held. Without ``overlay``, written to the store before returning, and the decision has its
    entry's position; with one, the caller gives it the position ``overlay.flush`` returns."""
    writes = overlay if overlay is not None else Overlay(store)
    if effects.counter is not None:
        writes.set_counter(*effects.counter)
    if effects.gbcs_counter is not None:
        writes.set_counter(*effects.gbcs_counter)
    for use in effects.usage:
        writes.add_adt_usage(use)
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
    text, text_json = audit_payload(decision, effects)
    writes.append_audit(
        "decision", text, at=decision.decided_at, actor=effects.originator,
        originator=effects.originator, device=effects.device, instruction=effects.instruction,
        counter=effects.counter[1] if effects.counter else None, payload_json=text_json,
    )
    if overlay is None:
        (position,) = writes.flush()
        decision = decision.model_copy(update={"log_position": position})
    return decision


def audit_payload(decision: Decision, effects: Effects) -> tuple[str, str]:
    """The canonical text of the decision's audit payload, ``{**decision.record(), "effects":
    effects.record()}``, and that text as a JSON string (``json.dumps(text)``, which the
    entry's hash covers). Its reasons are mostly ones decisions share (``decision.shared_reason``):
    each one's text, and that text as a JSON string, is made once and kept."""
    about = decision.record(reasons=False)
    about["effects"] = effects.record()
    texts, texts_json, kept = [], [], _REASON_TEXTS.get
    for reason in decision.reasons:
        found = kept(id(reason))
        if found is None or found[0] is not reason:
            found = _reason_text(reason)
        texts.append(found[1])
        texts_json.append(found[2])
    prefix, suffix = canonical_around(about, "reasons")
    text = prefix + "[" + ",".join(texts) + "]" + suffix
    text_json = '"' + json_string_inner(prefix) + "[" + ",".join(texts_json) + "]" + json_string_inner(suffix) + '"'
    return text, text_json


# The canonical text of the reasons decisions share (``decision.shared_reason``), and it as a
# JSON string without its quotes, by the reason object (kept with it, so its id is not reused
# while here). One made for one decision alone ("RequestID counter 7 is new") is not kept: it
# dies with its decision. Bounded: emptied when full.
_REASON_TEXTS: dict[int, tuple[Reason, str, str]] = {}


def _reason_text(reason: Reason) -> tuple[Reason, str, str]:
    rule, code, message = reason.rule, reason.code, reason.message
    if type(rule) is str and type(message) is str and (code is None or type(code) is str):
        # canonical_payload(reason.model_dump()), written out: three strings (or null), keys sorted
        code_text = "null" if code is None else encode_basestring_ascii(code)
        text = f'{{"code":{code_text},"message":{encode_basestring_ascii(message)},"rule":{encode_basestring_ascii(rule)}}}'
    else:
        text = canonical_payload(reason.model_dump())
    found = (reason, text, json_string_inner(text))
    if shared_reason(reason):
        if len(_REASON_TEXTS) >= 8192:
            _REASON_TEXTS.clear()
        _REASON_TEXTS[id(reason)] = found
    return found
