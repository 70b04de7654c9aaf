"""``solr-policy world load FILE.yaml``: a whole scenario into the store, idempotently.

    parties:      [{id, name?}]
    users:        [{id: EUI-64, party, role, status?}]
    certificates: [{path, status?} | {serial, issuer?, status}]   # paths relative to the world file
    devices:      [{id: EUI-64, type: ESME|GSME|..., smets: SMETS1|SMETS2+, supplier}]
    instructions: [{reference, failed_supplier, solr_party, effective_from, effective_until?, status?, scope?}]
    srps:         [{id, name, endpoint, serves: [Supplier Party ids]}]   # Shared Resource Providers (R7)

The README's "The world file" section documents every key; ``examples/world.yaml`` uses them
all. Loading twice gives the same store. Errors name the file, line and field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from solr_policy.alerts.routing import AlertRouter
from solr_policy.crypto.certs import issuer_key, read_certificate_file
from solr_policy.errors import Refused
from solr_policy.policy import PolicySet
from solr_policy.records import CertRecord, SmkiStatus
from solr_policy.serials import parse_serial, select_by_serial
from solr_policy.store.base import Store
from solr_policy.world import USER_ROLES, Device, Instruction, Party, User
from solr_policy.yamlio import DataFileError, Path_, line_of, load_yaml, read_text, validate


class CertificateEntry(BaseModel):
    """A certificate file to import (``path``), or a stored certificate (``serial``) whose
    SMKI status to set."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str | None = Field(default=None, min_length=1)
    serial: int | None = None
    # Checked even when absent, so that an error names issuer's or status's own field.
    issuer: str | None = Field(default=None, min_length=1, validate_default=True)
    status: SmkiStatus | None = Field(default=None, validate_default=True)

    @field_validator("serial", mode="before")
    @classmethod
    def _serial(cls, value: object) -> int | None:
        return None if value is None else parse_serial(value)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("path") is not None:
            raise ValueError("issuer goes with serial, not with path")
        return issuer_key(value)

    @field_validator("status")
    @classmethod
    def _status(cls, value: SmkiStatus | None, info: ValidationInfo) -> SmkiStatus | None:
        if value is None and info.data.get("serial") is not None:
            raise ValueError("a certificate named by serial needs the status to set")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> "CertificateEntry":
        if (self.path is None) == (self.serial is None):
            raise ValueError("give either path (a certificate file) or serial (a stored certificate)")
        return self


class SrpEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    name: str
    endpoint: str = Field(min_length=1)
    serves: list[str] = Field(default_factory=list)


class WorldFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    parties: list[Party] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)
    certificates: list[CertificateEntry] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    instructions: list[Instruction] = Field(default_factory=list)
    srps: list[SrpEntry] = Field(default_factory=list)


def parse_world(text: str, source: str) -> tuple[WorldFile, dict[Path_, int]]:
    data, lines = load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DataFileError(f"{source}: a world file is a YAML mapping")
    return validate(WorldFile, data, lines, source), lines


# Section -> the field that identifies an entry: the same id twice is a mistake, not an update.
_IDENTITY = {"parties": "id", "users": "id", "devices": "id", "instructions": "reference", "srps": "id"}


def load_world(path: str | Path, store: Store, *, role_codes: frozenset[str] = frozenset()) -> dict[str, int]:
    """Validate everything first, then write it in one transaction: all or nothing."""
    path = Path(path)
    source = str(path)
    world, lines = parse_world(read_text(path), source)
    known_roles = set(USER_ROLES) | set(role_codes)
    parties = {p.id for p in world.parties} | {p.id for p in store.list_parties()}

    def fail(section: str, index: int, field: str, message: str) -> DataFileError:
        line = line_of(lines, (section, index, field))
        where = f"{source} line {line}" if line else source
        return DataFileError(f"{where}, field {section}.{index}.{field}: {message}")

    for section, field in _IDENTITY.items():
        first: dict[str, int] = {}
        for i, entry in enumerate(getattr(world, section)):
            key = getattr(entry, field)
            if key in first:
                raise fail(section, i, field, f"{key!r} appears twice (first at line {line_of(lines, (section, first[key], field))})")
            first[key] = i
    for i, user in enumerate(world.users):
        if user.role not in known_roles:
            raise fail("users", i, "role", f"unknown User Role {user.role!r} (known: {', '.join(sorted(known_roles))})")
        if user.party not in parties:
            raise fail("users", i, "party", f"unknown Party {user.party!r}")
    for i, device in enumerate(world.devices):
        if device.supplier not in parties:
            raise fail("devices", i, "supplier", f"unknown Party {device.supplier!r}")
    for i, instruction in enumerate(world.instructions):
        for field in ("failed_supplier", "solr_party"):
            if getattr(instruction, field) not in parties:
                raise fail("instructions", i, field, f"unknown Party {getattr(instruction, field)!r}")
        if instruction.effective_until and instruction.effective_until <= instruction.effective_from:
            raise fail("instructions", i, "effective_until", "must be after effective_from")
    for i, srp in enumerate(world.srps):
        for supplier in srp.serves:
            if supplier not in parties:
                raise fail("srps", i, "serves", f"unknown Party {supplier!r}")
    certificates: list[tuple[CertRecord, SmkiStatus | None]] = []
    for i, entry in enumerate(world.certificates):
        if entry.path is None:
            continue
        cert_path = (path.parent / entry.path) if not Path(entry.path).is_absolute() else Path(entry.path)
        try:
            records = read_certificate_file(cert_path)
        except Refused as refusal:
            raise fail("certificates", i, "path", refusal.message) from None
        certificates += [(r, entry.status) for r in records]
    # A serial names a certificate already in the store or imported by this file.
    statuses: list[tuple[CertRecord, SmkiStatus]] = []
    if any(entry.serial is not None for entry in world.certificates):
        known = [record for record, _ in certificates] + list(store.list_certificates())
        for i, entry in enumerate(world.certificates):
            if entry.serial is None or entry.status is None:
                continue
            try:
                statuses.append((select_by_serial(known, entry.serial, entry.issuer), entry.status))
            except LookupError as exc:
                raise fail("certificates", i, "serial", exc.args[0]) from None

    with store.transaction():
        for party in world.parties:
            store.put_party(party)
        for user in world.users:
            store.put_user(user)
        for device in world.devices:
            store.put_device(device)
        for instruction in world.instructions:
            store.put_instruction(instruction)
        for srp in world.srps:
            store.put_srp(srp.id, name=srp.name, endpoint=srp.endpoint, serves=srp.serves)
        for record, status in certificates:
            if status is not None:
                record = record.model_copy(update={"status": status})
            if not store.put_certificate(record) and status is not None:
                store.set_certificate_status(record.issuer, record.serial, status)
        for record, status in statuses:
            store.set_certificate_status(record.issuer, record.serial, status)
    return {
        "parties": len(world.parties),
        "users": len(world.users),
        "certificates": len(certificates) + len(statuses),
        "devices": len(world.devices),
        "instructions": len(world.instructions),
        "srps": len(world.srps),
    }


def load_world_and_route_alerts(path: str | Path, store: Store, *, policies: PolicySet) -> dict[str, int]:
    """``load_world`` with the User Roles of ``policies``; when the file registers SRPs, the
    alerts that were waiting for one are routed at once."""
    counts = load_world(path, store, role_codes=policies.role_codes)
    if counts["srps"]:
        AlertRouter(store, policies=policies).retry()
    return counts
