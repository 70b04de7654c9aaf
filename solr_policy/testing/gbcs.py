"""Build GBCS General-Signing payloads (for the demo, the specs and test tools).

The content after the header is opaque to solr-policy's rules, so the builder takes it as
given bytes. A signature part (length byte + raw ECDSA r||s) is appended when a key is given,
as a User does when it turns a Pre-Command into a Signed Pre-Command.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from solr_policy.eui import parse_eui64

# Opaque stand-in content for a command body (the engine reads only the header).
PLACEHOLDER_CONTENT = bytes.fromhex("D9200000000100020200")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def build_general_signing(
    *,
    message_code: int,
    originator: str,
    recipient: str,
    counter: int,
    cra: int = 0x01,
    content: bytes = PLACEHOLDER_CONTENT,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    other = message_code.to_bytes(2, "big")
    payload = (
        b"\xdf\x09"
        + bytes([cra])
        + counter.to_bytes(8, "big")
        + b"\x08" + bytes.fromhex(parse_eui64(originator))
        + b"\x08" + bytes.fromhex(parse_eui64(recipient))
        + b"\x00"  # no date-time
        + _der_length(len(other)) + other
        + _der_length(len(content)) + content
    )
    if key is None:
        return payload
    # GBCS signs the APDU without its first byte (the DF tag), as the DCC's gbcs-parser does.
    r, s = decode_dss_signature(key.sign(payload[1:], ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return payload + bytes([len(signature)]) + signature
