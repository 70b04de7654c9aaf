"""Signed governance statements: the only way a governance act happens.

A statement says who does what, when, once: ``{action, params, officer, issued_at, nonce}``.
It travels in a DSSE envelope (the Dead Simple Signing Envelope of in-toto and Sigstore):

    {"payloadType": "application/vnd.solr-policy.statement+json",
     "payload": base64(canonical JSON of the statement),
     "signatures": [{"keyid": sha256(officer's SubjectPublicKeyInfo DER), "sig": base64(DER ECDSA)}]}

Each signature is ECDSA P-256 / SHA-256 over DSSE's pre-authentication encoding
``PAE(payloadType, payload)``, so the signed bytes are exactly the bytes carried: nothing is
re-serialised before checking, and what is applied is parsed from what was signed. An act
that needs four eyes carries two signatures by two different officers (two different keys).

This module is pure: parsing, canonical form, signing, and checking signatures against keys
the caller supplies. Who may sign what, freshness against the service clock, and "applied at
most once" are checked where statements are applied (``governance/acts.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from solr_policy.errors import GovernanceRefused, first_error

PAYLOAD_TYPE = "application/vnd.solr-policy.statement+json"
MAX_ENVELOPE_BYTES = 256 * 1024  # an ADT file travels inside; anything larger is not a statement
MAX_SIGNATURES = 4

# Every governance act, by the name a statement gives it.
Action = Literal[
    "instruction.propose",
    "instruction.approve",
    "instruction.suspend",
    "instruction.resume",
    "instruction.end",
    "officer.register-governance",
    "officer.register-sro",
    "officer.appoint-aro",
    "officer.remove",
    "officer.rotate-key",
    "adt.submit",
    "quarantine.release",
    "quarantine.discard",
    "quarantine.exit-file",
    "srp.register",
    "certificate.pin",
    "certificate.set-status",
    "anchor.add",
    "anchor.remove",
    "log.recover",
]


class Statement(BaseModel):
    """What an officer signs. ``params`` hold the act's own fields (see ``governance/acts.py``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    action: Action
    params: dict[str, Any]
    officer: str = Field(min_length=1, max_length=128)
    issued_at: datetime
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")

    @field_validator("issued_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("issued_at needs a time zone")
        return value.astimezone(timezone.utc)

    def canonical(self) -> bytes:
        """Sorted keys, no spaces, UTF-8: the one byte form of a statement (JCS for this data)."""
        data = self.model_dump(mode="json")
        data["issued_at"] = self.issued_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Signature(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    keyid: str = Field(pattern=r"^[0-9a-f]{64}$")
    sig: str = Field(min_length=1, max_length=200)


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    payloadType: Literal["application/vnd.solr-policy.statement+json"]  # noqa: N815 - DSSE's name
    payload: str = Field(min_length=1)
    signatures: list[Signature] = Field(min_length=1, max_length=MAX_SIGNATURES)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), indent=2) + "\n"

    @property
    def digest(self) -> str:
        """SHA-256 of the signed payload: names the statement in the log."""
        return hashlib.sha256(base64.b64decode(self.payload)).hexdigest()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what each signature covers."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def new_nonce() -> str:
    return secrets.token_hex(16)


def make_statement(action: str, params: dict[str, Any], *, officer: str, at: datetime | None = None) -> Statement:
    try:
        return Statement.model_validate(
            {"action": action, "params": params, "officer": officer, "issued_at": at or datetime.now(timezone.utc), "nonce": new_nonce()}
        )
    except ValidationError as exc:
        raise GovernanceRefused("statement.malformed", first_error(exc)) from None


def sign(statement: Statement, key: ec.EllipticCurvePrivateKey) -> Envelope:
    payload = statement.canonical()
    return Envelope(
        payloadType="application/vnd.solr-policy.statement+json",
        payload=base64.b64encode(payload).decode(),
        signatures=[_signature(payload, key)],
    )


