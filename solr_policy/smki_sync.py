"""Sync from an SMKI repository extract (SEC MP147: ``SMKIKR_FULL_*.xml.gz`` weekly,
``SMKIKR_DELT_*.xml.gz`` daily), streamed in constant memory.

What the reader assumes (the extract's root element is not published to us):

- the file is gzip (``.gz``) holding one XML document, or that XML document itself;
- a **record** is any element whose local name is ``CertificateResponse`` (the Web Service's
  retrieval shape) or ``Result`` (its search shape), in any namespace, at any depth;
  everything else is only a container;
- in a record, children by local name: ``CertificateBody`` (the DER certificate, base64),
  ``CertificateSubjectName`` (present: an Organisation Certificate) or
  ``CertificateSubjectAltName`` (present: a Device Certificate), ``CertificateStatus``
  (P, I, N, E, R), ``CertificateSerial`` (decimal or hex as ``smki`` reads serials);
- Device Certificates are skipped without decoding (a record with a ``CertificateSubjectAltName``);
- an Organisation Certificate with a body not yet in the store is imported through
  ``governance.certificates.import_certificates``: it must chain to a trust anchor (else it is
  counted as untrusted, not stored), with the record's status;
- a certificate already in the store has its status set when the record's differs, with a
  ``certificate.status`` log entry (``source``: the file and record number); a record with a
  serial and a status but no body (a delta's status change) sets the status of the one stored
  certificate with that serial, logged the same way; a serial the store does not hold (or
  holds from several issuers) is counted, not an error.

Elements are cleared as soon as their record is read, and earlier siblings dropped, so memory
does not grow with the file. The XML parser is hardened as everywhere (no DTD, no entities,
no network).
"""

from __future__ import annotations

import base64
import binascii
import gzip
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from lxml import etree

from solr_policy.crypto.certs import read_certificates
from solr_policy.errors import Refused
from solr_policy.governance.certificates import import_certificates
from solr_policy.records import SmkiStatus
from solr_policy.serials import parse_serial, select_by_serial
from solr_policy.store.base import Store

RECORDS = ("CertificateResponse", "Result")


def _open(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    stream: IO[bytes] = gzip.open(path, "rb") if gzipped else path.open("rb")  # type: ignore[assignment]
    return stream


def _fields(record: etree._Element) -> dict[str, str]:
    return {etree.QName(child).localname: (child.text or "").strip() for child in record if isinstance(child.tag, str)}


# Every count of the summary, zeros included: a script reads the keys it knows, whatever the file held.
SUMMARY = ("records", "imported", "device_skipped", "untrusted", "unreadable", "status_changed", "unchanged",
           "status_applied", "unknown_serial")


def sync_extract(path: str | Path, store: Store, *, at: datetime | None = None,
                 progress: Callable[[Counter[str]], None] | None = None) -> dict[str, Any]:
    """Apply the extract at ``path``; counts of what each record came to."""
    path = Path(path)
    when = at or datetime.now(timezone.utc)
    counts: Counter[str] = Counter()
    with _open(path) as stream:
        events = etree.iterparse(stream, events=("end",), resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=False, remove_comments=True, remove_pis=True)
        for _, element in events:
            if not isinstance(element.tag, str) or etree.QName(element).localname not in RECORDS:
                continue
            counts["records"] += 1
            _apply(_fields(element), store, f"{path} record {counts['records']}", when, counts)
            element.clear()
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]
            if progress is not None and counts["records"] % 10_000 == 0:
                progress(counts)
    return {"file": str(path), **{name: 0 for name in SUMMARY}, **counts}


def _apply(fields: dict[str, str], store: Store, source: str, at: datetime, counts: Counter[str]) -> None:
    if "CertificateSubjectAltName" in fields:
        counts["device_skipped"] += 1
        return
    status = _status(fields.get("CertificateStatus"))
    body = fields.get("CertificateBody")
    if body:
        try:
            der = base64.b64decode(body, validate=True)
            (record,) = read_certificates(der, source)
        except (binascii.Error, ValueError, Refused):
            counts["unreadable"] += 1
            return
        known = store.get_certificate(record.issuer, record.serial)
        if known is None:
            imported = import_certificates(store, der, source=source, at=at, status=status or SmkiStatus.IN_USE)
            counts["imported" if imported and imported[0].imported else "untrusted"] += 1
            return
        _set_status(store, known.serial, known.issuer, known.status, status, source, at, counts)
        return
    serial_text = fields.get("CertificateSerial")
    if not serial_text or status is None:
        counts["unreadable"] += 1
        return
    try:
        serial = parse_serial(serial_text)
    except ValueError:
        counts["unreadable"] += 1
        return
    try:
        with store.transaction():
            found = select_by_serial(store.find_certificates(), serial)  # LookupError: none, or several issuers
            store.set_certificate_status(found.issuer, found.serial, status)
            store.append_audit("certificate.status", {"serial": str(serial), "issuer": found.issuer, "status": status.value,
                                                      "source": source}, at=at)
    except LookupError:
        counts["unknown_serial"] += 1
        return
    counts["status_applied"] += 1


def _set_status(store: Store, serial: int, issuer: str, current: SmkiStatus, status: SmkiStatus | None,
                source: str, at: datetime, counts: Counter[str]) -> None:
    if status is None or status is current:
        counts["unchanged"] += 1
        return
    with store.transaction():
        store.set_certificate_status(issuer, serial, status)
        store.append_audit("certificate.status", {"serial": str(serial), "issuer": issuer, "status": status.value, "source": source}, at=at)
    counts["status_changed"] += 1


def _status(text: str | None) -> SmkiStatus | None:
    if not text:
        return None
    try:
        return SmkiStatus.parse(text)
    except ValueError:
        return None
