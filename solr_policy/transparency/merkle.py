"""RFC 9162 Merkle tree hashing, proofs and their verification, with no storage of its own.

Why: a bare hash chain can be rewritten or truncated by whoever holds the database. An
append-only Merkle tree (RFC 9162 section 2.1, Certificate Transparency) lets the log sign
small checkpoints (size, root) that are kept elsewhere; any later tree must then prove that
it extends them (consistency proof, 2.1.4) and any entry can be proved to be in it
(inclusion proof, 2.1.3), both in O(log n) hashes that anyone can check offline.

- Hashes (2.1.1): leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), the
  root of the empty tree = SHA-256 of nothing. A tree of n leaves splits at k, the largest
  power of two below n: left D[0:k], right D[k:n].
- ``CompactRange``: the tree's frontier, the roots of the perfect subtrees that make up
  [0, n) (one per set bit of n, so O(log n) hashes). ``append`` is amortised O(1) hashes,
  worst case O(log n); ``root`` is O(log n). A store keeps it in memory (or rebuilds it with
  ``CompactRange.from_source`` in O(log n) reads) and never needs the leaves to append.
- Proofs (2.1.3.1, 2.1.4.1) are lists of MTH(D[a:b]) for ranges computed from the sizes
  alone (``inclusion_ranges``, ``consistency_ranges``); a ``HashSource`` turns ranges into
  hashes by reading what a store persisted through one callback,
  ``read(level, start, end)`` = the hashes of the perfect subtrees of height ``level``
  numbered start..end-1 (level 0: the leaf hashes), which a store answers with one range
  query. Cost per proof: a store keeping only leaf hashes is read O(n) hashes (every leaf
  but one); one that also keeps the hashes ``append`` reports at every ``h``-th level
  (see ``on_node``) is read O(2^h log n) hashes. Memory is O(batch + log n) either way.
- Verification (2.1.3.2, 2.1.4.2) follows the RFC's algorithms step by step; the expected
  proof length is computed only to say why a proof failed.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Sequence

from solr_policy.errors import Refused

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# RFC 9162 sizes are uint64; 2^63 keeps every size and index a SQLite INTEGER.
MAX_TREE_SIZE = 1 << 63

_sha256 = hashlib.sha256

NodeReader = Callable[[int, int, int], Sequence[bytes]]
"""read(level, start, end): hashes of the perfect subtrees of height ``level`` numbered
start..end-1, in order; level 0 is the leaf hashes."""

NodeSink = Callable[[int, int, bytes], None]
"""on_node(level, index, hash): a perfect subtree that an append has just completed."""


class LogRefused(Refused):
    """A log proof, checkpoint, key, file or stored hash is not acceptable."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 2.1.1: the hash of a leaf holding ``data``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 2.1.1: the hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def _check_hash(value: object, what: str, rule: str = "log.proof.malformed") -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise LogRefused(rule, f"{what} is not a {HASH_SIZE}-byte SHA-256 hash")
    return value


def _check_size(size: object, what: str = "tree size") -> int:
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < MAX_TREE_SIZE:
        raise LogRefused("log.proof.malformed", f"{what} {size!r} is not an integer from 0 to 2^63-1")
    return size


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold_perfect(hashes: list[bytes]) -> bytes:
    """The root of a perfect subtree from its 2^k hashes one level down (or k levels down)."""
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the roots of its perfect subtrees, largest (leftmost) first."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


