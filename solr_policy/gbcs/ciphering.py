"""Decoder for GBCS General-Ciphering frames (tag ``DD``), down to their header fields.

A DLMS general-ciphering APDU, each field A-XDR (a length, DER-style, then the bytes)::

    DD | transaction-id | originator system title | recipient system title | date-time
       | other-information (Message Code first, when present)
       | key-info: 00 absent, or 01 + choice (00 identified, 01 wrapped, 02 agreed key)
       | ciphered-content: length + security control (1) + invocation counter (4)
       |                   + the protected APDU + [12-byte MAC when authenticated]

GBCS sends Commands to Devices this way (the "MAC header"): every header field empty
(``DD 00 00 00 00 00 00``), security control 0x1n (authenticated, not encrypted) and the
General-Signing APDU of the Command in clear inside, so its header decodes too. An encrypted
frame is decoded to its header fields only: the content needs the Key Agreement keys.

Like the General-Signing decoder this is an input boundary: for any bytes it returns a
``GeneralCiphering`` or raises ``GbcsRefused`` with the byte offset where decoding stopped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from solr_policy.errors import GbcsRefused
from solr_policy.eui import from_bytes
from solr_policy.gbcs.header import (
    GENERAL_SIGNING_TAG,
    GbcsHeader,
    _Reader,
    decode_general_signing,
)
from solr_policy.gbcs.message_codes import code_fields

GENERAL_CIPHERING_TAG = 0xDD
_SECURITY_HEADER = 5  # security control byte + 4-byte invocation counter
_MAC_LENGTH = 12  # GBCS truncates the GMAC tag to 12 bytes
_AUTHENTICATED, _ENCRYPTED = 0x10, 0x20
_KEY_INFO = {0x00: "identified-key", 0x01: "wrapped-key", 0x02: "agreed-key"}


class GeneralCiphering(BaseModel):
    """The decoded General-Ciphering frame; offsets and lengths are in bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    frame: Literal["general-ciphering"] = "general-ciphering"
    transaction_id: str  # hex; empty in GBCS
    originator: str | None  # EUI-64 when the system title is present
    recipient: str | None
    date_time_raw: str | None
    other_information: str
    message_code: int | None  # from other-information, when it holds one
    message_code_hex: str | None
    use_case: str | None
    use_case_name: str | None
    key_info: str | None  # None when absent
    ciphered_length: int
    security_control: int
    authenticated: bool
    encrypted: bool
    invocation_counter: int
    mac: str | None  # hex, when authenticated
    apdu_offset: int
    apdu_length: int
    apdu: GbcsHeader | None  # the General-Signing header inside, when it is in clear
    apdu_note: str | None  # why the APDU inside is not decoded

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _octets(r: _Reader, what: str) -> bytes:
    at = r.pos
    return r.sized(r.der_length(f"{what} length"), f"{what} length", at)


def _system_title(r: _Reader, what: str) -> str | None:
    at = r.pos
    title = _octets(r, what)
    if not title:
        return None
    if len(title) != 8:
        raise GbcsRefused(f"{what} is {len(title)} bytes, expected 0 or 8", at)
    return from_bytes(title)


def _key_info(r: _Reader) -> str | None:
    at = r.pos
    present = r.byte("key-info presence")
    if present == 0x00:
        return None
    if present != 0x01:
        raise GbcsRefused(f"key-info presence flag 0x{present:02X} is not 00 or 01", at)
    at = r.pos
    choice = r.byte("key-info choice")
    if choice not in _KEY_INFO:
        raise GbcsRefused(f"key-info choice 0x{choice:02X} is not 00, 01 or 02", at)
    if choice == 0x00:
        key_id = r.byte("key-id")
        return f"identified-key {key_id}"
    if choice == 0x01:
        kek_id = r.byte("kek-id")
        return f"wrapped-key {kek_id}, {len(_octets(r, 'wrapped key'))} key bytes"
    parameters = _octets(r, "key parameters")
    return f"agreed-key, {len(parameters)} parameter bytes, {len(_octets(r, 'agreed key data'))} key bytes"


def decode_general_ciphering(payload: bytes) -> GeneralCiphering:
    """Decode a GBCS General-Ciphering frame; raise ``GbcsRefused`` if malformed."""
    r = _Reader.of(payload)
    tag = r.byte("general-ciphering tag")
    if tag != GENERAL_CIPHERING_TAG:
        raise GbcsRefused(f"tag is {tag:02X}, expected DD (general ciphering)", 0)

    transaction_id = _octets(r, "transaction-id")
    originator = _system_title(r, "originator system title")
    recipient = _system_title(r, "recipient system title")
    date_time = _octets(r, "date-time")
    other_info = _octets(r, "other-information")
    key_info = _key_info(r)

    at = r.pos
    ciphered_length = r.der_length("ciphered content length")
    start = r.pos
    r.sized(ciphered_length, "ciphered content length", at)
    if r.left:
        raise GbcsRefused(f"{r.left} trailing bytes after the ciphered content", r.pos)

    control = r.data[start] if ciphered_length else 0
    authenticated, encrypted = bool(control & _AUTHENTICATED), bool(control & _ENCRYPTED)
    overhead = _SECURITY_HEADER + (_MAC_LENGTH if authenticated else 0)
    if ciphered_length < overhead:
        raise GbcsRefused(
            f"ciphered content of {ciphered_length} bytes cannot hold the security header"
            + (" and the 12-byte MAC" if authenticated else ""),
            start,
        )
    apdu_offset = start + _SECURITY_HEADER
    apdu_length = ciphered_length - overhead
    apdu_bytes = r.data[apdu_offset : apdu_offset + apdu_length]
    apdu, note = None, None
    if encrypted:
        note = "the APDU is encrypted (it needs the Key Agreement keys of both parties)"
    elif apdu_bytes[:2] != GENERAL_SIGNING_TAG:
        note = f"the APDU starts {apdu_bytes[:2].hex().upper() or 'with nothing'}, not DF09 (general signing)"
    else:
        try:
            apdu = decode_general_signing(apdu_bytes)
        except GbcsRefused as inner:
            raise GbcsRefused(f"APDU inside: {inner.message.rsplit(' (at byte', 1)[0]}", apdu_offset + inner.offset) from None

    return GeneralCiphering(
        transaction_id=transaction_id.hex().upper(),
        originator=originator,
        recipient=recipient,
        date_time_raw=date_time.hex().upper() or None,
        other_information=other_info.hex().upper(),
        **code_fields(int.from_bytes(other_info[:2], "big") if len(other_info) >= 2 else None),
        key_info=key_info,
        ciphered_length=ciphered_length,
        security_control=control,
        authenticated=authenticated,
        encrypted=encrypted,
        invocation_counter=int.from_bytes(r.data[start + 1 : start + _SECURITY_HEADER], "big"),
        mac=r.data[start + ciphered_length - _MAC_LENGTH : start + ciphered_length].hex().upper() if authenticated else None,
        apdu_offset=apdu_offset,
        apdu_length=apdu_length,
        apdu=apdu,
        apdu_note=note,
    )
