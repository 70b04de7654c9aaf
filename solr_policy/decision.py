"""The decision: outcome, DUIS response code, reasons, and what it was made on.

A decision identifies itself: its own id, the SHA-256 of the signed content it was made
on, and the name, version and SHA-256 of the policy that governed it. ``record()`` is the
one description of a decision that feeds both its audit entry and its log event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from solr_policy.rules.base import Outcome

ALLOW_CODE = "I99"
T = TypeVar("T")


# Plain frozen dataclasses (pydantic still serialises them as part of the Decision): a
# decision has some fifty of them, most the same from one decision to the next ("User is
# active"), so ``from_outcomes`` shares them between decisions (see ``_Shared``).
@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    code: str | None
    message: str

    def model_dump(self) -> dict[str, str | None]:
        return {"rule": self.rule, "code": self.code, "message": self.message}


CheckResult = Literal["pass", "fail", "skipped", "hold", "delete"]


@dataclass(frozen=True, slots=True)
class Check:
    rule: str
    result: CheckResult
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
    # The sequence number of its audit entry once that is durable (None: a dry run, or not
    # recorded). Not in the JSON nor the entry: an entry cannot name its own position.
    log_position: int | None = Field(default=None, exclude=True)

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")

    def record(self, *, reasons: bool = True) -> dict:
        """What the audit entry and the log event say of this decision (no checks, no signer
        key); ``reasons=False``: all of it but the reasons."""
        record: dict[str, Any] = {
            "decision_id": self.decision_id,
            "outcome": self.outcome,
            "response_code": self.response_code,
            "reasons": None,
            "request": self.request,
            "content_sha256": self.content_sha256,
            "policy": self.policy,
            "policy_version": self.policy_version,
            "policy_sha256": self.policy_sha256,
            "quarantine_id": self.quarantine_id,
        }
        if reasons:
            record["reasons"] = [{"rule": r.rule, "code": r.code, "message": r.message} for r in self.reasons]  # Reason.model_dump
        else:
            del record["reasons"]
        return record


class _Shared(Generic[T]):
    """Checks or reasons already made, by the outcome they say: immutable, so decisions share
    them. Fewer new objects per decision is less work for the garbage collector, whose full
    passes over a large heap otherwise cost more than making them. One is kept from the second
    time its outcome is seen (most recur, "User is active"; some never do, "RequestID counter
    7 is new"); the outcomes seen are kept as plain tuples of strings and flags, which the
    collector stops following. Bounded: each emptied when full."""

    __slots__ = ("_make", "kept", "_seen", "_ids")
    MOST = 8192

    def __init__(self, make: Callable[[Outcome], T]) -> None:
        self._make = make
        self.kept: dict[tuple[object, ...], T] = {}
        self._seen: set[tuple[object, ...]] = set()
        self._ids: dict[int, T] = {}  # the kept ones, by id

    def holds(self, value: object) -> bool:
        """Whether ``value`` is one of the kept ones, which decisions share."""
        return self._ids.get(id(value)) is value

    def __call__(self, outcome: Outcome) -> T:
        found = self.kept.get(outcome)  # an Outcome equals, and hashes as, its plain tuple
        if found is None:
            found = self._make(outcome)
            key = tuple(outcome)
            if key in self._seen:
                if len(self.kept) >= self.MOST:
                    self.kept.clear()
                    self._ids.clear()
                self.kept[key] = self._ids[id(found)] = found
            else:
                if len(self._seen) >= self.MOST:
                    self._seen.clear()
                self._seen.add(key)
        return found


def _make_check(o: Outcome) -> Check:
    result: CheckResult = "pass" if o.passed else ("skipped" if o.skipped else ("hold" if o.quarantine else ("delete" if o.delete else "fail")))
    return Check(o.rule, result, o.message)


_check = _Shared(_make_check)
_reason = _Shared(lambda o: Reason(o.rule, o.code, o.message))


def shared_reason(reason: Reason) -> bool:
    """Whether decisions share ``reason`` (what is kept of it may be kept too)."""
    return _reason.holds(reason)


def from_outcomes(outcomes: list[Outcome], **about: Any) -> Decision:
    """The decision the rules' outcomes add up to; ``about`` fills the identifying fields."""
    failed = [o for o in outcomes if not o.passed]
    refusals = [o for o in failed if not o.quarantine and not o.delete] if failed else failed
    deletions = [o for o in failed if o.delete] if failed else failed
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
    # Not validated: every value here comes from our own rules, not from outside (hot path).
    # The shared ones looked up inline (``kept.get``), made only when not kept.
    kept_reason, kept_check = _reason.kept.get, _check.kept.get
    return _trusted(
        outcome=outcome,
        response_code=code,
        reasons=[kept_reason(o) or _reason(o) for o in shown],
        checks=[kept_check(o) or _check(o) for o in outcomes],
        **about,
    )


# Each field of a Decision and its value when not given (those without a default given always).
_DECISION_FIELDS = {name: None if field.is_required() else field.default for name, field in Decision.model_fields.items()}
_REQUIRED = frozenset(name for name, field in Decision.model_fields.items() if field.is_required())


def _trusted(**values: Any) -> Decision:
    """``Decision.model_construct(**values)`` for a decision given every field but those whose
    default is immutable, as ``from_outcomes`` gives them: the same instance (its tests say so),
    without model_construct's walk through each field's aliases (a decision per request)."""
    if not values.keys() <= _DECISION_FIELDS.keys() or not _REQUIRED <= values.keys() or "checks" not in values:
        return Decision.model_construct(**values)
    decision = Decision.__new__(Decision)
    fields = _DECISION_FIELDS.copy()  # in field order, as model_construct's
    fields.update(values)
    object.__setattr__(decision, "__dict__", fields)
    object.__setattr__(decision, "__pydantic_fields_set__", set(values))
    object.__setattr__(decision, "__pydantic_extra__", None)
    object.__setattr__(decision, "__pydantic_private__", None)
    return decision


def refused_input(rule: str, message: str, code: str | None, **about: Any) -> Decision:
    """A refusal made before the rules could run (bad input, a store fault)."""
    return Decision.model_construct(
        outcome="reject", response_code=code, reasons=[Reason(rule, code, message)], checks=[], **about
    )

