"""Many requests decided through group commit: reading a batch, progress, a summary.

A batch is a folder (each regular file one request, in name order), a file of requests one
per line in base64, or ``-`` (the same lines on stdin, streamed). Lines are read as they are
decided, so memory does not grow with the batch. A line that is not base64 is not a request:
it is named (file and line) in the summary and nothing is decided or recorded for it.
"""

from __future__ import annotations

import base64
import binascii
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from solr_policy.decision import Decision
from solr_policy.engine import Engine
from solr_policy.engine.pool import AdmissionFailed
from solr_policy.service.config import MAX_REQUEST_BYTES

# The summary lists this many unreadable lines by place; the count covers them all.
MAX_LISTED = 20
_SKIP = 1 << 16  # the rest of a line too long to be a request is read and dropped in pieces this big


@dataclass(frozen=True, slots=True)
class BatchItem:
    where: str  # "FILE" or "FILE line N": what a person looks at to find it
    raw: bytes | None
    error: str | None = None


def read_batch(source: str, *, stdin: IO[bytes] | None = None, limit: int = MAX_REQUEST_BYTES) -> Iterator[BatchItem]:
    """The requests of ``source`` (a folder, a file of base64 lines, or ``-``), lazily.
    A file or line of more than ``limit`` bytes (decoded; the service's body limit) is named,
    not read whole. Raises OSError if ``source`` cannot be opened."""
    if source == "-":
        yield from _lines("stdin", stdin if stdin is not None else sys.stdin.buffer, limit)
        return
    path = Path(source)
    if path.is_dir():
        for file in sorted(p for p in path.iterdir() if p.is_file()):
            with file.open("rb") as handle:
                raw = handle.read(limit + 1)  # one byte past the limit: enough to know, whatever the file's size
            yield BatchItem(str(file), raw) if len(raw) <= limit else BatchItem(str(file), None, _too_large(limit))
        return
    with path.open("rb") as handle:
        yield from _lines(str(path), handle, limit)


def _too_large(limit: int) -> str:
    return f"larger than {limit:,} bytes"


def _lines(name: str, handle: IO[bytes], limit: int) -> Iterator[BatchItem]:
    # A line is read up to the base64 of ``limit`` bytes and its line break; the rest of a longer
    # one is skipped in pieces, so no line is ever held whole (a stream with no line break).
    longest = 4 * -(-limit // 3) + 2
    number = 0
    while line := handle.readline(longest + 1):
        number += 1
        where = f"{name} line {number}"
        if len(line) > longest:
            while line and not line.endswith(b"\n"):
                line = handle.readline(_SKIP)
            yield BatchItem(where, None, _too_large(limit))
            continue
        text = line.strip()
        if not text:
            continue
        try:
            yield BatchItem(where, base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            yield BatchItem(where, None, "not base64")


@dataclass
class BatchSummary:
    decided: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)  # the first reason of each refusal or hold
    unreadable: int = 0
    unreadable_listed: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # why the batch stopped before its end (the decisions before it stand)

    def add(self, decision: Decision) -> None:
        self.decided += 1
        self.outcomes[decision.outcome] += 1
        if decision.outcome != "allow" and decision.reasons:
            self.rules[decision.reasons[0].rule] += 1

    def record(self) -> dict[str, Any]:
        return {
            "decided": self.decided,
            "allow": self.outcomes["allow"],
            "reject": self.outcomes["reject"],
            "quarantine": self.outcomes["quarantine"],
            "not_allowed_by_rule": dict(self.rules.most_common()),
            "unreadable": self.unreadable,
            "unreadable_lines": self.unreadable_listed,
            "seconds": round(self.seconds, 3),
            "decisions_per_second": round(self.decided / self.seconds, 1) if self.seconds else None,
            **({"error": self.error} if self.error else {}),
        }


def decide_batch(
    engine: Engine,
    items: Iterable[BatchItem],
    *,
    now: datetime | None = None,
    group: int = 256,
    workers: int = 2,
    processes: bool | None = False,
    on_decision: Callable[[str, Decision], None] | None = None,
    progress: Callable[[BatchSummary], None] | None = None,
) -> BatchSummary:
    """Decide every readable item in order with ``Engine.decide_many`` (admission in processes
    or threads: ``processes`` as there); the summary of it all. If admission fails (a worker
    process died), the summary says so in ``error`` and covers the decisions made before."""
    summary = BatchSummary()
    places: deque[str] = deque()  # where each request in flight came from, in order
    started = time.perf_counter()

    def requests() -> Iterator[bytes]:
        for item in items:
            if item.raw is None:
                summary.unreadable += 1
                if len(summary.unreadable_listed) < MAX_LISTED:
                    summary.unreadable_listed.append({"where": item.where, "error": item.error or "unreadable"})
                continue
            places.append(item.where)
            yield item.raw

    # Closed on any exit (an error, KeyboardInterrupt): that stops admission's worker processes.
    with closing(engine.decide_many(requests(), now=now, batch=group, workers=workers, processes=processes)) as decisions:
        try:
            for decision in decisions:
                summary.add(decision)
                where = places.popleft()
                if on_decision is not None:
                    on_decision(where, decision)
                if progress is not None:
                    summary.seconds = time.perf_counter() - started
                    progress(summary)
        except AdmissionFailed as failure:
            summary.error = f"{failure}; {summary.decided:,} decided and recorded, the rest not decided"
    summary.seconds = time.perf_counter() - started
    return summary


class ProgressLine:
    """A progress line redrawn on a terminal at most every ``interval`` seconds."""

    def __init__(self, stream: IO[str], interval: float = 0.25) -> None:
        self.stream = stream
        self.interval = interval
        self._last = 0.0

    def __call__(self, summary: BatchSummary) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        rate = summary.decided / summary.seconds if summary.seconds else 0.0
        o = summary.outcomes
        self.stream.write(
            f"\rdecided {summary.decided:,}  {rate:,.0f}/s  allow {o['allow']:,}  reject {o['reject']:,}"
            f"  quarantine {o['quarantine']:,}  unreadable {summary.unreadable:,} "
        )
        self.stream.flush()

    def done(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
