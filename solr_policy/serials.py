"""Certificate serial numbers as people copy them: decimal, ``0x1A2B``, or ``1a:2b:3c`` as
``openssl x509 -text`` prints them.

Bare hex without ``0x`` (``1A2B``) is refused: ``1234`` would be ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, TypeVar

_DECIMAL = re.compile(r"[0-9]+")
_HEX = re.compile(r"0[xX][0-9A-Fa-f]+")
_COLONS = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+")
# RFC 5280: at most 20 octets.
_LIMIT = 1 << 160


def parse_serial(value: object) -> int:
    """The serial number ``value`` names (text or an int); ``ValueError`` saying why not."""
    if isinstance(value, int) and not isinstance(value, bool):
        serial = value
    elif isinstance(value, str):
        text = value.strip()
        if _DECIMAL.fullmatch(text):
            serial = int(text)
        elif _HEX.fullmatch(text):
            serial = int(text[2:], 16)
        elif _COLONS.fullmatch(text):
            serial = int(text.replace(":", ""), 16)
        else:
            raise ValueError(f"{value!r} is not a certificate serial (write it in decimal, as 0x1A2B, or as 1a:2b:3c)")
    else:
        raise ValueError("a certificate serial is a number: decimal, 0x1A2B, or 1a:2b:3c")
    if not 0 <= serial < _LIMIT:
        raise ValueError(f"{value!r} is not a certificate serial (0 to 20 octets)")
    return serial


def serial_text(serial: int) -> str:
    """Decimal and hex, the forms people will search for: ``6699 (0x1A2B)``."""
    return f"{serial} (0x{serial:X})"


class _HasSerial(Protocol):
    @property
    def serial(self) -> int: ...

    @property
    def issuer(self) -> str: ...


C = TypeVar("C", bound=_HasSerial)


def select_by_serial(certificates: Iterable[C], serial: int, issuer: str | None = None) -> C:
    """The one certificate with ``serial`` (and, if given, the normalised ``issuer``).

    ``LookupError`` when there is none, or several and no issuer to choose between them.
    """
    matches = [c for c in certificates if c.serial == serial and (issuer is None or c.issuer == issuer)]
    if not matches:
        raise LookupError(f"no certificate with serial {serial_text(serial)}" + (f" from issuer {issuer}" if issuer else ""))
    if len({c.issuer for c in matches}) > 1:
        raise LookupError(f"several issuers use serial {serial_text(serial)}; name the issuer")
    return matches[0]