class CompactRange:
    """The frontier of a tree of ``size`` leaves: its perfect subtree roots, largest first."""

    __slots__ = ("size", "_hashes")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        hashes = list(hashes)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < MAX_TREE_SIZE:
            raise LogRefused("log.state", f"tree size {size!r} is not an integer from 0 to 2^63-1")
        if len(hashes) != size.bit_count():
            raise LogRefused("log.state", f"a tree of size {size} has {size.bit_count()} frontier hashes, not {len(hashes)}")
        for h in hashes:
            _check_hash(h, "a frontier hash", "log.state")
        self.size = size
        self._hashes = hashes

    @classmethod
    def from_source(cls, source: HashSource, size: int) -> CompactRange:
        """Rebuild the frontier at ``size`` from stored hashes (one read per set bit of size)."""
        _check_size(size)
        hashes, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(source.subtree(level, start >> level))
                start += 1 << level
        return cls(size, hashes)

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self._hashes)

    def append(self, leaf: bytes, on_node: NodeSink | None = None) -> None:
        """Add one leaf hash; ``on_node`` hears of every perfect subtree this completes."""
        if len(leaf) != HASH_SIZE:
            raise LogRefused("log.state", f"a leaf hash has {HASH_SIZE} bytes, not {len(leaf)}")
        hashes, n, level, h = self._hashes, self.size, 0, leaf
        # Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
        while n & 1:
            h = node_hash(hashes.pop(), h)
            n >>= 1
            level += 1
            if on_node is not None:
                on_node(level, n, h)
        hashes.append(h)
        self.size += 1

    def extend(self, leaves: Iterable[bytes], on_node: NodeSink | None = None) -> None:
        for leaf in leaves:
            self.append(leaf, on_node)

    def root(self) -> bytes:
        """MTH of the whole tree, in O(log n) hashes."""
        return _fold_right(self._hashes) if self._hashes else EMPTY_ROOT


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over leaf hashes, streamed: O(n) time, O(log n) memory."""
    tree = CompactRange()
    tree.extend(leaf_hashes)
    return tree.root()


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges [a, b) whose MTHs form PATH(index, D[size]) (RFC 9162 2.1.3.1), leaf end first."""
    _check_size(size)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
        raise LogRefused("log.proof.invalid", f"leaf index {index!r} is not inside a tree of size {size}")
    ranges, start, end = [], 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form PROOF(first, D[second]) (RFC 9162 2.1.4.1), deepest first.

    Empty when first is 0 (every tree extends the empty one) or equals second.
    """
    _check_size(first, "first tree size")
    _check_size(second, "second tree size")
    if first > second:
        raise LogRefused("log.proof.invalid", f"a tree of size {second} cannot extend one of size {first}")
    if first == 0 or first == second:
        return []
    # SUBPROOF(m, D[start:end], whole), unrolled from the top of the tree down.
    ranges, start, end, m, whole = [], 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                ranges.append((start, end))
            break
        k = _split(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole = False
    ranges.reverse()
    return ranges


class HashSource:
    """Hashes of any RFC 9162 subtree, computed from what a store persisted.

    ``read(level, start, end)`` must answer for every level in ``levels`` (0 always). A
    subtree of height L is read from the highest kept level below or at L, in batches of
    at most ``batch`` hashes, and folded up.
    """

    def __init__(self, read: NodeReader, levels: Iterable[int] = (0,), *, batch: int = 1 << 14) -> None:
        kept = sorted(set(levels))
        if not kept or kept[0] != 0 or any(not isinstance(x, int) or x < 0 for x in kept):
            raise ValueError("levels must include 0 (the leaf hashes) and be non-negative integers")
        if batch < 1 or batch & (batch - 1):
            raise ValueError("batch must be a power of two")
        self._read = read
        self._levels = kept[::-1]
        self._batch_bits = batch.bit_length() - 1

    @classmethod
    def from_leaf_hashes(cls, get_leaf_hashes: Callable[[int, int], Sequence[bytes]], *, batch: int = 1 << 14) -> HashSource:
        """A source over leaf hashes only: ``get_leaf_hashes(start, end)`` returns [start, end)."""
        return cls(lambda _level, start, end: get_leaf_hashes(start, end), (0,), batch=batch)

    def _get(self, level: int, start: int, end: int) -> list[bytes]:
        hashes = list(self._read(level, start, end))
        if len(hashes) != end - start or any(not isinstance(h, bytes) or len(h) != HASH_SIZE for h in hashes):
            raise LogRefused(
                "log.store",
                f"the store returned {len(hashes)} hashes at level {level} for {start}..{end - 1}, not {end - start} of {HASH_SIZE} bytes: entries are missing or damaged",
            )
        return hashes

    def subtree(self, level: int, index: int) -> bytes:
        """The root of the perfect subtree of height ``level`` over leaves [index*2^level, (index+1)*2^level)."""
        base = next(kept for kept in self._levels if kept <= level)
        depth = level - base
        first = index << depth
        if depth <= self._batch_bits:
            return _fold_perfect(self._get(base, first, first + (1 << depth)))
        # Too big for one read: fold batch by batch, the batch roots through a frontier.
        step, batches = 1 << self._batch_bits, CompactRange()
        for s in range(first, first + (1 << depth), step):
            batches.append(_fold_perfect(self._get(base, s, s + step)))
        return batches.root()

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range of the tree's own shape: ``start`` a multiple of the
        power of two at or above end - start (every range the RFC's proofs use, and [0, n))."""
        if end <= start:
            return EMPTY_ROOT
        if start % (1 << (end - start - 1).bit_length()):
            raise ValueError(f"[{start}, {end}) is not a range of the tree's shape")
        parts = []
        while start < end:
            level = (end - start).bit_length() - 1
            parts.append(self.subtree(level, start >> level))
            start += 1 << level
        return _fold_right(parts)

    def root(self, size: int) -> bytes:
        """MTH of the tree's first ``size`` leaves (any size up to what is stored)."""
        return self.range_hash(0, _check_size(size))


