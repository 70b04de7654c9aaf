"""Decoder for the GBCS General-Signing header (tag ``DF 09``) of a (Signed) Pre-Command.

Layout, multi-byte integers big-endian::

    DF 09 | CRA flag (1) | originator counter (8)
          | 08 + originator EUI-64 | 08 + recipient EUI-64
          | date-time: 00, or 0C + 12-byte COSEM date-time
          | other-information: length + bytes (first two bytes = Message Code)
          | content length (DER definite) | content
          | [signature length + signature]   (absent, or a length of 00, when unsigned)

An unsigned Pre-Command either ends after its content or carries a Signature Length of 00
("ready to be signed", as RTDS tooling writes it); both read as unsigned.

This module is an input boundary: for any bytes it either returns a ``GbcsHeader`` or raises
``GbcsRefused`` with the byte offset where decoding stopped. Nothing else escapes.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from solr_policy.errors import GbcsRefused
from solr_policy.eui import from_bytes
from solr_policy.gbcs.message_codes import code_fields

GENERAL_SIGNING_TAG = b"\xdf\x09"
_CRA: dict[int, Literal["command", "response", "alert"]] = {
    0x01: "command",
    0x02: "response",
    0x03: "alert",
}
_SYSTEM_TITLE_LENGTH = 0x08
_DATE_TIME_LENGTH = 0x0C
_MAX_LENGTH_OCTETS = 4  # a 4-byte length already allows 4 GiB; more is never legitimate
_DEVIATION_NOT_SPECIFIED = -0x8000


class GbcsHeader(BaseModel):
    """The decoded General-Signing header; offsets and lengths are in bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cra_flag: int
    cra: Literal["command", "response", "alert"]
    originator_counter: int
    originator: str
    recipient: str
    date_time: datetime | None
    date_time_raw: str | None
    other_information: str
    message_code: int
    message_code_hex: str
    use_case: str | None
    use_case_name: str | None
    header_length: int  # bytes before the content: tag through content length
    content_length: int
    content_offset: int
    signature_length: int  # 0 when the payload carries no signature part
    signed: bool
    # "none": ends after the content; "empty": a Signature Length of 00; "signature".
    signature_part: Literal["none", "empty", "signature"] = "none"

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready values; pydantic writes a UTC datetime as ISO 8601 with ``Z``."""
        return self.model_dump(mode="json")


class _Reader:
    """A cursor over the payload whose reads refuse, never index out of range."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @classmethod
    def of(cls, payload: object) -> "_Reader":
        """A reader over a non-empty bytes-like payload; anything else is refused."""
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise GbcsRefused(f"payload must be bytes, not {type(payload).__name__}", 0)
        if not payload:
            raise GbcsRefused("payload is empty", 0)
        return cls(bytes(payload))

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.left:
            raise GbcsRefused(
                f"payload truncated in {what}: needs {n} bytes, {self.left} left", self.pos
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def der_length(self, what: str) -> int:
        """A DER/BER definite length: short form, or 0x81..0x84 followed by 1-4 octets."""
        start = self.pos
        first = self.byte(what)
        if first < 0x80:
            return first
        if first == 0x80:
            raise GbcsRefused(f"{what} uses the indefinite form (0x80), not allowed", start)
        octets = first & 0x7F
        if octets > _MAX_LENGTH_OCTETS:
            raise GbcsRefused(
                f"{what} uses {octets} length octets (at most {_MAX_LENGTH_OCTETS} allowed)", start
            )
        return int.from_bytes(self.take(octets, what), "big")

    def sized(self, n: int, what: str, at: int) -> bytes:
        """``n`` bytes announced by a length field at offset ``at``."""
        if n > self.left:
            raise GbcsRefused(
                f"{what} {n} runs past the end of the payload ({self.left} bytes left)", at
            )
        return self.take(n, what)


def _system_title(r: _Reader, what: str) -> str:
    at = r.pos
    length = r.byte(f"{what} length")
    if length != _SYSTEM_TITLE_LENGTH:
        raise GbcsRefused(f"{what} length is 0x{length:02X}, expected 0x08", at)
    return from_bytes(r.take(_SYSTEM_TITLE_LENGTH, what))


def _cosem_datetime(raw: bytes, at: int) -> datetime | None:
    """A concrete, UTC COSEM date-time as an aware datetime; ``None`` when not concrete.

    "Not specified" / wildcard values (0xFFFF year, 0xFD-0xFF month or day, 0xFF time
    fields) make the value a pattern, not an instant. A specified non-zero deviation means
    local time, which GBCS does not use; we keep the raw bytes rather than guess its sign.
    """
    year = int.from_bytes(raw[0:2], "big")
    month, day, _dow, hour, minute, second, hundredths = raw[2:9]
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    if year == 0xFFFF or month >= 0xFD or day >= 0xFD or 0xFF in (hour, minute, second):
        return None
    if deviation not in (0, _DEVIATION_NOT_SPECIFIED):
        return None
    micro = 0 if hundredths == 0xFF else hundredths * 10_000
    if micro >= 1_000_000:
        raise GbcsRefused(f"date-time hundredths {hundredths} out of range", at)
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone.utc)
    except ValueError:
        bad = raw.hex().upper()
        raise GbcsRefused(f"date-time {bad} is not a valid date and time", at) from None


