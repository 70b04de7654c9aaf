"""Policies as data: ``policies/*.yaml``, validated by pydantic.

A policy says, for one User Role, which SRVs it may send, with which Command Variants,
what the request content may say, and whether an active Authority instruction is needed.
Adding an SRV is a change to the YAML only. A typo is an error with its line, never a
silent default (every model forbids unknown fields).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from solr_policy.eui import parse_eui64
from solr_policy.world import DeviceType
from solr_policy.yamlio import DataFileError, load_yaml, read_text, validate

SERVICE_REQUEST_CVS = frozenset({1, 2, 3, 4})
SIGNED_PRE_COMMAND_CVS = frozenset({5, 6, 7})


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RoleDefinition(_Strict):
    code: str = Field(pattern=r"^[A-Z]{1,8}$")
    name: str
    description: str = ""
    sec_modification: str | None = None


class ContentRules(_Strict):
    """What the request content may say; either constraints or an explicit 'unconstrained'."""

    payment_mode: Literal["credit", "prepayment"] | None = None
    gbcs_message_codes: tuple[int, ...] | None = None
    unconstrained: bool = False

    @field_validator("gbcs_message_codes", mode="before")
    @classmethod
    def _codes(cls, value: object) -> tuple[int, ...] | None:
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            raise ValueError("a list of GBCS Message Codes such as 0x001A")
        out: list[int] = []
        for item in value:
            if isinstance(item, str) and re.fullmatch(r"0[xX][0-9A-Fa-f]{1,4}", item):
                out.append(int(item, 16))
            elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 0xFFFF:
                out.append(item)
            else:
                raise ValueError(f"{item!r} is not a GBCS Message Code (write it as hex, e.g. 0x001A)")
        return tuple(out)

    @model_validator(mode="after")
    def _explicit(self) -> "ContentRules":
        constrained = self.payment_mode is not None or self.gbcs_message_codes is not None
        if constrained and self.unconstrained:
            raise ValueError("either constraints or 'unconstrained: true', not both")
        if not constrained and not self.unconstrained:
            raise ValueError("state the content constraints, or 'unconstrained: true' to allow any content")
        return self


class AdtDefault(_Strict):
    """Thresholds for an SRV that an ADT file does not mention (R4)."""

    per_hour: int | None = Field(default=None, ge=0)
    per_day: int | None = Field(default=None, ge=0)


# The data values each Service Request body carries, as policies name them (SMETS1 limits).
DATA_VALUES: dict[str, tuple[str, ...]] = {"UpdatePaymentMode": ("DisablementThreshold",)}


class ValueLimit(_Strict):
    """The least and most a data value may be; a SMETS1 request outside is deleted (R4)."""

    min: int | None = None
    max: int | None = None

    @model_validator(mode="after")
    def _bounds(self) -> "ValueLimit":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class SrvRule(_Strict):
    name: str
    command_variants: tuple[int, ...] = Field(min_length=1)
    service_request_body: str | None = Field(default=None, pattern=r"^[A-Z][A-Za-z0-9]*$")
    content: ContentRules
    # R4: used when the User's ADT file sets no threshold for this SRV; without either, the
    # request is refused (default deny). So adding an SRV stays a change to this file only.
    adt_default: AdtDefault | None = None
    # R4, as the DCC's anomaly detection does for SMETS1 (SEC G6, "data values"): bounds on the
    # values a SMETS1 Service Request carries; a breach is deleted, not quarantined.
    smets1_data_value_limits: dict[str, ValueLimit] | None = None
    # R5: the Device types the SRV may address (DUIS E11 otherwise); None: any Device type.
    device_types: tuple[DeviceType, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _known_values(self) -> "SrvRule":
        if self.smets1_data_value_limits:
            carried = DATA_VALUES.get(self.service_request_body or "", ())
            unknown = sorted(set(self.smets1_data_value_limits) - set(carried))
            if unknown:
                raise ValueError(
                    f"smets1_data_value_limits: {', '.join(unknown)} is not a data value of {self.service_request_body or 'this SRV'}"
                    f" (it carries: {', '.join(carried) or 'none'})"
                )
        return self

    @field_validator("command_variants")
    @classmethod
    def _cvs(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [cv for cv in value if not 1 <= cv <= 8]
        if bad:
            raise ValueError(f"Command Variants are 1 to 8, not {bad}")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _coherent(self) -> "SrvRule":
        cvs = set(self.command_variants)
        if cvs & SERVICE_REQUEST_CVS and not self.service_request_body:
            raise ValueError("Command Variants 1-4 need service_request_body (the DUIS Body element, e.g. UpdatePaymentMode)")
        if cvs & SIGNED_PRE_COMMAND_CVS and self.content.gbcs_message_codes is None and not self.content.unconstrained:
            raise ValueError("Command Variants 5-7 need content.gbcs_message_codes")
        if cvs & SERVICE_REQUEST_CVS and self.content.payment_mode is None and not self.content.unconstrained:
            raise ValueError("Command Variants 1-4 need a content constraint for the Service Request body (payment_mode)")
        if self.content.payment_mode and self.service_request_body not in (None, "UpdatePaymentMode"):
            raise ValueError("content.payment_mode applies only to service_request_body UpdatePaymentMode")
        return self

    @property
    def service_request_cvs(self) -> frozenset[int]:
        return frozenset(self.command_variants) & SERVICE_REQUEST_CVS

    @property
    def signed_pre_command_cvs(self) -> frozenset[int]:
        return frozenset(self.command_variants) & SIGNED_PRE_COMMAND_CVS


def _srv_key(key: str) -> str:
    if not re.fullmatch(r"\d{1,2}\.\d{1,2}(\.\d{1,2})?", key):
        raise ValueError(f"{key!r} is not a Service Reference Variant such as 1.6 or 4.1.1")
    return key


SrvKey = Annotated[str, AfterValidator(_srv_key)]


class PreCommandSigner(_Strict):
    """A party whose GBCS signature on a Signed Pre-Command the role's requests may carry:
    any In use Digital Signing certificate in the store with this EUI-64 and Remote Party Role."""

    eui: str
    role: int = Field(default=2, ge=0, le=255)
    note: str = ""

    @field_validator("eui")
    @classmethod
    def _eui(cls, value: str) -> str:
        return parse_eui64(value)


class Policy(_Strict):
    policy: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    description: str = ""
    role: RoleDefinition
    requires_authority_instruction: bool = True
    # Which Devices the role may address: those of the failed Supplier named in the active
    # instruction, or any known Device (for roles not tied to a Supplier failure).
    # validate_default: the default failed_supplier is checked against the instruction flag too.
    device_scope: Literal["failed_supplier", "any"] = Field(default="failed_supplier", validate_default=True)
    # R4: requests reach only Devices of a Supplier named in a current ADT file submitted by
    # an ARO of the User's Party, within that file's thresholds.
    requires_adt_file: bool = False
    # R7: whether the SoLR Party also gets the alerts that go to a failed Supplier's SRP.
    alerts_to_solr_party: bool = False
    # R5: whose GBCS signatures make a Signed Pre-Command acceptable (Command Variants 5-7).
    # Empty: none is, whatever it carries; the signature is verified, never just counted.
    pre_command_signers: tuple[PreCommandSigner, ...] = ()
    # R6: whether the role may cancel its own future-dated request (the DUIS cancellation,
    # ExecutionDateTime 3000-12-31T00:00:00Z).
    allow_cancellation: bool = False
    # Keys are checked one by one, so an error names the bad key's own line (srvs.<key>.[key]).
    srvs: dict[SrvKey, SrvRule] = Field(min_length=1)

    # A field validator (not a model validator) so that the error names device_scope's line;
    # requires_authority_instruction is declared first, so it is in info.data when valid.
    @field_validator("device_scope")
    @classmethod
    def _scope(cls, value: str, info: ValidationInfo) -> str:
        if value == "failed_supplier" and info.data.get("requires_authority_instruction") is False:
            raise ValueError("device_scope failed_supplier needs requires_authority_instruction: true")
        return value


class PolicySet:
    """The policies in force, by role code."""

    def __init__(self, policies: list[tuple[Policy, str, str]]) -> None:
        """``policies``: (policy, source file, SHA-256 of the file's bytes)."""
        self.by_role: dict[str, Policy] = {}
        self.sources: dict[str, str] = {}
        self.digests: dict[str, str] = {}  # by role: what a decision names as its policy's content
        for policy, source, digest in policies:
            if policy.role.code in self.by_role:
                raise DataFileError(
                    f"{source}: role {policy.role.code} already has a policy ({self.sources[policy.role.code]})"
                )
            self.by_role[policy.role.code] = policy
            self.sources[policy.role.code] = source
            self.digests[policy.role.code] = digest

    def for_role(self, code: str) -> Policy | None:
        return self.by_role.get(code)

    @property
    def role_codes(self) -> frozenset[str]:
        return frozenset(self.by_role)

    @classmethod
    def load_dir(cls, folder: str | Path) -> "PolicySet":
        folder = Path(folder)
        if not folder.is_dir():
            raise DataFileError(f"{folder}: no such policy folder")
        files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
        if not files:
            raise DataFileError(f"{folder}: no policy files (*.yaml)")
        loaded = []
        for path in files:
            text = read_text(path)
            loaded.append((parse_policy(text, str(path)), str(path), hashlib.sha256(text.encode()).hexdigest()))
        return cls(loaded)


def load_policy(path: str | Path) -> Policy:
    return parse_policy(read_text(path), str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    data, lines = load_yaml(text, source)
    if not isinstance(data, dict):
        raise DataFileError(f"{source}: a policy is a YAML mapping")
    return validate(Policy, data, lines, source)


def default_policy_dir() -> Path:
    """The shipped policies: ``solr_policy/policies`` in an installed wheel, else the source
    tree's top-level ``policies/`` (which the wheel is built from). Never the working folder:
    the policy in force must not depend on where a command happens to run."""
    package = Path(__file__).resolve().parent
    installed = package / "policies"
    return installed if installed.is_dir() else package.parent / "policies"
