"""Anomaly Detection Threshold (ADT) files, submitted by a Party's AROs (MP134B R4).

Format: a small YAML file, and beside it a detached signature ``FILE.sig`` made with the
ARO's key over every byte of the file (ECDSA P-256 / SHA-256, DER, base64). Detached keeps
the rule "the signature covers the whole file" literal: no canonicalisation, no envelope.

    adt_version: 1
    reference: ADT-SOLR-2026-001         # unique; a new file for the same User and Supplier supersedes the old
    party: SOLR-PARTY                    # the ARO's Party
    user: 90-B3-D5-1F-30-0F-00-01        # the SoLR Contingency User it binds
    supplier: FAILED-ENERGY              # the one (failed) Supplier whose Devices the User may address
    thresholds:                          # per SRV: the most requests in each fixed UTC window
      "1.6": {per_15_minutes: 150, per_hour: 500, per_day: 5000}
    exceptions:                          # optional: named Device sets exempt, or held to their own thresholds
      - name: hospital-meters            # unique in the file; names the set in reasons and usage
        devices: [00-DB-12-34-56-78-90-A1, 00-DB-12-34-56-78-90-A2]
        srvs: ["1.6"]                    # optional: the SRVs it applies to (default: every SRV)
        exempt: true                     # never held, never counted
      - name: pilot-street
        devices: [00-DB-12-34-56-78-90-B1]
        thresholds: {per_hour: 5}        # counted and held on these thresholds instead of the file's

Windows (the keys of a threshold) are fixed UTC windows: ``per_N_minutes`` (N divides 60:
1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30), ``per_hour``, ``per_N_hours`` (N divides 24: 2, 3,
4, 6, 8 or 12) and ``per_day``. A Device in an exception is counted against that exception
only; a Device may be in one exception per SRV. The layout is this project's: no public
layout of the DCC's ADT file was found (see README).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime
from typing import Annotated

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from solr_policy.errors import GovernanceRefused
from solr_policy.eui import parse_eui64
from solr_policy.governance.officers import ARO, require_officer
from solr_policy.records import AdtFileRecord
from solr_policy.store.base import Store
from solr_policy.yamlio import DataFileError, load_yaml, validate

MAX_ADT_BYTES = 64 * 1024


_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
_HOURS = (2, 3, 4, 6, 8, 12)
WINDOW_FORMS = "per_N_minutes (N one of " + ", ".join(map(str, _MINUTES)) + "), per_hour, per_N_hours (N one of " + ", ".join(map(str, _HOURS)) + ") or per_day"
_WINDOW = re.compile(r"^per_(?:(hour|day)|(\d{1,2})_(minutes|hours))$")


def window_key_ok(key: str) -> bool:
    """A threshold key names a fixed UTC window that tiles the day (so windows never straddle)."""
    match = _WINDOW.match(key)
    if match is None:
        return False
    if match.group(1):
        return True
    n = int(match.group(2))
    return n in (_MINUTES if match.group(3) == "minutes" else _HOURS)


def _thresholds(value: object) -> dict[str, int]:
    if not isinstance(value, dict) or not value:
        raise ValueError(f"a threshold is a mapping of windows to counts: {WINDOW_FORMS}")
    for key, count in value.items():
        if not isinstance(key, str) or not window_key_ok(key):
            raise ValueError(f"{key!r} is not a window; use {WINDOW_FORMS}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"{key}: a count of requests (a whole number, 0 or more), not {count!r}")
    return dict(value)


Threshold = Annotated[dict[str, int], BeforeValidator(_thresholds)]


class AdtException(BaseModel):
    """A named Device set exempt from the file's thresholds, or held to its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    devices: tuple[str, ...] = Field(min_length=1, max_length=100_000)
    srvs: tuple[str, ...] | None = Field(default=None, min_length=1)
    exempt: bool = False
    thresholds: Threshold | None = None

    @field_validator("devices", mode="before")
    @classmethod
    def _euis(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError("a list of Device IDs (EUI-64)")
        return tuple(parse_eui64(v) for v in value)

    @model_validator(mode="after")
    def _one_kind(self) -> "AdtException":
        if self.exempt == (self.thresholds is not None):
            raise ValueError(f"exception {self.name}: give either exempt: true or thresholds, not both or neither")
        if len(set(self.devices)) != len(self.devices):
            raise ValueError(f"exception {self.name}: a Device is named twice")
        return self

    def applies_to(self, srv: str) -> bool:
        return self.srvs is None or srv in self.srvs


class AdtFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    adt_version: int = Field(ge=1, le=1)
    reference: str = Field(min_length=1, max_length=128)
    party: str
    user: str
    supplier: str
    thresholds: dict[str, Threshold] = Field(min_length=1)
    exceptions: tuple[AdtException, ...] = ()

    @field_validator("user", mode="before")
    @classmethod
    def _eui(cls, value: str) -> str:
        return parse_eui64(value)

    @model_validator(mode="after")
    def _exceptions_distinct(self) -> "AdtFile":
        names = [e.name for e in self.exceptions]
        if len(set(names)) != len(names):
            raise ValueError(f"exception {next(n for n in names if names.count(n) > 1)!r} is named twice")
        # One exception per Device and SRV: otherwise which threshold holds would depend on order.
        seen: dict[str, list[AdtException]] = {}
        for exc in self.exceptions:
            for device in exc.devices:
                for earlier in seen.setdefault(device, []):
                    if earlier.srvs is None or exc.srvs is None or set(earlier.srvs) & set(exc.srvs):
                        raise ValueError(f"Device {device} is in exceptions {earlier.name} and {exc.name} for the same SRV")
                seen[device].append(exc)
        return self


def parse_adt(data: bytes, source: str = "<adt>") -> AdtFile:
    if len(data) > MAX_ADT_BYTES:
        raise GovernanceRefused("R4.adt-format", f"{source}: larger than {MAX_ADT_BYTES} bytes")
    try:
        text = data.decode("utf-8")
        raw, lines = load_yaml(text, source)
        if not isinstance(raw, dict):
            raise DataFileError(f"{source}: an ADT file is a YAML mapping")
        return validate(AdtFile, raw, lines, source)
    except UnicodeDecodeError:
        raise GovernanceRefused("R4.adt-format", f"{source}: not UTF-8 text") from None
    except DataFileError as exc:
        raise GovernanceRefused("R4.adt-format", str(exc)) from None


def sign_adt(data: bytes, key_pem: bytes) -> bytes:
    """The detached signature file's content for ``data`` (tooling for AROs)."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("an ARO key is an EC P-256 private key")
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))) + b"\n"


def verify_detached(data: bytes, signature: bytes, public_key_pem: str, aro: str, *, rule: str = "R4.adt-signature", what: str = "ADT file") -> None:
    """Check a detached signature (as ``sign_adt`` writes it) over every byte of ``data``."""
    try:
        der = base64.b64decode(b"".join(signature.split()), validate=True)
    except (binascii.Error, ValueError):
        raise GovernanceRefused(rule, f"the {what}'s signature is not base64") from None
    key = serialization.load_pem_public_key(public_key_pem.encode())
    if not isinstance(key, ec.EllipticCurvePublicKey):  # officers.load_public_key admits P-256 keys only
        raise GovernanceRefused(rule, f"ARO {aro}'s registered key is not an EC key")
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise GovernanceRefused(rule, f"the {what}'s signature does not verify with ARO {aro}'s key (changed after signing, or signed by someone else)") from None


def submit_adt(store: Store, data: bytes, signature: bytes, *, aro: str, at: datetime, source: str = "<adt>") -> AdtFile:
    """Verify and store an ADT file; refusals name their reason and change nothing."""
    with store.transaction():
        officer = require_officer(store, aro, ARO)
        if officer.public_key is None:
            raise GovernanceRefused("R4.adt-signature", f"ARO {aro} has no registered key to verify the ADT file with")
        verify_detached(data, signature, officer.public_key, aro)
        adt = parse_adt(data, source)
        if adt.party != officer.party:
            raise GovernanceRefused("R4.adt-party", f"the ADT file is for Party {adt.party}, but ARO {aro} is an officer of {officer.party}")
        user = store.get_user(adt.user)
        if user is None or user.party != adt.party:
            raise GovernanceRefused("R4.adt-user", f"User {adt.user} is not a User of Party {adt.party}")
        if store.get_party(adt.supplier) is None:
            raise GovernanceRefused("R4.adt-supplier", f"Supplier {adt.supplier} is not a known Party")
        if store.get_adt_file(adt.reference) is not None:
            raise GovernanceRefused("R4.adt-reference", f"an ADT file {adt.reference} was already submitted; give a new file a new reference")
        digest = hashlib.sha256(data).hexdigest()
        thresholds = {srv: dict(t) for srv, t in adt.thresholds.items()}
        exceptions = tuple(e.model_dump(mode="json", exclude_none=True, exclude_defaults=False) for e in adt.exceptions)
        store.put_adt_file(
            AdtFileRecord(
                reference=adt.reference,
                party=adt.party,
                user_id=adt.user,
                supplier=adt.supplier,
                aro=aro,
                submitted_at=at,
                thresholds=thresholds,
                sha256=digest,
                exceptions=exceptions,
            )
        )
        store.append_audit(
            "adt.submit",
            {"reference": adt.reference, "party": adt.party, "user": adt.user, "supplier": adt.supplier, "sha256": digest,
             "thresholds": thresholds, "exceptions": [{"name": e["name"], "devices": len(e["devices"])} for e in exceptions]},
            at=at,
            actor=aro,
            originator=adt.user,
        )
    return adt


def adt_text(
    *, reference: str, party: str, user: str, supplier: str, thresholds: dict[str, dict[str, int]], exceptions: list[dict] | None = None
) -> bytes:
    """Write an ADT file (tooling, demo, tests)."""
    lines = [
        "adt_version: 1",
        f"reference: {reference}",
        f"party: {party}",
        f"user: {user}",
        f"supplier: {supplier}",
        "thresholds:",
    ]
    for srv, limits in thresholds.items():
        inner = ", ".join(f"{k}: {v}" for k, v in limits.items())
        lines.append(f'  "{srv}": {{{inner}}}')
    if exceptions:
        lines.append("exceptions:")
        for exc in exceptions:
            lines.append(f"  - name: {exc['name']}")
            lines.append("    devices: [" + ", ".join(exc["devices"]) + "]")
            if exc.get("srvs"):
                lines.append("    srvs: [" + ", ".join(f'"{v}"' for v in exc["srvs"]) + "]")
            if exc.get("exempt"):
                lines.append("    exempt: true")
            else:
                inner = ", ".join(f"{k}: {v}" for k, v in exc["thresholds"].items())
                lines.append(f"    thresholds: {{{inner}}}")
    return ("\n".join(lines) + "\n").encode()
