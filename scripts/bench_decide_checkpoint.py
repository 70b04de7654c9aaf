"""Benchmark (not a test): what ``decide`` adds per decision on a store made by ``init``.

After each decision the command checks that the store is not behind its newest checkpoint and
signs a new one (kept in the store and written, fsync'd, to the checkpoint file):
``solr_policy.cli.acting.checkpoint_if_current``. Median and p90 over 50 decisions' worth, on
logs of 1,000 and 10,000 entries.

Usage: python scripts/bench_decide_checkpoint.py
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from solr_policy.cli.acting import checkpoint_if_current
from solr_policy.store import SqliteStore
from solr_policy.transparency.checkpoint import generate_log_key
from solr_policy.transparency.log import LogKeeper

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-checkpoint-"))
    store = SqliteStore(folder / "s.db")
    key = generate_log_key()
    keeper = LogKeeper(store, key.public_key(), key=key, checkpoint_file=folder / "s.db.checkpoint")
    for size in (1_000, 10_000):
        while store.log_head().size < size:
            with store.transaction():
                for _ in range(500):
                    store.append_audit("bench", {"n": 1}, at=NOW)
        checkpoint_if_current(keeper, NOW)
        runs = []
        for _ in range(50):
            store.append_audit("bench", {"n": 1}, at=NOW)  # what a decision appends
            start = time.perf_counter()
            checkpoint_if_current(keeper, NOW)
            runs.append(time.perf_counter() - start)
        runs.sort()
        print(f"log of {size:>6} entries: checkpoint after a decision median {runs[25] * 1000:.1f} ms, p90 {runs[45] * 1000:.1f} ms")
    store.close()


if __name__ == "__main__":
    main()
