"""The services behind ``solr-policy certs``: importing certificate files into a store and
setting a stored certificate's SMKI status by serial."""

from __future__ import annotations

import pytest

from conftest import add_cert
from solr_policy.records import SmkiStatus
from solr_policy.smki import ImportedCertificate, RefusedFile, import_certificate_files, set_status_by_serial
from solr_policy.testing.pki import TestPki


def test_import_keeps_going_past_a_refused_file(store, tmp_path, pki, user_cert):
    bundle = tmp_path / "bundle.pem"
    second = pki.issue("90B3D51F30010001", 135)
    bundle.write_bytes(user_cert.cert_pem + second.cert_pem)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a certificate")

    results = import_certificate_files(store, [str(garbage), str(bundle), str(tmp_path / "absent.pem")], SmkiStatus.PENDING)

    refused = [r for r in results if isinstance(r, RefusedFile)]
    imported = [r for r in results if isinstance(r, ImportedCertificate)]
    assert [(r.file, r.refusal.rule) for r in refused] == [(str(garbage), "cert.unreadable"), (str(tmp_path / "absent.pem"), "cert.file")]
    assert [(r.file, r.record.serial, r.added) for r in imported] == [(str(bundle), user_cert.serial, True), (str(bundle), second.serial, True)]
    assert {(c.serial, c.status) for c in store.list_certificates()} == {(user_cert.serial, SmkiStatus.PENDING), (second.serial, SmkiStatus.PENDING)}


def test_import_leaves_a_known_certificate_as_it_is(store, tmp_path, user_cert):
    add_cert(store, user_cert, status=SmkiStatus.REVOKED)
    path = tmp_path / "user.pem"
    path.write_bytes(user_cert.cert_pem)
    (result,) = import_certificate_files(store, [str(path)], SmkiStatus.IN_USE)
    assert isinstance(result, ImportedCertificate) and result.added is False
    (stored,) = store.list_certificates()
    assert stored.status is SmkiStatus.REVOKED


def test_set_status_by_serial(store, user_cert):
    add_cert(store, user_cert)
    updated = set_status_by_serial(store, user_cert.serial, SmkiStatus.REVOKED, issuer="OU=07,  CN=T9")
    assert (updated.serial, updated.status) == (user_cert.serial, SmkiStatus.REVOKED)
    assert store.get_certificate(updated.issuer, user_cert.serial).status is SmkiStatus.REVOKED


def test_set_status_refusals(store, user_cert):
    add_cert(store, user_cert)
    other_ca = TestPki("T8")
    add_cert(store, other_ca.issue("90B3D51F30010002", 135, serial=user_cert.serial))
    with pytest.raises(LookupError, match="several issuers use serial"):
        set_status_by_serial(store, user_cert.serial, SmkiStatus.REVOKED)
    with pytest.raises(LookupError, match="no certificate with serial 7 "):
        set_status_by_serial(store, 7, SmkiStatus.REVOKED)
    with pytest.raises(ValueError, match="is not a distinguished name"):
        set_status_by_serial(store, user_cert.serial, SmkiStatus.REVOKED, issuer="T9")
    assert {c.status for c in store.list_certificates()} == {SmkiStatus.IN_USE}
