"""What a rule sees (``Facts``), what it says (``Verdict``), and what it is (``Rule``).

A rule is a small pure function ``Facts -> Verdict``: no I/O, no clock, no store. Everything
it reads was gathered before (``engine/gather.py``). Its metadata (stable id, the MP134B
requirement it serves, its DUIS response code, the facts it needs) is declared once, with
the ``@rule`` decorator beside the function, and stamped on every ``Outcome`` it produces:

    @rule("R1.user-status", "R1", code="E3", needs=(USER,),
          summary="a suspended or withdrawn User is refused")
    def user_active(f: Facts) -> Verdict:
        if f.user.status is not UserStatus.ACTIVE:
            return fail(f"User status is {f.user.status.value}")
        return ok("User is active")

A rule whose prerequisite fact is missing is *skipped*: it has not passed (default deny),
but it is not listed as a reason of its own, since an earlier rule already says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Literal

from solr_policy.duis.models import (
    DuisRequest,
    OtherBody,
    SignedPreCommand,
    UpdatePaymentMode,
)
from solr_policy.gbcs import GbcsHeader
from solr_policy.policy import Policy, SrvRule
from solr_policy.records import AdtFileRecord, Signer
from solr_policy.world import Device, Instruction, SupplierChange, User, supplier_at


@dataclass(frozen=True, slots=True)
class GbcsError:
    """A Signed Pre-Command whose GBCS payload could not be decoded, and where."""

    message: str
    offset: int


@dataclass(frozen=True, slots=True)
class Release:
    """A quarantined request being released by an officer: decided again, without its threshold."""

    item: int
    officer: str


@dataclass(frozen=True, slots=True)
class PreCommandSignature:
    """What checking a Signed Pre-Command's GBCS signature found (gathered; rules only read it)."""

    tried: tuple[str, ...]  # the trusted signers' In use certificates it was checked against
    verified_by: str | None  # the one whose key verified it, if any


@dataclass(frozen=True)
class Facts:
    """Everything the rules may read: the signed request and the world around it, at ``now``."""

    request: DuisRequest
    signer: Signer
    now: datetime
    user: User | None
    policy: Policy | None
    device: Device | None
    instructions: tuple[Instruction, ...]  # those naming the user's Party as the SoLR Party
    last_counter: int | None
    gbcs: GbcsHeader | GbcsError | None = None  # None: the body is not a Signed Pre-Command
    gbcs_signature: PreCommandSignature | None = None  # None: nothing signed to check
    last_gbcs_counter: int | None = None  # the highest GBCS originator counter accepted from the User
    signing_certificates: tuple[str, ...] = ()  # Digital Signing certs held for the user (R2)
    adt_files: tuple[AdtFileRecord, ...] = ()  # the User's current ADT files (R4)
    adt_usage: dict | None = None  # {"hour": n, "day": n} for the Device's Supplier and this SRV
    release: Release | None = None  # set when a quarantined request is released (R4)
    supplier_history: tuple[SupplierChange, ...] = ()  # the Device's changes of Supplier, in time order (R4, R6)
    # What the decision names as its inputs; no rule reads them.
    content_sha256: str | None = None  # of the canonical signed content
    signed_content: bytes | None = None  # those bytes
    policy_sha256: str | None = None  # of the policy file

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

    def supplier_at(self, when: datetime) -> tuple[str, SupplierChange | None]:
        """The Device's responsible Supplier at ``when`` (and the change that made it so)."""
        assert self.device is not None
        return supplier_at(self.device, self.supplier_history, when)

    @property
    def supplier(self) -> str | None:
        """The Device's responsible Supplier at the decision time."""
        return None if self.device is None else self.supplier_at(self.now)[0]

    @property
    def active_instructions(self) -> tuple[Instruction, ...]:
        return tuple(i for i in self.instructions if i.in_force_at(self.now))


# -- what a rule says ---------------------------------------------------------------------
class _Default:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<the rule's code>"


RULE_CODE = _Default()  # a failure answers with the rule's own DUIS code unless it names another


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Literal["pass", "fail", "hold", "delete", "skip"]
    message: str
    code: str | None | _Default = RULE_CODE


def ok(message: str) -> Verdict:
    return Verdict("pass", message)


def fail(message: str, code: str | None | _Default = RULE_CODE) -> Verdict:
    return Verdict("fail", message, code)


def hold(message: str) -> Verdict:
    """Anomaly detection: well-formed and authorised, but over a threshold. Held, not refused."""
    return Verdict("hold", message, "AD1")


def delete(message: str) -> Verdict:
    """A SMETS1 data value outside its limits: the DCC deletes such a request (SEC G6), never holds it."""
    return Verdict("delete", message)


def skip(why: str) -> Verdict:
    return Verdict("skip", f"not checked: {why}", None)


@dataclass(frozen=True, slots=True)
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
    # A SMETS1 data value outside its limits: deleted (outcome delete), neither held nor sent.
    delete: bool = False


# -- what a rule is -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Need:
    """A fact a rule cannot be checked without, and how to say that it is missing."""

    name: str
    present: Callable[[Facts], bool]
    missing: str


USER = Need("user", lambda f: f.user is not None, "unknown User")
POLICY = Need("policy", lambda f: f.policy is not None, "no policy for the User Role")
SRV = Need("srv", lambda f: f.srv is not None, "SRV not allowed")
DEVICE = Need("device", lambda f: f.device is not None, "unknown Device")


@dataclass(frozen=True)
class Rule:
    """A rule and its metadata. Calling it on ``Facts`` gives a stamped ``Outcome``."""

    id: str
    requirement: str  # "R1" ... "R7": the MP134B requirement it serves
    code: str | None  # the DUIS response code of a refusal ("AD1" for a hold)
    summary: str  # what it refuses, in one line (README, spec report)
    needs: tuple[Need, ...]
    check: Callable[[Facts], Verdict]

    def __call__(self, facts: Facts) -> Outcome:
        for need in self.needs:
            if not need.present(facts):
                return Outcome(self.id, False, f"not checked: {need.missing}", None, skipped=True)
        verdict = self.check(facts)
        if verdict.status == "pass":
            return Outcome(self.id, True, verdict.message)
        code = self.code if isinstance(verdict.code, _Default) else verdict.code
        return Outcome(
            self.id,
            False,
            verdict.message,
            code,
            skipped=verdict.status == "skip",
            quarantine=verdict.status == "hold",
            delete=verdict.status == "delete",
        )


def rule(
    id: str, requirement: str, *, code: str | None = None, needs: tuple[Need, ...] = (), summary: str
) -> Callable[[Callable[[Facts], Verdict]], Rule]:
    """Declare a rule: its metadata here, its logic in the decorated function."""

    def declare(check: Callable[[Facts], Verdict]) -> Rule:
        return Rule(id=id, requirement=requirement, code=code, summary=summary, needs=needs, check=check)

    return declare
