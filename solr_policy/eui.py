"""EUI-64 identifiers as DUIS writes them (``90-B3-D5-1F-30-01-00-00``).

The canonical form inside solr-policy is 16 upper-case hex digits without separators
(``90B3D51F30010000``): it is what SMKI certificates carry and what the store keys on.
"""

from __future__ import annotations

import re

_DUIS_FORM = re.compile(r"^[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}$")
_PLAIN_FORM = re.compile(r"^[0-9A-Fa-f]{16}$")


def parse_eui64(text: str) -> str:
    """Return the canonical form of an EUI-64 written with or without DUIS hyphens.

    Raises ``ValueError`` naming the problem for anything else.
    """
    if not isinstance(text, str):
        raise ValueError("EUI-64 must be text")
    # fullmatch, not match: '$' would accept a trailing newline. The plain form first: it is
    # the canonical one, which most callers already hold.
    if _PLAIN_FORM.fullmatch(text):
        return text.upper()
    if _DUIS_FORM.fullmatch(text):
        return text.replace("-", "").upper()
    raise ValueError(f"{text!r} is not an EUI-64 (expected eight hex pairs like 90-B3-D5-1F-30-01-00-00)")


def duis_form(eui: str) -> str:
    """Canonical EUI-64 -> DUIS hyphenated form."""
    c = parse_eui64(eui)
    return f"{c[0:2]}-{c[2:4]}-{c[4:6]}-{c[6:8]}-{c[8:10]}-{c[10:12]}-{c[12:14]}-{c[14:16]}"


def from_bytes(raw: bytes) -> str:
    if len(raw) != 8:
        raise ValueError(f"EUI-64 must be 8 bytes, got {len(raw)}")
    return raw.hex().upper()
