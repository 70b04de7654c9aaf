"""The authorizer: signed DUIS bytes in, an explained ``Decision`` out.

    verify (no lock) -> decode GBCS -> [transaction: read facts -> rules -> counter + audit]

Signature verification, the costly part, runs outside any lock. Facts are read and the
counter and audit entry written inside one write transaction, so two copies of a request
racing each other cannot both pass the replay check, and a decision is never recorded
without its counter (or the other way round). Rules are pure; I/O stays here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from solr_policy import logs
from solr_policy.crypto.verify import VerifiedRequest, Verifier
from solr_policy.decision import Decision, from_outcomes, refused_input
from solr_policy.duis.models import SignedPreCommand
from solr_policy.errors import Refused
from solr_policy.gbcs import GbcsHeader, decode_general_signing
from solr_policy.policy import PolicySet, default_policy_dir
from solr_policy.rules import RULES, Facts, Rule, evaluate
from solr_policy.store.base import Store


class Engine:
    """Thread-safe: each thread uses its own store connection; rules share no state."""

    def __init__(
        self,
        store: Store,
        policies: PolicySet | None = None,
        *,
        schema=None,
        rules: tuple[Rule, ...] = RULES,
        logger=None,
    ) -> None:
        self.store = store
        self.policies = policies if policies is not None else PolicySet.load_dir(default_policy_dir())
        self.verifier = Verifier(store, schema=schema)
        self.rules = rules
        self.log = logger or logs.get_logger("solr_policy.decision")

    @classmethod
    def open(cls, db: str | Path | None = None, policy_dir: str | Path | None = None, **kwargs) -> "Engine":
        from solr_policy.store import open_store

        return cls(open_store(db), PolicySet.load_dir(policy_dir or default_policy_dir()), **kwargs)

    def decide(self, raw: bytes, *, now: datetime | None = None) -> Decision:
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        try:
            verified = self.verifier.verify_request(raw, now=now)
        except Refused as refusal:
            decision = refused_input(refusal.rule, refusal.message, refusal.code, decided_at=now)
            self._record(decision, originator=None, device=None, instruction=None)
            return decision
        gbcs, gbcs_error = _decode_gbcs(verified)
        try:
            with self.store.transaction():
                facts = self._facts(verified, gbcs, gbcs_error, now)
                decision = from_outcomes(
                    evaluate(facts, self.rules),
                    request=verified.request.summary(),
                    decided_at=now,
                    policy=facts.policy.policy if facts.policy else None,
                    signer={"serial": str(verified.signer.certificate.serial), "eui": verified.signer.certificate.subject_eui},
                )
                rid = verified.request.header.request_id
                if decision.allowed:
                    self.store.set_counter(rid.originator, rid.counter)
                instruction = next((i.reference for i in facts.active_instructions), None)
                self._audit(decision, originator=rid.originator, device=rid.target, instruction=instruction)
        except Exception as exc:  # noqa: BLE001 - default deny on any internal fault, never a traceback
            self.log.exception("decision_failed", error=type(exc).__name__)
            decision = refused_input(
                "engine.internal-error",
                f"the request could not be evaluated ({type(exc).__name__}); refused by default",
                None,
                decided_at=now,
                request=verified.request.summary(),
            )
            self._record(decision, originator=None, device=None, instruction=None)
            return decision
        self._log(decision)
        return decision

    # -- edges ------------------------------------------------------------------------------
    def _facts(self, verified: VerifiedRequest, gbcs: GbcsHeader | None, gbcs_error: str | None, now: datetime) -> Facts:
        request = verified.request
        rid = request.header.request_id
        user = self.store.get_user(rid.originator)
        policy = self.policies.for_role(user.role) if user else None
        instructions = tuple(self.store.instructions(solr_party=user.party)) if user else ()
        return Facts(
            request=request,
            signer=verified.signer,
            now=now,
            user=user,
            policy=policy,
            device=self.store.get_device(rid.target),
            instructions=instructions,
            last_counter=self.store.get_counter(rid.originator),
            gbcs=gbcs,
            gbcs_error=gbcs_error,
        )

    def _audit(self, decision: Decision, *, originator: str | None, device: str | None, instruction: str | None) -> None:
        payload = {
            "outcome": decision.outcome,
            "response_code": decision.response_code,
            "reasons": [r.model_dump() for r in decision.reasons],
            "request": decision.request,
            "policy": decision.policy,
        }
        self.store.append_audit(
            "decision", payload, at=decision.decided_at, actor=originator, originator=originator, device=device, instruction=instruction
        )

    def _record(self, decision: Decision, **where) -> None:
        """Audit a refusal made before the rules ran (bad input): the only state it changes."""
        try:
            with self.store.transaction():
                self._audit(decision, **where)
        except Exception as exc:  # noqa: BLE001 - the decision stands even if the audit write fails
            self.log.error("audit_write_failed", error=type(exc).__name__)
        self._log(decision)

    def _log(self, decision: Decision) -> None:
        self.log.info(
            "decision",
            outcome=decision.outcome,
            response_code=decision.response_code,
            reasons=[f"{r.rule}: {r.message}" for r in decision.reasons] if decision.outcome != "allow" else [r.rule for r in decision.reasons],
            request=decision.request,
            policy=decision.policy,
        )


def _decode_gbcs(verified: VerifiedRequest) -> tuple[GbcsHeader | None, str | None]:
    body = verified.request.body
    if not isinstance(body, SignedPreCommand):
        return None, None
    try:
        return decode_general_signing(body.gbcs_payload), None
    except Refused as refusal:
        return None, refusal.message
