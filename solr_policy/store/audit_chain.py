"""The audit trail's hash chain, independent of any database.

Each entry's hash covers the previous entry's hash and the entry's canonical content, so
changing, removing or reordering an entry breaks the chain at that entry; the head record
(the newest entry written) catches the newest entries being cut off. Every store computes
and checks the chain here, so a SQLite file and a PostgreSQL database prove the same thing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring_ascii
from datetime import datetime, timezone

from solr_policy.records import AuditCheck, AuditEntry, AuditHead, LogHead
from solr_policy.transparency.merkle import CompactRange, leaf_hash

GENESIS = "0" * 64  # the "previous hash" of entry 1
# Interior levels of the Merkle tree a store keeps, so that proofs read O(256 log n) hashes
# instead of every leaf (solr_policy.transparency.merkle, HashSource).
KEPT_LEVELS = (8, 16)
EMPTY_LOG = LogHead(0, ())


def leaf_of(entry_hash_hex: str) -> bytes:
    """The Merkle leaf hash of an entry: its chained hash is the leaf's data."""
    return leaf_hash(bytes.fromhex(entry_hash_hex))


def grow(head: LogHead, entry_hash_hex: str, keep: Callable[[int, int, bytes], object]) -> LogHead:
    """The tree after appending one entry; ``keep(level, index, hash)`` is called for each
    completed subtree at a ``KEPT_LEVELS`` level, for the store to save."""
    tree = CompactRange(head.size, head.frontier)

    def on_node(level: int, index: int, digest: bytes) -> None:
        if level in KEPT_LEVELS:
            keep(level, index, digest)

    tree.append(leaf_of(entry_hash_hex), on_node)
    return LogHead(tree.size, tree.hashes)


def grow_many(head: LogHead, entry_hashes_hex: Iterable[str], keep: Callable[[int, int, bytes], object]) -> LogHead:
    """``grow`` for several entries in order (one frontier copy for all of them)."""
    tree = CompactRange(head.size, head.frontier)

    def on_node(level: int, index: int, digest: bytes) -> None:
        if level in KEPT_LEVELS:
            keep(level, index, digest)

    for entry_hash_hex in entry_hashes_hex:
        tree.append(leaf_of(entry_hash_hex), on_node)
    return LogHead(tree.size, tree.hashes)


def frontier_fits(head: LogHead) -> bool:
    """One frontier hash per set bit of the size, as ``CompactRange`` keeps them."""
    return len(head.frontier) == bin(head.size).count("1")


def frontier_text(head: LogHead) -> str:
    return ",".join(h.hex() for h in head.frontier)


def frontier_from_text(size: int, text: str | None) -> LogHead:
    return LogHead(size, tuple(bytes.fromhex(h) for h in text.split(",")) if text else ())


def canonical_time(at: datetime) -> str:
    """The text form of an entry's time that is hashed (and stored)."""
    return at.astimezone(timezone.utc).isoformat()


# Encoders made once (json.dumps with arguments builds a new one per call); what they write
# is hashed, so it never changes: sorted keys, no spaces, ASCII.
_PAYLOAD_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_BODY_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical_payload(payload: Mapping[str, object]) -> str:
    """The text form of an entry's payload that is hashed (and stored):
    ``json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)``."""
    return _PAYLOAD_ENCODER.encode(payload)


def canonical_around(payload: Mapping[str, object], key: str, encoder: json.JSONEncoder = _PAYLOAD_ENCODER) -> tuple[str, str]:
    """The texts before and after the value in ``canonical_payload({**payload, key: value})``,
    whatever the value: with the value's canonical text (made before, e.g. kept from an
    earlier entry) between them, the payload's. Canonical JSON is made of its parts: an object
    is its members' texts in key order, so the members before and after ``key`` are encoded
    as they would be."""
    before = encoder.encode({k: v for k, v in payload.items() if k < key})[1:-1]
    after = encoder.encode({k: v for k, v in payload.items() if k > key})[1:-1]
    return "{" + before + ("," if before else "") + encoder.encode(key) + ":", ("," + after if after else "") + "}"


