"""The world the rules see: Parties, Users, Devices and Authority instructions.

These are plain facts read from the store. DUIS User Role codes are as the DUIS matrix
writes them; the SoLR Contingency role added by MP134B has code ``SC`` (see README).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from solr_policy.eui import parse_eui64

# DUIS User Roles (DUIS matrix codes) and the role MP134B adds.
USER_ROLES: dict[str, str] = {
    "IS": "Import Supplier",
    "ES": "Export Supplier",
    "GS": "Gas Supplier",
    "ED": "Electricity Distributor",
    "GT": "Gas Transporter",
    "RSA": "Registered Supplier Agent",
    "OU": "Other User",
    "SC": "SoLR Contingency",
}
SOLR_CONTINGENCY = "SC"


class _Fact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Party(_Fact):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = ""


class UserStatus(str, Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"


class User(_Fact):
    id: str  # EUI-64, canonical
    party: str
    role: str
    status: UserStatus = UserStatus.ACTIVE

    @field_validator("id", mode="before")
    @classmethod
    def _eui(cls, value: str) -> str:
        return parse_eui64(value)

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        # Roles are data: the DUIS roles plus those the loaded policies define. The world
        # loader checks membership; here only the shape.
        if not value.isalnum() or not value.isupper() or len(value) > 8:
            raise ValueError(f"{value!r} is not a User Role code (upper-case letters, e.g. IS, GS, SC)")
        return value


class DeviceType(str, Enum):
    ESME = "ESME"  # electricity meter
    GSME = "GSME"  # gas meter
    COMMS_HUB = "CHF"
    GPF = "GPF"
    PPMID = "PPMID"
    HCALCS = "HCALCS"
    IHD = "IHD"


class Smets(str, Enum):
    SMETS1 = "SMETS1"
    SMETS2 = "SMETS2+"


class Device(_Fact):
    id: str
    type: DeviceType
    smets: Smets
    supplier: str  # the responsible Supplier Party

    @field_validator("id", mode="before")
    @classmethod
    def _eui(cls, value: str) -> str:
        return parse_eui64(value)


def _with_zone(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone, e.g. 2026-11-22T00:00:00Z")
    return value


ZonedTime = Annotated[datetime, AfterValidator(_with_zone)]
DeviceId = Annotated[str, BeforeValidator(parse_eui64)]


class SupplierChange(_Fact):
    """From ``effective_from``, ``supplier`` is the Device's responsible Supplier (a change of
    Supplier, e.g. the failed Supplier's market identifiers moved to the SoLR; may be scheduled)."""

    device: DeviceId
    effective_from: ZonedTime
    supplier: str = Field(min_length=1, max_length=64)


def supplier_at(device: Device, history: tuple[SupplierChange, ...], when: datetime) -> tuple[str, SupplierChange | None]:
    """The Device's responsible Supplier at ``when``, and the change that made it so (None: its
    ``supplier``, which holds until the first change). ``history`` is in time order."""
    current = None
    for change in history:
        if change.effective_from > when:
            break
        current = change
    return (current.supplier if current else device.supplier), current


class InstructionStatus(str, Enum):
    PROPOSED = "proposed"
    ACTIVE = "active"  # approved; in force within its window
    SUSPENDED = "suspended"
    ENDED = "ended"
    REJECTED = "rejected"


class Instruction(_Fact):
    """An Authority (Ofgem) instruction to act for a failed Supplier's customers."""

    reference: str = Field(min_length=1, max_length=128)
    failed_supplier: str
    solr_party: str
    effective_from: datetime
    effective_until: datetime | None = None
    status: InstructionStatus = InstructionStatus.ACTIVE
    # Optional scope: only these Devices (EUI-64); None means every Device of the failed Supplier.
    scope: tuple[str, ...] | None = None
    proposed_by: str | None = None
    approved_by: str | None = None

    @field_validator("scope", mode="before")
    @classmethod
    def _scope(cls, value: object) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError("a list of Device IDs (EUI-64)")
        return tuple(parse_eui64(v) for v in value)

    def covers(self, device_id: str) -> bool:
        return self.scope is None or device_id in self.scope

    def overlaps(self, other: "Instruction") -> bool:
        far = datetime.max.replace(tzinfo=self.effective_from.tzinfo)
        return self.effective_from < (other.effective_until or far) and other.effective_from < (self.effective_until or far)

    @field_validator("effective_from", "effective_until")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-11-22T00:00:00Z")
        return value

    def in_force_at(self, when: datetime) -> bool:
        if self.status is not InstructionStatus.ACTIVE or when < self.effective_from:
            return False
        return self.effective_until is None or when < self.effective_until

    def window_contains(self, when: datetime) -> bool:
        if when < self.effective_from:
            return False
        return self.effective_until is None or when < self.effective_until
