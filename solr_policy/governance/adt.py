"""Anomaly Detection Threshold (ADT) files, submitted by a Party's AROs (MP134B R4).

Format: a small YAML file, and beside it a detached signature ``FILE.sig`` made with the
ARO's key over every byte of the file (ECDSA P-256 / SHA-256, DER, base64). Detached keeps
the rule "the signature covers the whole file" literal: no canonicalisation, no envelope.

    adt_version: 1
    reference: ADT-SOLR-2026-001         # unique; a new file for the same User and Supplier supersedes the old
    party: SOLR-PARTY                    # the ARO's Party
    user: 90-B3-D5-1F-30-0F-00-01        # the SoLR Contingency User it binds
    supplier: FAILED-ENERGY              # the one (failed) Supplier whose Devices the User may address
    thresholds:                          # per SRV: the most requests in a fixed UTC hour / day
      "1.6": {per_hour: 500, per_day: 5000}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from solr_policy.errors import GovernanceRefused
from solr_policy.eui import parse_eui64
from solr_policy.governance.officers import ARO, require_officer
from solr_policy.records import AdtFileRecord
from solr_policy.store.base import Store
from solr_policy.yamlio import DataFileError, load_yaml, validate

MAX_ADT_BYTES = 64 * 1024


class Threshold(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    per_hour: int | None = Field(default=None, ge=0)
    per_day: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some(self) -> "Threshold":
        if self.per_hour is None and self.per_day is None:
            raise ValueError("give per_hour, per_day or both")
        return self


class AdtFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    adt_version: int = Field(ge=1, le=1)
    reference: str = Field(min_length=1, max_length=128)
    party: str
    user: str
    supplier: str
    thresholds: dict[str, Threshold] = Field(min_length=1)

    @field_validator("user", mode="before")
    @classmethod
    def _eui(cls, value: str) -> str:
        return parse_eui64(value)


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


def _verify(data: bytes, signature: bytes, public_key_pem: str, aro: str) -> None:
    try:
        der = base64.b64decode(b"".join(signature.split()), validate=True)
    except (binascii.Error, ValueError):
        raise GovernanceRefused("R4.adt-signature", "the ADT signature is not base64") from None
    key = serialization.load_pem_public_key(public_key_pem.encode())
    if not isinstance(key, ec.EllipticCurvePublicKey):  # officers.load_public_key admits P-256 keys only
        raise GovernanceRefused("R4.adt-signature", f"ARO {aro}'s registered key is not an EC key")
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise GovernanceRefused("R4.adt-signature", f"the ADT file's signature does not verify with ARO {aro}'s key (changed after signing, or signed by someone else)") from None


def submit_adt(store: Store, data: bytes, signature: bytes, *, aro: str, at: datetime, source: str = "<adt>") -> AdtFile:
    """Verify and store an ADT file; refusals name their reason and change nothing."""
    with store.transaction():
        officer = require_officer(store, aro, ARO)
        if officer.public_key is None:
            raise GovernanceRefused("R4.adt-signature", f"ARO {aro} has no registered key to verify the ADT file with")
        _verify(data, signature, officer.public_key, aro)
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
        thresholds = {srv: t.model_dump(exclude_none=True) for srv, t in adt.thresholds.items()}
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
            )
        )
        store.append_audit(
            "adt.submit",
            {"reference": adt.reference, "party": adt.party, "user": adt.user, "supplier": adt.supplier, "sha256": digest,
             "thresholds": thresholds},
            at=at,
            actor=aro,
            originator=adt.user,
        )
    return adt


def adt_text(*, reference: str, party: str, user: str, supplier: str, thresholds: dict[str, dict[str, int]]) -> bytes:
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
    return ("\n".join(lines) + "\n").encode()
