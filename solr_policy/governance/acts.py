"""Governance acts: signed statements, verified, then applied at most once.

Every act that changes who may act or what is active goes through ``Governance.submit``:

1. the envelope is parsed strictly and every signature checked against the registered keys
   of active officers (``statements.open_envelope``): what is applied is what was signed;
2. the statement's officer must be one of its signers: typing another officer's name
   proves nothing, and a key belongs to one officer only;
3. the statement must be fresh against the service's own clock (not the caller's);
4. its nonce must be new (recorded in the same transaction as the act: at most once);
5. the act's own rules apply (who may do it, four eyes, state), in the domain modules;
6. the log records the statement (its digest and the whole envelope) and the act; a refused
   statement changes nothing but its log entry (``statement.refused``).

Acts that need four eyes carry two signatures of two different officers (two different keys):
registering a governance officer, adding or removing a trust anchor, recovering the log.
Approving an instruction needs an officer other than its proposer (a separate statement).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from solr_policy.errors import GovernanceRefused, first_error
from solr_policy.governance import certificates, exit_quarantine, instructions, officers
from solr_policy.governance import quarantine as held_requests
from solr_policy.governance.adt import submit_adt
from solr_policy.governance.officers import ARO, GOVERNANCE, SRO, require_officer
from solr_policy.governance.statements import (
    Envelope,
    Statement,
    check_fresh,
    key_id,
    open_envelope,
    parse_envelope,
)
from solr_policy.records import OfficerRecord
from solr_policy.store.base import Store
from solr_policy.world import Instruction

if TYPE_CHECKING:
    from solr_policy.alerts.routing import AlertRouter
    from solr_policy.engine import Engine
    from solr_policy.transparency.log import LogKeeper

MAX_AGE = timedelta(minutes=15)  # a statement signed longer ago is stale: sign it again
MAX_SKEW = timedelta(minutes=2)  # clocks of the officer's workstation and the service


@dataclass(frozen=True)
class Act:
    """What an applied statement did."""

    action: str
    officer: str
    cosigners: tuple[str, ...]
    digest: str
    result: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {"applied": True, "action": self.action, "officer": self.officer, "cosigners": list(self.cosigners),
                "statement": self.digest, **self.result}


@dataclass(frozen=True)
class Context:
    """One statement being applied: its signers proven, the service's time."""

    store: Store
    statement: Statement
    officer: OfficerRecord
    cosigners: tuple[OfficerRecord, ...]
    at: datetime
    governance: Governance

    @property
    def params(self) -> dict[str, Any]:
        return self.statement.params

    def param(self, name: str, kind: type = str) -> Any:
        value = self.params.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            # A present value of the wrong type is most often a number sent as text (name=VALUE
            # instead of name:=VALUE): say what was given, not only what is needed.
            given = "it is missing" if name not in self.params else f"it is {type(value).__name__}"
            raise GovernanceRefused("statement.params", f"{self.statement.action} needs {name!r} ({kind.__name__}); {given}")
        return value

    def optional(self, name: str, kind: type = str) -> Any:
        return self.param(name, kind) if self.params.get(name) is not None else None

    def four_eyes(self, kind: Any = GOVERNANCE) -> OfficerRecord:
        """A second officer of ``kind`` co-signed, with another key."""
        other = next((o for o in self.cosigners if o.kind is kind and o.id != self.officer.id), None)
        if other is None:
            raise GovernanceRefused(
                "governance.four-eyes",
                f"{self.statement.action} needs the signatures of two {kind.upper()} officers; only {self.officer.id} signed",
            )
        return other


Handler = Callable[[Context], dict[str, Any]]


