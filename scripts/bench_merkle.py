"""Benchmark (not a test) of the verifiable log core at a million leaves, on one core.

    append             leaf hash + CompactRange.append, storing leaf hashes in a list
    append + root      the same and the new root after every append
    append + levels    append, keeping the subtree hashes reported at levels 8 and 16
    proofs             inclusion and consistency proofs at the full size from
                       (a) leaf hashes only, (b) leaf hashes + levels 8 and 16, each read
                       from memory and from SQLite with one range query per read
    verify             verifying those proofs; rebuilding the frontier from stored levels

Usage: python scripts/bench_merkle.py [--leaves 1000000] [--proofs 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solr_policy.transparency.merkle import (  # noqa: E402
    CompactRange,
    HashSource,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

KEPT_LEVELS = (0, 8, 16)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def sqlite_store(folder: Path, nodes: dict[int, list[bytes]]) -> sqlite3.Connection:
    db = sqlite3.connect(folder / "log.db")
    db.execute("CREATE TABLE node (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID")
    with db:
        for level, hashes in nodes.items():
            db.executemany("INSERT INTO node VALUES (?, ?, ?)", ((level, i, h) for i, h in enumerate(hashes)))
    return db


def sqlite_reader(db: sqlite3.Connection):
    def read(level: int, start: int, end: int) -> list[bytes]:
        rows = db.execute("SELECT hash FROM node WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx", (level, start, end))
        return [row[0] for row in rows]

    return read


def proof_times(source: HashSource, size: int, indices: list[int], roots: dict[int, bytes], leaves: list[bytes]) -> dict[str, float]:
    inclusion_s, verify_s = 0.0, 0.0
    for i in indices:
        elapsed, proof = timed(lambda: inclusion_proof(source, i, size))
        inclusion_s += elapsed
        elapsed, _ = timed(lambda: verify_inclusion(leaves[i], i, size, proof, roots[size]))
        verify_s += elapsed
    first = indices[0] + 1
    consistency_s, proof = timed(lambda: consistency_proof(source, first, size))
    first_root = source.root(first)
    verify_consistency_s, _ = timed(lambda: verify_consistency(first, size, first_root, roots[size], proof))
    return {
        "inclusion_proof_ms": 1000 * inclusion_s / len(indices),
        "verify_inclusion_ms": 1000 * verify_s / len(indices),
        "consistency_proof_ms": 1000 * consistency_s,
        "verify_consistency_ms": 1000 * verify_consistency_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=20, help="inclusion proofs to time per source (leaf-only sources: 3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    n = args.leaves
    entries = [b'{"decision": %d, "outcome": "allow"}' % i for i in range(n)]
    results: dict[str, object] = {"leaves": n}

    def append_only() -> list[bytes]:
        tree, stored = CompactRange(), []
        for entry in entries:
            h = leaf_hash(entry)
            stored.append(h)
            tree.append(h)
        return stored

    elapsed, leaves = timed(append_only)
    results["append_per_s"] = n / elapsed

    def append_with_root() -> bytes:
        tree = CompactRange()
        root = b""
        for entry in entries:
            tree.append(leaf_hash(entry))
            root = tree.root()
        return root

    elapsed, root = timed(append_with_root)
    results["append_and_root_per_s"] = n / elapsed

    nodes: dict[int, list[bytes]] = {level: [] for level in KEPT_LEVELS}
    kept = set(KEPT_LEVELS)

    def keep(level: int, index: int, digest: bytes) -> None:
        if level in kept:
            nodes[level].append(digest)

    def append_with_levels() -> CompactRange:
        tree = CompactRange()
        for entry in entries:
            h = leaf_hash(entry)
            nodes[0].append(h)
            tree.append(h, keep)
        return tree

    elapsed, tree = timed(append_with_levels)
    results["append_keeping_levels_per_s"] = n / elapsed
    assert tree.root() == root
    roots = {n: root}

    rng = random.Random(1)
    many = sorted(rng.randrange(n) for _ in range(args.proofs))
    few = many[:: max(1, len(many) // 3)][:3]
    memory_leaves = HashSource.from_leaf_hashes(lambda start, end: leaves[start:end])
    memory_levels = HashSource(lambda level, start, end: nodes[level][start:end], KEPT_LEVELS)
    results["memory_leaf_hashes_only"] = proof_times(memory_leaves, n, few, roots, leaves)
    results["memory_kept_levels"] = proof_times(memory_levels, n, many, roots, leaves)
    elapsed, rebuilt = timed(lambda: CompactRange.from_source(memory_levels, n))
    assert rebuilt.root() == root
    results["rebuild_frontier_ms"] = 1000 * elapsed

    with tempfile.TemporaryDirectory(prefix="solr-bench-merkle-") as folder:
        elapsed, db = timed(lambda: sqlite_store(Path(folder), nodes))
        results["sqlite_insert_all_s"] = elapsed
        read = sqlite_reader(db)
        results["sqlite_leaf_hashes_only"] = proof_times(HashSource(read, (0,)), n, few, roots, leaves)
        results["sqlite_kept_levels"] = proof_times(HashSource(read, KEPT_LEVELS), n, many, roots, leaves)
        db.close()

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"leaves                                 {n:>12,}")
    print(f"append (leaf hash + frontier)          {results['append_per_s']:>12,.0f} /s")
    print(f"append + new root each time            {results['append_and_root_per_s']:>12,.0f} /s")
    print(f"append, keeping levels {KEPT_LEVELS[1:]}         {results['append_keeping_levels_per_s']:>12,.0f} /s")
    print(f"rebuild frontier from kept levels      {results['rebuild_frontier_ms']:>12.3f} ms")
    print(f"SQLite: insert all hashes (one txn)    {results['sqlite_insert_all_s']:>12.2f} s")
    for name in ("memory_leaf_hashes_only", "memory_kept_levels", "sqlite_leaf_hashes_only", "sqlite_kept_levels"):
        t = results[name]
        print(
            f"{name.replace('_', ' '):<38} inclusion {t['inclusion_proof_ms']:9.2f} ms  consistency {t['consistency_proof_ms']:9.2f} ms"
            f"  verify {t['verify_inclusion_ms']:.3f} / {t['verify_consistency_ms']:.3f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
