"""The authorizer: signed DUIS bytes in, an explained ``Decision`` out, in four stages.

    admit (parse, verify: no lock) -> [transaction: gather -> authorize -> commit] -> log

Each stage is one module of this package. ``admit`` does the costly signature work outside
any lock. ``gather`` reads the world, ``authorize`` is pure, ``commit`` writes, all in one
write transaction, so two copies of a request racing each other cannot both pass the replay
check. ``evaluate`` runs the same stages without ``commit``: a dry run that changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from solr_policy import logs
from solr_policy.crypto.verify import Verifier
from solr_policy.decision import Decision, refused_input
from solr_policy.engine.admit import Admitted, InputRefusal, admit
from solr_policy.engine.authorize import NO_EFFECTS, Effects, authorize
from solr_policy.engine.commit import commit
from solr_policy.engine.gather import gather
from solr_policy.errors import GovernanceRefused, StoreUnavailable
from solr_policy.policy import PolicySet
from solr_policy.rules import RULES, Release, Rule
from solr_policy.store.base import Store
from solr_policy.transparency.log import LogGuard, LogKeeper

__all__ = ["Admitted", "Engine", "InputRefusal"]


class Engine:
    """Decides DUIS requests for the roles its policies govern. Thread-safe: each thread uses
    its own store connection, and rules share no state.

    >>> engine = Engine.open("solr.db", "policies")          # doctest: +SKIP
    >>> decision = engine.decide(raw_bytes)                   # doctest: +SKIP
    >>> decision.outcome, decision.response_code              # doctest: +SKIP
    ('reject', 'E12')
    >>> [r.rule for r in decision.reasons]                    # doctest: +SKIP
    ['R5.payment-mode']
    """

    def __init__(
        self,
        store: Store,
        policies: PolicySet,
        *,
        schema: Any = None,
        rules: tuple[Rule, ...] = RULES,
        logger: Any = None,
        audit_log: LogKeeper | None = None,
    ) -> None:
        self.store = store
        self.policies = policies
        self.verifier = Verifier(store, schema=schema)
        self.rules = rules
        self.log = logger or logs.get_logger("solr_policy.decision")
        # With a verifiable log: no decision while the store is behind its newest checkpoint.
        self.guard = LogGuard(audit_log) if audit_log is not None else None

    @classmethod
    def open(cls, db: str | Path | None = None, policy_dir: str | Path | None = None, **kwargs: Any) -> "Engine":
        from solr_policy.policy import default_policy_dir
        from solr_policy.store import open_store

        return cls(open_store(db), PolicySet.load_dir(policy_dir or default_policy_dir()), **kwargs)

    def decide(self, raw: bytes, *, now: datetime | None = None) -> Decision:
        """Decide ``raw`` (a signed DUIS request) and record the decision durably."""
        return self._run(raw, _utc(now), commit_effects=True)

    def evaluate(self, raw: bytes, *, now: datetime | None = None) -> Decision:
        """The decision ``decide`` would make now, changing nothing: no counter, no audit entry."""
        return self._run(raw, _utc(now), commit_effects=False)

    def release(self, item: int, *, officer: str, now: datetime | None = None) -> Decision:
        """Decide a quarantined request again, without its threshold; if allowed it is released.

        The caller (``governance.quarantine.release``) has checked the officer's authority.
        """
        held = self.store.quarantined_request(item)
        if held is None:
            raise GovernanceRefused("R4.quarantine-unknown", f"no quarantined request {item}")
        return self._run(held.raw, _utc(now), commit_effects=True, release=Release(item, officer))

    # -- the stages, composed -------------------------------------------------------------
    def _run(self, raw: bytes, now: datetime, *, commit_effects: bool, release: Release | None = None) -> Decision:
        decision_id = str(uuid.uuid4())
        behind = self.guard.problem() if self.guard is not None else None
        if behind is not None:
            # Not recorded: the log itself is what cannot be trusted until an officer's recovery act.
            decision = refused_input("log.behind-checkpoint", f"{behind}; refused until an officer signs a recovery act", None,
                                     decision_id=decision_id, decided_at=now)
            return self._log(decision, dry_run=not commit_effects)
        admitted = admit(raw, self.verifier, now)
        if isinstance(admitted, InputRefusal):
            decision = refused_input(admitted.rule, admitted.message, admitted.code, decision_id=decision_id, decided_at=now)
            return self._finish(decision, NO_EFFECTS, raw, commit_effects)
        identity = {"decision_id": decision_id, "decided_at": now, "content_sha256": admitted.content_sha256}
        try:
            if not commit_effects:
                facts = gather(self.store, admitted, self.policies, now, release=release)
                decision, _ = authorize(facts, self.rules, decision_id=decision_id)
                return self._log(decision, dry_run=True)
            with self.store.transaction():
                facts = gather(self.store, admitted, self.policies, now, release=release)
                decision, effects = authorize(facts, self.rules, decision_id=decision_id)
                decision = commit(self.store, decision, effects, raw=raw)
        except GovernanceRefused:
            raise
        except StoreUnavailable as fault:
            decision = refused_input(
                "store.unavailable", f"the store cannot be read or written ({fault}); refused by default", None,
                request=admitted.request.summary(), **identity,
            )
            return self._finish(decision, NO_EFFECTS, raw, commit_effects)
        except Exception as exc:  # noqa: BLE001 - default deny on any internal fault, never a traceback
            self.log.exception("decision_failed", error=type(exc).__name__, decision_id=decision_id)
            decision = refused_input(
                "engine.internal-error", f"the request could not be evaluated ({type(exc).__name__}); refused by default",
                None, request=admitted.request.summary(), **identity,
            )
            return self._finish(decision, NO_EFFECTS, raw, commit_effects)
        return self._log(decision)

    def _finish(self, decision: Decision, effects: Effects, raw: bytes, commit_effects: bool) -> Decision:
        """Record a decision made without the rules (a refusal at the boundary or a fault)."""
        if commit_effects:
            try:
                with self.store.transaction():
                    commit(self.store, decision, effects, raw=raw)
            except Exception as exc:  # noqa: BLE001 - the refusal stands even if it cannot be recorded
                self.log.error("audit_write_failed", error=type(exc).__name__, decision_id=decision.decision_id)
        return self._log(decision, dry_run=not commit_effects)

    def _log(self, decision: Decision, *, dry_run: bool = False) -> Decision:
        self.log.info("evaluation" if dry_run else "decision", **decision.record())
        return decision


def _utc(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