def cosign(envelope: Envelope, key: ec.EllipticCurvePrivateKey) -> Envelope:
    """Add a second officer's signature over the same payload (four eyes)."""
    keyid = key_id(key.public_key())
    if any(s.keyid == keyid for s in envelope.signatures):
        raise GovernanceRefused("statement.duplicate-signature", "this key has already signed the statement")
    payload = base64.b64decode(envelope.payload)
    return envelope.model_copy(update={"signatures": [*envelope.signatures, _signature(payload, key)]})


def _signature(payload: bytes, key: ec.EllipticCurvePrivateKey) -> Signature:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise GovernanceRefused("statement.key", "statements are signed with an EC P-256 private key")
    sig = key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    return Signature(keyid=key_id(key.public_key()), sig=base64.b64encode(sig).decode())


def parse_envelope(data: bytes | str) -> Envelope:
    """Strictly parse an envelope; any defect is a ``GovernanceRefused`` naming it."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise GovernanceRefused("statement.too-large", f"a statement envelope is at most {MAX_ENVELOPE_BYTES} bytes")
    try:
        obj = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GovernanceRefused("statement.malformed", f"not a JSON statement envelope ({str(exc).splitlines()[0]})") from None
    except RecursionError:  # json's C scanner recurses per nesting level: "[[[[..." within the size limit
        raise GovernanceRefused("statement.malformed", "not a JSON statement envelope (nested too deeply)") from None
    try:
        return Envelope.model_validate(obj)
    except ValidationError as exc:
        raise GovernanceRefused("statement.malformed", first_error(exc)) from None


def open_envelope(envelope: Envelope, keys: dict[str, ec.EllipticCurvePublicKey]) -> tuple[Statement, tuple[str, ...]]:
    """Check every signature against ``keys`` (keyid -> key); return the statement and the
    key ids that signed it. Only then is the payload parsed: what is read is what was signed."""
    try:
        payload = base64.b64decode(envelope.payload, validate=True)
    except (binascii.Error, ValueError):
        raise GovernanceRefused("statement.malformed", "the payload is not valid base64") from None
    signed = pae(envelope.payloadType, payload)
    seen: list[str] = []
    for signature in envelope.signatures:
        if signature.keyid in seen:
            raise GovernanceRefused("statement.duplicate-signature", f"key {signature.keyid[:16]}... signed twice")
        key = keys.get(signature.keyid)
        if key is None:
            raise GovernanceRefused(
                "statement.unknown-key", f"key {signature.keyid[:16]}... is not the registered key of any active officer"
            )
        try:
            key.verify(base64.b64decode(signature.sig, validate=True), signed, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise GovernanceRefused("statement.bad-signature", f"the signature by key {signature.keyid[:16]}... does not verify") from None
        seen.append(signature.keyid)
    try:
        statement = Statement.model_validate(json.loads(payload, object_pairs_hook=_no_duplicate_keys))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        message = first_error(exc) if isinstance(exc, ValidationError) else str(exc).splitlines()[0]
        raise GovernanceRefused("statement.malformed", f"the signed statement is not valid: {message}") from None
    if statement.canonical() != payload:
        raise GovernanceRefused("statement.not-canonical", "the signed statement is not in canonical form")
    return statement, tuple(seen)


def check_fresh(statement: Statement, now: datetime, *, max_age: timedelta, max_skew: timedelta) -> None:
    """Refuse a statement signed too long ago, or dated in the future beyond clock skew."""
    if statement.issued_at > now + max_skew:
        raise GovernanceRefused(
            "statement.future", f"the statement is dated {statement.issued_at.isoformat()}, after the service clock {now.isoformat()}"
        )
    if now - statement.issued_at > max_age:
        raise GovernanceRefused(
            "statement.stale",
            f"the statement was signed at {statement.issued_at.isoformat()}, more than {max_age} before {now.isoformat()}; sign it again",
        )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)

