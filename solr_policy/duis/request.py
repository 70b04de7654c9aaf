"""Build a ``DuisRequest`` from a (signed) DUIS Request element, strictly.

Strict means: elements in the DUIS order, each at most as often as the schema allows,
all in the DUIS namespace, no attributes where the schema has none, no stray text
between elements (mixed content), no comments inside Header or Body (a comment can split
a value without breaking a signature). Anything else is a ``ParseRefused`` naming it.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime

from lxml import etree
from pydantic import ValidationError

from solr_policy.duis.models import (
    DuisRequest,
    OtherBody,
    PrepaymentSettings,
    RequestHeader,
    RequestId,
    SignedPreCommand,
    UpdatePaymentMode,
)
from solr_policy.duis.parser import NS_DS, NS_SR
from solr_policy.errors import ParseRefused

_SR = f"{{{NS_SR}}}"
_SIGNATURE = f"{{{NS_DS}}}Signature"
_WS = re.compile(r"^[ \t\r\n]*$")
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


def _children(parent: etree._Element) -> list[etree._Element]:
    """Element children of a structural element, refusing mixed content and comments."""
    if parent.text is not None and not _WS.match(parent.text):
        raise ParseRefused("duis.mixed_content", f"unexpected text inside {_where(parent)}")
    out = []
    for child in parent:
        if isinstance(child, etree._Comment):
            raise ParseRefused("duis.comment", f"comments are not allowed inside {_where(parent)}")
        if not isinstance(child.tag, str):
            raise ParseRefused("duis.mixed_content", f"unexpected node inside {_where(parent)}")
        if child.tail is not None and not _WS.match(child.tail):
            raise ParseRefused("duis.mixed_content", f"unexpected text after {_where(child)}")
        out.append(child)
    return out


def _no_attributes(element: etree._Element) -> None:
    if element.attrib:
        names = ", ".join(sorted(element.attrib.keys()))
        raise ParseRefused("duis.attribute", f"unexpected attribute(s) {names} on {_where(element)}")


def _match(parent: etree._Element, spec: list[Spec]) -> dict[str, list[etree._Element]]:
    """Match children against an ordered schema sequence; refuse order, count, namespace slips."""
    children = _children(parent)
    found: dict[str, list[etree._Element]] = {name: [] for name, _, _ in spec}
    index = 0
    for child in children:
        if not child.tag.startswith(_SR):
            ns = child.tag[1:].partition("}")[0] if child.tag.startswith("{") else "(none)"
            raise ParseRefused(
                "duis.namespace",
                f"element {_local(child.tag)} in {_where(parent)} is in namespace {ns}, not {NS_SR}",
            )
        name = _local(child.tag)
        while index < len(spec) and spec[index][0] != name:
            index += 1
        if index == len(spec):
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
    for child in element:
        if isinstance(child, etree._Comment):
            raise ParseRefused("duis.comment", f"comments are not allowed inside {_where(element)}")
        raise ParseRefused("duis.mixed_content", f"{_where(element)} must hold a value, not elements")
    # XML whitespace only: str.strip() would also drop e.g. U+00A0 ("true\u00a0" is no boolean).
    return (element.text or "").strip(" \t\r\n")


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
    if not re.fullmatch(r"[+-]?[0-9]{1,20}", value):  # not \d: that takes any Unicode digit
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


def _request_id(element: etree._Element) -> RequestId:
    try:
        return RequestId.parse(_text(element))
    except ValueError as exc:
        raise ParseRefused("duis.request_id", f"{_where(element)} is malformed: {exc}", code="E1") from None


_HEADER: list[Spec] = [
    ("RequestID", 1, 1),
    ("FirstInSequence", 0, 1),
    ("PrecedingServiceRequestID", 0, 1),
    ("CommandVariant", 1, 1),
    ("ServiceReference", 1, 1),
    ("ServiceReferenceVariant", 1, 1),
]
_FUTURE_DATED = ("ExecutionDateTime", 0, 1)


def _header(element: etree._Element) -> RequestHeader:
    _no_attributes(element)
    found = _match(element, _HEADER)
    cv_text = _text(found["CommandVariant"][0])
    if not re.fullmatch(r"[1-8]", cv_text):
        raise ParseRefused(
            "duis.command_variant", f"CommandVariant must be 1 to 8, not {cv_text[:20]!r}", code="E12"
        )
    first = _one(found, "FirstInSequence")
    preceding = _one(found, "PrecedingServiceRequestID")
    try:
        return RequestHeader(
            request_id=_request_id(found["RequestID"][0]),
            first_in_sequence=_bool(first) if first is not None else None,
            preceding_request_id=_request_id(preceding) if preceding is not None else None,
            command_variant=int(cv_text),
            service_reference=_text(found["ServiceReference"][0]),
            service_reference_variant=_text(found["ServiceReferenceVariant"][0]),
        )
    except ValidationError as exc:
        raise ParseRefused("duis.header", _pydantic_message(exc)) from None


def _update_payment_mode(element: etree._Element) -> UpdatePaymentMode:
    found = _match(element, [_FUTURE_DATED, ("Credit", 0, 1), ("Prepayment", 0, 1)])
    credit, prepayment = _one(found, "Credit"), _one(found, "Prepayment")
    if (credit is None) == (prepayment is None):
        raise ParseRefused("duis.choice", "sr:UpdatePaymentMode needs exactly one of sr:Credit or sr:Prepayment")
    when = _one(found, "ExecutionDateTime")
    execution = _datetime(when) if when is not None else None
    if credit is not None:
        _no_attributes(credit)
        if _children(credit) or (credit.text or "").strip():
            raise ParseRefused("duis.value", "sr:Credit must be empty")
        return UpdatePaymentMode(execution_date_time=execution, mode="credit")
    _no_attributes(prepayment)
    fields = _match(
        prepayment,
        [("SuspendDebtDisabled", 1, 1), ("SuspendDebtEmergency", 1, 1), ("DisablementThreshold", 1, 1)],
    )
    try:
        settings = PrepaymentSettings(
            suspend_debt_disabled=_bool(fields["SuspendDebtDisabled"][0]),
            suspend_debt_emergency=_bool(fields["SuspendDebtEmergency"][0]),
            disablement_threshold=_int(fields["DisablementThreshold"][0]),
        )
    except ValidationError as exc:
        raise ParseRefused("duis.value", _pydantic_message(exc)) from None
    return UpdatePaymentMode(execution_date_time=execution, mode="prepayment", prepayment=settings)


def _signed_pre_command(element: etree._Element) -> SignedPreCommand:
    found = _match(element, [_FUTURE_DATED, ("GBCSPayload", 1, 1)])
    when = _one(found, "ExecutionDateTime")
    text = _B64_WS.sub("", _text(found["GBCSPayload"][0]))
    try:
        payload = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ParseRefused("duis.base64", "sr:GBCSPayload is not valid base64") from None
    if not payload:
        raise ParseRefused("duis.base64", "sr:GBCSPayload is empty")
    return SignedPreCommand(execution_date_time=_datetime(when) if when is not None else None, gbcs_payload=payload)


def _body(element: etree._Element):
    _no_attributes(element)
    children = _children(element)
    if len(children) != 1:
        raise ParseRefused("duis.body", f"sr:Body must hold exactly one service request, found {len(children)}")
    (child,) = children
    if not child.tag.startswith(_SR):
        raise ParseRefused("duis.namespace", f"the Body element {_local(child.tag)} is not in {NS_SR}")
    _no_attributes(child)
    name = _local(child.tag)
    if name == "UpdatePaymentMode":
        return _update_payment_mode(child)
    if name == "SignedPreCommand":
        return _signed_pre_command(child)
    return OtherBody(element=name)


def build_request(root: etree._Element) -> DuisRequest:
    """Typed request from a DUIS ``sr:Request`` element (normally the verifier's signed content)."""
    if root.tag != f"{_SR}Request":
        raise ParseRefused("duis.root", f"expected sr:Request, found {_local(str(root.tag))}")
    version = root.get("schemaVersion")
    extra = set(root.attrib.keys()) - {"schemaVersion"}
    if extra:
        raise ParseRefused("duis.attribute", f"unexpected attribute(s) {', '.join(sorted(extra))} on sr:Request")
    children = _children(root)
    structural = [c for c in children if c.tag != _SIGNATURE]
    names = [c.tag for c in structural]
    if names != [f"{_SR}Header", f"{_SR}Body"]:
        shown = ", ".join(_local(n) if n.startswith(_SR) else n for n in names) or "nothing"
        raise ParseRefused("duis.structure", f"sr:Request must hold sr:Header then sr:Body, found {shown}")
    header, body = structural
    return DuisRequest(schema_version=version or "", header=_header(header), body=_body(body))


def _pydantic_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", "invalid")
