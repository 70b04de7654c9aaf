"""GBCS message decoding: General-Signing headers of (Signed) Pre-Commands, and
General-Ciphering frames down to their header fields."""

from __future__ import annotations

from solr_policy.errors import GbcsRefused
from solr_policy.gbcs.ciphering import (
    GENERAL_CIPHERING_TAG,
    GeneralCiphering,
    decode_general_ciphering,
)
from solr_policy.gbcs.header import (
    GENERAL_SIGNING_TAG,
    GbcsHeader,
    decode_general_signing,
    parse_payload_text,
)
from solr_policy.gbcs.message_codes import (
    CREDIT_MODE_CODES,
    MESSAGE_CODES,
    MessageCode,
    lookup,
)


def decode(payload: bytes) -> GbcsHeader | GeneralCiphering:
    """Decode either frame a GBCS payload can be, by its tag; raise ``GbcsRefused`` otherwise."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise GbcsRefused(f"payload must be bytes, not {type(payload).__name__}", 0)
    data = bytes(payload)
    if data[:1] == bytes([GENERAL_CIPHERING_TAG]):
        return decode_general_ciphering(data)
    if data[:2] == GENERAL_SIGNING_TAG or len(data) < 2:
        return decode_general_signing(data)
    raise GbcsRefused(f"tag is {data[:2].hex().upper()}, expected DF09 (general signing) or DD (general ciphering)", 0)


__all__ = [
    "CREDIT_MODE_CODES",
    "MESSAGE_CODES",
    "GbcsHeader",
    "GbcsRefused",
    "GeneralCiphering",
    "MessageCode",
    "decode",
    "decode_general_ciphering",
    "decode_general_signing",
    "lookup",
    "parse_payload_text",
]
