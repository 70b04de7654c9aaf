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
from solr_policy.errors import GovernanceRefused, Refused
from solr_policy.gbcs import GbcsHeader, decode_general_signing
from solr_policy.policy import PolicySet, default_policy_dir
from solr_policy.records import QuarantineStatus, SmkiStatus
from solr_policy.rules import RULES, Facts, Rule, evaluate
from solr_policy.store.base import Store

ROLE_SUPPLIER = 2  # SMKI Remote Party Role of Digital Signing certificates for Critical Commands


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
        return self._decide(raw, now=now)

    def _decide(self, raw: bytes, *, now: datetime | None, released: tuple[int, str] | None = None) -> Decision:
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
                still = self.store.get_quarantine(released[0]) if released else None
                if released and (still is None or not still.held):
                    raise GovernanceRefused("R4.quarantine-not-held", f"quarantine item {released[0]} is no longer held")
                facts = self._facts(verified, gbcs, gbcs_error, now, released_by=released[1] if released else None)
                decision = from_outcomes(
                    evaluate(facts, self.rules),
                    request=verified.request.summary(),
                    decided_at=now,
                    policy=facts.policy.policy if facts.policy else None,
                    signer={"serial": str(verified.signer.certificate.serial), "eui": verified.signer.certificate.subject_eui},
                )
                rid = verified.request.header.request_id
                if decision.outcome != "reject" and not released:
                    # Allowed or quarantined: the counter is taken either way, so neither can be replayed.
                    self.store.set_counter(rid.originator, rid.counter)
                if decision.allowed:
                    self._count_adt_usage(facts)
                if decision.outcome == "quarantine":
                    item = self.store.add_quarantine(
                        at=now, originator=rid.originator, device=rid.target,
                        srv=verified.request.header.service_reference_variant, counter=rid.counter,
                        raw=raw, decision=decision.to_json_dict(),
                    )
                    decision = decision.model_copy(update={"quarantine_id": item})
                if released and decision.allowed:
                    self.store.resolve_quarantine(released[0], status=QuarantineStatus.RELEASED, by=released[1], at=now, reason="released and allowed")
                instruction = next((i.reference for i in facts.active_instructions), None)
                self._audit(decision, originator=rid.originator, device=rid.target, instruction=instruction)
        except GovernanceRefused:
            raise
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
    def _facts(
        self, verified: VerifiedRequest, gbcs: GbcsHeader | None, gbcs_error: str | None, now: datetime, *, released_by: str | None = None
    ) -> Facts:
        request = verified.request
        rid = request.header.request_id
        user = self.store.get_user(rid.originator)
        policy = self.policies.for_role(user.role) if user else None
        instructions = tuple(self.store.instructions(solr_party=user.party)) if user else ()
        device = self.store.get_device(rid.target)
        adt_files = tuple(self.store.current_adt_files(rid.originator)) if policy and policy.requires_adt_file else ()
        usage = None
        if device is not None and adt_files:
            srv = request.header.service_reference_variant
            usage = {
                period: self.store.adt_usage(rid.originator, device.supplier, srv, period, start)
                for period, start in _windows(now).items()
            }
        signing = tuple(
            str(c.serial)
            for c in self.store.find_certificates(eui=rid.originator, role=ROLE_SUPPLIER)
            if "digital_signature" in c.key_usage and c.status is not SmkiStatus.REVOKED
        )
        return Facts(
            request=request,
            signer=verified.signer,
            now=now,
            user=user,
            policy=policy,
            device=device,
            instructions=instructions,
            last_counter=self.store.get_counter(rid.originator),
            gbcs=gbcs,
            gbcs_error=gbcs_error,
            signing_certificates=signing,
            adt_files=adt_files,
            adt_usage=usage,
            released_by=released_by,
        )

    def _count_adt_usage(self, facts: Facts) -> None:
        if facts.device is None or not facts.adt_files:
            return
        rid = facts.request.header.request_id
        srv = facts.request.header.service_reference_variant
        for period, start in _windows(facts.now).items():
            self.store.add_adt_usage(rid.originator, facts.device.supplier, srv, period, start)

    # -- quarantine -----------------------------------------------------------------------
    def release(self, item: int, *, officer: str, now: datetime | None = None) -> Decision:
        """Re-decide a quarantined request without its threshold; allowed -> released."""
        held = self.store.get_quarantine(item)
        request = self.store.quarantined_request(item)
        if held is None or not held.held or request is None:
            raise GovernanceRefused("R4.quarantine-not-held", f"quarantine item {item} is not held")
        return self._decide(request.raw, now=now, released=(item, officer))

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


def _windows(now: datetime) -> dict[str, str]:
    """The fixed UTC windows ADT thresholds count in."""
    return {"hour": now.strftime("%Y-%m-%dT%H:00Z"), "day": now.strftime("%Y-%m-%d")}


def _decode_gbcs(verified: VerifiedRequest) -> tuple[GbcsHeader | None, str | None]:
    body = verified.request.body
    if not isinstance(body, SignedPreCommand):
        return None, None
    try:
        return decode_general_signing(body.gbcs_payload), None
    except Refused as refusal:
        return None, refusal.message
