"""The authorizer: signed DUIS bytes in, an explained ``Decision`` out, in four stages.

    admit (parse, verify: no lock) -> [transaction: gather -> authorize -> commit] -> log

Each stage is one module of this package. ``admit`` does the costly signature work outside
any lock. ``gather`` reads the world, ``authorize`` is pure, ``commit`` writes, all in one
write transaction, so two copies of a request racing each other cannot both pass the replay
check. ``evaluate`` runs the same stages without ``commit``: a dry run that changes nothing.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from solr_policy import logs
from solr_policy.crypto.verify import Verifier
from solr_policy.decision import Decision, refused_input
from solr_policy.engine.admit import Admitted, InputRefusal, admit
from solr_policy.engine.authorize import NO_EFFECTS, Effects, authorize
from solr_policy.engine.commit import commit
from solr_policy.engine.facts import FactView, StaticFacts
from solr_policy.engine.gather import gather
from solr_policy.engine.group import GroupCommit
from solr_policy.engine.overlay import Overlay
from solr_policy.errors import GovernanceRefused, StoreUnavailable
from solr_policy.policy import PolicySet
from solr_policy.rules import RULES, Release, Rule
from solr_policy.store.base import Store
from solr_policy.transparency.log import LogGuard, LogKeeper

__all__ = ["Admitted", "Engine", "InputRefusal", "Pending"]


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
        group_commit: bool = False,
        group_max: int = 256,
        group_wait: float = 0.0,
    ) -> None:
        self.store = store
        self.policies = policies
        self.verifier = Verifier(store, schema=schema)
        self.rules = rules
        self.log = logger or logs.get_logger("solr_policy.decision")
        # With a verifiable log: no decision while the store is behind its newest checkpoint.
        self.guard = LogGuard(audit_log) if audit_log is not None else None
        self.static_facts = StaticFacts()
        # Concurrent callers of decide share transactions through one writer thread.
        self._writer = GroupCommit(self.decide_group, max_batch=group_max, max_wait=group_wait) if group_commit else None  # type: ignore[arg-type]

    def close(self) -> None:
        """Finish the decisions handed to the group commit (if on) and stop its writer."""
        if self._writer is not None:
            self._writer.close()

    @classmethod
    def open(cls, db: str | Path | None = None, policy_dir: str | Path | None = None, **kwargs: Any) -> "Engine":
        from solr_policy.policy import default_policy_dir
        from solr_policy.store import open_store

        return cls(open_store(db), PolicySet.load_dir(policy_dir or default_policy_dir()), **kwargs)

    def decide(self, raw: bytes, *, now: datetime | None = None) -> Decision:
        """Decide ``raw`` (a signed DUIS request) and record the decision durably."""
        if self._writer is not None:
            # Verified here, in the caller's thread; decided and committed with others' requests.
            return self._writer.submit(self.prepare(raw, now)).result()
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

    def decide_many(
        self, raws: Iterable[bytes], *, now: datetime | None = None, batch: int = 256, workers: int = 2,
        processes: bool | None = False,
    ) -> Generator[Decision, None, None]:
        """Decide ``raws`` in order, as ``decide`` would one by one, yielding each decision once
        it is durable. Signatures are verified by ``workers`` threads while the previous group
        is decided (``workers=0``, or one usable CPU: in this thread); each group of up to
        ``batch`` decisions is one transaction (one fsync). ``processes=True``: verified by ``workers`` processes instead (``engine.pool``: more than
        one core); ``None``: processes for a long input on a store they can open, else threads.
        With ``group_commit`` on (and no processes), verified in this thread and decided by the
        group commit's writer, in transactions shared with concurrent callers of ``decide``."""
        if processes is not False:
            from solr_policy.engine.pool import choose, decide_in_processes

            raws, setup = choose(self, raws, processes)
            if setup is not None:
                yield from decide_in_processes(self, setup, raws, now=now, batch=batch, workers=workers)
                return
        if self._writer is not None:
            # Group commit on: the requests go to its writer in order, sharing transactions with
            # concurrent callers' (a chunk is admitted here while the one before is decided).
            # A chunk handed over is decided and recorded even if the caller stops reading.
            handed: list[Future[Decision]] = []
            for chunk in _chunks(raws, max(1, batch)):
                submitted = self._writer.submit_many([self.prepare(raw, now) for raw in chunk])
                for future in handed:
                    yield future.result()
                handed = submitted
            for future in handed:
                yield future.result()
            return
        if workers <= 0 or _usable_cpus() == 1:
            # Threads only overlap admission with deciding on another core; on one they cost
            # switching (measured: ~9 % fewer decisions per second), so admit inline.
            for chunk in _chunks(raws, max(1, batch)):
                yield from self.decide_group([self.prepare(raw, now) for raw in chunk])
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="solr-admit") as pool:
            waiting: list[Future[Pending]] = []
            for chunk in _chunks(raws, max(1, batch)):
                admitting = [pool.submit(self.prepare, raw, now) for raw in chunk]
                if waiting:
                    yield from self.decide_group([f.result() for f in waiting])
                waiting = admitting
            if waiting:
                yield from self.decide_group([f.result() for f in waiting])

    def prepare(self, raw: bytes, now: datetime | None = None) -> Pending:
        """Stage 1 for a later ``decide_group``: admit ``raw`` (no lock, any thread).

        The signer's certificates are taken as of the store's world generation last seen,
        without reading it; ``decide_group`` reads the generation in its transaction anyway
        and admits again any request prepared at another one."""
        when = _utc(now)
        certificates = self.verifier.certificates.view(fresh=False)
        admitted = admit(raw, self.verifier, when, certificates=certificates)
        return Pending(raw, when, str(uuid.uuid4()), admitted, certificates.generation)

    def decide_group(self, group: Sequence[Pending]) -> list[Decision]:
        """Decide and record admitted requests, in order, in ONE transaction: the same decisions
        as one transaction each (each decision reads what the ones before it wrote), one commit."""
        behind = self.guard.problem() if self.guard is not None else None
        if behind is not None:
            return [self._run(p.raw, p.now, commit_effects=True) for p in group]
        try:
            with self.store.transaction():
                self.store.serialise_acts(shared=True)  # no act interleaves: seen whole or not at all
                ids = [p.admitted.request.header.request_id for p in group if isinstance(p.admitted, Admitted)]
                self.store.serialise_originators(rid.originator for rid in ids)  # all at once, in one order
                static = self.static_facts.at_generation(self.store)  # read once for the group
                overlay = Overlay(self.store)  # the group's counters, usage and Devices; its writes
                overlay.read_devices(rid.target for rid in ids)
                decided = [self._decide_in_tx(p, static=static, overlay=overlay) for p in group]
                decided = _placed(decided, overlay.flush())
        except Exception:  # noqa: BLE001 - a fault in one decision must not decide the others
            # Nothing of the group was written: decide each alone, with the usual fault handling.
            return [self._run_admitted(p, commit_effects=True) for p in group]
        if static.generation is not None:  # what the next prepare() takes the certificates as of
            self.verifier.certificates.advance(static.generation)
        listening = getattr(self.log, "isEnabledFor", None)
        if listening is not None and not listening(logging.INFO):
            return decided  # _log would drop each event: not built (a decision's record is not free)
        return [self._log(d) for d in decided]

    # -- the stages, composed -------------------------------------------------------------
    def _run(self, raw: bytes, now: datetime, *, commit_effects: bool, release: Release | None = None) -> Decision:
        decision_id = str(uuid.uuid4())
        behind = self.guard.problem() if self.guard is not None else None
        if behind is not None:
            # Not recorded: the log itself is what cannot be trusted until an officer's recovery act.
            decision = refused_input("log.behind-checkpoint", f"{behind}; refused until two governance officers sign a recovery (solr-policy log recover)", None,
                                     decision_id=decision_id, decided_at=now)
            return self._log(decision, dry_run=not commit_effects)
        pending = Pending(raw, now, decision_id, admit(raw, self.verifier, now))
        return self._run_admitted(pending, commit_effects=commit_effects, release=release)

    def _run_admitted(self, pending: Pending, *, commit_effects: bool, release: Release | None = None) -> Decision:
        if isinstance(pending.admitted, InputRefusal) and pending.certificates_at is not None:
            # Prepared without reading the generation (an admitted one is checked in _decide_in_tx).
            try:
                pending = self._current(pending, self.store.world_generation)
            except StoreUnavailable:
                pass  # refused all the same: _finish records it if the store lets it
        admitted, raw, now, decision_id = pending.admitted, pending.raw, pending.now, pending.decision_id
        if isinstance(admitted, InputRefusal):
            return self._finish(pending.refusal(), NO_EFFECTS, raw, commit_effects)
        identity = {"decision_id": decision_id, "decided_at": now, "content_sha256": admitted.content_sha256}
        try:
            if not commit_effects:
                facts = gather(self.store, admitted, self.policies, now, release=release)
                decision, _ = authorize(facts, self.rules, decision_id=decision_id)
                return self._log(decision, dry_run=True)
            with self.store.transaction():
                self.store.serialise_acts(shared=True)  # no act interleaves: seen whole or not at all
                overlay = Overlay(self.store)
                decision = self._decide_in_tx(pending, release=release, overlay=overlay)
                (decision,) = _placed([decision], overlay.flush())
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

    def _decide_in_tx(
        self, pending: Pending, *, overlay: Overlay, release: Release | None = None, static: FactView | None = None
    ) -> Decision:
        """gather -> authorize -> commit inside the caller's transaction (or record a refusal),
        through the transaction's ``overlay``, which the caller flushes before committing."""
        if pending.certificates_at is not None:
            static = static if static is not None else self.static_facts.at_generation(self.store)
            known = static.generation
            pending = self._current(pending, (lambda: known) if known is not None else self.store.world_generation)
        admitted = pending.admitted
        if isinstance(admitted, InputRefusal):
            return commit(self.store, pending.refusal(), NO_EFFECTS, raw=pending.raw, overlay=overlay)
        static = static if static is not None else self.static_facts.at_generation(self.store)
        facts = gather(self.store, admitted, self.policies, pending.now, release=release, static=static, overlay=overlay)
        decision, effects = authorize(facts, self.rules, decision_id=pending.decision_id)
        return commit(self.store, decision, effects, raw=pending.raw, overlay=overlay)

    def _current(self, pending: Pending, generation: Callable[[], int]) -> Pending:
        """``pending``, or admitted again if its certificates are of another world generation than
        the store's (a certificate or its status changed since): read in the caller's
        transaction, if any."""
        if pending.certificates_at is None or pending.certificates_at == generation():
            return pending
        return Pending(pending.raw, pending.now, pending.decision_id, admit(pending.raw, self.verifier, pending.now))

    def _finish(self, decision: Decision, effects: Effects, raw: bytes, commit_effects: bool) -> Decision:
        """Record a decision made without the rules (a refusal at the boundary or a fault)."""
        if commit_effects:
            try:
                with self.store.transaction():
                    decision = commit(self.store, decision, effects, raw=raw)
            except Exception as exc:  # noqa: BLE001 - the refusal stands even if it cannot be recorded
                self.log.error("audit_write_failed", error=type(exc).__name__, decision_id=decision.decision_id)
        return self._log(decision, dry_run=not commit_effects)

    def _log(self, decision: Decision, *, dry_run: bool = False) -> Decision:
        self.log.info("evaluation" if dry_run else "decision", **decision.record())
        return decision


@dataclass(frozen=True, slots=True)
class Pending:
    """A request admitted (or refused at the boundary), waiting to be decided."""

    raw: bytes
    now: datetime
    decision_id: str
    admitted: Admitted | InputRefusal
    # The world generation of the certificates admission used without reading it (prepare);
    # None: they were read from the store then.
    certificates_at: int | None = None

    def refusal(self) -> Decision:
        refused = self.admitted
        assert isinstance(refused, InputRefusal)
        return refused_input(refused.rule, refused.message, refused.code, decision_id=self.decision_id, decided_at=self.now)


def _chunks(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _placed(decisions: list[Decision], positions: list[int]) -> list[Decision]:
    """Each decision with the position of its audit entry: one entry each, appended in order."""
    if len(positions) != len(decisions):  # not one entry a decision: no position is claimed
        return decisions
    return [d.model_copy(update={"log_position": seq}) for d, seq in zip(decisions, positions)]


def _usable_cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def _utc(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
