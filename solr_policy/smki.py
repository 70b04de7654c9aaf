"""SMKI Organisation Certificates in a store: importing certificate files and setting a
stored certificate's SMKI status by its serial (the services behind ``solr-policy certs``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from solr_policy.crypto.certs import issuer_key, read_certificate_file
from solr_policy.errors import Refused
from solr_policy.records import CertRecord, SmkiStatus
from solr_policy.serials import select_by_serial
from solr_policy.store.base import CertificateStore


@dataclass(frozen=True, slots=True)
class ImportedCertificate:
    """One certificate of an imported file; ``added`` False: it was already known, and is
    kept as it was."""

    file: str
    record: CertRecord
    added: bool


@dataclass(frozen=True, slots=True)
class RefusedFile:
    """A file none of whose certificates could be imported."""

    file: str
    refusal: Refused


def import_certificate_files(
    store: CertificateStore, files: Iterable[str], status: SmkiStatus
) -> list[ImportedCertificate | RefusedFile]:
    """Every certificate of each PEM or DER file, new ones with ``status``. A file that cannot
    be read is refused by name; the other files still import."""
    results: list[ImportedCertificate | RefusedFile] = []
    for name in files:
        try:
            records = read_certificate_file(name)
        except Refused as refusal:
            results.append(RefusedFile(name, refusal))
            continue
        for record in records:
            record = record.model_copy(update={"status": status})
            results.append(ImportedCertificate(name, record, added=store.put_certificate(record)))
    return results


def set_status_by_serial(store: CertificateStore, serial: int, status: SmkiStatus, issuer: str | None = None) -> CertRecord:
    """Give the one stored certificate with ``serial`` (from ``issuer``, a distinguished name
    in any order and spacing, when given) the SMKI ``status``; returns it as it now is.

    ``LookupError`` when no certificate, or several and no issuer, match; ``ValueError`` when
    ``issuer`` is not a distinguished name.
    """
    found = select_by_serial(store.list_certificates(), serial, issuer_key(issuer) if issuer else None)
    store.set_certificate_status(found.issuer, found.serial, status)
    return found.model_copy(update={"status": status})
