"""GBCS signatures on General-Signing APDUs (Signed Pre-Commands): verified, never counted.

As the DCC's own gbcs-parser signs and verifies them: the signed bytes are the APDU without
its first byte (the ``DF`` tag) and without the trailing Signature Length byte and signature;
ECDSA P-256 with SHA-256; the signature is the 64-byte ``r||s`` (IEEE P1363).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from solr_policy.gbcs.header import GbcsHeader

SIGNATURE_LENGTH = 64  # r||s of P-256
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # the P-256 group order


def signed_bytes(payload: bytes, header: GbcsHeader) -> bytes:
    """The bytes a GBCS signature covers: after the ``DF`` tag, up to the Signature Length byte."""
    return bytes(payload[1 : header.content_offset + header.content_length])


def signature_of(payload: bytes, header: GbcsHeader) -> bytes:
    end = header.content_offset + header.content_length
    return bytes(payload[len(payload) - header.signature_length :]) if header.signature_length and len(payload) > end else b""


def verify_gbcs_signature(payload: bytes, header: GbcsHeader, key: ec.EllipticCurvePublicKey) -> bool:
    """True only for a 64-byte r||s, both in [1, n-1], that verifies over the signed bytes."""
    signature = signature_of(payload, header)
    if len(signature) != SIGNATURE_LENGTH or not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < _N and 0 < s < _N):
        return False
    try:
        key.verify(encode_dss_signature(r, s), signed_bytes(payload, header), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
