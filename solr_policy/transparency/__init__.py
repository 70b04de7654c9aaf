"""A verifiable audit log core: RFC 9162 Merkle trees, signed checkpoints, offline proof checks.

Pure and storage-independent (no store, engine or CLI imports): a store persists leaf
hashes (and optionally the subtree hashes ``CompactRange.append`` reports) and answers
``read(level, start, end)`` range queries; everything else is here.

- ``merkle``: RFC 9162 2.1 hashing, the O(log n) frontier, inclusion and consistency proofs
  and their verification.
- ``checkpoint``: signed checkpoints (C2SP tlog-checkpoint in a signed note, ECDSA P-256),
  log keys, atomic checkpoint files.
- ``proofs``: proof documents and the offline verifier behind ``audit check-proof``.
"""

from solr_policy.transparency.checkpoint import (
    Checkpoint,
    generate_log_key,
    open_checkpoint,
    read_checkpoint_file,
    sign_checkpoint,
    write_checkpoint_file,
)
from solr_policy.transparency.merkle import (
    EMPTY_ROOT,
    CompactRange,
    HashSource,
    LogRefused,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from solr_policy.transparency.proofs import Verdict, check_consistency, check_inclusion

__all__ = [
    "EMPTY_ROOT",
    "Checkpoint",
    "CompactRange",
    "HashSource",
    "LogRefused",
    "Verdict",
    "check_consistency",
    "check_inclusion",
    "consistency_proof",
    "generate_log_key",
    "inclusion_proof",
    "leaf_hash",
    "open_checkpoint",
    "read_checkpoint_file",
    "sign_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "write_checkpoint_file",
]
