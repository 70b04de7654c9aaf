"""DUIS alerts: a signed ``sr:Response`` whose Body is a DeviceAlertMessage or DCCAlertMessage,
or a ResponseMessage carrying a FutureDatedDeviceAlertMessage (a Device Alert, 8F66/8F67).

``ResponseID`` is ``originator:recipient:counter``: the recipient is the User the DCC
addresses. For a Device Alert the originator is the Device; a DCC Alert names the Device,
where it concerns one, inside its body (DeviceID, CommsHubDeviceID).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Literal

from lxml import etree
from pydantic import BaseModel, ConfigDict

from solr_policy.duis.models import RequestId
from solr_policy.duis.strict import (
    _SIGNATURE,
    _SR,
    _children,
    _datetime,
    _local,
    _match,
    _no_attributes,
    _text,
    _where,
)
from solr_policy.errors import ParseRefused
from solr_policy.eui import parse_eui64


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["device", "dcc"]
    originator: str
    recipient: str
    counter: int
    response_code: str
    response_date_time: datetime
    alert_code: str  # hex Device Alert code (e.g. "8F84") or DCC Alert code (e.g. "N12", "AD1")
    dcc_alert: str | None = None  # the DCCAlert body's element, e.g. PowerOutageEvent
    device: str | None = None
    gbcs_payload_length: int | None = None
    # SHA-256 of the signed content (the canonical bytes the signature covers): what makes two
    # alerts the same alert, whatever their signatures (ECDSA signs the same content differently).
    content_sha256: str | None = None

    @property
    def response_id(self) -> str:
        return str(RequestId(originator=self.originator, target=self.recipient, counter=self.counter))

    def summary(self) -> dict:
        return {
            "response_id": self.response_id,
            "kind": self.kind,
            "alert_code": self.alert_code,
            "dcc_alert": self.dcc_alert,
            "recipient": self.recipient,
            "device": self.device,
            "response_date_time": self.response_date_time.isoformat(),
        }


_HEADER = [("RequestID", 0, 1), ("ResponseID", 0, 1), ("ResponseCode", 1, 1), ("ResponseDateTime", 1, 1)]
_DEVICE_ALERT = [("AlertCode", 1, 1), ("ThrottledAlertSequenceId", 0, 1), ("ThrottledAlertCount", 0, 1), ("GBCSPayload", 1, 1)]
# A Future Dated Device Alert (8F66 command executed, 8F67 failed) comes in a ResponseMessage.
_RESPONSE_MESSAGE = [("ServiceReference", 1, 1), ("ServiceReferenceVariant", 1, 1), ("FutureDatedDeviceAlertMessage", 1, 1)]
_FUTURE_DATED_ALERT = [("FutureDatedAlertCode", 1, 1), ("GBCSPayload", 1, 1), ("InstructionNumber", 1, 1), ("TotalCommandInstructions", 1, 1)]
_FUTURE_DATED_CODES = ("8F66", "8F67")
_DCC_ALERT = [("DCCAlertCode", 1, 1), ("ThrottledAlertSequenceId", 0, 1), ("ThrottledAlertCount", 0, 1), ("DCCAlert", 1, 1)]
_DEVICE_FIELDS = ("DeviceID", "CommsHubDeviceID")


def _device_in(element: etree._Element) -> str | None:
    for name in _DEVICE_FIELDS:
        found = element.find(f".//{_SR}{name}")
        if found is not None and found.text:
            try:
                return parse_eui64(found.text.strip())
            except ValueError:
                raise ParseRefused("alert.device", f"{_where(found)} is not an EUI-64") from None
    return None


def build_alert(root: etree._Element) -> Alert:
    """Typed alert from a (signed) DUIS Response element; other responses are refused."""
    if root.tag != f"{_SR}Response":
        raise ParseRefused("alert.root", f"expected sr:Response, found {_local(str(root.tag))}")
    extra = {str(name) for name in root.attrib} - {"schemaVersion"}
    if extra:
        raise ParseRefused("duis.attribute", f"unexpected attribute(s) {', '.join(sorted(extra))} on sr:Response")
    # Only the ds:Signature may stand beside Header and Body (as in build_request): an element
    # of any other namespace there is no DUIS Response, not something to skip over.
    children = [c for c in _children(root) if c.tag != _SIGNATURE]
    if [c.tag for c in children] != [f"{_SR}Header", f"{_SR}Body"]:
        shown = ", ".join(_local(c.tag) if c.tag.startswith(_SR) else c.tag for c in children) or "nothing"
        raise ParseRefused("alert.structure", f"sr:Response must hold sr:Header then sr:Body, found {shown}")
    header, body = children
    _no_attributes(header)
    _no_attributes(body)
    found = _match(header, _HEADER)
    if not found["ResponseID"]:
        raise ParseRefused("alert.response_id", "an alert carries a ResponseID naming its recipient")
    try:
        rid = RequestId.parse(_text(found["ResponseID"][0]))
    except ValueError as exc:
        raise ParseRefused("alert.response_id", f"ResponseID is malformed: {exc}") from None
    code = _text(found["ResponseCode"][0])
    if not re.fullmatch(r"[A-Z]{1,3}[0-9]{1,3}", code):
        raise ParseRefused("alert.response_code", f"ResponseCode {code[:20]!r} is not a DUIS response code")
    when = _datetime(found["ResponseDateTime"][0])
    items = _children(body)
    if len(items) != 1:
        raise ParseRefused("alert.body", f"sr:Body must hold exactly one message, found {len(items)}")
    (message,) = items
    name = _local(message.tag)
    if not message.tag.startswith(_SR):
        raise ParseRefused("alert.body", f"the Body element {name} is not in the DUIS namespace")
    future_dated = name == "ResponseMessage" and message.find(f"{_SR}FutureDatedDeviceAlertMessage") is not None
    if name == "DeviceAlertMessage" or future_dated:
        if future_dated:
            fields = _match(_match(message, _RESPONSE_MESSAGE)["FutureDatedDeviceAlertMessage"][0], _FUTURE_DATED_ALERT)
            alert_code = _text(fields["FutureDatedAlertCode"][0]).upper()
            if alert_code not in _FUTURE_DATED_CODES:
                raise ParseRefused("alert.code", f"FutureDatedAlertCode {alert_code[:20]!r} is not 8F66 or 8F67")
        else:
            fields = _match(message, _DEVICE_ALERT)
            alert_code = _text(fields["AlertCode"][0]).upper()
        if not re.fullmatch(r"(?:[0-9A-F]{2})+", alert_code):
            raise ParseRefused("alert.code", f"AlertCode {alert_code[:20]!r} is not hexBinary")
        try:
            payload = base64.b64decode(re.sub(r"[ \t\r\n]+", "", _text(fields["GBCSPayload"][0])), validate=True)
        except (binascii.Error, ValueError):
            raise ParseRefused("alert.base64", "sr:GBCSPayload is not valid base64") from None
        return Alert(
            kind="device", originator=rid.originator, recipient=rid.target, counter=rid.counter,
            response_code=code, response_date_time=when, alert_code=alert_code,
            device=rid.originator, gbcs_payload_length=len(payload),
        )
    if name == "DCCAlertMessage":
        fields = _match(message, _DCC_ALERT)
        alert_code = _text(fields["DCCAlertCode"][0])
        if not re.fullmatch(r"(AD1|N[0-9]{1,3})", alert_code):
            raise ParseRefused("alert.code", f"DCCAlertCode {alert_code[:20]!r} is not a DCC Alert code")
        content = _children(fields["DCCAlert"][0])
        if len(content) != 1:
            raise ParseRefused("alert.body", "sr:DCCAlert must hold exactly one alert")
        return Alert(
            kind="dcc", originator=rid.originator, recipient=rid.target, counter=rid.counter,
            response_code=code, response_date_time=when, alert_code=alert_code,
            dcc_alert=_local(content[0].tag), device=_device_in(content[0]),
        )
    raise ParseRefused("alert.not_an_alert", f"the Response carries {name}, not a Device or DCC Alert")
