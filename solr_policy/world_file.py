"""``solr-policy world load FILE.yaml``: reference data into the store, idempotently.

    parties: [{id, name?}]
    users:   [{id: EUI-64, party, role, status?}]
    devices: [{id: EUI-64, type: ESME|GSME|..., smets: SMETS1|SMETS2+, supplier,
               supplier_history?: [{supplier, from: time with zone}]}]

Reference data only. What gives anyone authority (Authority instructions, officers, SRPs,
certificates and their SMKI statuses) changes only by a governance act: a statement signed by
a registered officer, verified and logged. A YAML file carries no signature, so a file that
names one of those sections is refused before anything is written, naming the command to use
instead. Each load is itself logged (``world.load``: the file, the SHA-256 of its bytes and
the counts) in the transaction that writes it.

The README's "The world file" section documents every key; ``examples/world.yaml`` uses them
all. Loading twice gives the same reference data. Errors name the file, line and field.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Mapping
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_validator

from solr_policy.store.base import Store
from solr_policy.world import USER_ROLES, Device, Party, SupplierChange, User, ZonedTime
from solr_policy.yamlio import (
    DataFileError,
    Path_,
    decode_text,
    line_of,
    load_yaml,
    read_bytes,
    validate,
)


class SupplierEntry(BaseModel):
    """From ``from``, ``supplier`` is responsible for the Device (a change, possibly scheduled)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    supplier: str = Field(min_length=1, max_length=64)
    effective_from: ZonedTime = Field(alias="from")


class DeviceEntry(Device):
    # ``supplier`` is responsible until the first change; each change from its time on.
    supplier_history: tuple[SupplierEntry, ...] = ()

    @field_validator("supplier_history")
    @classmethod
    def _in_order(cls, value: tuple[SupplierEntry, ...]) -> tuple[SupplierEntry, ...]:
        times = [e.effective_from for e in value]
        if any(b <= a for a, b in zip(times, times[1:])):
            raise ValueError("list the changes of Supplier in time order, each at a different time")
        return value

    def device(self) -> Device:
        return Device(id=self.id, type=self.type, smets=self.smets, supplier=self.supplier)

    def changes(self) -> list[SupplierChange]:
        return [SupplierChange(device=self.id, effective_from=e.effective_from, supplier=e.supplier) for e in self.supplier_history]


class WorldFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    parties: list[Party] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)
    devices: list[DeviceEntry] = Field(default_factory=list)


class WorldLoad(TypedDict):
    """What one load wrote, and the digest of the file it came from (as logged)."""

    parties: int
    users: int
    devices: int
    sha256: str


# Sections that grant authority -> why a world file may not hold them, and what to use instead.
GOVERNED: dict[str, str] = {
    "instructions": (
        "instructions are Authority instructions: propose and approve them with signed statements "
        "(solr-policy instruction propose ... --key FILE, then instruction approve ... --key FILE by a second officer)"
    ),
    "officers": (
        "officers are registered by signed acts: solr-policy init on an empty store, then "
        "officer register-governance (two governance officers), register-sro or appoint-aro ... --key FILE"
    ),
    "srps": (
        "SRPs receive a failed Supplier's alerts (R7): a governance officer registers one with a signed statement "
        "(solr-policy srp add ... --key FILE)"
    ),
    "certificates": (
        "certificates are trusted only through a trust anchor: solr-policy certs import FILE (it must chain to a "
        "trust anchor) or a signed solr-policy certs pin ... --key FILE; an SMKI status is changed by a signed "
        "solr-policy certs set-status ... --key FILE"
    ),
}


def refuse_governed_sections(data: dict[Any, Any], lines: Mapping[Path_, int], source: str) -> None:
    """Refuse, in file order, every section that only a signed governance act may change."""
    refused = []
    for section in data:
        if section in GOVERNED:
            line = line_of(lines, (section,))
            where = f"{source} line {line}" if line else source
            refused.append(f"{where}, section {section}: a world file holds reference data only (parties, users, devices); {GOVERNED[section]}")
    if refused:
        raise DataFileError("; ".join(refused))


def parse_world(text: str, source: str) -> tuple[WorldFile, Mapping[Path_, int]]:
    data, lines = load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DataFileError(f"{source}: a world file is a YAML mapping")
    refuse_governed_sections(data, lines, source)
    return validate(WorldFile, data, lines, source), lines


# Section -> the field that identifies an entry: the same id twice is a mistake, not an update.
_IDENTITY = {"parties": "id", "users": "id", "devices": "id"}


def load_world(path: str | Path, store: Store, *, role_codes: frozenset[str] = frozenset()) -> WorldLoad:
    """Validate everything first, then write it and its log entry in one transaction: all or nothing."""
    path = Path(path)
    source = str(path)
    data = read_bytes(path)
    world, lines = parse_world(decode_text(data, source), source)
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
        for n, entry in enumerate(device.supplier_history):
            if entry.supplier not in parties:
                line = line_of(lines, ("devices", i, "supplier_history", n, "supplier"))
                where = f"{source} line {line}" if line else source
                raise DataFileError(f"{where}, field devices.{i}.supplier_history.{n}.supplier: unknown Party {entry.supplier!r}")

    loaded = WorldLoad(
        parties=len(world.parties), users=len(world.users), devices=len(world.devices), sha256=hashlib.sha256(data).hexdigest()
    )
    with store.transaction():
        for party in world.parties:
            store.put_party(party)
        for user in world.users:
            store.put_user(user)
        for device in world.devices:
            store.put_device(device.device())
            store.put_supplier_history(device.id, device.changes())
        # The service's clock, not the caller's: the log says when the reference data changed.
        store.append_audit("world.load", {"file": source, **loaded}, at=datetime.now(timezone.utc))
    return loaded
