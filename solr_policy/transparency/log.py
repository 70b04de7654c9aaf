"""The audit trail as a verifiable log: checkpoints, proofs, rollback detection, reconciliation.

Every audit entry (each decision, governance act, certificate change, alert routing) is a
leaf of the store's Merkle tree (``store.audit_chain``). ``LogKeeper`` signs checkpoints
(size, root, time) with the service's own log key, keeps them in the store and writes the
newest to a checkpoint file outside the database that an operator can ship elsewhere.

A store that is *behind* its newest checkpoint (fewer entries, or another tree at that size:
a lost WAL, a restored backup, a rewritten table) is refused: ``behind()`` says why, and the
engine refuses every decision until an officer's signed ``log.recover`` act. ``verify()``
checks the chain, recomputes the tree from the entries themselves, checks the newest
checkpoint against it, and reconciles counters, ADT usage and quarantine rows with what the
logged decisions say they did.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from solr_policy.records import AuditEntry, LogHead, QuarantineItem, StoredCheckpoint
from solr_policy.store.audit_chain import KEPT_LEVELS, leaf_of
from solr_policy.store.base import Store
from solr_policy.transparency.checkpoint import (
    Checkpoint,
    open_checkpoint,
    read_checkpoint_file,
    sign_checkpoint,
    write_checkpoint_file,
)
from solr_policy.transparency.merkle import (
    CompactRange,
    HashSource,
    LogRefused,
    consistency_proof,
    inclusion_proof,
    root_of,
)
from solr_policy.transparency.proofs import consistency_document, inclusion_document

DEFAULT_ORIGIN = "solr-policy.audit"


@dataclass(frozen=True)
class LogCheck:
    intact: bool
    entries: int
    messages: tuple[str, ...]  # every problem found, or one line saying all is well
    checkpoint: dict[str, Any] | None = None
    differences: tuple[str, ...] = field(default=())  # reconciliation of state with the log

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "entries": self.entries,
            "messages": list(self.messages),
            "checkpoint": self.checkpoint,
            "differences": list(self.differences),
        }


class LogKeeper:
    """Checkpoints and proofs for one store's log. ``key`` None: verify only, never sign."""

    def __init__(
        self,
        store: Store,
        public_key: ec.EllipticCurvePublicKey,
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        checkpoint_file: str | os.PathLike[str] | None = None,
        origin: str = DEFAULT_ORIGIN,
    ) -> None:
        self.store = store
        self.key = key
        self.public_key = public_key
        self.checkpoint_file = Path(checkpoint_file) if checkpoint_file is not None else None
        self.origin = origin
        # The newest checkpoint this keeper signed: a store restored from a backup brings back
        # its own older checkpoints (on PostgreSQL, where no file is kept, all there is), so
        # what this process signed is what tells it the log went back.
        self.signed: tuple[Checkpoint, str] | None = None

    def source(self) -> HashSource:
        return HashSource(self.store.log_nodes, (0, *KEPT_LEVELS))

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint(self, now: datetime, *, accept_rollback: bool = False) -> tuple[Checkpoint, str]:
        """Sign the tree as it is now; keep it in the store and in the checkpoint file.

        Refused while the store is behind its newest checkpoint: signing would make a
        rolled-back log the newest checkpoint's (and the decisions lost with it replayable).
        ``accept_rollback``: only after an officers' ``log.recover`` act, which accepted it."""
        if self.key is None:
            raise LogRefused("log.key", "this log keeper has no signing key; it can verify only")
        # Appends wait while the head is signed and kept: checkpoints signed at once by several
        # processes or nodes are kept in the order of their sizes, so the newest never shrinks.
        with self.store.transaction():
            self.store.serialise_log()
            behind = None if accept_rollback else self.behind()
            if behind is not None:
                raise LogRefused("log.behind-checkpoint", f"{behind}; no checkpoint is signed until two governance officers sign: solr-policy log recover")
            head = self.store.log_head()
            root = self.source().root(head.size) if head.size else root_of([])
            checkpoint = Checkpoint(self.origin, head.size, root, now)
            note = sign_checkpoint(checkpoint, self.key)
            # The file first: another process's LogGuard that sees the store's checkpoint must find the file too.
            if self.checkpoint_file is not None:
                write_checkpoint_file(self.checkpoint_file, note)
            self.store.put_checkpoint(StoredCheckpoint(head.size, root.hex(), checkpoint.time, note))
        self.signed = (checkpoint, note)
        return checkpoint, note

    def newest_checkpoint(self) -> tuple[Checkpoint, str] | None:
        """The checkpoint outside the store (the file) if there is one, else the store's own;
        the one this keeper signed if it is newer (the store was restored behind it)."""
        found: tuple[Checkpoint, str] | None
        if self.checkpoint_file is not None and self.checkpoint_file.exists():
            found = read_checkpoint_file(self.checkpoint_file, self.public_key, origin=self.origin)
        else:
            stored = self.store.latest_checkpoint()
            found = None if stored is None else (open_checkpoint(stored.note, self.public_key, origin=self.origin), stored.note)
        if self.signed is not None and (found is None or self.signed[0].size > found[0].size):
            return self.signed
        return found

    def missing_checkpoint_file(self) -> str | None:
        """Why the checkpoint file cannot be where the checkpoints went, or None: it is named,
        it does not exist, and the store says checkpoints were written (a mistyped setting, or
        a file removed; either way a store rolled back with its own checkpoints would pass)."""
        path = self.checkpoint_file
        if path is None or path.exists() or self.store.latest_checkpoint() is None:
            return None
        return (
            f"the checkpoint file {path} is missing, though the store says checkpoints were written "
            f"(is the checkpoint setting, --checkpoint or SOLR_POLICY_CHECKPOINT, the file they were written to?)"
        )

    def behind(self) -> str | None:
        """Why the store's log is not an extension of its newest checkpoint, or None."""
        newest = self.newest_checkpoint()
        if newest is None:
            return None
        checkpoint, _ = newest
        size = self.store.log_head().size
        if size < checkpoint.size:
            return (
                f"the store's log has {size} entries but checkpoint {checkpoint.time.isoformat()} signed "
                f"{checkpoint.size}: entries were lost or removed (a lost WAL, a restored backup?)"
            )
        try:
            root = self.source().root(checkpoint.size)
        except LogRefused as exc:
            return f"the store's log cannot be read up to the checkpoint ({exc.message})"
        if root != checkpoint.root_hash:
            return (
                f"the store's first {checkpoint.size} entries are not those checkpoint "
                f"{checkpoint.time.isoformat()} signed: the log was rewritten"
            )
        return None

    # -- proofs ----------------------------------------------------------------------------
    def prove_inclusion(self, seq: int) -> str:
        """The inclusion proof of audit entry ``seq`` against the newest checkpoint that covers it."""
        # An entry that does not exist first: no checkpoint would ever cover it.
        if not 1 <= seq <= self.store.log_head().size:
            raise LogRefused("log.no-entry", f"there is no audit entry {seq}")
        newest = self.newest_checkpoint()
        if newest is None or newest[0].size < seq:
            raise LogRefused("log.no-checkpoint", f"no checkpoint covers entry {seq} yet; make one first (audit checkpoint)")
        checkpoint, note = newest
        entries = self.store.log_nodes(0, seq - 1, seq)
        if not entries:
            raise LogRefused("log.no-entry", f"there is no audit entry {seq}")
        path = inclusion_proof(self.source(), seq - 1, checkpoint.size)
        return inclusion_document(seq - 1, checkpoint.size, entries[0], path, note)

    def prove_consistency(self, first_size: int) -> str:
        """Proof that the newest checkpoint extends the tree of ``first_size`` entries."""
        newest = self.newest_checkpoint()
        if newest is None:
            raise LogRefused("log.no-checkpoint", "there is no checkpoint yet (audit checkpoint)")
        checkpoint, note = newest
        if not 0 <= first_size <= checkpoint.size:
            raise LogRefused("log.proof.size", f"first size {first_size} is not within the checkpoint's {checkpoint.size}")
        path = consistency_proof(self.source(), first_size, checkpoint.size)
        return consistency_document(first_size, checkpoint.size, path, note)

    # -- the whole check -------------------------------------------------------------------
    def verify(self) -> LogCheck:
        """The chain walked, the kept Merkle tree and the newest checkpoint checked against the
        entries, and the state reconciled with them: one streamed pass over the log (a SoLR
        event's 600,000 entries are not held in memory)."""
        chain = self.store.verify_audit()
        problems: list[str] = [] if chain.intact else [chain.message]
        missing = self.missing_checkpoint_file()
        if missing is not None:  # as a decision would be refused: the file is what a rollback is caught by
            problems.append(missing)
        shown: dict[str, Any] | None = None
        try:
            newest = self.newest_checkpoint()
        except LogRefused as exc:
            newest = None
            problems.append(f"the checkpoint cannot be trusted: {exc.message}")
        checkpoint = newest[0] if newest is not None else None
        tree = CompactRange()
        # The root over the first checkpoint.size entries, taken as the stream passes them.
        signed_root: bytes | None = tree.root() if checkpoint is not None and checkpoint.size == 0 else None

        def leaves(entries: Iterable[AuditEntry]) -> Iterator[AuditEntry]:
            nonlocal signed_root
            for entry in entries:
                tree.append(leaf_of(entry.hash))
                if checkpoint is not None and tree.size == checkpoint.size:
                    signed_root = tree.root()
                yield entry

        # Entries, tree head and state from one snapshot: another node appending meanwhile is
        # not mistaken for a tree or a counter the entries do not account for.
        with self.store.log_snapshot() as snapshot:
            differences = tuple(reconcile(snapshot, leaves(snapshot.entries)))
            head = snapshot.head
        count = tree.size
        try:
            tree_matches = head.size == count and (not count or tree.root() == _root(head))
        except LogRefused:
            tree_matches = False
        if not tree_matches:
            problems.append("the Merkle tree kept with the log does not match its entries")
        if checkpoint is not None:
            shown = {"size": checkpoint.size, "root": checkpoint.root_hash.hex(), "time": checkpoint.time.isoformat()}
            if count < checkpoint.size:
                problems.append(
                    f"the log has {count} entries; checkpoint {checkpoint.time.isoformat()} signed {checkpoint.size}: entries were removed"
                )
            elif signed_root != checkpoint.root_hash:
                problems.append(f"the first {checkpoint.size} entries are not those checkpoint {checkpoint.time.isoformat()} signed: the log was rewritten")
        intact = not problems and not differences
        summary = f"{count} entries, chain and tree intact" + (f", checkpoint at {shown['size']} verified" if shown else ", no checkpoint yet")
        return LogCheck(intact, count, tuple(problems) or (summary,), shown, differences)


