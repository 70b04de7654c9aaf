"""Officers: governance staff, and the SoLR Party's SRO and AROs (MP134B R4).

Governance officers run SoLR events (instructions). Governance registers a Party's Senior
Responsible Officer (SRO); the SRO appoints and removes Authorised Responsible Officers
(AROs). Every officer holds a P-256 key and signs every act with it (``governance/acts.py``);
a public key belongs to one officer only, across all roles and for ever (a removed officer's
key, or one rotated away, is never reused). Every step is audited with who did it and why.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from solr_policy.errors import GovernanceRefused
from solr_policy.records import OfficerKind, OfficerRecord, OfficerStatus
from solr_policy.store.base import Store

GOVERNANCE, SRO, ARO = OfficerKind.GOVERNANCE, OfficerKind.SRO, OfficerKind.ARO


def load_public_key(pem: bytes | str, who: str) -> str:
    """Accept a P-256 public key (or a certificate carrying one); return it as SPKI PEM."""
    data = pem.encode() if isinstance(pem, str) else pem
    key: object
    if b"PRIVATE KEY" in data:  # the officer's own key file given where its public half belongs
        raise GovernanceRefused(
            "R4.officer-key",
            f"the key given for {who} is a private key: give its public key (openssl ec -in KEY -pubout), the officer keeps the private one",
        )
    try:
        if b"BEGIN CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise GovernanceRefused("R4.officer-key", f"the key given for {who} is not a PEM public key or certificate") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise GovernanceRefused("R4.officer-key", f"the key given for {who} must be an EC P-256 public key")
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def require_officer(
    store: Store, officer_id: str, kind: OfficerKind | tuple[OfficerKind, ...], *, party: str | None = None
) -> OfficerRecord:
    kinds = (kind,) if isinstance(kind, OfficerKind) else kind
    officer = store.get_officer(officer_id)
    if officer is None:
        raise GovernanceRefused("governance.unknown-officer", f"{officer_id} is not a registered officer")
    if not officer.active:
        removed = officer.removed_at.isoformat() if officer.removed_at else "an unknown date"
        raise GovernanceRefused("governance.officer-removed", f"officer {officer_id} was removed on {removed}")
    if officer.kind not in kinds:
        raise GovernanceRefused("governance.officer-kind", f"{officer_id} is a {officer.kind.upper()} officer; this needs {' or '.join(k.upper() for k in kinds)}")
    if party is not None and officer.kind is not GOVERNANCE and officer.party != party:
        raise GovernanceRefused("governance.officer-party", f"{officer_id} is an officer of Party {officer.party}, not of {party}")
    return officer


def _new(store: Store, officer_id: str, key_pem: str) -> None:
    if store.get_officer(officer_id) is not None:
        raise GovernanceRefused("governance.officer-exists", f"officer {officer_id} already exists")
    _key_unused(store, key_pem, officer_id)


def key_fingerprint(key_pem: str) -> str:
    """SHA-256 of the SPKI PEM as ``load_public_key`` writes it: names a key in the log
    without the key itself."""
    return hashlib.sha256(key_pem.encode("ascii")).hexdigest()


def _key_unused(store: Store, key_pem: str, who: str) -> None:
    holder = next((o for o in store.list_officers() if o.public_key == key_pem), None)
    if holder is not None:
        raise GovernanceRefused(
            "governance.key-in-use", f"the key given for {who} is already the key of officer {holder.id}: one key, one officer"
        )
    # A key rotated away is retired for ever: it may be the one that leaked.
    fingerprint = key_fingerprint(key_pem)
    for entry in store.audit_entries(kind="officer.rotate-key"):
        if entry.payload_data().get("retired_key_sha256") == fingerprint:
            raise GovernanceRefused(
                "governance.key-in-use",
                f"the key given for {who} was officer {entry.payload_data().get('officer')}'s until it was rotated away: "
                "a retired key is never used again",
            )


def register_governance_officer(
    store: Store, officer_id: str, *, name: str, public_key: bytes | str, at: datetime, by: str | None = None,
    founding: bool = False,
) -> OfficerRecord:
    """Bootstrap (``init``): the first governance officers are registered with no ``by``;
    later ones by an existing governance officer (``by``; acts.py asks a second one to co-sign)."""
    with store.transaction():
        existing = [o for o in store.list_officers() if o.kind is GOVERNANCE and o.active]
        if existing and by is None and not founding:
            raise GovernanceRefused("governance.officer-kind", "an existing governance officer must register new ones (--by)")
        if by is not None:
            if not existing:
                raise GovernanceRefused("governance.unknown-officer", f"no governance officer exists yet, so {by} cannot register one; use init")
            require_officer(store, by, GOVERNANCE)
        key = load_public_key(public_key, officer_id)
        _new(store, officer_id, key)
        record = OfficerRecord(officer_id, GOVERNANCE, name, party=None, public_key=key, appointed_at=at, appointed_by=by)
        store.put_officer(record)
        store.append_audit("officer.register-governance", {"officer": officer_id, "name": name}, at=at, actor=by or officer_id)
    return record


def register_sro(store: Store, officer_id: str, *, name: str, party: str, public_key: bytes | str, by: str, at: datetime) -> OfficerRecord:
    with store.transaction():
        require_officer(store, by, GOVERNANCE)
        if store.get_party(party) is None:
            raise GovernanceRefused("governance.unknown-party", f"Party {party} is not known")
        if any(o.kind is SRO and o.active for o in store.list_officers(party=party)):
            raise GovernanceRefused("R4.one-sro", f"Party {party} already has an active SRO")
        key = load_public_key(public_key, officer_id)
        _new(store, officer_id, key)
        record = OfficerRecord(officer_id, SRO, name, party, key, appointed_at=at, appointed_by=by)
        store.put_officer(record)
        store.append_audit("officer.register-sro", {"officer": officer_id, "party": party, "name": name}, at=at, actor=by)
    return record


def appoint_aro(store: Store, officer_id: str, *, name: str, party: str, public_key: bytes | str, by: str, at: datetime) -> OfficerRecord:
    with store.transaction():
        require_officer(store, by, SRO, party=party)
        key = load_public_key(public_key, officer_id)
        _new(store, officer_id, key)
        record = OfficerRecord(officer_id, ARO, name, party, key, appointed_at=at, appointed_by=by)
        store.put_officer(record)
        store.append_audit("officer.appoint-aro", {"officer": officer_id, "party": party, "name": name}, at=at, actor=by)
    return record


def remove_officer(store: Store, officer_id: str, *, by: str, reason: str, at: datetime) -> OfficerRecord:
    """An SRO removes its Party's AROs; governance removes SROs (and may remove AROs)."""
    with store.transaction():
        officer = store.get_officer(officer_id)
        if officer is None or not officer.active:
            raise GovernanceRefused("governance.unknown-officer", f"{officer_id} is not an active officer")
        if officer.kind is ARO:
            require_officer(store, by, (SRO, GOVERNANCE), party=officer.party)
        else:
            require_officer(store, by, GOVERNANCE)
        if by == officer_id:
            raise GovernanceRefused("governance.four-eyes", "an officer cannot remove themselves")
        officer = dataclasses.replace(officer, status=OfficerStatus.REMOVED, removed_by=by, removed_at=at)
        store.put_officer(officer)
        # A removed ARO's ADT files stop being current: their authority ends with theirs.
        withdrawn = store.withdraw_adt_files(officer_id) if officer.kind is ARO else []
        store.append_audit(
            "officer.remove",
            {"officer": officer_id, "kind": officer.kind.value, "reason": reason, **({"adt_files_withdrawn": withdrawn} if withdrawn else {})},
            at=at, actor=by,
        )
    return officer


def rotate_key(store: Store, officer_id: str, *, public_key: bytes | str, by: str, reason: str, at: datetime) -> OfficerRecord:
    """A new key for an officer: by the officer (signed with the old key), or by whoever may
    remove them (governance for an SRO or governance officer, the SRO for an ARO)."""
    with store.transaction():
        officer = store.get_officer(officer_id)
        if officer is None or not officer.active:
            raise GovernanceRefused("governance.unknown-officer", f"{officer_id} is not an active officer")
        if by != officer_id:
            if officer.kind is ARO:
                require_officer(store, by, (SRO, GOVERNANCE), party=officer.party)
            else:
                require_officer(store, by, GOVERNANCE)
        key = load_public_key(public_key, officer_id)
        _key_unused(store, key, officer_id)
        store.put_officer(dataclasses.replace(officer, public_key=key))
        store.append_audit(
            "officer.rotate-key",
            {"officer": officer_id, "reason": reason,
             "retired_key_sha256": key_fingerprint(officer.public_key) if officer.public_key else None,
             "key_sha256": key_fingerprint(key)},
            at=at, actor=by,
        )
        return dataclasses.replace(officer, public_key=key)