class Governance:
    """Applies signed statements to a store. ``engine`` is needed to release quarantined
    requests, ``router`` to route waiting alerts to a new SRP, ``log`` to recover the log."""

    def __init__(
        self,
        store: Store,
        *,
        engine: Engine | None = None,
        router: AlertRouter | None = None,
        log: LogKeeper | None = None,
        max_age: timedelta = MAX_AGE,
        max_skew: timedelta = MAX_SKEW,
    ) -> None:
        self.store = store
        self.engine = engine
        self.router = router
        self.log = log
        self.max_age = max_age
        self.max_skew = max_skew

    def officer_keys(self) -> dict[str, tuple[OfficerRecord, ec.EllipticCurvePublicKey]]:
        keys = {}
        for officer in self.store.list_officers():
            if officer.active and officer.public_key:
                public = serialization.load_pem_public_key(officer.public_key.encode())
                assert isinstance(public, ec.EllipticCurvePublicKey)  # officers.load_public_key accepts only these
                keys[key_id(public)] = (officer, public)
        return keys

    def submit(self, data: bytes | str | Envelope, *, now: datetime, clock_override: bool = False) -> Act:
        """Verify and apply one signed statement at ``now`` (the service's clock; a caller's
        time is used only with ``clock_override``, and the log says so)."""
        digest = None
        try:
            envelope = data if isinstance(data, Envelope) else parse_envelope(data)
            digest = envelope.digest
            with self.store.transaction():
                # The signers' authority is read in the transaction that applies the act, after
                # any act in progress elsewhere has committed: a key rotated away or an officer
                # removed on another node a moment ago authorises nothing here.
                self.store.serialise_acts()
                keys = self.officer_keys()
                statement, signed_by = open_envelope(envelope, {k: public for k, (_, public) in keys.items()})
                signers = [keys[k][0] for k in signed_by]
                officer = next((o for o in signers if o.id == statement.officer), None)
                if officer is None:
                    named = self.store.get_officer(statement.officer)
                    why = "is not a registered officer" if named is None else "did not sign it (the signatures are by " + ", ".join(o.id for o in signers) + ")"
                    raise GovernanceRefused("statement.not-the-officer", f"the statement names {statement.officer}, who {why}")
                check_fresh(statement, now, max_age=self.max_age, max_skew=self.max_skew)
                if self.log is not None and statement.action != "log.recover":
                    behind = behind_checkpoint(self.log)
                    if behind is not None:
                        raise GovernanceRefused("log.behind-checkpoint", f"{behind}; only a log.recover act is accepted now")
                handler = HANDLERS.get(statement.action)
                if handler is None:
                    raise GovernanceRefused("statement.action", f"{statement.action} is not an act this service applies")
                context = Context(self.store, statement, officer, tuple(o for o in signers if o.id != officer.id), now, self)
                if not self.store.use_nonce(statement.nonce, digest, now):
                    raise GovernanceRefused("statement.replayed", f"statement {digest[:16]}... (nonce {statement.nonce}) was already applied")
                self.store.append_audit(
                    "statement",
                    {"action": statement.action, "statement": digest, "envelope": envelope.model_dump(),
                     "cosigners": [o.id for o in context.cosigners], "clock_override": clock_override},
                    at=now, actor=officer.id,
                )
                result = handler(context)
        except GovernanceRefused as refusal:
            self.store.append_audit(
                "statement.refused", {"statement": digest, **refusal.as_dict(), "clock_override": clock_override}, at=now
            )
            raise
        if self.log is not None and self.log.key is not None:
            # Every act is covered by a signed checkpoint at once (after a recovery: the new one).
            checkpoint, _ = self.log.checkpoint(now, accept_rollback=statement.action == "log.recover")
            result["checkpoint"] = checkpoint.size
        if statement.action == "srp.register" and self.router is not None:
            # Alerts waiting for this SRP go to it at once (R7: none is lost, none waits longer).
            routed = self.router.retry_pending(now=now)
            result["alerts_routed_now"] = [d.delivery_id for d in routed if d.status == "routed"]
        return Act(statement.action, officer.id, tuple(o.id for o in context.cosigners), digest, result)


def behind_checkpoint(log: LogKeeper) -> str | None:
    """Why the store is behind its newest checkpoint, or None; a checkpoint that cannot be read
    or trusted (a forged or damaged file) is a reason too, not an exception that escapes."""
    from solr_policy.transparency.merkle import LogRefused

    try:
        return log.behind()
    except LogRefused as exc:
        return f"the newest checkpoint cannot be read or trusted ({exc.message})"


