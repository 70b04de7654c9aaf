"""The verifiable log core (solr_policy.transparency): RFC 9162 trees and proofs checked against
an independent naive implementation written here, the RFC 6962 reference vectors, signed
checkpoints, atomic checkpoint files and the offline proof verifier."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from solr_policy.transparency import checkpoint as cp
from solr_policy.transparency.merkle import (
    EMPTY_ROOT,
    CompactRange,
    HashSource,
    LogRefused,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from solr_policy.transparency.proofs import (
    check_consistency,
    check_consistency_files,
    check_inclusion,
    check_inclusion_files,
    consistency_document,
    inclusion_document,
)

# -- the naive reference: RFC 9162 2.1.1, 2.1.3.1 and 2.1.4.1 read literally, over whole lists --


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(entries: list[bytes]) -> bytes:
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = largest_power_of_two_below(len(entries))
    return hashlib.sha256(b"\x01" + naive_mth(entries[:k]) + naive_mth(entries[k:])).digest()


def naive_path(m: int, entries: list[bytes]) -> list[bytes]:
    if len(entries) == 1:
        return []
    k = largest_power_of_two_below(len(entries))
    if m < k:
        return naive_path(m, entries[:k]) + [naive_mth(entries[k:])]
    return naive_path(m - k, entries[k:]) + [naive_mth(entries[:k])]


def naive_subproof(m: int, entries: list[bytes], whole: bool) -> list[bytes]:
    if m == len(entries):
        return [] if whole else [naive_mth(entries)]
    k = largest_power_of_two_below(len(entries))
    if m <= k:
        return naive_subproof(m, entries[:k], whole) + [naive_mth(entries[k:])]
    return naive_subproof(m - k, entries[k:], False) + [naive_mth(entries[:k])]


def naive_consistency(m: int, entries: list[bytes]) -> list[bytes]:
    return naive_subproof(m, entries, True) if 0 < m < len(entries) else []


ENTRIES = [b"decision %d" % i for i in range(5000)]
LEAVES = [leaf_hash(e) for e in ENTRIES]
NAIVE_ROOTS = [naive_mth(ENTRIES[:n]) for n in range(71)]


def leaf_source(leaves: list[bytes] = LEAVES, reads: list[int] | None = None) -> HashSource:
    def get(start: int, end: int) -> list[bytes]:
        if reads is not None:
            reads.append(end - start)
        return leaves[start:end]

    return HashSource.from_leaf_hashes(get)


class LevelStore:
    """What a store does: keep leaf hashes and the subtree hashes append reports at some levels."""

    def __init__(self, levels: tuple[int, ...]) -> None:
        self.levels = levels
        self.nodes: dict[int, list[bytes]] = {level: [] for level in levels}
        self.tree = CompactRange()
        self.hashes_read = 0

    def append(self, leaf: bytes) -> None:
        self.nodes[0].append(leaf)
        self.tree.append(leaf, self._keep)

    def _keep(self, level: int, index: int, digest: bytes) -> None:
        if level in self.nodes:
            assert len(self.nodes[level]) == index  # nodes complete in order, each once
            self.nodes[level].append(digest)

    def read(self, level: int, start: int, end: int) -> list[bytes]:
        self.hashes_read += end - start
        return self.nodes[level][start:end]

    def source(self) -> HashSource:
        return HashSource(self.read, self.levels)


def accepted(fn, *args) -> bool:
    try:
        fn(*args)
    except LogRefused:
        return False
    return True


def flip(digest: bytes, bit: int) -> bytes:
    changed = bytearray(digest)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


# -- RFC 6962 reference vectors (the CT merkle_tree_test set; also in transparency-dev/merkle) --

RFC6962_ENTRIES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
RFC6962_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
RFC6962_INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
RFC6962_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def test_rfc6962_reference_roots():
    leaves = [leaf_hash(e) for e in RFC6962_ENTRIES]
    tree = CompactRange()
    assert tree.root().hex() == RFC6962_ROOTS[0] == EMPTY_ROOT.hex()
    for n, leaf in enumerate(leaves, 1):
        tree.append(leaf)
        assert tree.root().hex() == RFC6962_ROOTS[n]
        assert leaf_source(leaves).root(n).hex() == RFC6962_ROOTS[n]


@pytest.mark.parametrize("index, size, expected", RFC6962_INCLUSION)
def test_rfc6962_reference_inclusion_proofs(index, size, expected):
    leaves = [leaf_hash(e) for e in RFC6962_ENTRIES]
    proof = inclusion_proof(leaf_source(leaves), index, size)
    assert [h.hex() for h in proof] == expected
    verify_inclusion(leaves[index], index, size, proof, bytes.fromhex(RFC6962_ROOTS[size]))


@pytest.mark.parametrize("first, second, expected", RFC6962_CONSISTENCY)
def test_rfc6962_reference_consistency_proofs(first, second, expected):
    leaves = [leaf_hash(e) for e in RFC6962_ENTRIES]
    proof = consistency_proof(leaf_source(leaves), first, second)
    assert [h.hex() for h in proof] == expected
    verify_consistency(first, second, bytes.fromhex(RFC6962_ROOTS[first]), bytes.fromhex(RFC6962_ROOTS[second]), proof)


# -- roots and the frontier --------------------------------------------------------------------


def test_roots_match_the_naive_tree_for_every_size_to_70():
    tree = CompactRange()
    for n in range(71):
        assert tree.size == n
        assert tree.root() == NAIVE_ROOTS[n], n
        assert leaf_source().root(n) == NAIVE_ROOTS[n], n
        assert root_of(LEAVES[:n]) == NAIVE_ROOTS[n], n
        assert len(tree.hashes) == bin(n).count("1")  # O(log n) state
        tree.append(LEAVES[n])


def test_append_reports_every_completed_subtree_once_with_its_hash():
    reported = []
    tree = CompactRange()
    for leaf in LEAVES[:70]:
        tree.append(leaf, lambda level, index, digest: reported.append((level, index, digest)))
    expected = {(level, index) for level in range(1, 7) for index in range(70 >> level)}
    assert [(level, index) for level, index, _ in reported] == sorted(expected, key=lambda x: ((x[1] + 1) << x[0], x[0]))
    for level, index, digest in reported:
        assert digest == naive_mth(ENTRIES[index << level : (index + 1) << level])


def test_frontier_rebuilt_from_a_store_equals_the_incremental_one():
    store = LevelStore((0, 2, 4))
    for n in range(70):
        rebuilt = CompactRange.from_source(store.source(), n)
        assert rebuilt.hashes == store.tree.hashes and rebuilt.root() == NAIVE_ROOTS[n]
        store.append(LEAVES[n])
    restarted = CompactRange(store.tree.size, store.tree.hashes)  # what a store persists and reloads
    restarted.append(LEAVES[70])
    assert restarted.root() == naive_mth(ENTRIES[:71])


@pytest.mark.parametrize(
    "size, hashes",
    [(3, [LEAVES[0]]), (1, []), (-1, []), (1, [b"short"]), (1 << 63, []), (True, [LEAVES[0]])],
)
def test_a_damaged_frontier_is_refused(size, hashes):
    with pytest.raises(LogRefused) as refused:
        CompactRange(size, hashes)
    assert refused.value.rule == "log.state"


def test_append_refuses_a_leaf_hash_of_the_wrong_length():
    tree = CompactRange()
    with pytest.raises(LogRefused):
        tree.append(b"x" * 31)
    assert tree.size == 0


# -- inclusion proofs ------------------------------------------------------------------------


def test_inclusion_proofs_match_the_naive_tree_and_verify_for_every_size_and_index_to_70():
    source = leaf_source()
    for n in range(1, 71):
        for i in range(n):
            proof = inclusion_proof(source, i, n)
            assert proof == naive_path(i, ENTRIES[:n]), (i, n)
            verify_inclusion(LEAVES[i], i, n, proof, NAIVE_ROOTS[n])


def test_inclusion_verification_rejects_every_changed_hash_length_index_and_size():
    """Sizes 1..70, every index: one bit flipped in each path hash, the leaf and the root (the
    bit varies with size, index and position); the path truncated at either end or extended;
    other indices (all of them up to size 32) and other sizes with their own roots."""
    source = leaf_source()
    for n in range(1, 71):
        for i in range(n):
            proof, leaf, root = inclusion_proof(source, i, n), LEAVES[i], NAIVE_ROOTS[n]
            for pos in range(len(proof)):
                bit = (n * 7 + i * 13 + pos * 29) % 256
                bad = proof[:pos] + [flip(proof[pos], bit)] + proof[pos + 1 :]
                assert not accepted(verify_inclusion, leaf, i, n, bad, root), (i, n, pos)
            assert not accepted(verify_inclusion, flip(leaf, (i * 31 + n) % 256), i, n, proof, root)
            assert not accepted(verify_inclusion, leaf, i, n, proof, flip(root, (i + n * 3) % 256))
            for bad in (proof[1:], proof[:-1], proof + [LEAVES[0]], [LEAVES[0]] + proof, proof + proof[-1:]):
                if bad != proof:
                    assert not accepted(verify_inclusion, leaf, i, n, bad, root), (i, n, len(bad))
            others = range(n) if n <= 32 else {0, i - 1, i + 1, n - 1 - i, n - 1}
            for j in others:
                if j != i and 0 <= j < n:
                    assert not accepted(verify_inclusion, leaf, j, n, proof, root), (i, j, n)
            for m in {n - 1, n + 1, 2 * n, n + 7}:
                if i < m <= 70:
                    assert not accepted(verify_inclusion, leaf, i, m, proof, NAIVE_ROOTS[m]), (i, n, m)


@pytest.mark.parametrize("n, i", [(1, 0), (5, 4), (8, 3), (70, 33)])
def test_inclusion_verification_rejects_every_single_bit_flip(n, i):
    proof, leaf, root = inclusion_proof(leaf_source(), i, n), LEAVES[i], NAIVE_ROOTS[n]
    for bit in range(256):
        assert not accepted(verify_inclusion, flip(leaf, bit), i, n, proof, root)
        assert not accepted(verify_inclusion, leaf, i, n, proof, flip(root, bit))
        for pos in range(len(proof)):
            assert not accepted(verify_inclusion, leaf, i, n, proof[:pos] + [flip(proof[pos], bit)] + proof[pos + 1 :], root)


@pytest.mark.parametrize("index, size", [(0, 0), (5, 5), (6, 5), (-1, 5), (True, 5), (0, 1 << 63)])
def test_inclusion_outside_the_tree_is_refused_when_proving_and_verifying(index, size):
    with pytest.raises(LogRefused):
        inclusion_proof(leaf_source(), index, size)
    with pytest.raises(LogRefused):
        verify_inclusion(LEAVES[0], index, size, [], EMPTY_ROOT)


def test_an_interior_node_passed_off_as_a_leaf_is_refused():
    """The RFC's "sn is 0" checks: a shortened path from an interior node, or a tree of one
    leaf claimed to have a sibling, must not reach the root."""
    interior = naive_mth(ENTRIES[:2])
    with pytest.raises(LogRefused, match="needs 2"):
        verify_inclusion(interior, 0, 3, [LEAVES[2]], NAIVE_ROOTS[3])
    with pytest.raises(LogRefused, match="needs 0"):
        verify_inclusion(LEAVES[1], 0, 1, [LEAVES[0]], NAIVE_ROOTS[2])
    with pytest.raises(LogRefused, match="needs 2"):
        verify_consistency(1, 3, interior, NAIVE_ROOTS[3], [LEAVES[2]])


@pytest.mark.parametrize("bad", [[b"short"], ["00" * 32], [None]])
def test_inclusion_verification_refuses_malformed_hashes(bad):
    with pytest.raises(LogRefused) as refused:
        verify_inclusion(LEAVES[0], 0, 2, bad, NAIVE_ROOTS[2])
    assert refused.value.rule == "log.proof.malformed"


# -- consistency proofs ----------------------------------------------------------------------


def test_consistency_proofs_match_the_naive_tree_and_verify_for_all_sizes_to_40():
    source = leaf_source()
    for n in range(41):
        for m in range(n + 1):
            proof = consistency_proof(source, m, n)
            assert proof == naive_consistency(m, ENTRIES[:n]), (m, n)
            verify_consistency(m, n, NAIVE_ROOTS[m], NAIVE_ROOTS[n], proof)


def test_consistency_verification_rejects_every_changed_hash_length_and_size():
    source = leaf_source()
    for n in range(1, 41):
        for m in range(1, n + 1):
            proof, old, new = consistency_proof(source, m, n), NAIVE_ROOTS[m], NAIVE_ROOTS[n]
            for pos in range(len(proof)):
                bad = proof[:pos] + [flip(proof[pos], (m * 11 + n * 5 + pos * 41) % 256)] + proof[pos + 1 :]
                assert not accepted(verify_consistency, m, n, old, new, bad), (m, n, pos)
            assert not accepted(verify_consistency, m, n, flip(old, (m + n) % 256), new, proof), (m, n)
            assert not accepted(verify_consistency, m, n, old, flip(new, (m * n) % 256), proof), (m, n)
            for bad in (proof[1:], proof[:-1], proof + [LEAVES[0]], [LEAVES[0]] + proof, proof + proof[-1:]):
                if bad != proof:
                    assert not accepted(verify_consistency, m, n, old, new, bad), (m, n, len(bad))
            for m2, n2 in ((m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1), (n, m)):
                if 0 < m2 <= n2 <= 70 and (m2, n2) != (m, n):
                    assert not accepted(verify_consistency, m2, n2, NAIVE_ROOTS[m2], NAIVE_ROOTS[n2], proof), (m, n, m2, n2)


@pytest.mark.parametrize("m, n", [(1, 2), (3, 7), (4, 8), (6, 8), (13, 40)])
def test_consistency_verification_rejects_every_single_bit_flip(m, n):
    proof, old, new = consistency_proof(leaf_source(), m, n), NAIVE_ROOTS[m], NAIVE_ROOTS[n]
    for bit in range(256):
        assert not accepted(verify_consistency, m, n, flip(old, bit), new, proof)
        assert not accepted(verify_consistency, m, n, old, flip(new, bit), proof)
        for pos in range(len(proof)):
            assert not accepted(verify_consistency, m, n, old, new, proof[:pos] + [flip(proof[pos], bit)] + proof[pos + 1 :])


def test_a_rewritten_or_truncated_log_fails_consistency():
    rewritten = LEAVES[:40]
    rewritten[17] = leaf_hash(b"a quieter decision")
    source = leaf_source(rewritten)
    proof = consistency_proof(source, 30, 40)
    assert not accepted(verify_consistency, 30, 40, NAIVE_ROOTS[30], source.root(40), proof)
    with pytest.raises(LogRefused):  # a smaller tree never extends a bigger one
        verify_consistency(40, 30, NAIVE_ROOTS[40], NAIVE_ROOTS[30], [])


def test_consistency_edge_sizes():
    verify_consistency(0, 9, EMPTY_ROOT, NAIVE_ROOTS[9], [])  # everything extends the empty log
    with pytest.raises(LogRefused):
        verify_consistency(0, 9, NAIVE_ROOTS[1], NAIVE_ROOTS[9], [])
    with pytest.raises(LogRefused):
        verify_consistency(0, 9, EMPTY_ROOT, NAIVE_ROOTS[9], [LEAVES[0]])
    verify_consistency(9, 9, NAIVE_ROOTS[9], NAIVE_ROOTS[9], [])
    with pytest.raises(LogRefused, match="forked"):
        verify_consistency(9, 9, NAIVE_ROOTS[9], NAIVE_ROOTS[8], [])
    with pytest.raises(LogRefused):
        consistency_proof(leaf_source(), 5, 4)


# -- proofs from stored hashes ---------------------------------------------------------------

BIG_STORE = LevelStore((0, 3, 6))
for _leaf in LEAVES:
    BIG_STORE.append(_leaf)


def test_stored_subtree_levels_give_the_same_proofs_as_leaf_hashes():
    batch_sizes: list[int] = []

    def read_in_batches(level: int, start: int, end: int) -> list[bytes]:
        batch_sizes.append(end - start)
        return BIG_STORE.read(level, start, end)

    by_leaves, by_levels, small_batches = leaf_source(), BIG_STORE.source(), HashSource(read_in_batches, (0,), batch=4)
    for n in (1, 2, 3, 63, 64, 65, 70, 1000, 4097):
        assert by_levels.root(n) == by_leaves.root(n) == small_batches.root(n)
        for i in sorted(i for i in {0, 1, n // 3, n // 2, n - 2, n - 1} if 0 <= i < n):
            proof = inclusion_proof(by_leaves, i, n)
            assert inclusion_proof(by_levels, i, n) == proof == inclusion_proof(small_batches, i, n)
            verify_inclusion(LEAVES[i], i, n, proof, by_leaves.root(n))
        for m in sorted({1, n // 2, n - 1} - {0}):
            assert consistency_proof(by_levels, m, n) == consistency_proof(by_leaves, m, n) == consistency_proof(small_batches, m, n)
    assert max(batch_sizes) == 4  # memory stays bounded by the batch, however big the subtree


def test_proof_cost_leaf_hashes_only_reads_every_leaf_stored_levels_read_little():
    reads: list[int] = []
    n, i = 5000, 1234
    inclusion_proof(leaf_source(LEAVES, reads), i, n)
    assert sum(reads) == n - 1  # every leaf but the one proved
    BIG_STORE.hashes_read = 0
    inclusion_proof(BIG_STORE.source(), i, n)
    assert 0 < BIG_STORE.hashes_read <= 2 * 8 * (n.bit_length() + 1)  # O(2^h log n), h = 3


def test_a_store_that_lost_or_damaged_hashes_is_refused_with_a_reason():
    lost = HashSource.from_leaf_hashes(lambda start, end: LEAVES[start : min(end, 20)])
    with pytest.raises(LogRefused, match="missing or damaged") as refused:
        inclusion_proof(lost, 3, 40)
    assert refused.value.rule == "log.store"
    damaged = HashSource.from_leaf_hashes(lambda start, end: [h[:31] for h in LEAVES[start:end]])
    with pytest.raises(LogRefused):
        damaged.root(5)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_larger_trees_against_the_naive_tree(data):
    n = data.draw(st.integers(min_value=1, max_value=len(LEAVES)), label="size")
    i = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    m = data.draw(st.integers(min_value=1, max_value=n), label="first size")
    source = BIG_STORE.source()  # a store grown past n: proofs at an older size
    root, old_root = naive_mth(ENTRIES[:n]), naive_mth(ENTRIES[:m])
    proof = inclusion_proof(source, i, n)
    assert proof == naive_path(i, ENTRIES[:n])
    verify_inclusion(LEAVES[i], i, n, proof, root)
    if proof:
        pos = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="flipped hash")
        bad = proof[:pos] + [flip(proof[pos], data.draw(st.integers(0, 255), label="bit"))] + proof[pos + 1 :]
        assert not accepted(verify_inclusion, LEAVES[i], i, n, bad, root)
    consistency = consistency_proof(source, m, n)
    assert consistency == naive_consistency(m, ENTRIES[:n])
    verify_consistency(m, n, old_root, root, consistency)
    if consistency:
        assert not accepted(verify_consistency, m, n, old_root, root, consistency[:-1])


# -- checkpoints -----------------------------------------------------------------------------

ORIGIN = "solr-policy.example/audit"
AT = datetime(2026, 11, 22, 10, 0, 5, 123456, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def log_key() -> ec.EllipticCurvePrivateKey:
    return cp.generate_log_key()


def checkpoint_at(n: int, at: datetime = AT, origin: str = ORIGIN) -> cp.Checkpoint:
    return cp.Checkpoint(origin, n, naive_mth(ENTRIES[:n]), at)


def test_checkpoint_text_is_the_c2sp_form_and_its_signature_is_plain_ecdsa(log_key):
    note = cp.sign_checkpoint(checkpoint_at(12), log_key)
    body, _, signatures = note.rpartition("\n\n")
    assert body.split("\n") == [ORIGIN, "12", base64.b64encode(NAIVE_ROOTS[12]).decode(), "time 2026-11-22T10:00:05Z"]
    assert signatures.endswith("\n") and signatures.count("\n") == 1
    dash, name, blob = signatures[:-1].split(" ")
    assert (dash, name) == ("\u2014", ORIGIN)
    raw = base64.b64decode(blob)
    spki = log_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert raw[:4] == hashlib.sha256(spki).digest()[:4]
    log_key.public_key().verify(raw[4:], (body + "\n").encode(), ec.ECDSA(hashes.SHA256()))  # raises if not


def test_checkpoint_round_trip(log_key):
    made = cp.Checkpoint(ORIGIN, 12, NAIVE_ROOTS[12], AT + timedelta(hours=1), ("witness-policy v1",))
    opened = cp.open_checkpoint(cp.sign_checkpoint(made, log_key), log_key.public_key(), origin=ORIGIN)
    assert opened == made
    assert opened.time == datetime(2026, 11, 22, 11, 0, 5, tzinfo=timezone.utc)
    empty = cp.Checkpoint(ORIGIN, 0, EMPTY_ROOT, AT)
    assert cp.open_checkpoint(cp.sign_checkpoint(empty, log_key).encode(), log_key.public_key()) == empty


def _edit_line(note: str, number: int, new: str) -> str:
    lines = note.split("\n")
    lines[number] = new
    return "\n".join(lines)


def tampered_notes(note: str) -> dict[str, str | bytes]:
    root = base64.b64encode(NAIVE_ROOTS[11]).decode()
    return {
        "size": _edit_line(note, 1, "11"),
        "root": _edit_line(note, 2, root),
        "origin": _edit_line(note, 0, "solr-policy.example/other"),
        "time": _edit_line(note, 3, "time 2026-11-22T10:00:06Z"),
        "signature": note.replace(note.split(" ")[-1][8:12], "AAAA"),
        "signature dropped": note.rpartition("\n\n")[0] + "\n\n",
        "no blank line": note.replace("\n\n", "\n"),
        "trailing space": _edit_line(note, 1, "12 "),
        "leading space": _edit_line(note, 0, " " + ORIGIN),
        "extra line": note.replace("\n\n", "\nnote added later\n\n"),
        "extra blank line at end": note + "\n",
        "extra blank line before signatures": note.replace("\n\n", "\n\n\n"),
        "CRLF": note.replace("\n", "\r\n"),
        "tab": _edit_line(note, 1, "\t12"),
        "leading zero": _edit_line(note, 1, "012"),
        "double space in signature": note.replace(f"{ORIGIN} ", f"{ORIGIN}  ", 1),
        "hyphen for em dash": note.replace("\u2014", "-"),
        "no time": note.replace(note.split("\n")[3] + "\n", ""),
        "impossible time": _edit_line(note, 3, "time 2026-02-30T10:00:05Z"),
        "not utf-8": note.encode().replace(b"\xe2\x80\x94", b"\xe2\x80"),
        "too big": note + ("\u2014 witness AAAA\n" * 20000),
    }


@pytest.mark.parametrize("case", list(tampered_notes("a\n12\nr\nt\n\n\u2014 s b\n")))  # the case names
def test_a_tampered_or_reformatted_checkpoint_is_refused(log_key, case):
    note = cp.sign_checkpoint(checkpoint_at(12), log_key)
    changed = tampered_notes(note)[case]
    assert changed != note
    with pytest.raises(LogRefused) as refused:
        cp.open_checkpoint(changed, log_key.public_key())
    assert refused.value.rule.startswith("log.checkpoint.")


def test_every_single_bit_flip_of_a_checkpoint_is_refused(log_key):
    note = cp.sign_checkpoint(checkpoint_at(12), log_key).encode()
    for bit in range(len(note) * 8):
        changed = bytearray(note)
        changed[bit // 8] ^= 1 << (bit % 8)
        assert not accepted(cp.open_checkpoint, bytes(changed), log_key.public_key()), bit


def test_checkpoint_signatures_by_other_keys(log_key):
    public = log_key.public_key()
    note = cp.sign_checkpoint(checkpoint_at(12), log_key)
    stranger = cp.generate_log_key()
    with pytest.raises(LogRefused, match="no signature by the key"):
        cp.open_checkpoint(cp.sign_checkpoint(checkpoint_at(12), stranger), public)
    # A witness cosignature (unknown key) is ignored; the log's own must still verify.
    witness = cp.sign_checkpoint(checkpoint_at(12), stranger).rpartition("\n\n")[2].replace(ORIGIN, "witness.example/w1")
    assert cp.open_checkpoint(note + witness, public) == checkpoint_at(12)
    # Another line claiming to be the log's key that does not verify rejects the note.
    forged = witness.replace("witness.example/w1", ORIGIN)
    forged_blob = base64.b64encode(cp.key_id(log_key) + base64.b64decode(forged.split(" ")[2])[4:]).decode()
    with pytest.raises(LogRefused, match="does not verify"):
        cp.open_checkpoint(note + f"\u2014 {ORIGIN} {forged_blob}\n", public)
    with pytest.raises(LogRefused) as refused:
        cp.open_checkpoint(note, public, origin="solr-policy.example/other")
    assert refused.value.rule == "log.checkpoint.origin"


@pytest.mark.parametrize(
    "fields",
    [
        {"origin": "has space"},
        {"origin": "plus+sign"},
        {"origin": ""},
        {"origin": "log\x01"},
        {"size": -1},
        {"size": 1 << 63},
        {"root_hash": b"short"},
        {"size": 0},  # a size-0 tree with a non-empty root
        {"time": datetime(2026, 11, 22, 10, 0)},  # no time zone
        {"extensions": ("",)},
        {"extensions": ("time 2026-11-22T10:00:00Z",)},
        {"extensions": (" padded",)},
    ],
)
def test_an_invalid_checkpoint_cannot_be_made(fields):
    values = {"origin": ORIGIN, "size": 12, "root_hash": NAIVE_ROOTS[12], "time": AT, **fields}
    with pytest.raises(LogRefused):
        cp.Checkpoint(**values)


@pytest.mark.parametrize(
    "line, text, reason",
    [
        (2, base64.b64encode(NAIVE_ROOTS[12]).decode()[:-2] + "R=", "not canonical base64"),  # padding bits set
        (2, base64.b64encode(NAIVE_ROOTS[12]).decode().rstrip("="), "not base64"),
        (2, base64.urlsafe_b64encode(b"\xfb" * 32).decode(), "not base64"),
        (2, base64.b64encode(NAIVE_ROOTS[12][:31]).decode(), "32 bytes"),
        (1, str(1 << 63), "not an integer"),
        (3, "time 2026-11-22T10:00:05.5Z", "fourth line"),
        (3, "time 2026-11-22 10:00:05Z", "fourth line"),
    ],
)
def test_checkpoint_text_has_one_spelling(log_key, line, text, reason):
    note = _edit_line(cp.sign_checkpoint(checkpoint_at(12), log_key), line, text)
    with pytest.raises(LogRefused, match=reason) as refused:
        cp.parse_note(note)
    assert refused.value.rule == "log.checkpoint.malformed"


def test_too_many_signature_lines_are_refused(log_key):
    note = cp.sign_checkpoint(checkpoint_at(3), log_key)
    witness = f"\u2014 witness.example/w1 {base64.b64encode(bytes(70)).decode()}\n"
    assert cp.open_checkpoint(note + witness * 15, log_key.public_key()).size == 3  # at least 16 accepted
    with pytest.raises(LogRefused, match="more than"):
        cp.open_checkpoint(note + witness * cp.MAX_SIGNATURES, log_key.public_key())


# -- keys and files --------------------------------------------------------------------------


def test_log_keys_round_trip_and_other_keys_are_refused(tmp_path, log_key):
    path = tmp_path / "log.key"
    cp.save_private_key(path, log_key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cp.key_id(cp.read_private_key(path)) == cp.key_id(log_key)
    (tmp_path / "log.pub").write_bytes(cp.public_key_pem(log_key))
    assert cp.key_id(cp.read_public_key(tmp_path / "log.pub")) == cp.key_id(log_key)
    with pytest.raises(LogRefused, match="already exists"):  # never replaces a key
        cp.save_private_key(path, cp.generate_log_key())
    assert cp.key_id(cp.read_private_key(path)) == cp.key_id(log_key)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    p384 = ec.generate_private_key(ec.SECP384R1())
    edwards = ed25519.Ed25519PrivateKey.generate()
    encrypted = log_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw"))
    for pem in (cp.private_key_pem(p384), edwards.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), encrypted, b"not a key"):
        with pytest.raises(LogRefused) as refused:
            cp.load_private_key(pem)
        assert refused.value.rule == "log.key"
    for pem in (cp.public_key_pem(p384), edwards.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), cp.private_key_pem(log_key)):
        with pytest.raises(LogRefused):
            cp.load_public_key(pem)
    with pytest.raises(LogRefused) as refused:
        cp.read_public_key(tmp_path / "missing.pub")
    assert refused.value.rule == "log.file"


def test_checkpoint_file_is_replaced_atomically_and_read_back_verified(tmp_path, log_key, monkeypatch):
    path = tmp_path / "checkpoint"
    first, second = cp.sign_checkpoint(checkpoint_at(5), log_key), cp.sign_checkpoint(checkpoint_at(9), log_key)
    synced_folders = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced_folders.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    cp.write_checkpoint_file(path, first)
    cp.write_checkpoint_file(path, second)
    assert len(synced_folders) == 2  # the rename itself is made durable
    assert cp.read_checkpoint_file(path, log_key.public_key()) == (checkpoint_at(9), second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(LogRefused, match="Input/output error"):
        cp.write_checkpoint_file(path, first)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_text() == second  # a failed write leaves the old checkpoint whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]

    with pytest.raises(LogRefused):
        cp.write_checkpoint_file(path, "not a checkpoint")
    assert path.read_text() == second
    with pytest.raises(LogRefused) as refused:
        cp.write_checkpoint_file(tmp_path / "no-such-folder" / "checkpoint", second)
    assert refused.value.rule == "log.file"
    path.write_text(second.replace("\n9\n", "\n10\n"))
    with pytest.raises(LogRefused) as refused:
        cp.read_checkpoint_file(path, log_key.public_key())
    assert refused.value.rule == "log.checkpoint.signature"


# -- the offline verifier --------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(log_key) -> dict[int, str]:
    return {n: cp.sign_checkpoint(checkpoint_at(n), log_key) for n in (0, 5, 12, 13, 40)}


def inclusion_doc(signed, i: int = 7, n: int = 12, path: list[bytes] | None = None) -> str:
    return inclusion_document(i, n, LEAVES[i], inclusion_proof(leaf_source(), i, n) if path is None else path, signed[n])


def test_offline_inclusion_check_accepts_a_good_proof(log_key, signed):
    public = log_key.public_key()
    doc = inclusion_doc(signed)
    for kwargs in ({}, {"leaf_data": ENTRIES[7]}, {"leaf_hash": LEAVES[7], "leaf_index": 7}, {"checkpoint": signed[12], "origin": ORIGIN}):
        verdict = check_inclusion(doc, public, **kwargs)
        assert verdict.valid, verdict
        assert (verdict.rule, verdict.tree_size, verdict.root_hash) == ("log.proof.valid", 12, NAIVE_ROOTS[12].hex())
    assert json.loads(doc)["leaf_hash"] == LEAVES[7].hex()


def _with(doc: str, **changes) -> str:
    data = json.loads(doc)
    data.update(changes)
    return json.dumps(data)


def test_offline_inclusion_check_refuses_with_a_named_reason(log_key, signed):
    public = log_key.public_key()
    doc = inclusion_doc(signed)
    path = json.loads(doc)["path"]
    stranger = cp.generate_log_key()
    forked = cp.sign_checkpoint(cp.Checkpoint(ORIGIN, 12, NAIVE_ROOTS[11], AT), log_key)
    cases = [
        ({"leaf_data": ENTRIES[8]}, doc, "log.proof.leaf"),
        ({"leaf_hash": LEAVES[8]}, doc, "log.proof.leaf"),
        ({"leaf_index": 8}, doc, "log.proof.leaf"),
        ({}, _with(doc, leaf_index=8), "log.proof.invalid"),
        ({}, _with(doc, leaf_hash=LEAVES[8].hex()), "log.proof.invalid"),
        ({}, _with(doc, path=[path[0][:-1] + ("0" if path[0][-1] != "0" else "1")] + path[1:]), "log.proof.invalid"),
        ({}, _with(doc, path=path[:-1]), "log.proof.invalid"),
        ({}, _with(doc, tree_size=13), "log.proof.size"),
        ({}, _with(doc, checkpoint=signed[13]), "log.proof.size"),
        ({}, _with(doc, checkpoint=cp.sign_checkpoint(checkpoint_at(12), stranger)), "log.checkpoint.signature"),
        ({}, _with(doc, checkpoint=signed[12].replace("\n12\n", "\n13\n")), "log.checkpoint.signature"),
        ({"checkpoint": signed[13]}, doc, "log.proof.size"),
        ({"checkpoint": forked}, doc, "log.fork"),
        ({"origin": "solr-policy.example/other"}, doc, "log.checkpoint.origin"),
    ]
    for kwargs, document, rule in cases:
        verdict = check_inclusion(document, public, **kwargs)
        assert (verdict.valid, verdict.rule) == (False, rule), (kwargs, verdict)
        assert verdict.reason


@pytest.mark.parametrize(
    "document",
    [
        "",
        "[]",
        "not json",
        '{"leaf_index": 1}',
        b"\xff\xfe",
        "[" * 50000 + "]" * 50000,
        " " * (300 * 1024),
    ],
)
def test_malformed_proof_documents_are_refused_not_raised(log_key, document):
    verdict = check_inclusion(document, log_key.public_key())
    assert (verdict.valid, verdict.rule) == (False, "log.proof.malformed")


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"leaf_index": True},
        {"leaf_index": -1},
        {"tree_size": "12"},
        {"leaf_hash": "AB" * 32},
        {"leaf_hash": "00" * 31},
        {"path": "00" * 32},
        {"path": ["00" * 32] * 129},
        {"checkpoint": None},
        {"tree_size": 1 << 64},
    ],
)
def test_proof_document_fields_are_checked_strictly(log_key, signed, change):
    verdict = check_inclusion(_with(inclusion_doc(signed), **change), log_key.public_key())
    assert not verdict.valid and verdict.rule in ("log.proof.malformed", "log.proof.size")


def test_duplicate_keys_floats_and_nan_are_refused(log_key, signed):
    doc = inclusion_doc(signed)
    for bad in (doc.replace('"leaf_index": 7', '"leaf_index": 7, "leaf_index": 3'), doc.replace('"leaf_index": 7', '"leaf_index": 7.0'), doc.replace('"leaf_index": 7', '"leaf_index": NaN')):
        assert bad != doc
        verdict = check_inclusion(bad, log_key.public_key())
        assert (verdict.valid, verdict.rule) == (False, "log.proof.malformed"), bad


def test_offline_consistency_check(log_key, signed):
    public = log_key.public_key()
    proof = consistency_proof(leaf_source(), 5, 40)
    doc = consistency_document(5, 40, proof, signed[40])
    verdict = check_consistency(doc, public, first_checkpoint=signed[5], second_checkpoint=signed[40], origin=ORIGIN)
    assert verdict.valid and verdict.tree_size == 40, verdict
    assert check_consistency(consistency_document(0, 40, [], signed[40]), public, first_checkpoint=signed[0]).valid

    # The log was rewritten after checkpoint 5 was shipped: its new tree cannot prove it extends it.
    rewritten = LEAVES[:40]
    rewritten[2] = leaf_hash(b"a quieter decision")
    source = leaf_source(rewritten)
    new_head = cp.sign_checkpoint(cp.Checkpoint(ORIGIN, 40, source.root(40), AT), log_key)
    lie = consistency_document(5, 40, consistency_proof(source, 5, 40), new_head)
    cases = [
        (lie, {"first_checkpoint": signed[5]}, "log.proof.invalid"),
        (doc, {"first_checkpoint": signed[12]}, "log.proof.size"),
        (consistency_document(40, 5, [], signed[5]), {"first_checkpoint": signed[40]}, "log.proof.size"),
        (doc, {"first_checkpoint": signed[5], "second_checkpoint": new_head}, "log.fork"),
        (doc, {"first_checkpoint": cp.sign_checkpoint(checkpoint_at(5, origin="solr-policy.example/other"), log_key)}, "log.checkpoint.origin"),
        (consistency_document(5, 40, proof[:-1], signed[40]), {"first_checkpoint": signed[5]}, "log.proof.invalid"),
        (_with(doc, first_size=6), {"first_checkpoint": signed[5]}, "log.proof.size"),
        (_with(doc, extra=True), {"first_checkpoint": signed[5]}, "log.proof.malformed"),
        (doc, {"first_checkpoint": "garbage"}, "log.checkpoint.malformed"),
    ]
    for document, kwargs, rule in cases:
        verdict = check_consistency(document, public, **kwargs)
        assert (verdict.valid, verdict.rule) == (False, rule), (kwargs, verdict)


def test_file_entry_points_for_audit_check_proof(tmp_path, log_key, signed):
    (tmp_path / "log.pub").write_bytes(cp.public_key_pem(log_key))
    (tmp_path / "proof.json").write_text(inclusion_doc(signed))
    (tmp_path / "entry").write_bytes(ENTRIES[7])
    cp.write_checkpoint_file(tmp_path / "checkpoint", signed[12])
    verdict = check_inclusion_files(tmp_path / "proof.json", tmp_path / "log.pub", checkpoint=tmp_path / "checkpoint", leaf=tmp_path / "entry", leaf_hash_hex=LEAVES[7].hex(), leaf_index=7)
    assert verdict.valid, verdict
    assert check_inclusion_files(tmp_path / "proof.json", tmp_path / "nowhere.pub").rule == "log.file"
    assert check_inclusion_files(tmp_path / "proof.json", tmp_path / "log.pub", leaf_hash_hex="xyz").rule == "log.proof.malformed"

    (tmp_path / "consistency.json").write_text(consistency_document(5, 12, consistency_proof(leaf_source(), 5, 12), signed[12]))
    cp.write_checkpoint_file(tmp_path / "old-checkpoint", signed[5])
    assert check_consistency_files(tmp_path / "consistency.json", tmp_path / "log.pub", tmp_path / "old-checkpoint", second_checkpoint=tmp_path / "checkpoint").valid
    assert check_consistency_files(tmp_path / "consistency.json", tmp_path / "log.pub", tmp_path / "missing").rule == "log.file"