def inclusion_proof(source: HashSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]), RFC 9162 2.1.3.1."""
    return [source.range_hash(a, b) for a, b in inclusion_ranges(index, size)]


def consistency_proof(source: HashSource, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]), RFC 9162 2.1.4.1."""
    return [source.range_hash(a, b) for a, b in consistency_ranges(first, second)]


def _check_hashes(path: Sequence[bytes]) -> None:
    for i, h in enumerate(path):
        _check_hash(h, f"proof hash {i}")


def _wrong_length(path: Sequence[bytes], expected: int, what: str) -> LogRefused | None:
    if len(path) == expected:
        return None
    return LogRefused("log.proof.invalid", f"the proof has {len(path)} hashes; {what} needs {expected}")


def _inclusion_root(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """RFC 9162 2.1.3.2 steps 2 and 3: the root the path leads to, or None where the RFC fails."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 2.1.3.2; returns if the leaf hash is at ``index`` of the tree with ``root``, else refuses."""
    _check_hash(leaf, "the leaf hash")
    _check_hash(root, "the root hash")
    _check_hashes(path)
    expected = len(inclusion_ranges(index, size))  # step 1: the index is inside the tree
    if _inclusion_root(leaf, index, size, path) == root:
        return
    raise _wrong_length(path, expected, f"leaf {index} of a tree of size {size}") or LogRefused(
        "log.proof.invalid", f"the proof does not lead from the leaf hash to the root hash of the tree of size {size}"
    )


def _consistency_roots(first: int, second: int, first_root: bytes, path: Sequence[bytes]) -> tuple[bytes, bytes] | None:
    """RFC 9162 2.1.4.2 steps 1 to 6 (0 < first < second): the two roots the path leads to, or None."""
    if not path:
        return None
    nodes = list(path)
    if first & (first - 1) == 0:  # first is an exact power of 2
        nodes.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return (fr, sr) if sn == 0 else None


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2; returns if the tree (second, second_root) extends (first, first_root), else refuses.

    The RFC defines proofs for 0 < first < second; for first 0 (the empty tree) or first
    equal to second the proof is empty and the roots say it all.
    """
    _check_hash(first_root, "the first root hash")
    _check_hash(second_root, "the second root hash")
    _check_hashes(path)
    what = f"consistency from size {first} to {second}"
    expected = len(consistency_ranges(first, second))
    if first == 0 or first == second:
        if refused := _wrong_length(path, expected, what):
            raise refused
        if first == 0 and first_root != EMPTY_ROOT:
            raise LogRefused("log.proof.invalid", "a tree of size 0 has the empty root, and this first root is not it")
        if first == second and first_root != second_root:
            raise LogRefused("log.proof.invalid", f"two different root hashes for the same tree size {first}: the log has forked")
        return
    roots = _consistency_roots(first, second, first_root, path)
    if roots == (first_root, second_root):  # step 7
        return
    if refused := _wrong_length(path, expected, what):
        raise refused
    which = first if roots is None or roots[0] != first_root else second
    raise LogRefused("log.proof.invalid", f"the proof does not lead to the root hash of the tree of size {which}")
