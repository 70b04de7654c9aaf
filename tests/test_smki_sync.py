"""``certs sync``: an SMKI repository extract streamed; Organisation Certificates that chain
to a trust anchor imported with their status, statuses of known certificates changed and
logged, Device Certificates skipped, everything else counted; gzip or plain XML."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from solr_policy.cli import cli
from solr_policy.records import SmkiStatus, TrustAnchor
from solr_policy.store import SqliteStore
from solr_policy.testing.pki import TestPki

NS = "http://www.smartdcc.co.uk/smki/ws"  # any namespace: records are found by local name


def der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def record(body: bytes | None = None, *, status: str = "I", device: bool = False, serial: int | None = None) -> str:
    parts = [f"<s:CertificateStatus>{status}</s:CertificateStatus>"]
    if body is not None:
        parts.append(f"<s:CertificateBody>{base64.b64encode(body).decode()}</s:CertificateBody>")
    if serial is not None:
        parts.append(f"<s:CertificateSerial>{serial}</s:CertificateSerial>")
    parts.append("<s:CertificateSubjectAltName>00-DB-00-00-00-00-00-01</s:CertificateSubjectAltName>" if device
                 else "<s:CertificateSubjectName>CN=x</s:CertificateSubjectName>")
    return f"<s:CertificateResponse>{''.join(parts)}</s:CertificateResponse>"


def extract(records: list[str]) -> bytes:
    return f'<?xml version="1.0"?>\n<s:Extract xmlns:s="{NS}"><s:Certificates>{"".join(records)}</s:Certificates></s:Extract>'.encode()


@pytest.fixture()
def db(tmp_path) -> tuple[Path, TestPki]:
    path = tmp_path / "solr.db"
    pki = TestPki("SYNC")
    anchor = der(pki.ca_cert_pem)
    store = SqliteStore(path)
    store.add_trust_anchor(TrustAnchor(fingerprint=hashlib.sha256(anchor).hexdigest(), subject="OU=07,CN=SYNC", der=anchor,
                                       added_at=datetime.now(timezone.utc), added_by="gov-alice"))
    store.close()
    return path, pki


def run(path: Path, file: Path):
    return CliRunner().invoke(cli, ["--db", str(path), "--log-level", "WARNING", "certs", "sync", str(file)])


def test_a_full_extract_then_a_delta(db, tmp_path):
    path, pki = db
    a, b = pki.issue("90B3D51F300F0001", 135), pki.issue("90B3D51F300F0002", 135)
    stranger = TestPki("ELSEWHERE").issue("90B3D51F300F0003", 135)
    full = tmp_path / "SMKIKR_FULL_2026-11-22.xml.gz"
    full.write_bytes(gzip.compress(extract(
        [record(der(a.cert_pem)), record(b"\x30\x03\x02\x01\x01", device=True)] * 1
        + [record(b"not used", device=True) for _ in range(50)]
        + [record(der(b.cert_pem), status="N"), record(der(stranger.cert_pem)), "<s:CertificateResponse><s:CertificateBody>@@</s:CertificateBody></s:CertificateResponse>"]
    )))
    result = run(path, full)
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert (counts["records"], counts["imported"], counts["device_skipped"], counts["untrusted"], counts["unreadable"]) == (55, 2, 51, 1, 1)

    serial_b = x509.load_pem_x509_certificate(b.cert_pem).serial_number
    delta = tmp_path / "SMKIKR_DELT_2026-11-23.xml"
    delta.write_bytes(extract([record(der(a.cert_pem), status="R"), record(der(a.cert_pem), status="R"),
                               record(serial=serial_b, status="I"), record(serial=12345, status="R")]))
    counts = json.loads(run(path, delta).stdout)
    assert (counts["status_changed"], counts["unchanged"], counts["status_applied"], counts["unknown_serial"]) == (1, 1, 1, 1)
    # Every count is in the summary, zeros included (README, certs sync), so a script can read any.
    assert set(counts) == {"file", "records", "imported", "device_skipped", "untrusted", "unreadable", "status_changed",
                           "unchanged", "status_applied", "unknown_serial"}
    assert (counts["imported"], counts["device_skipped"], counts["untrusted"], counts["unreadable"]) == (0, 0, 0, 0)
    store = SqliteStore(path)
    try:
        statuses = {c.subject_eui: c.status for c in store.list_certificates()}
        assert statuses == {"90B3D51F300F0001": SmkiStatus.REVOKED, "90B3D51F300F0002": SmkiStatus.IN_USE}
        logged = [e.payload_data() for e in store.audit_entries(kind="certificate.status")]
        assert [(e["status"], e["source"]) for e in logged] == [("R", f"{delta} record 1"), ("I", f"{delta} record 3")]
        assert len(store.audit_entries(kind="certificate.import")) == 2
        assert store.verify_audit().intact
    finally:
        store.close()


def test_an_unreadable_extract_is_a_usage_error(db, tmp_path):
    path, _ = db
    broken = tmp_path / "broken.xml.gz"
    broken.write_bytes(gzip.compress(b"<a><b></a>"))
    result = run(path, broken)
    assert result.exit_code == 2 and "cannot read" in result.output and "Traceback" not in result.output
    assert run(path, tmp_path / "missing.xml.gz").exit_code == 2
