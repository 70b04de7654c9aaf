"""SMKI certificate import: facts read from on-the-fly and real ZAZ1 certificates, the issuer
key used to find them, refusals by file name, the lenient fallback, and the store round trip."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import REFERENCE, USER_EUI
from solr_policy.crypto.certs import (
    is_p256,
    issuer_key,
    public_key,
    read_certificate_file,
    read_certificates,
    record_from_der,
)
from solr_policy.testing.pki import TestPki
from solr_policy.errors import CertificateRefused
from solr_policy.records import CertRecord, SmkiStatus

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def der_of(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def spki_hash(pem: bytes) -> str:
    spki = x509.load_pem_x509_certificate(pem).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def only(records: list[CertRecord]) -> CertRecord:
    assert len(records) == 1
    return records[0]


# -- facts from on-the-fly certificates ------------------------------------------------------
class TestImportFacts:
    def test_xml_sign_certificate(self, pki):
        issued = pki.issue(USER_EUI, 135, not_before=T0, not_after=T0 + timedelta(days=365))
        record = only(read_certificates(issued.cert_pem))
        assert record.serial == issued.serial
        assert record.role == 135 and record.role_name == "XML Sign"
        assert record.subject_eui == "90B3D51F30010000"
        assert record.key_usage == ("digital_signature",)
        assert record.not_before == T0
        assert record.not_after == T0 + timedelta(days=365)
        assert record.issuer == "CN=T9,OU=07"
        assert record.spki_sha256 == spki_hash(issued.cert_pem)
        assert record.fingerprint == hashlib.sha256(der_of(issued.cert_pem)).hexdigest()
        assert record.der == der_of(issued.cert_pem)
        assert record.status is SmkiStatus.IN_USE
        assert record.lenient is False

    @pytest.mark.parametrize(
        "role, usage, name",
        [(2, "digital_signature", "Supplier"), (2, "key_agreement", "Supplier"), (137, "digital_signature", "DSP XML Sign"),
         (3, "key_agreement", "Network Operator"), (99, "digital_signature", "role 99")],
    )
    def test_roles_and_usages(self, pki, role, usage, name):
        record = only(read_certificates(pki.issue("00-DB-12-34-56-78-90-A0", role, usage=usage).cert_pem))
        assert record.role == role
        assert record.role_name == name
        assert record.key_usage == (usage,)
        assert record.subject_eui == "00DB1234567890A0"

    def test_validity_window(self, pki):
        record = only(read_certificates(pki.issue(USER_EUI, 135, not_before=T0, not_after=T0 + timedelta(days=1)).cert_pem))
        assert record.valid_at(T0)
        assert record.valid_at(T0 + timedelta(days=1))
        assert not record.valid_at(T0 - timedelta(seconds=1))
        assert not record.valid_at(T0 + timedelta(days=1, seconds=1))

    def test_same_key_same_spki_hash(self, pki):
        key = ec.generate_private_key(ec.SECP256R1())
        a = only(read_certificates(pki.issue(USER_EUI, 135, key=key).cert_pem))
        b = only(read_certificates(pki.issue(USER_EUI, 2, key=key).cert_pem))
        c = only(read_certificates(pki.issue(USER_EUI, 135).cert_pem))
        assert a.spki_sha256 == b.spki_sha256 != c.spki_sha256
        assert a.fingerprint != b.fingerprint

    def test_summary_is_json_safe_and_has_no_der(self, pki):
        record = only(read_certificates(pki.issue(USER_EUI, 135, not_after=T0).cert_pem))
        summary = record.summary()
        assert summary["serial"] == str(record.serial)
        assert summary["role"] == 135 and summary["status"] == "I" and summary["status_label"] == "In use"
        assert summary["not_after"] == "2030-01-01T00:00:00Z"
        assert "der" not in summary

    def test_public_key_is_p256(self, pki):
        record = only(read_certificates(pki.issue(USER_EUI, 135).cert_pem))
        assert is_p256(public_key(record))
        other = only(read_certificates(pki.issue(USER_EUI, 135, key=ec.generate_private_key(ec.SECP384R1())).cert_pem))
        assert not is_p256(public_key(other))


# -- issuer key --------------------------------------------------------------------------------
class TestIssuerKey:
    @pytest.mark.parametrize(
        "text",
        ["CN=U1, OU=07", "OU=07,CN=U1", "CN=U1,OU=07", " ou = 07 ,  cn=U1 ", "2.5.4.3=U1,2.5.4.11=07", "OU=07+CN=U1"],
    )
    def test_equivalent_spellings(self, text):
        assert issuer_key(text) == issuer_key("CN=U1, OU=07") == "CN=U1,OU=07"

    def test_values_are_case_sensitive(self):
        assert issuer_key("CN=u1,OU=07") != issuer_key("CN=U1,OU=07")

    def test_different_names_differ(self):
        assert issuer_key("CN=Z1,OU=07") != issuer_key("CN=U1,OU=07")

    def test_not_a_distinguished_name(self):
        with pytest.raises(ValueError, match="not a distinguished name"):
            issuer_key("just text")

    @pytest.mark.parametrize("cn", ["Z1", "A, B", "A+B", " lead", "trail ", "#hash", 'q"uote', "caf\u00e9", "back\\slash"])
    def test_rfc4514_text_of_a_certificate_issuer_finds_the_stored_record(self, cn):
        # sign.py writes cryptography's rfc4514_string() into KeyInfo; the store keys on the
        # certificate's own attribute values: both must give the same key.
        issuer = TestPki(cn)
        cert_pem = issuer.issue(USER_EUI, 135).cert_pem
        record = only(read_certificates(cert_pem))
        text = x509.load_pem_x509_certificate(cert_pem).issuer.rfc4514_string()
        assert issuer_key(text) == record.issuer
        assert f"CN={cn}" in record.issuer

    def test_escaped_backslash_before_separator(self):
        assert issuer_key("CN=a\\\\,OU=07") == "CN=a\\,OU=07"


# -- files: PEM bundles, DER, refusals ---------------------------------------------------------
class TestFiles:
    def test_pem_bundle_with_two_certificates(self, pki, tmp_path):
        a, b = pki.issue(USER_EUI, 135), pki.issue("00-DB-12-34-56-78-90-A0", 2, usage="key_agreement")
        path = tmp_path / "bundle.pem"
        path.write_bytes(b"a comment line\n" + a.cert_pem + b"\n" + b.cert_pem)
        records = read_certificate_file(path)
        assert [r.serial for r in records] == [a.serial, b.serial]
        assert [r.role for r in records] == [135, 2]
        assert records[1].key_usage == ("key_agreement",)

    def test_der_file(self, pki, tmp_path):
        issued = pki.issue(USER_EUI, 135)
        path = tmp_path / "cert.cer"
        path.write_bytes(der_of(issued.cert_pem))
        record = only(read_certificate_file(path))
        assert record.serial == issued.serial and record.role == 135 and not record.lenient

    def test_pem_with_private_key_refused(self, pki, tmp_path):
        issued = pki.issue(USER_EUI, 135)
        path = tmp_path / "with-key.pem"
        path.write_bytes(issued.cert_pem + issued.key_pem)
        with pytest.raises(CertificateRefused) as info:
            read_certificate_file(path)
        assert info.value.rule == "cert.private_key"
        assert str(path) in info.value.message and "private key" in info.value.message

    def test_garbage_refused_with_file_name(self, tmp_path):
        path = tmp_path / "garbage.crt"
        path.write_bytes(b"\x30\x82\x01\x00 this is not a certificate")
        with pytest.raises(CertificateRefused) as info:
            read_certificate_file(path)
        assert info.value.rule == "cert.unreadable"
        assert str(path) in info.value.message
        assert "strict parser" in info.value.message and "lenient parser" in info.value.message

    def test_empty_file_refused(self, tmp_path):
        path = tmp_path / "empty.pem"
        path.write_bytes(b"")
        with pytest.raises(CertificateRefused) as info:
            read_certificate_file(path)
        assert info.value.rule == "cert.unreadable" and "empty.pem" in info.value.message

    def test_pem_with_bad_base64(self, tmp_path):
        path = tmp_path / "bad.pem"
        path.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n")
        with pytest.raises(CertificateRefused) as info:
            read_certificate_file(path)
        assert info.value.rule == "cert.pem"
        assert "bad.pem" in info.value.message and "base64" in info.value.message

    def test_pem_without_certificate_block(self, pki, tmp_path):
        pub = x509.load_pem_x509_certificate(pki.issue(USER_EUI, 135).cert_pem).public_key()
        path = tmp_path / "pub.pem"
        path.write_bytes(pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        with pytest.raises(CertificateRefused) as info:
            read_certificate_file(path)
        assert info.value.rule == "cert.pem"
        assert "pub.pem" in info.value.message and "no CERTIFICATE block" in info.value.message

    def test_pem_block_holding_garbage_der(self, tmp_path):
        path = tmp_path / "junk.pem"
        path.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n")
        with pytest.raises(CertificateRefused) as info:
            read_certificate_file(path)
        assert info.value.rule == "cert.unreadable" and "junk.pem" in info.value.message

    def test_missing_file(self, tmp_path):
        path = tmp_path / "nope.pem"
        with pytest.raises(CertificateRefused) as info:
            read_certificate_file(path)
        assert info.value.rule == "cert.file"
        assert "nope.pem" in info.value.message

    def test_source_name_used_for_bytes(self):
        with pytest.raises(CertificateRefused) as info:
            read_certificates(b"nonsense", source="upload-17")
        assert info.value.message.startswith("upload-17:")


# -- the lenient path --------------------------------------------------------------------------
def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, header length, content length) of the DER TLV at pos."""
    tag, first = data[pos], data[pos + 1]
    if first < 0x80:
        return tag, 2, first
    n = first & 0x7F
    return tag, 2 + n, int.from_bytes(data[pos + 2 : pos + 2 + n], "big")


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv_bytes(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def non_minimal_serial(der: bytes) -> bytes:
    """Re-encode the serial INTEGER with a superfluous leading 0x00 (a BER, not DER, integer)
    and fix the lengths of the enclosing TBSCertificate and Certificate SEQUENCEs."""
    _, h, n = _tlv(der, 0)
    cert = der[h : h + n]
    _, h, n = _tlv(cert, 0)
    tbs, after_tbs = cert[h : h + n], cert[h + n :]
    _, h, n = _tlv(tbs, 0)  # [0] version
    version, rest = tbs[: h + n], tbs[h + n :]
    tag, h, n = _tlv(rest, 0)
    assert tag == 0x02
    serial, rest = rest[h : h + n], rest[h + n :]
    new_tbs = _tlv_bytes(0x30, version + _tlv_bytes(0x02, b"\x00" + serial) + rest)
    return _tlv_bytes(0x30, new_tbs + after_tbs)


class TestLenient:
    def test_non_minimal_serial_is_read_leniently(self, pki, tmp_path):
        issued = pki.issue(USER_EUI, 135, serial=0x1234ABCD, not_before=T0, not_after=T0 + timedelta(days=30))
        strict = only(read_certificates(issued.cert_pem))
        quirky = non_minimal_serial(der_of(issued.cert_pem))
        with pytest.raises(ValueError):
            x509.load_der_x509_certificate(quirky)  # cryptography really refuses it

        path = tmp_path / "quirky.cer"
        path.write_bytes(quirky)
        record = only(read_certificate_file(path))
        assert record.lenient is True
        assert record.serial == 0x1234ABCD
        assert record.role == 135
        assert record.subject_eui == "90B3D51F30010000"
        assert record.key_usage == ("digital_signature",)
        assert (record.not_before, record.not_after) == (T0, T0 + timedelta(days=30))
        # the same facts, under the same keys, as the strict reader gives for the original
        assert record.issuer == strict.issuer == "CN=T9,OU=07"
        assert record.subject == strict.subject
        assert record.spki_sha256 == strict.spki_sha256
        assert record.fingerprint == hashlib.sha256(quirky).hexdigest() != strict.fingerprint
        assert is_p256(public_key(record))

    def test_lenient_pem_too(self, pki):
        import base64

        quirky = non_minimal_serial(der_of(pki.issue(USER_EUI, 2, usage="key_agreement").cert_pem))
        pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(quirky) + b"-----END CERTIFICATE-----\n"
        record = only(read_certificates(pem))
        assert record.lenient and record.role == 2 and record.key_usage == ("key_agreement",)

    def test_record_from_der_truncated(self, pki):
        der = der_of(pki.issue(USER_EUI, 135).cert_pem)
        with pytest.raises(CertificateRefused) as info:
            record_from_der(der[:-10], "cut.der")
        assert info.value.rule == "cert.unreadable" and "cut.der" in info.value.message


# -- store round trip --------------------------------------------------------------------------
class TestStoreRoundTrip:
    def test_put_get_find(self, store, pki):
        xml = only(read_certificates(pki.issue(USER_EUI, 135).cert_pem))
        ds = only(read_certificates(pki.issue(USER_EUI, 2).cert_pem))
        other = only(read_certificates(pki.issue("00-DB-12-34-56-78-90-A0", 135).cert_pem))
        assert store.put_certificate(xml) is True
        assert store.put_certificate(ds) is True
        assert store.put_certificate(other) is True

        got = store.get_certificate("CN=T9,OU=07", xml.serial)
        assert got == xml  # every fact survives, timestamps and DER included
        assert store.get_certificate(issuer_key("OU=07, CN=T9"), xml.serial) == xml
        assert store.get_certificate("CN=T9,OU=07", xml.serial + 1) is None
        assert store.get_certificate("CN=Other,OU=07", xml.serial) is None

        assert {r.serial for r in store.find_certificates(eui="90B3D51F30010000")} == {xml.serial, ds.serial}
        assert [r.serial for r in store.find_certificates(eui="90B3D51F30010000", role=135)] == [xml.serial]
        assert {r.serial for r in store.find_certificates(role=135)} == {xml.serial, other.serial}
        assert [r.serial for r in store.find_certificates(spki_sha256=ds.spki_sha256)] == [ds.serial]
        assert store.find_certificates(eui="FFFFFFFFFFFFFFFF") == []
        assert len(store.list_certificates()) == 3

    def test_huge_serial_round_trips(self, store, pki):
        record = only(read_certificates(pki.issue(USER_EUI, 135, serial=2**159 - 1).cert_pem))
        store.put_certificate(record)
        assert store.get_certificate(record.issuer, 2**159 - 1).serial == 2**159 - 1

    def test_set_status(self, store, pki):
        record = only(read_certificates(pki.issue(USER_EUI, 135).cert_pem))
        store.put_certificate(record)
        assert store.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED) is True
        assert store.get_certificate(record.issuer, record.serial).status is SmkiStatus.REVOKED
        assert store.set_certificate_status(record.issuer, record.serial + 1, SmkiStatus.REVOKED) is False

    def test_put_twice_keeps_status(self, store, pki):
        record = only(read_certificates(pki.issue(USER_EUI, 135).cert_pem))
        assert store.put_certificate(record) is True
        store.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
        assert store.put_certificate(record) is False  # re-import of an In use copy
        assert store.get_certificate(record.issuer, record.serial).status is SmkiStatus.REVOKED

    def test_lenient_flag_round_trips(self, store, pki):
        record = only(read_certificates(non_minimal_serial(der_of(pki.issue(USER_EUI, 135).cert_pem))))
        store.put_certificate(record)
        assert store.get_certificate(record.issuer, record.serial).lenient is True

    @pytest.mark.parametrize(
        "text, status",
        [("R", SmkiStatus.REVOKED), ("revoked", SmkiStatus.REVOKED), ("In use", SmkiStatus.IN_USE),
         ("not-in-use", SmkiStatus.NOT_IN_USE), (" p ", SmkiStatus.PENDING), ("E", SmkiStatus.EXPIRED)],
    )
    def test_status_parse(self, text, status):
        assert SmkiStatus.parse(text) is status

    def test_status_parse_unknown(self):
        with pytest.raises(ValueError, match="unknown SMKI status 'X'"):
            SmkiStatus.parse("X")


