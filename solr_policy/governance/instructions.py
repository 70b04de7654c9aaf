"""Authority instructions: proposed by one governance officer, approved by another.

    proposed --approve (another officer)--> active --suspend--> suspended --resume--> active
    proposed/active/suspended --end--> ended

Only an active instruction, inside its window, lets requests through (rule R6). Two
instructions for the same failed Supplier whose windows overlap are refused: there is
never doubt which instruction governs a Device at a given time.
"""

from __future__ import annotations

from datetime import datetime

from solr_policy.errors import GovernanceRefused
from solr_policy.governance.officers import GOVERNANCE, require_officer
from solr_policy.store.base import Store
from solr_policy.world import Instruction, InstructionStatus

S = InstructionStatus
LIVE = (S.PROPOSED, S.ACTIVE, S.SUSPENDED)

# action -> (allowed from, goes to)
TRANSITIONS: dict[str, tuple[tuple[InstructionStatus, ...], InstructionStatus]] = {
    "approve": ((S.PROPOSED,), S.ACTIVE),
    "suspend": ((S.ACTIVE,), S.SUSPENDED),
    "resume": ((S.SUSPENDED,), S.ACTIVE),
    "end": ((S.PROPOSED, S.ACTIVE, S.SUSPENDED), S.ENDED),
}


def _reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise GovernanceRefused("governance.reason", "every governance step needs a reason")
    return reason.strip()


def _check_overlap(store: Store, instruction: Instruction) -> None:
    for other in store.instructions(failed_supplier=instruction.failed_supplier):
        if other.reference == instruction.reference or other.status not in LIVE:
            continue
        if instruction.overlaps(other):
            until = other.effective_until.isoformat() if other.effective_until else "open-ended"
            raise GovernanceRefused(
                "R6.instruction-overlap",
                f"instruction {other.reference} ({other.status.value}, SoLR Party {other.solr_party}, "
                f"{other.effective_from.isoformat()} to {until}) already covers failed Supplier "
                f"{instruction.failed_supplier} in that window; end it first or choose another window",
            )


def _audit_refusal(store: Store, action: str, reference: str, officer: str, refusal: GovernanceRefused, at: datetime) -> None:
    # A refused step changes nothing, but the attempt itself is part of the record.
    store.append_audit(
        f"instruction.{action}.refused", {"reference": reference, **refusal.as_dict()}, at=at, actor=officer, instruction=reference
    )


def propose(store: Store, instruction: Instruction, *, officer: str, reason: str, at: datetime) -> Instruction:
    try:
        return _propose(store, instruction, officer=officer, reason=reason, at=at)
    except GovernanceRefused as refusal:
        _audit_refusal(store, "propose", instruction.reference, officer, refusal, at)
        raise


def transition(store: Store, reference: str, action: str, *, officer: str, reason: str, at: datetime) -> Instruction:
    try:
        return _transition(store, reference, action, officer=officer, reason=reason, at=at)
    except GovernanceRefused as refusal:
        _audit_refusal(store, action, reference, officer, refusal, at)
        raise


def _propose(store: Store, instruction: Instruction, *, officer: str, reason: str, at: datetime) -> Instruction:
    reason = _reason(reason)
    with store.transaction():
        require_officer(store, officer, GOVERNANCE)
        if store.get_instruction(instruction.reference) is not None:
            raise GovernanceRefused("R6.instruction-exists", f"instruction {instruction.reference} already exists")
        for party, what in ((instruction.failed_supplier, "failed Supplier"), (instruction.solr_party, "SoLR Party")):
            if store.get_party(party) is None:
                raise GovernanceRefused("governance.unknown-party", f"the {what} {party} is not a known Party")
        if instruction.failed_supplier == instruction.solr_party:
            raise GovernanceRefused("R6.instruction-parties", "the failed Supplier cannot be its own SoLR Party")
        if instruction.effective_until is not None and instruction.effective_until <= instruction.effective_from:
            raise GovernanceRefused("R6.instruction-window", "the instruction must end after it starts")
        proposed = instruction.model_copy(update={"status": S.PROPOSED, "proposed_by": officer, "approved_by": None})
        _check_overlap(store, proposed)
        store.put_instruction(proposed)
        store.add_instruction_event(proposed.reference, at=at, action="propose", officer=officer, reason=reason)
        store.append_audit("instruction.propose", {**proposed.model_dump(mode="json"), "reason": reason}, at=at, actor=officer, instruction=proposed.reference)
    return proposed


def _transition(store: Store, reference: str, action: str, *, officer: str, reason: str, at: datetime) -> Instruction:
    if action not in TRANSITIONS:
        raise GovernanceRefused("governance.action", f"unknown action {action!r}")
    reason = _reason(reason)
    allowed_from, target = TRANSITIONS[action]
    with store.transaction():
        require_officer(store, officer, GOVERNANCE)
        current = store.get_instruction(reference)
        if current is None:
            raise GovernanceRefused("R6.unknown-instruction", f"no instruction {reference}")
        if current.status not in allowed_from:
            raise GovernanceRefused(
                "R6.instruction-state",
                f"instruction {reference} is {current.status.value}; {action} needs it "
                + " or ".join(s.value for s in allowed_from),
            )
        update: dict = {"status": target}
        if action == "approve":
            if officer == current.proposed_by:
                raise GovernanceRefused(
                    "R6.four-eyes", f"{officer} proposed instruction {reference}; a different officer must approve it"
                )
            update["approved_by"] = officer
            _check_overlap(store, current)
        changed = current.model_copy(update=update)
        store.put_instruction(changed)
        store.add_instruction_event(reference, at=at, action=action, officer=officer, reason=reason)
        store.append_audit(
            f"instruction.{action}",
            {"reference": reference, "from": current.status.value, "to": target.value, "reason": reason},
            at=at,
            actor=officer,
            instruction=reference,
        )
    return changed
