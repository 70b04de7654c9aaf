"""``solr-policy world load FILE.yaml``: a whole scenario into the store, idempotently.

    parties:      [{id, name}]
    users:        [{id: EUI-64, party, role, status?}]
    certificates: [{path, status?}]          # paths relative to the world file
    devices:      [{id: EUI-64, type: ESME|GSME|..., smets: SMETS1|SMETS2+, supplier}]
    instructions: [{reference, failed_supplier, solr_party, effective_from, effective_until?, status?}]
    srps:         [{id, name, endpoint, serves: [Supplier Party ids]}]   # Shared Resource Providers (R7)

Loading twice gives the same store. Errors name the file, line and field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from solr_policy.crypto.certs import read_certificate_file
from solr_policy.errors import Refused
from solr_policy.records import SmkiStatus
from solr_policy.world import USER_ROLES, Device, Instruction, Party, User
from solr_policy.yamlio import DataFileError, line_of, load_yaml, read_text, validate


class CertificateEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str
    status: SmkiStatus | None = None


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


def parse_world(text: str, source: str) -> tuple[WorldFile, dict]:
    data, lines = load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DataFileError(f"{source}: a world file is a YAML mapping")
    return validate(WorldFile, data, lines, source), lines


def load_world(path: str | Path, store, *, role_codes: frozenset[str] = frozenset()) -> dict[str, int]:
    """Validate everything first, then write it in one transaction: all or nothing."""
    path = Path(path)
    source = str(path)
    world, lines = parse_world(read_text(path), source)
    known_roles = set(USER_ROLES) | set(role_codes)
    parties = {p.id for p in world.parties} | {p.id for p in store.list_parties()}

    def where(section: str, index: int, field: str) -> str:
        line = line_of(lines, (section, index, field))
        return f"{source} line {line}" if line else source

    for i, user in enumerate(world.users):
        if user.role not in known_roles:
            raise DataFileError(f"{where('users', i, 'role')}, field users.{i}.role: unknown User Role {user.role!r} (known: {', '.join(sorted(known_roles))})")
        if user.party not in parties:
            raise DataFileError(f"{where('users', i, 'party')}, field users.{i}.party: unknown Party {user.party!r}")
    for i, device in enumerate(world.devices):
        if device.supplier not in parties:
            raise DataFileError(f"{where('devices', i, 'supplier')}, field devices.{i}.supplier: unknown Party {device.supplier!r}")
    for i, instruction in enumerate(world.instructions):
        for field in ("failed_supplier", "solr_party"):
            if getattr(instruction, field) not in parties:
                raise DataFileError(f"{where('instructions', i, field)}, field instructions.{i}.{field}: unknown Party {getattr(instruction, field)!r}")
        if instruction.effective_until and instruction.effective_until <= instruction.effective_from:
            raise DataFileError(f"{where('instructions', i, 'effective_until')}, field instructions.{i}.effective_until: must be after effective_from")
    for i, srp in enumerate(world.srps):
        for supplier in srp.serves:
            if supplier not in parties:
                raise DataFileError(f"{where('srps', i, 'serves')}, field srps.{i}.serves: unknown Party {supplier!r}")
    certificates = []
    for i, entry in enumerate(world.certificates):
        cert_path = (path.parent / entry.path) if not Path(entry.path).is_absolute() else Path(entry.path)
        try:
            records = read_certificate_file(cert_path)
        except Refused as refusal:
            raise DataFileError(f"{where('certificates', i, 'path')}, field certificates.{i}.path: {refusal.message}") from None
        certificates += [(r, entry.status) for r in records]

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
    return {
        "parties": len(world.parties),
        "users": len(world.users),
        "certificates": len(certificates),
        "devices": len(world.devices),
        "instructions": len(world.instructions),
        "srps": len(world.srps),
    }