# -- the real ZAZ1 test PKI --------------------------------------------------------------------
REFERENCE_FACTS = {
    # file: (role, EUI, usage, expired after 2025-10-29)
    "Z1-supplier-ds.pem": (2, "90B3D51F30010000", ("digital_signature",), True),
    "Z1-supplier-ka.pem": (2, "90B3D51F30010000", ("key_agreement",), True),
    "xml-sign-00DB123456780004-ds.pem": (135, "00DB123456780004", ("digital_signature",), False),
    "xml-sign-90B3D51F30010000-ds.pem": (135, "90B3D51F30010000", ("digital_signature",), False),
    "dsp-xml-sign-90B3D51F30000002-ds.pem": (137, "90B3D51F30000002", ("digital_signature",), False),
}


def _reference_cert_files() -> list[Path]:
    files = [p for p in sorted((REFERENCE / "zaz1-test-pki").glob("*.pem")) if not p.name.endswith(".key.pem")]
    return files + sorted((REFERENCE / "signed-messages").glob("*.pem"))


@pytest.mark.reference
def test_reference_certificates_import(store):
    files = _reference_cert_files()
    assert {p.name for p in files} == set(REFERENCE_FACTS)
    expiry = datetime(2025, 10, 29, 23, 59, 59, tzinfo=timezone.utc)
    for path in files:
        role, eui, usage, expired = REFERENCE_FACTS[path.name]
        record = only(read_certificate_file(path))
        assert (record.role, record.subject_eui, record.key_usage) == (role, eui, usage), path.name
        assert record.issuer == issuer_key("CN=Z1, OU=07"), path.name
        assert is_p256(public_key(record)), path.name
        if expired:
            assert record.not_after == expiry
            assert not record.valid_at(datetime(2025, 10, 30, tzinfo=timezone.utc))
            assert record.valid_at(datetime(2025, 10, 29, tzinfo=timezone.utc))
        else:
            assert record.valid_at(datetime(2026, 6, 1, tzinfo=timezone.utc))
        assert store.put_certificate(record)
    assert len(store.list_certificates()) == len(REFERENCE_FACTS)
    # the DCC certificate whose serial the signed response's KeyInfo does not name
    (dsp,) = store.find_certificates(role=137)
    assert dsp.serial == 0x7DAC7283AAD29BDD23C9EFBFDDB52A41
    # the two ZAZ1 supplier certificates use different keys
    ds, ka = (only(read_certificate_file(REFERENCE / "zaz1-test-pki" / n)) for n in ("Z1-supplier-ds.pem", "Z1-supplier-ka.pem"))
    assert ds.spki_sha256 != ka.spki_sha256


@pytest.mark.reference
def test_reference_private_keys_are_refused_as_certificates():
    with pytest.raises(CertificateRefused) as info:
        read_certificate_file(REFERENCE / "zaz1-test-pki" / "xml-sign-90B3D51F30010000-ds.key.pem")
    assert info.value.rule == "cert.private_key"
    assert "xml-sign-90B3D51F30010000-ds.key.pem" in info.value.message
