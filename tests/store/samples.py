"""Hand-made records for the store tests (no PKI, no signing: the store only keeps facts)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from solr_policy.records import (
    ROLE_SUPPLIER,
    ROLE_XML_SIGN,
    AdtFileRecord,
    AlertDelivery,
    AlertStatus,
    CertRecord,
    OfficerKind,
    OfficerRecord,
    SmkiStatus,
)
from solr_policy.store.base import Store
from solr_policy.world import Device, DeviceType, Instruction, InstructionStatus, Party, Smets, User, UserStatus

NOW = datetime(2026, 11, 22, 10, 30, 15, 123456, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)

ISSUER = "CN=Z1,OU=07"
SOLR_USER = "90B3D51F300F0001"
OTHER_USER = "90B3D51F300E0001"
METER = "00DB1234567890A0"
GAS_METER = "00DB1234567890B0"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cert(
    serial: int,
    *,
    eui: str | None = SOLR_USER,
    role: int | None = ROLE_XML_SIGN,
    key: str = "key-1",
    usage: tuple[str, ...] = ("digital_signature",),
    status: SmkiStatus = SmkiStatus.IN_USE,
    issuer: str = ISSUER,
) -> CertRecord:
    return CertRecord(
        serial=serial,
        issuer=issuer,
        subject=f"CN={eui},OU=87",
        subject_eui=eui,
        role=role,
        key_usage=usage,
        not_before=NOW - 365 * 24 * HOUR,
        not_after=NOW + 365 * 24 * HOUR,
        status=status,
        spki_sha256=digest(key),
        fingerprint=digest(f"{issuer}/{serial}"),
        der=f"DER of {serial}".encode(),
        lenient=serial % 2 == 0,
    )


def supplier_signing_cert(serial: int, *, key: str = "key-1", eui: str = SOLR_USER) -> CertRecord:
    return cert(serial, eui=eui, role=ROLE_SUPPLIER, key=key)


def world(store: Store) -> None:
    """Three Parties, two Users, two meters and an active instruction."""
    for party in (Party(id="FAILED", name="Failed Energy"), Party(id="SOLR", name="SoLR Co"), Party(id="OTHER", name="Other")):
        store.put_party(party)
    store.put_user(User(id=SOLR_USER, party="SOLR", role="SC"))
    store.put_user(User(id=OTHER_USER, party="FAILED", role="IS", status=UserStatus.SUSPENDED))
    store.put_device(Device(id=METER, type=DeviceType.ESME, smets=Smets.SMETS1, supplier="FAILED"))
    store.put_device(Device(id=GAS_METER, type=DeviceType.GSME, smets=Smets.SMETS2, supplier="OTHER"))
    store.put_instruction(instruction("OFGEM-1"))


def instruction(reference: str, *, failed: str = "FAILED", solr: str = "SOLR", start: datetime = NOW - HOUR, **changes: object) -> Instruction:
    fields: dict[str, object] = {"effective_until": start + 30 * 24 * HOUR, "status": InstructionStatus.ACTIVE, **changes}
    return Instruction(reference=reference, failed_supplier=failed, solr_party=solr, effective_from=start, **fields)


def officer(officer_id: str, kind: OfficerKind, party: str | None = None, *, by: str | None = None) -> OfficerRecord:
    key = None if kind is OfficerKind.GOVERNANCE else f"-----BEGIN PUBLIC KEY-----\n{officer_id}\n-----END PUBLIC KEY-----\n"
    return OfficerRecord(officer_id, kind, f"Officer {officer_id}", party, key, appointed_at=NOW, appointed_by=by)


def adt_file(reference: str, *, supplier: str = "FAILED", per_hour: int = 4, at: datetime = NOW) -> AdtFileRecord:
    return AdtFileRecord(
        reference=reference,
        party="SOLR",
        user_id=SOLR_USER,
        supplier=supplier,
        aro="aro-ann",
        submitted_at=at,
        thresholds={"1.6": {"per_hour": per_hour, "per_day": 50}},
        sha256=digest(reference),
    )


def pending_alert(recipient: str = OTHER_USER, *, at: datetime = NOW) -> AlertDelivery:
    return AlertDelivery(
        received_at=at,
        response_id=f"{recipient}:{METER}:7",
        recipient=recipient,
        device=METER,
        alert='{"code": "8F1C"}',
        status=AlertStatus.PENDING,
        reason="no SRP is registered for FAILED",
    )


def fill(store: Store, *, rows: int = 200) -> None:
    """Enough rows that the file spans many pages (for damage and truncation)."""
    with store.transaction():
        world(store)
        for n in range(rows):
            store.put_party(Party(id=f"P{n:04d}", name="a long enough Party name " * 8))
            store.append_audit("decision", {"n": n, "padding": "x" * 200}, at=NOW + n * HOUR, actor=SOLR_USER)