def decode_general_signing(payload: bytes) -> GbcsHeader:
    """Decode a GBCS Pre-Command or Signed Pre-Command; raise ``GbcsRefused`` if malformed."""
    r = _Reader.of(payload)

    tag = r.take(2, "general-signing tag")
    if tag != GENERAL_SIGNING_TAG:
        raise GbcsRefused(f"tag is {tag.hex().upper()}, expected DF09 (general signing)", 0)

    at = r.pos
    cra_flag = r.byte("CRA flag")
    if cra_flag not in _CRA:
        raise GbcsRefused(f"CRA flag 0x{cra_flag:02X} is not 01, 02 or 03", at)

    counter = int.from_bytes(r.take(8, "originator counter"), "big")
    originator = _system_title(r, "originator system title")
    recipient = _system_title(r, "recipient system title")

    at = r.pos
    dt_length = r.byte("date-time length")
    date_time: datetime | None = None
    date_time_raw: str | None = None
    if dt_length == _DATE_TIME_LENGTH:
        raw = r.take(_DATE_TIME_LENGTH, "date-time")
        date_time_raw = raw.hex().upper()
        date_time = _cosem_datetime(raw, at + 1)
    elif dt_length != 0:
        raise GbcsRefused(f"date-time length is 0x{dt_length:02X}, expected 0x00 or 0x0C", at)

    # Other-information may hold a certificate (CS02b), so its length is DER-encoded too.
    at = r.pos
    oi_length = r.der_length("other-information length")
    if oi_length < 2:
        raise GbcsRefused(
            f"other-information length {oi_length} is too short for a message code (min 2)", at
        )
    other_info = r.sized(oi_length, "other-information length", at)
    message_code = int.from_bytes(other_info[:2], "big")

    at = r.pos
    content_length = r.der_length("content length")
    content_offset = r.pos
    r.sized(content_length, "content length", at)

    signature_length = 0
    signature_part: Literal["none", "empty", "signature"] = "none"
    if r.left:
        # Whatever follows the content must be exactly one signature part.
        at = r.pos
        signature_length = r.der_length("signature length")
        signature_part = "signature" if signature_length else "empty"
        r.sized(signature_length, "signature length", at)
        if r.left:
            after = f"the {signature_length}-byte signature" if signature_length else "a signature length of 0"
            raise GbcsRefused(f"{r.left} trailing bytes after {after}", r.pos)

    return GbcsHeader(
        cra_flag=cra_flag,
        cra=_CRA[cra_flag],
        originator_counter=counter,
        originator=originator,
        recipient=recipient,
        date_time=date_time,
        date_time_raw=date_time_raw,
        other_information=other_info.hex().upper(),
        **code_fields(message_code),
        header_length=content_offset,
        content_length=content_length,
        content_offset=content_offset,
        signature_length=signature_length,
        signed=signature_length > 0,
        signature_part=signature_part,
    )


_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]*")
_WHITESPACE = re.compile(r"\s+")


def parse_payload_text(text: str) -> bytes:
    """Payload bytes from hex (whitespace, any case, optional ``0x``) or base64 text.

    Hex wins when the text is all hex digits of even length (a hex string is also valid
    base64 alphabet, so the order matters); a ``0x`` prefix means hex only.
    """
    if not isinstance(text, str):
        raise GbcsRefused(f"payload text must be a string, not {type(text).__name__}", 0)
    compact = _WHITESPACE.sub("", text)
    if not compact:
        raise GbcsRefused("payload text is empty", 0)
    prefixed = compact[:2] in ("0x", "0X")
    digits = compact[2:] if prefixed else compact
    if digits and len(digits) % 2 == 0 and _HEX_DIGITS.fullmatch(digits):
        return bytes.fromhex(digits)
    if prefixed:
        # "0x" commits to hex: "0xZZ" is valid base64 but never meant as such.
        raise GbcsRefused("payload text starts with 0x but is not an even number of hex digits", 0)
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise GbcsRefused(
            "payload text is neither hex (an even number of hex digits) nor valid base64", 0
        ) from None
    if not decoded:
        raise GbcsRefused("payload text decodes to no bytes", 0)
    return decoded
