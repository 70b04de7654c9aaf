"""SMKI certificates in the store: imported under a trust anchor's authority, or by signed act.

- ``import_certificates``: an Organisation Certificate is accepted only if a trust anchor
  issued it (``crypto/trust.py``); the import needs no officer (the anchor's signature is the
  authority) but is logged. Others are refused with the reason; nothing changes for them.
- ``import_crl``: a CRL signed by a trust anchor revokes what it lists; logged.
- Signed acts (``acts.py``): ``anchor.add`` / ``anchor.remove`` (two governance officers),
  ``certificate.pin`` (one certificate that chains to no anchor, e.g. of the ZAZ1 test PKI
  whose CA certificate is not published; shown as pinned wherever it appears) and
  ``certificate.set-status`` (a status change by hand). Every change is logged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from solr_policy.crypto.certs import (
    issuer_key,
    read_certificates,
    role_written_in_decimal,
)
from solr_policy.crypto.trust import (
    check_anchor,
    crl_signed_by_anchor,
    issued_by_anchor,
    load_certificate,
    load_crl,
)
from solr_policy.errors import GovernanceRefused, Refused
from solr_policy.governance.officers import GOVERNANCE, require_officer
from solr_policy.records import CertRecord, SmkiStatus, TrustAnchor
from solr_policy.store.base import Store

if TYPE_CHECKING:
    from solr_policy.governance.acts import Context

PINNED = "pinned"


@dataclass(frozen=True)
class Imported:
    source: str
    imported: bool
    certificate: dict[str, object] | None = None
    reason: dict[str, str | None] | None = None
    already_known: bool = False
    warnings: tuple[str, ...] = field(default=())

    def to_json_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file": self.source, "imported": self.imported}
        if self.certificate:
            data.update(self.certificate)
        if self.already_known:
            data["already_known"] = True
        if self.reason:
            data["reason"] = self.reason
        if self.warnings:
            data["warnings"] = list(self.warnings)
        return data


def warnings_for(record: CertRecord, at: datetime) -> tuple[str, ...]:
    out = []
    if record.not_after < at:
        out.append(f"expired on {record.not_after.isoformat()}: it will sign nothing")
    if record.subject_eui is None:
        out.append("no EUI-64 could be read from its subject (uniqueIdentifier)")
    if record.role is None:
        out.append("no Remote Party Role could be read from its subject OU")
    elif role_written_in_decimal(record):
        out.append(f"its subject OU writes the Remote Party Role in decimal ({record.role}), as legacy DCC certificates do; read as role {record.role}")
    return tuple(out)


def _anchor_certificates(store: Store) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(a.der) for a in store.trust_anchors()]


def import_certificates(store: Store, data: bytes, *, source: str, at: datetime, status: SmkiStatus = SmkiStatus.IN_USE) -> list[Imported]:
    """Import every certificate in ``data`` (PEM or DER) that a trust anchor issued."""
    try:
        records = read_certificates(data, source)
    except Refused as refusal:
        return [Imported(source, False, reason=refusal.as_dict())]
    anchors = _anchor_certificates(store)
    results = []
    for record in records:
        warnings = warnings_for(record, at)
        try:
            verdict = issued_by_anchor(x509.load_der_x509_certificate(record.der), anchors, at if record.not_after >= at else record.not_after)
        except ValueError:
            verdict = None
        if verdict is None or not verdict.trusted:
            why = verdict.reason if verdict else "it cannot be read strictly enough to check its issuer's signature"
            results.append(Imported(source, False, record.summary(), {"rule": "certificate.untrusted", "code": None, "message": why}, warnings=warnings))
            continue
        trusted = record.model_copy(update={"status": status, "provenance": f"anchor:{verdict.anchor}"})
        with store.transaction():
            added = store.put_certificate(trusted)
            if added:
                store.append_audit(
                    "certificate.import",
                    {**trusted.summary(), "anchor": verdict.anchor, "warnings": list(warnings)},
                    at=at, actor=None, originator=trusted.subject_eui,
                )
        results.append(Imported(source, added, trusted.summary(), already_known=not added, warnings=warnings))
    return results


def import_crl(store: Store, data: bytes, *, source: str, at: datetime) -> dict[str, Any]:
    """Revoke what a CRL signed by a trust anchor lists (certificates of that issuer only)."""
    try:
        crl = load_crl(data)
    except ValueError:
        raise GovernanceRefused("crl.unreadable", f"{source}: not a PEM or DER X.509 CRL") from None
    verdict = crl_signed_by_anchor(crl, _anchor_certificates(store), at)
    if not verdict.trusted:
        raise GovernanceRefused("crl.untrusted", f"{source}: {verdict.reason}")
    issuer = issuer_key(crl.issuer.rfc4514_string())
    revoked = []
    with store.transaction():
        for entry in crl:
            record = store.get_certificate(issuer, entry.serial_number)
            if record is not None and record.status is not SmkiStatus.REVOKED:
                store.set_certificate_status(issuer, entry.serial_number, SmkiStatus.REVOKED)
                revoked.append(str(entry.serial_number))
        store.append_audit("certificate.crl", {"issuer": verdict.anchor, "listed": len(list(crl)), "revoked": revoked}, at=at)
    return {"issuer": verdict.anchor, "listed": len(list(crl)), "revoked": revoked}


# -- signed acts -----------------------------------------------------------------------------
def _pem_param(ctx: Context) -> x509.Certificate:
    try:
        return load_certificate(ctx.param("certificate").encode())
    except ValueError:
        raise GovernanceRefused("statement.params", f"{ctx.statement.action}: 'certificate' is not a PEM certificate") from None


def anchor_add(ctx: Context) -> dict[str, Any]:
    ctx.four_eyes(GOVERNANCE)
    cert = _pem_param(ctx)
    problem = check_anchor(cert, ctx.at)
    if problem:
        raise GovernanceRefused("anchor.refused", f"{cert.subject.rfc4514_string()} cannot be a trust anchor: {problem}")
    der = cert.public_bytes(serialization.Encoding.DER)
    anchor = TrustAnchor(hashlib.sha256(der).hexdigest(), cert.subject.rfc4514_string(), der, ctx.at, ctx.officer.id)
    if not ctx.store.add_trust_anchor(anchor):
        raise GovernanceRefused("anchor.exists", f"{anchor.subject} is already a trust anchor")
    ctx.store.append_audit("anchor.add", {"subject": anchor.subject, "fingerprint": anchor.fingerprint}, at=ctx.at, actor=ctx.officer.id)
    return {"anchor": {"subject": anchor.subject, "fingerprint": anchor.fingerprint}}


def anchor_remove(ctx: Context) -> dict[str, Any]:
    ctx.four_eyes(GOVERNANCE)
    fingerprint = ctx.param("fingerprint").lower()
    if not ctx.store.remove_trust_anchor(fingerprint):
        raise GovernanceRefused("anchor.unknown", f"no trust anchor has fingerprint {fingerprint}")
    ctx.store.append_audit("anchor.remove", {"fingerprint": fingerprint, "reason": ctx.param("reason")}, at=ctx.at, actor=ctx.officer.id)
    return {"removed": fingerprint}


def certificate_pin(ctx: Context) -> dict[str, Any]:
    require_officer(ctx.store, ctx.officer.id, GOVERNANCE)
    try:
        records = read_certificates(ctx.param("certificate").encode(), "<statement>")
    except Refused as refusal:  # a certificate refusal is the act's refusal: logged, nothing changed
        raise GovernanceRefused(refusal.rule, refusal.message) from None
    if len(records) != 1:
        raise GovernanceRefused("statement.params", "certificate.pin pins exactly one certificate")
    status = SmkiStatus.parse(ctx.optional("status") or "I")
    record = records[0].model_copy(update={"status": status, "provenance": PINNED})
    if not ctx.store.put_certificate(record):
        raise GovernanceRefused("certificate.exists", f"certificate serial {record.serial} of {record.issuer} is already in the store")
    warnings = warnings_for(record, ctx.at)
    ctx.store.append_audit(
        "certificate.pin", {**record.summary(), "reason": ctx.param("reason"), "warnings": list(warnings)},
        at=ctx.at, actor=ctx.officer.id, originator=record.subject_eui,
    )
    return {"certificate": record.summary(), "warnings": list(warnings)}


def certificate_set_status(ctx: Context) -> dict[str, Any]:
    require_officer(ctx.store, ctx.officer.id, GOVERNANCE)
    try:
        issuer, serial = issuer_key(ctx.param("issuer")), ctx.param("serial", int)
    except ValueError as exc:  # the issuer is not a distinguished name
        raise GovernanceRefused("statement.params", f"certificate.set-status: {exc}") from None
    try:
        status = SmkiStatus.parse(ctx.param("status"))
    except ValueError as exc:
        raise GovernanceRefused("statement.params", str(exc)) from None
    record = ctx.store.get_certificate(issuer, serial)
    if record is None:
        raise GovernanceRefused("certificate.unknown", f"no certificate serial {serial} of {issuer}")
    ctx.store.set_certificate_status(issuer, serial, status)
    ctx.store.append_audit(
        "certificate.set-status", {"serial": str(serial), "issuer": issuer, "from": record.status.value, "to": status.value, "reason": ctx.param("reason")},
        at=ctx.at, actor=ctx.officer.id, originator=record.subject_eui,
    )
    return {"serial": str(serial), "status": status.value}
