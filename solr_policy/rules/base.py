"""What a rule sees (``Facts``) and what it says (``Outcome``).

Rules are pure functions ``Facts -> Outcome``: no I/O, no clock, no store. Everything they
read is gathered at the edge (``engine.py``) from the signed request and the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from solr_policy.crypto.verify import Signer
from solr_policy.duis.models import DuisRequest, OtherBody, SignedPreCommand, UpdatePaymentMode
from solr_policy.gbcs import GbcsHeader
from solr_policy.policy import Policy, SrvRule
from solr_policy.records import AdtFileRecord
from solr_policy.world import Device, Instruction, User


@dataclass(frozen=True)
class Outcome:
    rule: str
    passed: bool
    message: str
    code: str | None = None
    # A rule that could not be checked because an earlier one failed: it has not passed
    # (default deny), but it is not shown as a separate reason.
    skipped: bool = False
    # Anomaly detection: the request is well-formed and authorised but over a threshold;
    # it is held (outcome quarantine, DCC Alert AD1) rather than refused.
    quarantine: bool = False

    def as_reason(self) -> dict[str, str | None]:
        return {"rule": self.rule, "code": self.code, "message": self.message}


def ok(rule: str, message: str) -> Outcome:
    return Outcome(rule, True, message)


def fail(rule: str, message: str, code: str | None = None) -> Outcome:
    return Outcome(rule, False, message, code)


def hold(rule: str, message: str) -> Outcome:
    return Outcome(rule, False, message, "AD1", quarantine=True)


def skip(rule: str, why: str) -> Outcome:
    return Outcome(rule, False, f"not checked: {why}", None, skipped=True)


@dataclass(frozen=True)
class Facts:
    request: DuisRequest
    signer: Signer
    now: datetime
    user: User | None
    policy: Policy | None
    device: Device | None
    instructions: tuple[Instruction, ...]  # those naming the user's Party as the SoLR Party
    last_counter: int | None
    gbcs: GbcsHeader | None = None
    gbcs_error: str | None = None
    signing_certificates: tuple[str, ...] = ()  # Digital Signing certs held for the user (R2)
    adt_files: tuple[AdtFileRecord, ...] = ()  # the User's current ADT files (R4)
    adt_usage: dict | None = None  # {"hour": n, "day": n} for the Device's Supplier and this SRV
    released_by: str | None = None  # set when a quarantined request is released (R4)

    @property
    def srv(self) -> SrvRule | None:
        if self.policy is None:
            return None
        return self.policy.srvs.get(self.request.header.service_reference_variant)

    @property
    def cv(self) -> int:
        return self.request.header.command_variant

    @property
    def body(self) -> UpdatePaymentMode | SignedPreCommand | OtherBody:
        return self.request.body

    @property
    def active_instructions(self) -> tuple[Instruction, ...]:
        return tuple(i for i in self.instructions if i.in_force_at(self.now))


Rule = Callable[[Facts], Outcome]
