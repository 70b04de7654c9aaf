"""The domain records the store keeps and returns.

A neutral module: it imports nothing from ``crypto/``, ``store/`` or the engine, so any of
them (and a second store implementation) can share these types. Records are frozen; the
store gives them out typed, never as rows or dicts. World facts (Party, User, Device,
Instruction) live in ``world.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from enum import Enum, StrEnum
from collections.abc import Iterator
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

# Remote Party Roles of the SMKI (hex in the certificate's OU, decimal here).
ROLE_NAMES: dict[int, str] = {
    0: "Root",
    1: "Recovery",
    2: "Supplier",
    3: "Network Operator",
    4: "Access Control Broker",
    5: "Transitional CoS",
    6: "WAN Provider",
    7: "Issuing Authority",
    8: "Load Controller",
    127: "Other",
    135: "XML Sign",
    137: "DSP XML Sign",
}
ROLE_SUPPLIER = 2  # Digital Signing / Key Agreement certificates of a Supplier
ROLE_XML_SIGN = 135
ROLE_DSP_XML_SIGN = 137


def role_name(role: int | None) -> str:
    if role is None:
        return "unknown"
    return ROLE_NAMES.get(role, f"role {role}")


class SmkiStatus(str, Enum):
    """SMKI certificate statuses (single letters as the SMKI repository shows them)."""

    PENDING = "P"
    IN_USE = "I"
    NOT_IN_USE = "N"
    EXPIRED = "E"
    REVOKED = "R"

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()

    @classmethod
    def parse(cls, text: str) -> "SmkiStatus":
        key = text.strip().upper().replace(" ", "_").replace("-", "_")
        for status in cls:
            if key in (status.value, status.name):
                return status
        names = ", ".join(f"{s.value} ({s.label})" for s in cls)
        raise ValueError(f"unknown SMKI status {text!r}; use one of {names}")


class CertRecord(BaseModel):
    """What the store keeps about one certificate (never a private key)."""

    model_config = ConfigDict(frozen=True)

    serial: int
    issuer: str  # crypto.certs.issuer_key() form
    subject: str
    subject_eui: str | None
    role: int | None
    key_usage: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    status: SmkiStatus = SmkiStatus.IN_USE
    spki_sha256: str  # hash of the SubjectPublicKeyInfo: the key-separation check compares these
    fingerprint: str  # SHA-256 of the DER
    der: bytes
    lenient: bool = False  # read by the lenient parser
    # Why it is trusted: "anchor:<subject>" (issued by a trust anchor), "pinned" (a signed
    # governance act), or None (stored before trust anchors existed, or by a test directly).
    provenance: str | None = None

    @property
    def role_name(self) -> str:
        return role_name(self.role)

    def valid_at(self, when: datetime) -> bool:
        return self.not_before <= when <= self.not_after

    def summary(self) -> dict[str, object]:
        """JSON-safe facts: never the whole certificate."""
        return {
            "serial": str(self.serial),
            "issuer": self.issuer,
            "subject_eui": self.subject_eui,
            "role": self.role,
            "role_name": self.role_name,
            "key_usage": list(self.key_usage),
            "not_before": _iso_z(self.not_before),
            "not_after": _iso_z(self.not_after),
            "status": self.status.value,
            "status_label": self.status.label,
            "fingerprint": self.fingerprint[:16],
            "provenance": self.provenance,
            "pinned": self.provenance == "pinned",
        }


def _iso_z(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class _Record:
    """JSON output shared by the records below (times as ISO 8601, enums as their value)."""

    __slots__ = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {f.name: _json_value(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    return value


def gbcs_counter_key(originator: str) -> str:
    """GBCS originator counters share the counters table with DUIS counters, under their own key."""
    return f"gbcs:{originator}"


@dataclass(frozen=True)
class Signer:
    """Who signed a DUIS message: the certificate, and how KeyInfo led to it."""

    certificate: CertRecord
    resolved_by: str  # "issuer-serial" or "dsp-key" (KeyInfo named no stored certificate)

    def summary(self) -> dict[str, object]:
        return {**self.certificate.summary(), "resolved_by": self.resolved_by}


@dataclass(frozen=True, slots=True)
class TrustAnchor(_Record):
    """An SMKI Root or Organisation CA certificate that governance added by signed act."""

    fingerprint: str  # SHA-256 of the DER, hex
    subject: str  # RFC 4514
    der: bytes
    added_at: datetime
    added_by: str


@dataclass(frozen=True, slots=True)
class KeyHolder(_Record):
    """Another certificate holding the same public key (the MP104 key-separation check)."""

    serial: int
    role: int | None
    key_usage: tuple[str, ...]
    subject_eui: str | None


# -- officers ------------------------------------------------------------------------------
class OfficerKind(StrEnum):
    GOVERNANCE = "governance"  # DCC governance staff: run SoLR events (instructions)
    SRO = "sro"  # a SoLR Party's Senior Responsible Officer
    ARO = "aro"  # an Authorised Responsible Officer, appointed by the SRO


class OfficerStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class OfficerRecord(_Record):
    id: str
    kind: OfficerKind
    name: str
    party: str | None  # None for governance officers
    public_key: str | None  # SPKI PEM: every officer signs their acts with it
    appointed_at: datetime
    appointed_by: str | None = None  # None for the first governance officer
    status: OfficerStatus = OfficerStatus.ACTIVE
    removed_by: str | None = None
    removed_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status is OfficerStatus.ACTIVE

    def public_json(self) -> dict[str, Any]:
        """For output: whether the officer has a key, not the key."""
        data = self.to_json_dict()
        del data["public_key"]
        return data | {"has_key": bool(self.public_key)}


# -- ADT files and their usage -----------------------------------------------------------------
class AdtFileStatus(StrEnum):
    CURRENT = "current"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"  # its ARO was removed


@dataclass(frozen=True, slots=True)
class AdtFileRecord(_Record):
    """An accepted ADT file: the thresholds one ARO set for a User acting on one Supplier."""

    reference: str
    party: str
    user_id: str
    supplier: str
    aro: str
    submitted_at: datetime
    thresholds: dict[str, dict[str, int]]  # SRV -> {"per_hour": n, "per_day": n, "per_15_minutes": n, ...}
    sha256: str  # of the file's bytes, as signed
    status: AdtFileStatus = AdtFileStatus.CURRENT
    # Named Device sets: {"name", "devices", "srvs"?, "exempt", "thresholds"?} (governance/adt.py)
    exceptions: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class AdtUsage(_Record):
    """Allowed requests counted in one fixed UTC window (``period`` hour or day)."""

    user_id: str
    supplier: str
    srv: str
    period: str
    window_start: str
    count: int


class AdtUsageKey(NamedTuple):
    """One ADT window of one User, Supplier and SRV (what ``AdtUsage`` counts in)."""

    user_id: str
    supplier: str
    srv: str
    period: str
    window_start: str


# -- quarantine ------------------------------------------------------------------------------
class QuarantineStatus(StrEnum):
    HELD = "held"
    RELEASED = "released"
    DISCARDED = "discarded"


@dataclass(frozen=True, slots=True)
class QuarantineItem(_Record):
    """A request held over an ADT threshold (its bytes: ``QuarantinedRequest``)."""

    id: int
    at: datetime
    originator: str
    device: str
    srv: str
    counter: int
    status: QuarantineStatus
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    reason: str | None = None

    @property
    def held(self) -> bool:
        return self.status is QuarantineStatus.HELD


@dataclass(frozen=True, slots=True)
class QuarantinedRequest:
    """What was held, byte for byte, and the decision that held it."""

    id: int
    raw: bytes
    decision: dict[str, Any]


# -- instructions' history ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InstructionEvent(_Record):
    reference: str
    at: datetime
    action: str  # propose, approve, suspend, resume, end
    officer: str
    reason: str


# -- Shared Resource Providers and alert deliveries (R7) --------------------------------------
@dataclass(frozen=True, slots=True)
class SrpRecord(_Record):
    id: str
    name: str
    endpoint: str
    serves: tuple[str, ...]  # Supplier Party ids


class AlertStatus(StrEnum):
    ROUTED = "routed"
    PENDING = "pending"  # waits in the queue, with its reason
    REFUSED = "refused"  # not a genuine alert (kept, bytes and all, for a later retry)
    DUPLICATE = "duplicate"  # a refused copy that verified later, of an alert already recorded: settled, not routed


@dataclass(frozen=True, slots=True)
class AlertDelivery(_Record):
    """One alert received and where it went; ``id`` is None until the store assigns one."""

    received_at: datetime
    response_id: str
    recipient: str
    device: str | None
    alert: str  # the parsed alert as JSON ("{}" when refused)
    status: AlertStatus
    reason: str
    target_kind: str | None = None  # comma-separated, one per target
    target_id: str | None = None
    endpoint: str | None = None
    routed_at: datetime | None = None
    id: int | None = None


# -- the audit trail ----------------------------------------------------------------------------
class AuditAppend(NamedTuple):
    """An audit entry to append (``AuditStore.append_audits``): what ``append_audit`` takes."""

    kind: str
    payload: Any  # a JSON object (Mapping[str, Any]), or its canonical JSON text (``audit_chain.canonical_payload``)
    at: datetime
    actor: str | None = None
    originator: str | None = None
    device: str | None = None
    instruction: str | None = None
    counter: int | None = None  # the RequestID counter a decision took for ``originator``
    payload_json: str | None = None  # json.dumps of the payload's canonical text, if made along with it


@dataclass(frozen=True, slots=True)
class AuditEntry(_Record):
    seq: int
    at: str  # canonical UTC ISO 8601 (``audit_chain.canonical_time``), exactly as hashed
    kind: str
    actor: str | None
    originator: str | None
    device: str | None
    instruction: str | None
    payload: str  # canonical JSON, exactly as hashed
    prev_hash: str
    hash: str
    counter: int | None = None  # the RequestID counter a decision took (hashed when set)

    @property
    def at_time(self) -> datetime:
        return datetime.fromisoformat(self.at)

    def payload_data(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.payload)
        return data

    def to_json_dict(self) -> dict[str, Any]:
        return {**_Record.to_json_dict(self), "payload": self.payload_data()}


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The newest entry written: losing the newest entries is detected against it."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class LogHead:
    """The Merkle tree over the audit entries (RFC 9162): its size and frontier.

    Leaf ``i`` is audit entry ``i + 1``; its data is the entry's chained hash (32 bytes).
    """

    size: int
    frontier: tuple[bytes, ...]  # the roots of the perfect subtrees that make up [0, size)


@dataclass(frozen=True, slots=True)
class LogSnapshot:
    """The log and the state its decisions account for, read from one snapshot of the store:
    what a writer (another process or node) commits meanwhile is in none of it, so comparing
    them finds only real differences. ``entries`` is streamed: read it once, in order."""

    head: LogHead
    entries: Iterator[AuditEntry]
    counters: dict[str, int]
    usage: dict[AdtUsageKey, int]
    quarantine: tuple[QuarantineItem, ...]

    # What ``transparency.log.reconcile`` reads of the state, as the store's own methods.
    def get_counter(self, originator: str) -> int | None:
        return self.counters.get(originator)

    def adt_usage(self, user_id: str, supplier: str, srv: str, period: str, window_start: str) -> int:
        return self.usage.get(AdtUsageKey(user_id, supplier, srv, period, window_start), 0)

    def list_quarantine(self) -> list[QuarantineItem]:
        return list(self.quarantine)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A signed checkpoint of the log, as the service wrote it (also kept outside the store)."""

    size: int
    root: str  # hex
    at: datetime
    note: str  # the signed note text


@dataclass(frozen=True, slots=True)
class AuditCheck(_Record):
    """The result of walking the audit chain."""

    intact: bool
    entries: int
    message: str  # names the first broken entry
