"""Offline proof checking: is this entry in the log, and does this log extend that one?

Why: the audit trail convinces an auditor only if the auditor can check it without trusting
the service's database or code paths. This module needs nothing but a proof document, the
log's public key and a checkpoint the auditor kept (``audit check-proof``): it checks the
checkpoints' signatures (``checkpoint.py``) and then the proof with the algorithms of RFC
9162 2.1.3.2 (inclusion) and 2.1.4.2 (consistency). Every outcome is a ``Verdict`` with a
named rule and a reason; bad input never raises.

Inclusion proof document (JSON object, exactly these keys, hashes in lowercase hex)::

    {"leaf_index": 7, "tree_size": 12, "leaf_hash": "<64 hex>", "path": ["<64 hex>", ...],
     "checkpoint": "<the signed checkpoint at tree_size>"}

Consistency proof document::

    {"first_size": 5, "second_size": 12, "path": ["<64 hex>", ...],
     "checkpoint": "<the signed checkpoint at second_size>"}

A proof is made against one tree size; a checkpoint the auditor supplies must be that same
tree head (a store can make a proof at any size it has reached, so ask for that size).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from cryptography.hazmat.primitives.asymmetric import ec

from solr_policy.transparency.checkpoint import (
    MAX_NOTE_BYTES,
    Checkpoint,
    open_checkpoint,
    read_file,
    read_public_key,
)
from solr_policy.transparency.merkle import (
    HASH_SIZE,
    LogRefused,
    verify_consistency,
    verify_inclusion,
)
from solr_policy.transparency.merkle import (
    leaf_hash as hash_leaf,
)

MAX_DOCUMENT_BYTES = MAX_NOTE_BYTES + 64 * 1024
MAX_LEAF_BYTES = 16 * 1024 * 1024
MAX_PATH = 128  # sizes below 2^63 need at most 63 (inclusion) or 126 (consistency) hashes
MALFORMED = "log.proof.malformed"
INCLUSION_KEYS = ("leaf_index", "tree_size", "leaf_hash", "path", "checkpoint")
CONSISTENCY_KEYS = ("first_size", "second_size", "path", "checkpoint")
_HEX = re.compile(rf"[0-9a-f]{{{2 * HASH_SIZE}}}")


@dataclass(frozen=True)
class Verdict:
    """The outcome of a proof check; ``rule`` is ``log.proof.valid`` or names the failure."""

    valid: bool
    rule: str
    reason: str
    origin: str | None = None
    tree_size: int | None = None
    root_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _valid(reason: str, checkpoint: Checkpoint) -> Verdict:
    return Verdict(True, "log.proof.valid", reason, checkpoint.origin, checkpoint.size, checkpoint.root_hash.hex())


def _refusal(exc: LogRefused) -> Verdict:
    return Verdict(False, exc.rule, exc.message)


# -- documents -------------------------------------------------------------------------------


def _document(fields: dict[str, Any]) -> str:
    return json.dumps(fields, indent=2) + "\n"


def inclusion_document(leaf_index: int, tree_size: int, leaf_hash: bytes, path: Sequence[bytes], checkpoint_note: str) -> str:
    """The JSON text of an inclusion proof (made by the store, checked by ``check_inclusion``)."""
    return _document({"leaf_index": leaf_index, "tree_size": tree_size, "leaf_hash": leaf_hash.hex(), "path": [h.hex() for h in path], "checkpoint": checkpoint_note})


def consistency_document(first_size: int, second_size: int, path: Sequence[bytes], checkpoint_note: str) -> str:
    """The JSON text of a consistency proof from ``first_size`` to the checkpoint's ``second_size``."""
    return _document({"first_size": first_size, "second_size": second_size, "path": [h.hex() for h in path], "checkpoint": checkpoint_note})


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = {}
    for key, value in pairs:
        if key in result:
            raise LogRefused(MALFORMED, f"the key {key!r} appears twice")
        result[key] = value
    return result


def _not_allowed(token: str) -> None:
    raise LogRefused(MALFORMED, f"{token} is not allowed in a proof document")


