"""Typed DUIS request models: what the rules read, built only from signed content."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from solr_policy.eui import duis_form, parse_eui64

MAX_COUNTER = 2**64 - 1

Eui64 = Annotated[str, Field(pattern=r"^[0-9A-F]{16}$")]
_DECIMAL = re.compile(r"[0-9]+")
_EUI = r"([0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}|[0-9A-Fa-f]{16})"  # eui.parse_eui64's two forms
# A well-formed RequestID in one match; anything else takes the path that says what is wrong.
_REQUEST_ID = re.compile(_EUI + ":" + _EUI + r":(0|[1-9][0-9]{0,19})")  # 2^64-1 has 20 digits


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RequestId(_Frozen):
    """``BusinessOriginatorID:BusinessTargetID:OriginatorCounter``."""

    originator: Eui64
    target: Eui64
    counter: int = Field(ge=0, le=MAX_COUNTER)

    @classmethod
    def parse(cls, text: str) -> "RequestId":
        well_formed = _REQUEST_ID.fullmatch(text)
        if well_formed is not None and (number := int(well_formed[3])) <= MAX_COUNTER:
            originator, target = well_formed[1].replace("-", "").upper(), well_formed[2].replace("-", "").upper()
            return cls(originator=originator, target=target, counter=number)
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"{text!r} is not originator:target:counter")
        originator, target, counter = parts
        # ASCII digits only: str.isdigit() and int() also take e.g. Arabic-Indic digits.
        if not _DECIMAL.fullmatch(counter) or (len(counter) > 1 and counter[0] == "0"):
            raise ValueError(f"counter {counter!r} is not a decimal number without leading zeros")
        value = int(counter)
        if value > MAX_COUNTER:
            raise ValueError(f"counter {counter} is larger than 2^64-1")
        try:
            return cls(originator=parse_eui64(originator), target=parse_eui64(target), counter=value)
        except ValueError as exc:
            raise ValueError(str(exc).splitlines()[0]) from None

    def __str__(self) -> str:
        return f"{duis_form(self.originator)}:{duis_form(self.target)}:{self.counter}"


class RequestHeader(_Frozen):
    request_id: RequestId
    first_in_sequence: bool | None = None
    preceding_request_id: RequestId | None = None
    command_variant: int = Field(ge=1, le=8)
    # [0-9], not \d: pydantic's regex \d is Unicode-aware ('١.٦' would pass as an SRV).
    service_reference: str = Field(pattern=r"^[0-9]{1,2}\.[0-9]{1,2}$")
    service_reference_variant: str = Field(pattern=r"^[0-9]{1,2}\.[0-9]{1,2}(\.[0-9]{1,2})?$")


class PrepaymentSettings(_Frozen):
    suspend_debt_disabled: bool
    suspend_debt_emergency: bool
    disablement_threshold: int = Field(ge=-(2**31), le=2**31 - 1)


class UpdatePaymentMode(_Frozen):
    """SRV 1.6 as a Service Request (Command Variant 4)."""

    kind: Literal["UpdatePaymentMode"] = "UpdatePaymentMode"
    execution_date_time: datetime | None = None
    mode: Literal["credit", "prepayment"]
    prepayment: PrepaymentSettings | None = None


class SignedPreCommand(_Frozen):
    """A GBCS command the User signed itself (Command Variants 5-7)."""

    kind: Literal["SignedPreCommand"] = "SignedPreCommand"
    execution_date_time: datetime | None = None
    gbcs_payload: bytes


class OtherBody(_Frozen):
    """Any other SRV body, kept by element name so rules can refuse it by SRV."""

    kind: Literal["Other"] = "Other"
    element: str


Body = Annotated[Union[UpdatePaymentMode, SignedPreCommand, OtherBody], Field(discriminator="kind")]


class DuisRequest(_Frozen):
    schema_version: str
    header: RequestHeader
    body: Body

    @property
    def body_element(self) -> str:
        return self.body.element if isinstance(self.body, OtherBody) else self.body.kind

    def summary(self) -> dict[str, object]:
        rid = self.header.request_id
        return {
            "request_id": str(rid),
            "originator": duis_form(rid.originator),
            "target": duis_form(rid.target),
            "counter": rid.counter,
            "srv": self.header.service_reference_variant,
            "command_variant": self.header.command_variant,
            "body": self.body_element,
        }
