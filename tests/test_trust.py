"""SMKI trust anchors: certificates and CRLs carry an anchor's authority, look-alikes do not;
legacy certificates that write their role in decimal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509

from solr_policy.crypto.certs import read_certificates, role_written_in_decimal
from solr_policy.crypto.trust import check_anchor, crl_signed_by_anchor, issued_by_anchor, load_certificate, load_crl
from solr_policy.testing.pki import TestPki

NOW = datetime.now(timezone.utc)
USER = "90B3D51F30010000"


@pytest.fixture(scope="module")
def ca() -> TestPki:
    return TestPki("Z9")


@pytest.fixture(scope="module")
def anchor(ca) -> x509.Certificate:
    return load_certificate(ca.ca_cert_pem)


def test_a_ca_certificate_can_be_an_anchor_a_leaf_cannot(ca, anchor):
    assert check_anchor(anchor, NOW) is None
    leaf = load_certificate(ca.issue(USER, 135).cert_pem)
    assert "not a CA certificate" in check_anchor(leaf, NOW)
    assert "not valid" in check_anchor(anchor, NOW + timedelta(days=365 * 30))


def test_a_certificate_the_anchor_issued_is_trusted(ca, anchor):
    verdict = issued_by_anchor(load_certificate(ca.issue(USER, 135).cert_pem), [anchor], NOW)
    assert verdict.trusted and "Z9" in verdict.anchor


def test_a_look_alike_ca_with_the_same_name_and_another_key_is_not(ca, anchor):
    look_alike = TestPki("Z9")  # same issuer name, the victim's EUI and role, another key
    forged = load_certificate(look_alike.issue(USER, 135).cert_pem)
    assert forged.issuer == anchor.subject
    verdict = issued_by_anchor(forged, [anchor], NOW)
    assert not verdict.trusted and "verifies its signature" in verdict.reason


def test_a_certificate_from_an_unknown_issuer_is_not(anchor):
    verdict = issued_by_anchor(load_certificate(TestPki("Q1").issue(USER, 135).cert_pem), [anchor], NOW)
    assert not verdict.trusted and "no trust anchor is named" in verdict.reason


def test_an_expired_certificate_is_not(ca, anchor):
    old = ca.issue(USER, 135, not_before=NOW - timedelta(days=800), not_after=NOW - timedelta(days=1))
    assert not issued_by_anchor(load_certificate(old.cert_pem), [anchor], NOW).trusted


def test_a_crl_the_anchor_signed_is_trusted_a_look_alike_or_stale_one_is_not(ca, anchor):
    crl = load_crl(ca.crl_pem([1234, 5678]))
    assert crl_signed_by_anchor(crl, [anchor], NOW).trusted
    assert {r.serial_number for r in crl} == {1234, 5678}
    forged = load_crl(TestPki("Z9").crl_pem([1234]))
    assert not crl_signed_by_anchor(forged, [anchor], NOW).trusted
    assert "stale" in crl_signed_by_anchor(crl, [anchor], NOW + timedelta(days=8)).reason


@pytest.mark.parametrize("ou, legacy", [("137", True), ("89", False)])
def test_the_dcc_signing_role_reads_from_decimal_and_hex_ous(ca, ou, legacy):
    record = read_certificates(ca.issue("90B3D51F30000002", 137, ou=ou).cert_pem)[0]
    assert record.role == 137 and record.role_name == "DSP XML Sign"
    assert role_written_in_decimal(record) is legacy


def test_two_hex_digits_stay_hex(ca):
    assert read_certificates(ca.issue(USER, 135, ou="87").cert_pem)[0].role == 135
    assert read_certificates(ca.issue(USER, 2, ou="02").cert_pem)[0].role == 2
    assert read_certificates(ca.issue(USER, 2, ou="999").cert_pem)[0].role is None  # not a role, either way


def test_a_response_signed_with_a_legacy_decimal_ou_certificate_verifies(ca, store):
    from solr_policy.crypto.verify import Verifier
    from solr_policy.testing.scenario import DCC_EUI, AlertBuilder

    legacy = ca.issue(DCC_EUI, 137, ou="137")
    for record in read_certificates(legacy.cert_pem):
        store.put_certificate(record)
    raw = AlertBuilder(legacy).device_alert("00DB1234567890B0", "90B3D51F300E0001")
    verified = Verifier(store).verify(raw)
    assert verified.kind == "Response" and verified.signer.certificate.role == 137
