"""Build a ``DuisRequest`` from a (signed) DUIS Request element, strictly.

Strict means: elements in the DUIS order, each at most as often as the schema allows,
all in the DUIS namespace, no attributes where the schema has none, no stray text
between elements (mixed content), no comments inside Header or Body (a comment can split
a value without breaking a signature). Anything else is a ``ParseRefused`` naming it.
"""

from __future__ import annotations

import base64
import binascii

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
from solr_policy.duis.parser import NS_SR
from solr_policy.duis.strict import (  # noqa: E402 - shared strict readers
    _B64_WS,
    _SIGNATURE,
    _SR,
    Spec,
    _bool,
    _children,
    _datetime,
    _int,
    _local,
    _match,
    _no_attributes,
    _one,
    _text,
    _where,
)
from solr_policy.errors import ParseRefused, first_error


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
_UPDATE_PAYMENT_MODE: list[Spec] = [_FUTURE_DATED, ("Credit", 0, 1), ("Prepayment", 0, 1)]
_PREPAYMENT: list[Spec] = [("SuspendDebtDisabled", 1, 1), ("SuspendDebtEmergency", 1, 1), ("DisablementThreshold", 1, 1)]
_SIGNED_PRE_COMMAND: list[Spec] = [_FUTURE_DATED, ("GBCSPayload", 1, 1)]
_COMMAND_VARIANTS = frozenset("12345678")  # exactly one digit 1 to 8
_STRUCTURE = [f"{_SR}Header", f"{_SR}Body"]


def _header(element: etree._Element) -> RequestHeader:
    _no_attributes(element)
    found = _match(element, _HEADER)
    cv_text = _text(found["CommandVariant"][0])
    if cv_text not in _COMMAND_VARIANTS:
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
        raise ParseRefused("duis.header", first_error(exc)) from None


def _update_payment_mode(element: etree._Element) -> UpdatePaymentMode:
    found = _match(element, _UPDATE_PAYMENT_MODE)
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
    assert prepayment is not None  # exactly one of the two, checked above
    _no_attributes(prepayment)
    fields = _match(prepayment, _PREPAYMENT)
    try:
        settings = PrepaymentSettings(
            suspend_debt_disabled=_bool(fields["SuspendDebtDisabled"][0]),
            suspend_debt_emergency=_bool(fields["SuspendDebtEmergency"][0]),
            disablement_threshold=_int(fields["DisablementThreshold"][0]),
        )
    except ValidationError as exc:
        raise ParseRefused("duis.value", first_error(exc)) from None
    return UpdatePaymentMode(execution_date_time=execution, mode="prepayment", prepayment=settings)


def _signed_pre_command(element: etree._Element) -> SignedPreCommand:
    found = _match(element, _SIGNED_PRE_COMMAND)
    when = _one(found, "ExecutionDateTime")
    text = _B64_WS.sub("", _text(found["GBCSPayload"][0]))
    try:
        payload = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ParseRefused("duis.base64", "sr:GBCSPayload is not valid base64") from None
    if not payload:
        raise ParseRefused("duis.base64", "sr:GBCSPayload is empty")
    return SignedPreCommand(execution_date_time=_datetime(when) if when is not None else None, gbcs_payload=payload)


def _body(element: etree._Element) -> UpdatePaymentMode | SignedPreCommand | OtherBody:
    _no_attributes(element)
    children = _children(element, limit=1)
    if len(children) != 1:
        found = len(children) if len(children) < 2 else len(element)  # len() counts in C
        raise ParseRefused("duis.body", f"sr:Body must hold exactly one service request, found {found}")
    (child,) = children
    if not child.tag.startswith(_SR):
        raise ParseRefused("duis.namespace", f"the Body element {_local(child.tag)} is not in {NS_SR}")
    name = _local(child.tag)
    if name == "UpdatePaymentMode":
        _no_attributes(child)
        return _update_payment_mode(child)
    if name == "SignedPreCommand":
        _no_attributes(child)
        return _signed_pre_command(child)
    # Another SRV's body is kept by name for the rules to refuse (R3, E2); its attributes are the
    # schema's (the pre-scan admits only declared names), e.g. auxiliaryControllerN on 7.13/7.16.
    return OtherBody(element=name)


def build_request(root: etree._Element) -> DuisRequest:
    """Typed request from a DUIS ``sr:Request`` element (normally the verifier's signed content)."""
    if root.tag != f"{_SR}Request":
        raise ParseRefused("duis.root", f"expected sr:Request, found {_local(str(root.tag))}")
    version = root.get("schemaVersion")
    attributes = root.keys()
    if attributes and attributes != ["schemaVersion"]:
        extra = set(attributes) - {"schemaVersion"}
        raise ParseRefused("duis.attribute", f"unexpected attribute(s) {', '.join(sorted(str(a) for a in extra))} on sr:Request")
    children = _children(root, limit=3)  # sr:Header, sr:Body, ds:Signature
    structural = [c for c in children if c.tag != _SIGNATURE]
    names = [c.tag for c in structural]
    if names != _STRUCTURE:
        shown = ", ".join(_local(n) if n.startswith(_SR) else n for n in names) or "nothing"
        raise ParseRefused("duis.structure", f"sr:Request must hold sr:Header then sr:Body, found {shown}")
    header, body = structural
    return DuisRequest(schema_version=version or "", header=_header(header), body=_body(body))

