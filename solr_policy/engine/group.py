"""Group commit for concurrent callers of ``Engine.decide``.

Callers admit (verify) their own requests in their own threads, then hand them to one writer
thread, which decides whatever has arrived (up to ``max_batch``) in one transaction: one fsync
for many decisions. Groups form by themselves: what arrives while one group commits is the
next group, so a lone caller waits for nothing; ``max_wait`` (seconds after the first arrival)
can trade latency for larger groups. A caller gets its
decision only after the transaction holding it has committed, so nothing answered can be lost.
Arrival order is decision order, so one originator's requests keep the order they were sent in.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from solr_policy.decision import Decision

_STOP = object()


class GroupCommit:
    """One writer thread deciding groups of admitted requests through ``decide_group``."""

    def __init__(self, decide_group: Callable[[Sequence[object]], list[Decision]], *, max_batch: int = 256, max_wait: float = 0.0) -> None:
        self._decide_group = decide_group
        self._max_batch = max(1, max_batch)
        self._max_wait = max(0.0, max_wait)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._write, name="solr-group-commit", daemon=True)
        self._thread.start()

    def submit(self, pending: object) -> Future[Decision]:
        return self.submit_many([pending])[0]

    def submit_many(self, pendings: Sequence[object]) -> list[Future[Decision]]:
        """Hand over several requests at once: decided in this order, one after the other
        (another caller's requests are not put between them), in as few groups as fit."""
        futures: list[Future[Decision]] = [Future() for _ in pendings]
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine's group commit is closed")
            for pending, future in zip(pendings, futures):
                self._queue.put((pending, future))
        return futures

    def close(self) -> None:
        """Decide what was submitted, then stop the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    def _write(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            group: list[Any] = [first]
            deadline = time.monotonic() + self._max_wait
            while len(group) < self._max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
            pendings = [pending for pending, _ in group]
            futures: list[Future[Decision]] = [future for _, future in group]
            try:
                decisions = self._decide_group(pendings)
            except BaseException as exc:  # noqa: BLE001 - every waiting caller hears of it
                for future in futures:
                    future.set_exception(exc)
                continue
            for future, decision in zip(futures, decisions):
                future.set_result(decision)
