"""Strict reading of DUIS elements, shared by requests and alerts.

Elements in the DUIS order and namespace, each at most as often as the schema allows; no
attributes where the schema has none; no stray text between elements (mixed content); no
comments inside structural elements (a comment can split a value without breaking a
signature). Anything else is a ``ParseRefused`` naming it.
"""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

from solr_policy.duis.parser import NS_DS, NS_SR
from solr_policy.errors import ParseRefused

_SR = f"{{{NS_SR}}}"
_SR_LENGTH = len(_SR)
_SIGNATURE = f"{{{NS_DS}}}Signature"
_XML_SPACE = " \t\r\n"  # XML whitespace: text made only of these is no text
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")  # not \d: that takes any Unicode digit
_B64_WS = re.compile(r"[ \t\r\n]+")
# xs:dateTime lexical form; datetime.fromisoformat alone also takes week dates, basic format,
# a space for the T, hour-only times...
_XS_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?"
)

Spec = tuple[str, int, int]  # local name, min occurs, max occurs


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _where(element: etree._Element) -> str:
    line = element.sourceline
    return f"sr:{_local(element.tag)}" + (f" (line {line})" if line else "")


def _children(parent: etree._Element, limit: int | None = None) -> list[etree._Element]:
    """Element children of a structural element, refusing mixed content and comments.

    With ``limit``, at most ``limit + 1`` children are read: enough for the caller to refuse
    one too many, without a Python loop over thousands of them."""
    text = parent.text
    if text is not None and text.strip(_XML_SPACE):
        raise ParseRefused("duis.mixed_content", f"unexpected text inside {_where(parent)}")
    # A slice is a list made in C (comments and processing instructions included); lxml-stubs
    # type only integer indexes.
    children: list[etree._Element] = parent[: len(parent) if limit is None else limit + 1]  # type: ignore[index, assignment]
    for child in children:
        if child.tag.__class__ is not str:  # a comment, processing instruction or entity
            if isinstance(child, etree._Comment):
                raise ParseRefused("duis.comment", f"comments are not allowed inside {_where(parent)}")
            raise ParseRefused("duis.mixed_content", f"unexpected node inside {_where(parent)}")
        tail = child.tail
        if tail is not None and tail.strip(_XML_SPACE):
            raise ParseRefused("duis.mixed_content", f"unexpected text after {_where(child)}")
    return children


def _no_attributes(element: etree._Element) -> None:
    if element.keys():  # a list made in C, without the attrib proxy
        names = ", ".join(sorted(str(a) for a in element.attrib.keys()))
        raise ParseRefused("duis.attribute", f"unexpected attribute(s) {names} on {_where(element)}")


def _match(parent: etree._Element, spec: list[Spec]) -> dict[str, list[etree._Element]]:
    """Match children against an ordered schema sequence; refuse order, count, namespace slips."""
    children = _children(parent, limit=sum(maximum for _, _, maximum in spec))
    found: dict[str, list[etree._Element]] = {name: [] for name, _, _ in spec}
    index, end = 0, len(spec)
    for child in children:
        tag = child.tag
        if not tag.startswith(_SR):
            ns = tag[1:].partition("}")[0] if tag.startswith("{") else "(none)"
            raise ParseRefused(
                "duis.namespace",
                f"element {_local(tag)} in {_where(parent)} is in namespace {ns}, not {NS_SR}",
            )
        name = tag[_SR_LENGTH:]
        while index < end and spec[index][0] != name:
            index += 1
        if index == end:
            if name in found:
                raise ParseRefused(
                    "duis.order", f"element sr:{name} is duplicated or out of order in {_where(parent)}"
                )
            raise ParseRefused("duis.unexpected_element", f"unexpected element sr:{name} in {_where(parent)}")
        found[name].append(child)
        if len(found[name]) > spec[index][2]:
            raise ParseRefused("duis.duplicate", f"element sr:{name} appears more than once in {_where(parent)}")
    for name, minimum, _ in spec:
        if len(found[name]) < minimum:
            raise ParseRefused("duis.missing_element", f"{_where(parent)} is missing sr:{name}")
    return found


def _text(element: etree._Element) -> str:
    _no_attributes(element)
    if len(element):  # counted in C
        for child in element:
            if isinstance(child, etree._Comment):
                raise ParseRefused("duis.comment", f"comments are not allowed inside {_where(element)}")
            raise ParseRefused("duis.mixed_content", f"{_where(element)} must hold a value, not elements")
    # XML whitespace only: str.strip() would also drop e.g. U+00A0 ("true\u00a0" is no boolean).
    text = element.text
    return text.strip(_XML_SPACE) if text else ""


def _one(found: dict[str, list[etree._Element]], name: str) -> etree._Element | None:
    items = found[name]
    return items[0] if items else None


def _bool(element: etree._Element) -> bool:
    value = _text(element)
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ParseRefused("duis.value", f"{_where(element)} must be true or false, not {value!r}")


def _int(element: etree._Element) -> int:
    value = _text(element)
    if not _INTEGER.fullmatch(value):
        raise ParseRefused("duis.value", f"{_where(element)} must be an integer, not {value[:40]!r}")
    return int(value)


def _datetime(element: etree._Element) -> datetime:
    value = _text(element)
    if not _XS_DATETIME.fullmatch(value):
        raise ParseRefused("duis.value", f"{_where(element)} is not a date-time: {value[:40]!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ParseRefused("duis.value", f"{_where(element)} is not a date-time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        # A time without a zone is ambiguous across BST/GMT; default deny.
        raise ParseRefused("duis.value", f"{_where(element)} must state its time zone (e.g. ...Z)")
    return parsed
