"""The decision: outcome, DUIS response code, reasons, and what it was made on.

A decision identifies itself: its own id, the SHA-256 of the signed content it was made
on, and the name, version and SHA-256 of the policy that governed it. ``record()`` is the
one description of a decision that feeds both its audit entry and its log event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from solr_policy.rules.base import Outcome

ALLOW_CODE = "I99"


# Plain dataclasses: a decision makes some fifty of these, on the hot path; pydantic still
# serialises them as part of the Decision. Not frozen: a frozen dataclass's __init__ costs
# several times a plain one's (they sit in the Decision's lists, which are not frozen either).
@dataclass(slots=True)
class Reason:
    rule: str
    code: str | None
    message: str

    def model_dump(self) -> dict[str, str | None]:
        return {"rule": self.rule, "code": self.code, "message": self.message}


@dataclass(slots=True)
class Check:
    rule: str
    result: Literal["pass", "fail", "skipped", "hold", "delete"]
    message: str


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    # reject: refused; quarantine: held over an ADT threshold (AD1); delete: a SMETS1 data value
    # outside its limits, deleted as the DCC does (neither held nor sent)
    outcome: Literal["allow", "reject", "quarantine", "delete"]
    response_code: str | None
    reasons: list[Reason]
    request: dict | None = None
    decided_at: datetime
    decision_id: str = ""
    content_sha256: str | None = None  # of the canonical signed content; None if refused before
    policy: str | None = None
    policy_version: int | None = None
    policy_sha256: str | None = None
    signer: dict | None = None
    checks: list[Check] = []
    quarantine_id: int | None = None
    # The canonical bytes of the signed content the decision was made on: what a pipeline
    # forwards, byte for byte (content_sha256 is their digest). Not in the JSON.
    signed_content: bytes | None = Field(default=None, exclude=True, repr=False)

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")

    def record(self) -> dict:
        """What the audit entry and the log event say of this decision (no checks, no signer key)."""
        return {
            "decision_id": self.decision_id,
            "outcome": self.outcome,
            "response_code": self.response_code,
            "reasons": [r.model_dump() for r in self.reasons],
            "request": self.request,
            "content_sha256": self.content_sha256,
            "policy": self.policy,
            "policy_version": self.policy_version,
            "policy_sha256": self.policy_sha256,
            "quarantine_id": self.quarantine_id,
        }


def from_outcomes(outcomes: list[Outcome], **about: Any) -> Decision:
    """The decision the rules' outcomes add up to; ``about`` fills the identifying fields."""
    failed: list[Outcome] = []
    checks: list[Check] = []
    for o in outcomes:  # one pass: every decision runs it on every rule's outcome
        if o.passed:
            checks.append(Check(o.rule, "pass", o.message))
        else:
            failed.append(o)
            checks.append(Check(o.rule, "skipped" if o.skipped else ("hold" if o.quarantine else ("delete" if o.delete else "fail")), o.message))
    refusals = [o for o in failed if not o.quarantine and not o.delete]
    deletions = [o for o in failed if o.delete]
    code: str | None
    # Default deny: allow only when there were rules and every one of them passed.
    if outcomes and not failed:
        outcome, code = "allow", ALLOW_CODE
        shown = [o for o in outcomes if not o.message.startswith("not applicable")]
    elif deletions and not refusals:
        # Otherwise valid, but a SMETS1 data value is outside its limits: deleted, even if also over a threshold.
        outcome, shown = "delete", deletions
        code = next((o.code for o in shown if o.code), None)
    elif failed and not refusals:
        # Only anomaly-detection thresholds failed: hold the request (DCC Alert AD1).
        outcome, code, shown = "quarantine", "AD1", failed
    else:
        outcome = "reject"
        shown = [o for o in refusals if not o.skipped] or refusals or [Outcome("engine.no-rules", False, "no rule evaluated the request")]
        code = next((o.code for o in shown if o.code), None)
    # model_construct: every value here comes from our own rules, not from outside (hot path).
    return Decision.model_construct(
        outcome=outcome,
        response_code=code,
        reasons=[Reason(o.rule, o.code, o.message) for o in shown],
        checks=checks,
        **about,
    )


def refused_input(rule: str, message: str, code: str | None, **about: Any) -> Decision:
    """A refusal made before the rules could run (bad input, a store fault)."""
    return Decision.model_construct(
        outcome="reject", response_code=code, reasons=[Reason(rule, code, message)], checks=[], **about
    )

