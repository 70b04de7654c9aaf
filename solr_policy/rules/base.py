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

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, Generic, Literal, NamedTuple, TypeVar

from solr_policy.duis.models import (
    DuisRequest,
    OtherBody,
    SignedPreCommand,
    UpdatePaymentMode,
)
from solr_policy.eui import duis_form
from solr_policy.gbcs import GbcsHeader
from solr_policy.policy import Policy, SrvRule
from solr_policy.records import AdtFileRecord, Signer
from solr_policy.world import Device, Instruction, SupplierChange, User, supplier_at

if TYPE_CHECKING:
    from solr_policy.rules.r4_adt import Counting

# The DUIS form of an EUI-64, remembered: a decision names its originator and Device several
# times, and an event's requests share their originator (pure, so safe to share).
duis = lru_cache(maxsize=4096)(duis_form)


T = TypeVar("T")


class derived(Generic[T]):
    """A property computed once per instance and kept in its ``__dict__`` (which then answers
    every later read): ``functools.cached_property`` without the lock it takes in Python 3.11,
    which costs more than most of what Facts derive. Facts are immutable, so two threads
    deriving one at once compute the same value."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]  # on the class: the descriptor itself
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


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

    # Derived once per Facts (several rules and the effects read each): cached in the
    # instance's own __dict__, so a ``replace``d Facts derives them afresh.
    @derived
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
        if when == self.now:
            return self.supplier_now
        return supplier_at(self.device, self.supplier_history, when)

    @derived
    def supplier_now(self) -> tuple[str, SupplierChange | None]:
        """``supplier_at(now)``."""
        assert self.device is not None
        return supplier_at(self.device, self.supplier_history, self.now)

    @property
    def supplier(self) -> str | None:
        """The Device's responsible Supplier at the decision time."""
        return None if self.device is None else self.supplier_now[0]

    @derived
    def active_instructions(self) -> tuple[Instruction, ...]:
        return tuple(i for i in self.instructions if i.in_force_at(self.now))

    @derived
    def adt_file(self) -> AdtFileRecord | None:
        """The User's current ADT file for the Device's Supplier, if any (R4)."""
        if self.device is None:
            return None
        supplier = self.supplier_now[0]
        return next((a for a in self.adt_files if a.supplier == supplier), None)

    @derived
    def counting(self) -> "Counting | None":
        """How the request counts against an ADT file (``r4_adt.counting_for``)."""
        from solr_policy.rules.r4_adt import counting_for

        return counting_for(self)

    @derived
    def usage_windows(self) -> dict[str, str]:
        """The ADT windows the request counts in ({} when none applies)."""
        count = self.counting
        return count.windows(self.now) if count is not None else {}


# -- what a rule says ---------------------------------------------------------------------
class _Default:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<the rule's code>"


RULE_CODE = _Default()  # a failure answers with the rule's own DUIS code unless it names another


# Named tuples, not dataclasses: every decision makes one of each per rule (hot path).
class Verdict(NamedTuple):
    status: Literal["pass", "fail", "hold", "delete", "skip"]
    message: str
    code: str | None | _Default = RULE_CODE


# Verdict(*values) without its Python-level __new__ (``ok``: some twenty per decision).
_new_verdict: Callable[[type[Verdict], tuple[str, str, str | None | _Default]], Verdict] = tuple.__new__


def ok(message: str) -> Verdict:
    return _new_verdict(Verdict, ("pass", message, RULE_CODE))


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


class Outcome(NamedTuple):
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
# Outcome(*values) without its Python-level __new__: each rule makes one per decision.
_new_tuple: Callable[[type[Outcome], tuple[str, bool, str, str | None, bool, bool, bool]], Outcome] = tuple.__new__


@dataclass(frozen=True, slots=True)
class Need:
    """A fact a rule cannot be checked without (the ``Facts`` attribute ``name``, missing when
    None), and how to say that it is missing."""

    name: str
    missing: str

    def present(self, facts: Facts) -> bool:
        return getattr(facts, self.name) is not None


USER = Need("user", "unknown User")
POLICY = Need("policy", "no policy for the User Role")
SRV = Need("srv", "SRV not allowed")
DEVICE = Need("device", "unknown Device")


@dataclass(frozen=True)
class Rule:
    """A rule and its metadata. Calling it on ``Facts`` gives a stamped ``Outcome``."""

    id: str
    requirement: str  # "R1" ... "R7": the MP134B requirement it serves
    code: str | None  # the DUIS response code of a refusal ("AD1" for a hold)
    summary: str  # what it refuses, in one line (README, spec report)
    needs: tuple[Need, ...]
    check: Callable[[Facts], Verdict]
    # ``rule(facts)`` as one closure over the above (``_evaluator``): every decision calls it.
    evaluate: Callable[[Facts], Outcome] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "evaluate", _evaluator(self))

    def __call__(self, facts: Facts) -> Outcome:
        return self.evaluate(facts)


def _evaluator(rule: Rule) -> Callable[[Facts], Outcome]:
    """``rule(facts)``, with the rule's metadata bound once (every decision calls each rule).

    The outcome last made is given again when the rule says the same again (most rules say
    the same to most requests: "User is active"): equal outcomes, but the same object, which
    costs nothing to make and little to look up (``decision._Shared``)."""
    rule_id, own_code, check = rule.id, rule.code, rule.check
    needs = tuple((attrgetter(need.name), f"not checked: {need.missing}") for need in rule.needs)
    new = _new_tuple
    last: list[tuple[str, str, object, Outcome]] = [("", "", None, _new_tuple(Outcome, ("", False, "", None, False, False, False)))]

    def evaluate(facts: Facts) -> Outcome:
        for fact, missing in needs:
            if fact(facts) is None:  # Need.present, without a Python call
                return new(Outcome, (rule_id, False, missing, None, True, False, False))
        status, message, code = check(facts)
        said = last[0]  # one tuple, read once: threads sharing the rule see a consistent one
        if said[1] == message and said[0] == status and said[2] is code:
            return said[3]
        if status == "pass":
            outcome = new(Outcome, (rule_id, True, message, None, False, False, False))
        else:
            outcome = new(Outcome, (
                rule_id,
                False,
                message,
                own_code if isinstance(code, _Default) else code,
                status == "skip",
                status == "hold",
                status == "delete",
            ))
        last[0] = (status, message, code, outcome)
        return outcome

    return evaluate


def rule(
    id: str, requirement: str, *, code: str | None = None, needs: tuple[Need, ...] = (), summary: str
) -> Callable[[Callable[[Facts], Verdict]], Rule]:
    """Declare a rule: its metadata here, its logic in the decorated function."""

    def declare(check: Callable[[Facts], Verdict]) -> Rule:
        return Rule(id=id, requirement=requirement, code=code, summary=summary, needs=needs, check=check)

    return declare