def json_string_inner(text: str) -> str:
    """``json.dumps(text)`` without its quotes. Made character by character, so that of a
    concatenation is the concatenation of the parts': kept parts need not be made again."""
    return encode_basestring_ascii(text)[1:-1]


def audit_hash(
    prev_hash: str, seq: int, at: str, kind: str, fields: Mapping[str, str | int | None], payload: str,
    payload_json: str | None = None,
) -> str:
    """The chain link: SHA-256 over the previous hash and this entry's canonical content.
    A field that is None and not one of the original four is left out (older entries hash as before).
    ``payload_json``, if given, is ``json.dumps(payload)``, made along with the payload (an
    entry's payload is most of what is hashed, and mostly made of parts kept from before)."""
    if payload_json is not None and fields.keys() == _ENTRY_FIELDS and _plain(seq, at, kind, fields):
        # The body written out (an append's usual entry): keys in order, strings ASCII-escaped.
        counter = fields["counter"]
        counted = "" if counter is None else f'"counter":{counter},'
        body = (
            f'{{"actor":{_text(fields["actor"])},"at":{encode_basestring_ascii(at)},{counted}'
            f'"device":{_text(fields["device"])},"instruction":{_text(fields["instruction"])},'
            f'"kind":{encode_basestring_ascii(kind)},"originator":{_text(fields["originator"])},'
            f'"payload":{payload_json},"seq":{seq}}}'
        )
        return hashlib.sha256((prev_hash + body).encode()).hexdigest()
    kept = {k: v for k, v in fields.items() if v is not None or k in _ORIGINAL_FIELDS}
    if payload_json is None:
        body = _BODY_ENCODER.encode({"seq": seq, "at": at, "kind": kind, **kept, "payload": payload})
    else:
        prefix, suffix = canonical_around({"seq": seq, "at": at, "kind": kind, **kept}, "payload", _BODY_ENCODER)
        body = prefix + payload_json + suffix
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _plain(seq: object, at: object, kind: object, fields: Mapping[str, object]) -> bool:
    """The entry's values are those the written-out body is for: strings, None and integers."""
    counter, actor, originator, device, instruction = (
        fields["counter"], fields["actor"], fields["originator"], fields["device"], fields["instruction"]
    )
    return (
        type(seq) is int and type(at) is str and type(kind) is str and (counter is None or type(counter) is int)
        and (actor is None or type(actor) is str) and (originator is None or type(originator) is str)
        and (device is None or type(device) is str) and (instruction is None or type(instruction) is str)
    )


def _text(value: object) -> str:
    return "null" if value is None else encode_basestring_ascii(value)  # type: ignore[arg-type]


_ORIGINAL_FIELDS = frozenset({"actor", "originator", "device", "instruction"})
_ENTRY_FIELDS = _ORIGINAL_FIELDS | {"counter"}


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    """What ``entry.hash`` must be, given the hash of the entry before it."""
    fields = {
        "actor": entry.actor, "originator": entry.originator, "device": entry.device, "instruction": entry.instruction,
        "counter": entry.counter,
    }
    return audit_hash(prev_hash, entry.seq, entry.at, entry.kind, fields, entry.payload)


def verify_chain(entries: Iterable[AuditEntry], head: AuditHead | None) -> AuditCheck:
    """Walk ``entries`` (in ``seq`` order) and the head: intact, or the first broken entry named."""
    prev, count, expected_seq = GENESIS, 0, 1
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            return AuditCheck(False, count, f"entry {expected_seq} is missing (next is {entry.seq})")
        if entry.prev_hash != prev:
            return AuditCheck(False, count, f"entry {entry.seq} does not link to entry {entry.seq - 1}")
        if entry.hash != entry_hash(entry, prev):
            return AuditCheck(False, count, f"entry {entry.seq} was altered (its hash does not match its content)")
        prev, expected_seq = entry.hash, expected_seq + 1
    if head is not None and (head.seq != count or head.hash != prev):
        return AuditCheck(
            False, count, f"the chain ends at entry {count}, but entry {head.seq} was written: newest entries are missing or altered"
        )
    if head is None and count:
        return AuditCheck(False, count, "the chain's head record is missing")
    return AuditCheck(True, count, f"{count} entries, chain intact")
