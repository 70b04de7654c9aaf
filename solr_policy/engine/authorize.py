"""Stage 3, authorize: facts in, a decision and what it implies out. Pure.

Like Cedar's ``is_authorized``: no I/O, no clock. The rules give their outcomes, the outcomes
add up to a ``Decision`` (default deny), and ``Effects`` say, as data, what committing that
decision must write. Nothing here decides *whether* to write; ``commit`` only carries out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from solr_policy.decision import Decision, from_outcomes
from solr_policy.gbcs import GbcsHeader
from solr_policy.records import AdtUsageKey, gbcs_counter_key
from solr_policy.rules import RULES, Facts, Release, Rule, evaluate


# One allowed request counted against an ADT window: the window's key, as the store counts it.
UsageCount = AdtUsageKey


@dataclass(frozen=True, slots=True)
class Hold:
    """Keep the request in quarantine (over an ADT threshold)."""

    originator: str
    device: str
    srv: str
    counter: int


@dataclass(frozen=True, slots=True)
class Effects:
    originator: str | None = None  # whom and what the audit entry is about
    device: str | None = None
    counter: tuple[str, int] | None = None  # (originator, counter) to take: no replay after this
    gbcs_counter: tuple[str, int] | None = None  # (counters key, GBCS originator counter) to take
    usage: tuple[UsageCount, ...] = ()
    hold: Hold | None = None
    release: Release | None = None  # the quarantined request is released
    instruction: str | None = None  # the Authority instruction the decision was made under (audit)

    @property
    def writes(self) -> bool:
        return bool(self.counter or self.usage or self.hold or self.release)

    def record(self) -> dict[str, Any]:
        """What the log says the decision did: enough to rebuild counters, usage and quarantine."""
        return {
            "counter": list(self.counter) if self.counter else None,
            "gbcs_counter": list(self.gbcs_counter) if self.gbcs_counter else None,
            "usage": [list(u) for u in self.usage],  # [user, supplier, srv, period, window start]
            "hold": self.hold is not None,
            "release": self.release.item if self.release else None,
        }


NO_EFFECTS = Effects()


def authorize(facts: Facts, rules: tuple[Rule, ...] = RULES, *, decision_id: str) -> tuple[Decision, Effects]:
    policy = facts.policy
    decision = from_outcomes(
        evaluate(facts, rules),
        decision_id=decision_id,
        request=facts.request.summary(),
        decided_at=facts.now,
        policy=policy.policy if policy else None,
        policy_version=policy.version if policy else None,
        policy_sha256=facts.policy_sha256,
        content_sha256=facts.content_sha256,
        signed_content=facts.signed_content,
        signer={"serial": str(facts.signer.certificate.serial), "eui": facts.signer.certificate.subject_eui},
    )
    return decision, effects_of(decision, facts)


def effects_of(decision: Decision, facts: Facts) -> Effects:
    header = facts.request.header
    rid = header.request_id
    instruction = next((i.reference for i in facts.active_instructions), None)
    if decision.outcome in ("reject", "delete"):
        # Nothing taken: a refused or deleted request consumes no counter and no ADT usage.
        return Effects(originator=rid.originator, device=rid.target, instruction=instruction)
    released = facts.release
    # Allowed or quarantined: the counter is taken either way, so neither can be replayed; a
    # released request's counter was taken when it was held.
    counter = (rid.originator, rid.counter) if released is None else None
    gbcs = facts.gbcs
    gbcs_counter = (gbcs_counter_key(rid.originator), gbcs.originator_counter) if released is None and isinstance(gbcs, GbcsHeader) else None
    if decision.outcome == "quarantine":
        return Effects(
            originator=rid.originator, device=rid.target, instruction=instruction, counter=counter, gbcs_counter=gbcs_counter,
            hold=Hold(rid.originator, rid.target, header.service_reference_variant, rid.counter),
        )
    usage: tuple[UsageCount, ...] = ()
    supplier = facts.supplier
    if supplier is not None:
        usage = tuple(
            UsageCount(rid.originator, supplier, header.service_reference_variant, period, start)
            for period, start in facts.usage_windows.items()
        )
    return Effects(
        originator=rid.originator, device=rid.target, instruction=instruction, counter=counter, gbcs_counter=gbcs_counter,
        usage=usage, release=released,
    )