class LogGuard:
    """Answers "is the store behind its newest checkpoint?" cheaply enough to ask per decision:
    the full check runs again only when the checkpoint file changes (or the store shrinks)."""

    def __init__(self, keeper: LogKeeper) -> None:
        self.keeper = keeper
        self._seen: tuple[int, int, int] | None = None  # the checkpoint file's (mtime_ns, size), the size signed here
        self._size = 0  # the checkpoint's tree size
        self._problem: str | None = None

    def problem(self) -> str | None:
        path = self.keeper.checkpoint_file
        try:
            stat = path.stat() if path is not None and path.exists() else None
            missing = self.keeper.missing_checkpoint_file() if stat is None else None
            if missing is not None:
                self._problem = missing
                return self._problem
            signed = self.keeper.signed[0].size if self.keeper.signed is not None else -1
            seen = (stat.st_mtime_ns, stat.st_size, signed) if stat is not None else (0, 0, signed)
            if seen != self._seen or self._problem is not None:
                self._problem = self.keeper.behind()
                newest = self.keeper.newest_checkpoint()
                self._size = newest[0].size if newest else 0
                self._seen = seen
            elif self.keeper.store.log_head().size < self._size:
                self._problem = "the store's log has fewer entries than its newest checkpoint"
        except (LogRefused, OSError) as exc:
            self._problem = f"the newest checkpoint cannot be read or trusted ({getattr(exc, 'message', exc)})"
        return self._problem


