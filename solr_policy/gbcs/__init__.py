"""GBCS message decoding: the General-Signing header of (Signed) Pre-Commands."""

from solr_policy.errors import GbcsRefused
from solr_policy.gbcs.header import GbcsHeader, decode_general_signing, parse_payload_text
from solr_policy.gbcs.message_codes import CREDIT_MODE_CODES, MESSAGE_CODES, MessageCode, lookup

__all__ = [
    "CREDIT_MODE_CODES",
    "MESSAGE_CODES",
    "GbcsHeader",
    "GbcsRefused",
    "MessageCode",
    "decode_general_signing",
    "lookup",
    "parse_payload_text",
]