def _load(document: str | bytes, keys: tuple[str, ...], kind: str) -> dict[str, Any]:
    if isinstance(document, bytes):
        if len(document) > MAX_DOCUMENT_BYTES:
            raise LogRefused(MALFORMED, f"a proof document is at most {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = document.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LogRefused(MALFORMED, f"the proof document is not UTF-8 (at byte {exc.start})") from None
    if not isinstance(document, str) or len(document) > MAX_DOCUMENT_BYTES:
        raise LogRefused(MALFORMED, f"a proof document is JSON text of at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        data = json.loads(document, object_pairs_hook=_no_duplicates, parse_constant=_not_allowed, parse_float=_not_allowed)
    except (ValueError, RecursionError) as exc:
        raise LogRefused(MALFORMED, f"the proof document is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LogRefused(MALFORMED, f"an {kind} proof document is a JSON object")
    missing = [k for k in keys if k not in data]
    unknown = sorted(k for k in data if k not in keys)
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)}"] if unknown else [])
        raise LogRefused(MALFORMED, f"not an {kind} proof document ({'; '.join(parts)})")
    for key in keys:
        if key.endswith(("_size", "_index")):
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise LogRefused(MALFORMED, f"{key} must be a non-negative integer")
    if not isinstance(data["checkpoint"], str):
        raise LogRefused(MALFORMED, "checkpoint must be the signed checkpoint's text")
    path = data["path"]
    if not isinstance(path, list) or len(path) > MAX_PATH:
        raise LogRefused(MALFORMED, f"path must be a list of at most {MAX_PATH} hashes")
    data["path"] = [_hash_from_hex(h, f"path[{i}]") for i, h in enumerate(path)]
    return data


def _hash_from_hex(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise LogRefused(MALFORMED, f"{what} must be {2 * HASH_SIZE} lowercase hex digits")
    return bytes.fromhex(value)


def _same_tree_head(given: Checkpoint, proved: Checkpoint) -> None:
    """The auditor's checkpoint must be the tree head the proof was made against."""
    if given.origin != proved.origin:
        raise LogRefused("log.checkpoint.origin", f"the checkpoint is from log {given.origin!r}, the proof from {proved.origin!r}")
    if given.size != proved.size:
        raise LogRefused("log.proof.size", (
            f"the proof is for tree size {proved.size}, the checkpoint given is for {given.size}: check the proof "
            f"without --checkpoint (it carries its own signed checkpoint), then that this log extends yours "
            f"(audit consistency {given.size}, then audit check-consistency --first YOUR_CHECKPOINT)"
        ))
    if given.root_hash != proved.root_hash:
        raise LogRefused("log.fork", f"the log signed two different root hashes for tree size {given.size}: it has forked or been rewritten")


def _proof_checkpoint(doc: dict[str, Any], size_key: str, public_key: ec.EllipticCurvePublicKey, given: str | bytes | None, origin: str | None) -> Checkpoint:
    """The document's own checkpoint, verified; the auditor's, if given, must be the same tree head."""
    proved = open_checkpoint(doc["checkpoint"], public_key, origin=origin)
    if given is not None:
        _same_tree_head(open_checkpoint(given, public_key, origin=origin), proved)
    if doc[size_key] != proved.size:
        raise LogRefused("log.proof.size", f"the proof says {size_key} {doc[size_key]}, its checkpoint {proved.size}")
    return proved


# -- checks ----------------------------------------------------------------------------------


def check_inclusion(
    document: str | bytes,
    public_key: ec.EllipticCurvePublicKey,
    *,
    checkpoint: str | bytes | None = None,
    leaf_data: bytes | None = None,
    leaf_hash: bytes | None = None,
    leaf_index: int | None = None,
    origin: str | None = None,
) -> Verdict:
    """Is the leaf (its data, or its hash, or else the document's hash) in the log?"""
    try:
        doc = _load(document, INCLUSION_KEYS, "inclusion")
        proved = _proof_checkpoint(doc, "tree_size", public_key, checkpoint, origin)
        claimed = _hash_from_hex(doc["leaf_hash"], "leaf_hash")
        if leaf_data is not None and hash_leaf(leaf_data) != claimed:
            raise LogRefused("log.proof.leaf", "the entry given is not the leaf this proof is for (its leaf hash differs)")
        if leaf_hash is not None and leaf_hash != claimed:
            raise LogRefused("log.proof.leaf", "the leaf hash given is not the one this proof is for")
        if leaf_index is not None and leaf_index != doc["leaf_index"]:
            raise LogRefused("log.proof.leaf", f"the proof is for leaf {doc['leaf_index']}, not {leaf_index}")
        verify_inclusion(claimed, doc["leaf_index"], proved.size, doc["path"], proved.root_hash)
    except LogRefused as exc:
        return _refusal(exc)
    return _valid(
        f"leaf {doc['leaf_index']} (leaf hash {claimed.hex()}) is in log {proved.origin} at tree size {proved.size}, checkpoint of {proved.time.isoformat()}",
        proved,
    )


def check_consistency(
    document: str | bytes,
    public_key: ec.EllipticCurvePublicKey,
    *,
    first_checkpoint: str | bytes,
    second_checkpoint: str | bytes | None = None,
    origin: str | None = None,
) -> Verdict:
    """Does the log at the document's checkpoint extend ``first_checkpoint`` (append only)?"""
    try:
        doc = _load(document, CONSISTENCY_KEYS, "consistency")
        second = _proof_checkpoint(doc, "second_size", public_key, second_checkpoint, origin)
        first = open_checkpoint(first_checkpoint, public_key, origin=second.origin)
        if doc["first_size"] != first.size:
            raise LogRefused("log.proof.size", f"the proof starts at tree size {doc['first_size']}, the first checkpoint is for {first.size}")
        if first.size > second.size:
            raise LogRefused("log.proof.size", f"the first checkpoint (size {first.size}) is newer than the second (size {second.size}); give them the other way round")
        verify_consistency(first.size, second.size, first.root_hash, second.root_hash, doc["path"])
    except LogRefused as exc:
        return _refusal(exc)
    return _valid(
        f"log {second.origin} at tree size {second.size} ({second.time.isoformat()}) extends tree size {first.size} ({first.time.isoformat()}): nothing before was changed or removed",
        second,
    )


def check_inclusion_files(
    proof: str | os.PathLike,
    public_key: str | os.PathLike,
    *,
    checkpoint: str | os.PathLike | None = None,
    leaf: str | os.PathLike | None = None,
    leaf_hash_hex: str | None = None,
    leaf_index: int | None = None,
    origin: str | None = None,
) -> Verdict:
    """``check_inclusion`` on files (what ``audit check-proof`` calls); unreadable files are refusals."""
    try:
        key = read_public_key(public_key)
        document = read_file(proof, MAX_DOCUMENT_BYTES, "proof file")
        given = read_file(checkpoint, MAX_NOTE_BYTES, "checkpoint file") if checkpoint is not None else None
        data = read_file(leaf, MAX_LEAF_BYTES, "entry file") if leaf is not None else None
        wanted = _hash_from_hex(leaf_hash_hex, "the leaf hash given") if leaf_hash_hex is not None else None
    except LogRefused as exc:
        return _refusal(exc)
    return check_inclusion(document, key, checkpoint=given, leaf_data=data, leaf_hash=wanted, leaf_index=leaf_index, origin=origin)


def check_consistency_files(
    proof: str | os.PathLike,
    public_key: str | os.PathLike,
    first_checkpoint: str | os.PathLike,
    *,
    second_checkpoint: str | os.PathLike | None = None,
    origin: str | None = None,
) -> Verdict:
    """``check_consistency`` on files; unreadable files are refusals."""
    try:
        key = read_public_key(public_key)
        document = read_file(proof, MAX_DOCUMENT_BYTES, "proof file")
        first = read_file(first_checkpoint, MAX_NOTE_BYTES, "first checkpoint file")
        second = read_file(second_checkpoint, MAX_NOTE_BYTES, "second checkpoint file") if second_checkpoint is not None else None
    except LogRefused as exc:
        return _refusal(exc)
    return check_consistency(document, key, first_checkpoint=first, second_checkpoint=second, origin=origin)