def _root(head: LogHead) -> bytes:
    return CompactRange(head.size, head.frontier).root()


class LoggedState(Protocol):
    """What ``reconcile`` reads of the state: a store, or a ``LogSnapshot`` of one."""

    def get_counter(self, originator: str) -> int | None: ...
    def adt_usage(self, user_id: str, supplier: str, srv: str, period: str, window_start: str) -> int: ...
    def list_quarantine(self) -> list[QuarantineItem]: ...


def reconcile(store: LoggedState, entries: Iterable[AuditEntry]) -> list[str]:
    """What the counters, ADT usage and quarantine tables hold that the logged decisions do not say.

    Each decision entry records its effects (``effects`` in its payload), so the state is what
    the log says it is; any difference is named. ``entries`` is read once, in order, and may be
    a stream: what is kept grows with the originators, windows and held items, not the entries."""
    counters: dict[str, int] = {}
    usage: dict[tuple[str, str, str, str, str], int] = defaultdict(int)
    held: dict[int, str] = {}
    for entry in entries:
        payload = json.loads(entry.payload)
        effects = payload.get("effects") if entry.kind == "decision" else None
        if effects:
            for key in ("counter", "gbcs_counter"):
                if effects.get(key):
                    originator, counter = effects[key]
                    counters[originator] = max(counters.get(originator, -1), counter)
            for use in effects.get("usage", []):
                user, supplier, srv, period, start = use
                usage[(user, supplier, srv, period, start)] += 1
            if payload.get("quarantine_id") is not None:
                held[payload["quarantine_id"]] = "held"
            if effects.get("release") is not None:
                held[effects["release"]] = "released"
        elif entry.kind == "quarantine.discard":
            held[payload.get("item")] = "discarded"
    differences = []
    for originator, counter in sorted(counters.items()):
        stored = store.get_counter(originator)
        if stored != counter:
            differences.append(f"counter of {originator}: the store says {stored}, the logged decisions {counter}")
    for user, supplier, srv, period, start in sorted(usage):
        stored_count = store.adt_usage(user, supplier, srv, period, start)
        if stored_count != usage[(user, supplier, srv, period, start)]:
            differences.append(
                f"ADT usage of {user} for {supplier} SRV {srv} {period} {start}: the store says {stored_count}, the logged decisions {usage[(user, supplier, srv, period, start)]}"
            )
    for item in store.list_quarantine():
        logged = held.pop(item.id, None)
        if logged is None:
            differences.append(f"quarantine item {item.id} is in the store but no logged decision held it")
        elif logged != item.status.value:
            differences.append(f"quarantine item {item.id}: the store says {item.status.value}, the log {logged}")
    for item_id in sorted(held):
        differences.append(f"quarantine item {item_id} was held by a logged decision but is not in the store")
    return differences
