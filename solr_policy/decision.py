"""The decision: outcome, DUIS response code, reasons, and what the request was."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from solr_policy.rules.base import Outcome

ALLOW_CODE = "I99"


# Plain dataclasses: a decision makes some forty of these, on the hot path; pydantic still
# serialises them as part of the Decision.
@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    code: str | None
    message: str

    def model_dump(self) -> dict[str, str | None]:
        return {"rule": self.rule, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Check:
    rule: str
    result: Literal["pass", "fail", "skipped", "hold"]
    message: str


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Literal["allow", "reject", "quarantine"]
    response_code: str | None
    reasons: list[Reason]
    request: dict | None
    decided_at: datetime
    policy: str | None = None
    signer: dict | None = None
    checks: list[Check] = []
    quarantine_id: int | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"

    def to_json_dict(self) -> dict:
        data = self.model_dump(mode="json")
        return data


def from_outcomes(
    outcomes: list[Outcome], *, request: dict, decided_at: datetime, policy: str | None, signer: dict | None
) -> Decision:
    failed = [o for o in outcomes if not o.passed]
    checks = [
        Check(o.rule, "pass" if o.passed else ("skipped" if o.skipped else ("hold" if o.quarantine else "fail")), o.message)
        for o in outcomes
    ]
    refusals = [o for o in failed if not o.quarantine]
    # Default deny: allow only when there were rules and every one of them passed.
    if outcomes and not failed:
        outcome, code = "allow", ALLOW_CODE
        shown = [o for o in outcomes if not o.message.startswith("not applicable")]
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
        request=request,
        decided_at=decided_at,
        policy=policy,
        signer=signer,
        checks=checks,
    )


def refused_input(rule: str, message: str, code: str | None, *, decided_at: datetime, request: dict | None = None) -> Decision:
    return Decision(
        outcome="reject",
        response_code=code,
        reasons=[Reason(rule, code, message)],
        request=request,
        decided_at=decided_at,
    )