# -- the acts --------------------------------------------------------------------------------
def _instruction(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    try:
        proposal = Instruction(
            reference=ctx.param("reference"), failed_supplier=ctx.param("failed_supplier"), solr_party=ctx.param("solr_party"),
            effective_from=ctx.param("effective_from"), effective_until=p.get("effective_until"), scope=p.get("devices") or None,
        )
    except ValueError as exc:
        # The first error itself: the last line of pydantic's text is a link to its docs.
        message = first_error(exc) if isinstance(exc, ValidationError) else str(exc).splitlines()[0]
        raise GovernanceRefused("statement.params", f"instruction: {message}") from None
    done = instructions.propose(ctx.store, proposal, officer=ctx.officer.id, reason=ctx.param("reason"), at=ctx.at)
    return {"instruction": done.model_dump(mode="json")}


def _transition(action: str) -> Handler:
    def apply(ctx: Context) -> dict[str, Any]:
        reference = ctx.param("reference")
        if action == "approve":
            current = ctx.store.get_instruction(reference)
            proposer = ctx.store.get_officer(current.proposed_by) if current and current.proposed_by else None
            if proposer is not None and proposer.id != ctx.officer.id and proposer.public_key == ctx.officer.public_key:
                raise GovernanceRefused("R6.four-eyes", f"instruction {reference} was proposed with the same key")
        done = instructions.transition(ctx.store, reference, action, officer=ctx.officer.id, reason=ctx.param("reason"), at=ctx.at)
        return {"instruction": done.model_dump(mode="json")}

    return apply


def _register_governance(ctx: Context) -> dict[str, Any]:
    ctx.four_eyes(GOVERNANCE)
    done = officers.register_governance_officer(
        ctx.store, ctx.param("officer"), name=ctx.param("name"), public_key=ctx.param("public_key"), at=ctx.at, by=ctx.officer.id
    )
    return {"officer": done.public_json()}


def _register_sro(ctx: Context) -> dict[str, Any]:
    done = officers.register_sro(
        ctx.store, ctx.param("officer"), name=ctx.param("name"), party=ctx.param("party"), public_key=ctx.param("public_key"),
        by=ctx.officer.id, at=ctx.at,
    )
    return {"officer": done.public_json()}


def _appoint_aro(ctx: Context) -> dict[str, Any]:
    done = officers.appoint_aro(
        ctx.store, ctx.param("officer"), name=ctx.param("name"), party=ctx.param("party"), public_key=ctx.param("public_key"),
        by=ctx.officer.id, at=ctx.at,
    )
    return {"officer": done.public_json()}


def _remove_officer(ctx: Context) -> dict[str, Any]:
    target = ctx.store.get_officer(ctx.param("officer"))
    if target is not None and target.kind is GOVERNANCE:
        ctx.four_eyes(GOVERNANCE)
    done = officers.remove_officer(ctx.store, ctx.param("officer"), by=ctx.officer.id, reason=ctx.param("reason"), at=ctx.at)
    return {"officer": done.public_json()}


def _rotate_key(ctx: Context) -> dict[str, Any]:
    done = officers.rotate_key(
        ctx.store, ctx.param("officer"), public_key=ctx.param("public_key"), by=ctx.officer.id, reason=ctx.param("reason"), at=ctx.at
    )
    return {"officer": done.public_json()}


def _submit_adt(ctx: Context) -> dict[str, Any]:
    # The file and its detached signature (base64, as `adt sign` writes it), checked by submit_adt.
    data, signature = ctx.param("file").encode("utf-8"), ctx.param("signature").encode("ascii", "replace")
    adt = submit_adt(ctx.store, data, signature, aro=ctx.officer.id, at=ctx.at)
    return {"adt_file": adt.reference}


def _release(ctx: Context) -> dict[str, Any]:
    engine = ctx.governance.engine
    if engine is None:
        raise GovernanceRefused("governance.engine", "releasing a held request needs the decision engine")
    decision = held_requests.release(engine, _item(ctx), officer=ctx.officer.id, reason=ctx.param("reason"), now=ctx.at)
    return {"decision": decision.to_json_dict()}


def _discard(ctx: Context) -> dict[str, Any]:
    held_requests.discard(ctx.store, _item(ctx), officer=ctx.officer.id, reason=ctx.param("reason"), now=ctx.at)
    return {"item": ctx.param("item", int), "status": "discarded"}


def _item(ctx: Context) -> int:
    """A quarantine item id: a store row id, so a positive 64-bit integer (larger ones would
    escape as a database error rather than a refusal)."""
    item = ctx.param("item", int)
    if not 0 < item < 2**63:
        raise GovernanceRefused("statement.params", f"{ctx.statement.action}: no quarantine item {item}")
    return item


def _exit_quarantine_file(ctx: Context) -> dict[str, Any]:
    # The file and its detached signature, as for adt.submit; applied all or nothing.
    engine = ctx.governance.engine
    if engine is None:
        raise GovernanceRefused("governance.engine", "applying an Exit Quarantine file needs the decision engine")
    data, signature = ctx.param("file").encode("utf-8"), ctx.param("signature").encode("ascii", "replace")
    return exit_quarantine.apply_exit_file(engine, data, signature, aro=ctx.officer.id, at=ctx.at)


def _register_srp(ctx: Context) -> dict[str, Any]:
    require_officer(ctx.store, ctx.officer.id, GOVERNANCE)
    srp_id, name, endpoint = ctx.param("srp"), ctx.param("name"), ctx.param("endpoint")
    serves = ctx.param("serves", list)
    if not endpoint.startswith("https://") or len(endpoint) > 512 or any(c.isspace() for c in endpoint):
        raise GovernanceRefused("R7.srp-endpoint", f"an SRP endpoint must be an https:// URL, not {endpoint[:80]!r}")
    unknown = [s for s in serves if not isinstance(s, str) or ctx.store.get_party(s) is None]
    if not serves or unknown:
        raise GovernanceRefused("governance.unknown-party", f"an SRP serves known Supplier Parties; unknown: {', '.join(map(str, unknown)) or 'none given'}")
    ctx.store.put_srp(srp_id, name=name, endpoint=endpoint, serves=serves)
    ctx.store.append_audit("srp.register", {"srp": srp_id, "name": name, "endpoint": endpoint, "serves": serves}, at=ctx.at, actor=ctx.officer.id)
    return {"srp": srp_id}


def _recover_log(ctx: Context) -> dict[str, Any]:
    """Accept the store's log as it is now after a rollback (a lost WAL, a restored backup):
    two governance officers say so, the log records what was lost, a new checkpoint follows."""
    ctx.four_eyes(GOVERNANCE)
    log = ctx.governance.log
    if log is None:
        raise GovernanceRefused("governance.log", "recovering the log needs the service's log keeper")
    problem = behind_checkpoint(log)
    newest = log.newest_checkpoint() if problem is None else None
    ctx.store.append_audit(
        "log.recover",
        {"reason": ctx.param("reason"), "problem": problem, "entries_now": ctx.store.log_head().size,
         "checkpoint_before": newest[0].size if newest else None},
        at=ctx.at, actor=ctx.officer.id,
    )
    return {"problem": problem}


HANDLERS: dict[str, Handler] = {
    "instruction.propose": _instruction,
    "instruction.approve": _transition("approve"),
    "instruction.suspend": _transition("suspend"),
    "instruction.resume": _transition("resume"),
    "instruction.end": _transition("end"),
    "officer.register-governance": _register_governance,
    "officer.register-sro": _register_sro,
    "officer.appoint-aro": _appoint_aro,
    "officer.remove": _remove_officer,
    "officer.rotate-key": _rotate_key,
    "adt.submit": _submit_adt,
    "quarantine.release": _release,
    "quarantine.discard": _discard,
    "quarantine.exit-file": _exit_quarantine_file,
    "srp.register": _register_srp,
    "certificate.pin": certificates.certificate_pin,
    "certificate.set-status": certificates.certificate_set_status,
    "anchor.add": certificates.anchor_add,
    "anchor.remove": certificates.anchor_remove,
    "log.recover": _recover_log,
}


def register(action: str, handler: Handler) -> None:
    """Add the handler of an act defined elsewhere (certificates, trust anchors, the log)."""
    HANDLERS[action] = handler


__all__ = ["ARO", "GOVERNANCE", "SRO", "Act", "Context", "Governance", "HANDLERS", "register"]
