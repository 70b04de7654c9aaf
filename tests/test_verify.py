"""Signature verification of DUIS messages: the attack corpus, the DUIS algorithm profile,
the signer certificate checks (role, usage, validity at the decision time, SMKI status, key
separation, curve), and interoperability with the real ZAZ1 keys and a DCC-signed response."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner

from conftest import REFERENCE, USER_EUI, add_cert, request_xml, signed
from solr_policy.crypto.certs import read_certificate_file, read_certificates
from solr_policy.crypto.sign import key_info_for, load_private_key, sign_duis
from solr_policy.crypto.verify import Verifier
from solr_policy.duis.models import OtherBody, UpdatePaymentMode
from solr_policy.duis.parser import NS_SR
from solr_policy.errors import ParseRefused, Refused, SignatureRefused
from solr_policy.records import SmkiStatus
from test_certs import der_of, non_minimal_serial

NOW = datetime.now(timezone.utc).replace(microsecond=0)
OTHER_EUI = "90-B3-D5-1F-30-01-00-99"
PREPAYMENT_BODY = (
    "<sr:UpdatePaymentMode><sr:Prepayment><sr:SuspendDebtDisabled>true</sr:SuspendDebtDisabled>"
    "<sr:SuspendDebtEmergency>true</sr:SuspendDebtEmergency>"
    "<sr:DisablementThreshold>1</sr:DisablementThreshold></sr:Prepayment></sr:UpdatePaymentMode>"
)


@pytest.fixture()
def ready(store, user_cert):
    """A store holding the user's XML signing certificate."""
    add_cert(store, user_cert)
    return store


@pytest.fixture(scope="module")
def good(user_cert) -> bytes:
    return signed(request_xml(counter=10), user_cert)


def refusal(store, raw: bytes, *, now: datetime | None = None, request: bool = True) -> Refused:
    verifier = Verifier(store)
    with pytest.raises(Refused) as info:
        (verifier.verify_request if request else verifier.verify)(raw, now=now)
    return info.value


def sign_with(issued, document: bytes | None = None, *, key=None, key_info="issuer-serial", reference_uri=None, **algorithms) -> bytes:
    """Sign with signxml directly, to make signatures outside the DUIS profile."""
    options = dict(
        signature_algorithm=SignatureMethod.ECDSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    options.update(algorithms)
    extra: dict = {}
    if reference_uri:
        extra["reference_uri"] = reference_uri
    if key_info == "issuer-serial":
        extra["key_info"] = key_info_for(x509.load_pem_x509_certificate(issued.cert_pem))
    elif key_info == "certificate":
        extra["cert"] = issued.cert_pem.decode()
    root = etree.fromstring(document or request_xml())
    result = XMLSigner(**options).sign(root, key=key if key is not None else load_private_key(issued.key_pem), **extra)
    return etree.tostring(result, xml_declaration=True, encoding="UTF-8")


# -- acceptance ------------------------------------------------------------------------------------
class TestAccepts:
    def test_valid_request(self, ready, user_cert, good):
        verified = Verifier(ready).verify_request(good)
        rid = verified.request.header.request_id
        assert (rid.originator, rid.target, rid.counter) == ("90B3D51F30010000", "00DB1234567890A0", 10)
        assert isinstance(verified.request.body, UpdatePaymentMode) and verified.request.body.mode == "credit"
        assert verified.signer.certificate.serial == user_cert.serial
        assert verified.signer.resolved_by == "issuer-serial"
        summary = verified.signer.summary()
        assert summary["serial"] == str(user_cert.serial) and summary["role"] == 135
        assert summary["subject_eui"] == "90B3D51F30010000"

    def test_verify_returns_the_signed_content(self, ready, good):
        message = Verifier(ready).verify(good)
        assert message.kind == "Request"
        assert message.signed_root.tag == f"{{{NS_SR}}}Request"
        assert message.notes == ()
        # the enveloped signature is not part of what was signed
        assert message.signed_root.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is None

    def test_comment_splitting_the_counter_is_refused(self, ready, good):
        # A comment is not signed content (exclusive C14N without comments): splitting the
        # counter with one leaves the signature valid, so it is refused at the boundary.
        tampered = good.replace(b":10</sr:RequestID>", b":1<!---->0</sr:RequestID>")
        assert tampered != good
        assert refusal(ready, tampered).rule == "xml.comment"

    def test_content_hidden_in_ds_object_is_refused(self, ready, good):
        # XMLDSig allows ds:Object; the DUIS profile has none, so it is refused before anything
        # could read it (signxml alone would accept it and return only the signed Credit body).
        hidden = f"<ds:Object><sr:Body>{PREPAYMENT_BODY}</sr:Body></ds:Object>".encode()
        wrapped = good.replace(b"</ds:KeyInfo>", b"</ds:KeyInfo>" + hidden)
        assert refusal(ready, wrapped).rule == "signature.object"

    def test_signed_bytes_are_what_the_digest_covers(self, ready, good):
        message = Verifier(ready).verify(good)
        digest = re.search(rb"<ds:DigestValue>([^<]+)</ds:DigestValue>", good).group(1)
        assert hashlib.sha256(message.signed_bytes).digest() == base64.b64decode(digest)
        assert message.signed_sha256 == hashlib.sha256(message.signed_bytes).hexdigest()
        assert message.signed_bytes == etree.tostring(message.signed_root, method="c14n", exclusive=True)

    def test_backends(self, ready, good):
        fast, reference = Verifier(ready), Verifier(ready, backend="signxml")
        assert (fast.backend, reference.backend) == ("fast", "signxml")
        assert fast.verify(good).signed_bytes == reference.verify(good).signed_bytes
        with pytest.raises(ValueError, match="unknown verifier backend 'xmlsec'"):
            Verifier(ready, backend="xmlsec")

    def test_other_srv_body(self, ready, user_cert):
        raw = signed(request_xml(srv="1.5", body="<sr:UpdateMeterBalance/>"), user_cert)
        body = Verifier(ready).verify_request(raw).request.body
        assert isinstance(body, OtherBody) and body.element == "UpdateMeterBalance"

    def test_decision_time_is_honoured(self, store, pki):
        issued = pki.issue(USER_EUI, 135, not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=30))
        add_cert(store, issued)
        raw = signed(request_xml(), issued)
        assert Verifier(store).verify_request(raw).request.header.request_id.counter == 1
        assert Verifier(store).verify_request(raw, now=NOW + timedelta(days=29)) is not None
        err = refusal(store, raw, now=NOW + timedelta(days=31))
        assert err.rule == "signature.certificate_expired"
        err = refusal(store, raw, now=NOW - timedelta(days=2))
        assert err.rule == "signature.certificate_not_yet_valid"

    def test_expired_certificate_accepted_at_a_past_decision_time(self, store, pki):
        issued = pki.issue(USER_EUI, 135, not_before=NOW - timedelta(days=60), not_after=NOW - timedelta(days=30))
        add_cert(store, issued)
        raw = signed(request_xml(), issued)
        assert refusal(store, raw).rule == "signature.certificate_expired"
        assert Verifier(store).verify_request(raw, now=NOW - timedelta(days=45)).signer.certificate.serial == issued.serial

    def test_renewed_xml_certificate_on_the_same_key_is_not_a_separation_breach(self, store, pki, user_cert):
        # MP104 forbids sharing with Digital Signing / Key Agreement, not with another XML Sign cert.
        add_cert(store, user_cert)
        add_cert(store, pki.issue(USER_EUI, 135, key=user_cert.key))
        assert Verifier(store).verify_request(signed(request_xml(), user_cert)) is not None

    def test_issuer_name_needing_escapes(self, store):
        from solr_policy.testing.pki import TestPki

        issued = TestPki("Issuer, with comma").issue(USER_EUI, 135)
        add_cert(store, issued)
        assert Verifier(store).verify_request(signed(request_xml(), issued)).signer.certificate.serial == issued.serial


# -- hostile XML in a signed message -------------------------------------------------------------
class TestHostileXml:
    def _with_doctype(self, good: bytes, doctype: bytes) -> bytes:
        head, _, rest = good.partition(b"?>")
        return head + b"?>" + doctype + rest

    def test_xxe(self, ready, good):
        raw = self._with_doctype(good, b'<!DOCTYPE sr:Request [<!ENTITY x SYSTEM "file:///etc/passwd">]>')
        raw = raw.replace(b"<sr:ServiceReference>1.6", b"<sr:ServiceReference>&x;1.6")
        err = refusal(ready, raw)
        assert isinstance(err, ParseRefused) and err.rule == "xml.dtd"

    def test_billion_laughs(self, ready, good):
        entities = b'<!ENTITY a "aaaaaaaaaa">' + b"".join(
            f'<!ENTITY a{i} "{("&a" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
        )
        raw = self._with_doctype(good, b"<!DOCTYPE sr:Request [" + entities + b"]>")
        raw = raw.replace(b"</sr:Header>", b"&a9;</sr:Header>")
        assert refusal(ready, raw).rule == "xml.dtd"

    def test_external_dtd(self, ready, good):
        raw = self._with_doctype(good, b'<!DOCTYPE sr:Request SYSTEM "http://attacker.example/x.dtd">')
        assert refusal(ready, raw).rule == "xml.dtd"

    def test_doctype_in_utf16_signed_message(self, ready, good):
        text = self._with_doctype(good, b'<!DOCTYPE sr:Request SYSTEM "file:///dev/stdin">').decode()
        assert "encoding='UTF-8'" in text
        raw = text.replace("encoding='UTF-8'", "encoding='UTF-16'").encode("utf-16")
        assert refusal(ready, raw).rule == "xml.encoding"  # DUIS messages are UTF-8

    def test_processing_instruction(self, ready, good):
        raw = good.replace(b"<sr:Header>", b"<sr:Header><?evil?>")
        assert refusal(ready, raw).rule == "xml.processing_instruction"


# -- signature shape and wrapping ------------------------------------------------------------------
def _signature(raw: bytes) -> bytes:
    match = re.search(rb"<ds:Signature.*</ds:Signature>", raw, re.S)
    assert match
    return match.group(0)


class TestShape:
    def test_unsigned(self, ready):
        err = refusal(ready, request_xml())
        assert err.rule == "signature.missing"

    def test_second_signature(self, ready, good):
        sig = _signature(good)
        raw = good.replace(sig, sig + sig)
        err = refusal(ready, raw)
        assert err.rule == "signature.multiple" and "found 2" in err.message

    def test_second_signature_hidden_in_body(self, ready, good):
        sig = _signature(good)
        raw = good.replace(b"</sr:UpdatePaymentMode>", b"</sr:UpdatePaymentMode>" + sig)
        assert refusal(ready, raw).rule == "signature.multiple"

    def test_signature_moved_inside_body(self, ready, good):
        sig = _signature(good)
        raw = good.replace(sig, b"").replace(b"</sr:Body>", sig + b"</sr:Body>")
        err = refusal(ready, raw)
        assert err.rule == "signature.location"
        assert "direct child of the root" in err.message

    def test_wrapping_reference_to_an_id(self, ready, user_cert):
        # A real signature over the Body alone (URI="#b"), the signed Body then placed in a
        # different request: the reference must cover the whole document.
        doc = request_xml(body=PREPAYMENT_BODY).replace(b"<sr:Body>", b'<sr:Body Id="b">')
        raw = sign_with(user_cert, doc, reference_uri="#b")
        assert b'URI="#b"' in raw
        err = refusal(ready, raw)
        assert err.rule == "signature.reference"
        assert "#b" in err.message

    def test_two_references(self, ready, good):
        reference = re.search(rb"<ds:Reference .*?</ds:Reference>", good, re.S).group(0)
        raw = good.replace(reference, reference + reference.replace(b'URI=""', b'URI="#x"'))
        err = refusal(ready, raw)
        assert err.rule == "signature.reference" and "found 2" in err.message

    def test_body_duplicated_after_signing(self, ready, good):
        extra = f"<sr:Body>{PREPAYMENT_BODY}</sr:Body>".encode()
        raw = good.replace(b"</sr:Body>", b"</sr:Body>" + extra, 1)
        err = refusal(ready, raw)
        assert err.rule == "signature.digest"
        assert "changed after signing" in err.message

    def test_body_moved_after_signing(self, ready, good):
        body = re.search(rb"<sr:Body>.*?</sr:Body>", good, re.S).group(0)
        raw = good.replace(body, b"").replace(b"<sr:Header>", body + b"<sr:Header>")
        assert refusal(ready, raw).rule == "signature.digest"

    def test_content_changed_after_signing(self, ready, good):
        raw = good.replace(b"<sr:UpdatePaymentMode><sr:Credit/></sr:UpdatePaymentMode>", PREPAYMENT_BODY.encode())
        assert raw != good
        err = refusal(ready, raw)
        assert err.rule == "signature.digest"

    def test_counter_changed_after_signing(self, ready, good):
        assert refusal(ready, good.replace(b":10</sr:RequestID>", b":11</sr:RequestID>")).rule == "signature.digest"

    def test_signature_value_changed(self, ready, good):
        value = re.search(rb"<ds:SignatureValue>([^<]+)</ds:SignatureValue>", good).group(1)
        raw_sig = bytearray(base64.b64decode(value))
        raw_sig[5] ^= 0x01
        raw = good.replace(value, base64.b64encode(bytes(raw_sig)))
        assert refusal(ready, raw).rule == "signature.invalid"

    @pytest.mark.parametrize("value", [b"", "\u00e9t\u00e9".encode(), b"AAAAAA", b"A"])
    def test_malformed_signature_value(self, ready, good, value):
        # signxml lets base64 errors escape (ValueError, TypeError for an empty value)
        raw = re.sub(rb"<ds:SignatureValue>[^<]+<", b"<ds:SignatureValue>" + value + b"<", good)
        err = refusal(ready, raw)
        assert err.rule == "signature.structure"
        assert "malformed" in err.message

    def test_signed_info_changed(self, ready, good):
        # dropping the explicit exclusive C14N transform changes SignedInfo: the signature breaks
        raw = good.replace(b'<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>', b"")
        assert refusal(ready, raw).rule == "signature.invalid"

    def test_other_transforms(self, ready, good):
        raw = good.replace(
            b'<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>',
            b'<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>1</ds:XPath></ds:Transform>',
        )
        err = refusal(ready, raw)
        assert err.rule == "signature.transforms" and "REC-xpath" in err.message


# -- algorithms and KeyInfo -------------------------------------------------------------------------
class TestAlgorithms:
    def test_rsa_sha256(self, ready, user_cert):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        raw = sign_with(user_cert, key=key, signature_algorithm=SignatureMethod.RSA_SHA256)
        err = refusal(ready, raw)
        assert err.rule == "signature.algorithm"
        assert "rsa-sha256" in err.message

    def test_hmac_sha256(self, ready, user_cert):
        raw = sign_with(user_cert, key=b"shared secret", signature_algorithm=SignatureMethod.HMAC_SHA256)
        err = refusal(ready, raw)
        assert err.rule == "signature.algorithm"
        assert "hmac-sha256" in err.message

    def test_sha1_digest(self, ready, good):
        # signxml will not even make a SHA-1 signature any more: craft the SignedInfo by hand
        raw = good.replace(b"http://www.w3.org/2001/04/xmlenc#sha256", b"http://www.w3.org/2000/09/xmldsig#sha1")
        err = refusal(ready, raw)
        assert err.rule == "signature.digest_algorithm"
        assert "xmldsig#sha1" in err.message

    def test_sha1_signature_method(self, ready, good):
        raw = good.replace(b"xmldsig-more#ecdsa-sha256", b"xmldsig-more#ecdsa-sha1")
        assert refusal(ready, raw).rule == "signature.algorithm"

    def test_inclusive_c14n(self, ready, user_cert):
        raw = sign_with(user_cert, c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0)
        err = refusal(ready, raw)
        assert err.rule == "signature.c14n"
        assert "REC-xml-c14n-20010315" in err.message

    def test_c14n_with_comments(self, ready, good):
        raw = good.replace(
            b'<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>',
            b'<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#WithComments"/>',
        )
        assert refusal(ready, raw).rule == "signature.c14n"

    def test_key_info_with_x509_certificate(self, ready, user_cert):
        raw = sign_with(user_cert, key_info="certificate")
        assert b"X509Certificate" in raw
        err = refusal(ready, raw)
        assert err.rule == "signature.key_info"
        assert "X509IssuerSerial" in err.message

    def test_key_info_with_key_value(self, ready, user_cert):
        raw = sign_with(user_cert, key_info=None)
        assert b"KeyValue" in raw
        err = refusal(ready, raw)
        # signxml writes the EC key in the XMLDSig 1.1 namespace, which no DUIS schema uses
        assert err.rule == "xml.unknown_namespace" and "xmldsig11" in err.message

    def test_key_info_missing(self, ready, good):
        raw = re.sub(rb"<ds:KeyInfo>.*</ds:KeyInfo>", b"", good, flags=re.S)
        err = refusal(ready, raw)
        assert err.rule == "signature.key_info" and "found 0" in err.message

    @pytest.mark.parametrize("serial", [b"-5", b"12ab", b"", b"9" * 60])
    def test_bad_serial_in_key_info(self, ready, good, serial):
        raw = re.sub(rb"<ds:X509SerialNumber>\d+</ds:X509SerialNumber>", b"<ds:X509SerialNumber>" + serial + b"</ds:X509SerialNumber>", good)
        err = refusal(ready, raw)
        assert err.rule == "signature.key_info"
        assert "X509SerialNumber" in err.message

    def test_bad_issuer_name_in_key_info(self, ready, good):
        raw = re.sub(rb"<ds:X509IssuerName>[^<]*</ds:X509IssuerName>", b"<ds:X509IssuerName>nonsense</ds:X509IssuerName>", good)
        err = refusal(ready, raw)
        assert err.rule == "signature.key_info" and "X509IssuerName" in err.message

    def test_issuer_names_in_another_order_still_resolve(self, ready, good):
        # KeyInfo lies outside SignedInfo: another signer may spell the issuer DN differently
        raw = re.sub(rb"<ds:X509IssuerName>[^<]*</ds:X509IssuerName>", b"<ds:X509IssuerName>OU=07, CN=T9</ds:X509IssuerName>", good)
        assert Verifier(ready).verify_request(raw).request.header.request_id.counter == 10


# -- the signer's certificate ----------------------------------------------------------------------
class TestCertificate:
    def test_unknown_certificate(self, store, good):
        err = refusal(store, good)
        assert err.rule == "signature.unknown_certificate"
        assert "CN=T9,OU=07" in err.message

    def test_wrong_role_supplier_digital_signing(self, store, pki):
        supplier = pki.issue(USER_EUI, 2)
        add_cert(store, supplier)
        err = refusal(store, signed(request_xml(), supplier))
        assert err.rule == "signature.certificate_role"
        assert "Role 2" in err.message and "135" in err.message

    def test_request_signed_with_a_dsp_certificate(self, store, pki):
        dsp = pki.issue(USER_EUI, 137)
        add_cert(store, dsp)
        assert refusal(store, signed(request_xml(), dsp)).rule == "signature.certificate_role"

    def test_response_signed_with_a_user_certificate(self, ready, user_cert):
        response = f'<sr:Response xmlns:sr="{NS_SR}" schemaVersion="5.4"><sr:Header/></sr:Response>'.encode()
        err = refusal(ready, signed(response, user_cert), request=False)
        assert err.rule == "signature.certificate_role"
        assert "137" in err.message

    def test_key_agreement_usage(self, store, pki):
        issued = pki.issue(USER_EUI, 135, usage="key_agreement")
        add_cert(store, issued)
        err = refusal(store, signed(request_xml(), issued))
        assert err.rule == "signature.certificate_usage"
        assert "digitalSignature" in err.message

    def test_expired(self, store, pki):
        issued = pki.issue(USER_EUI, 135, not_before=NOW - timedelta(days=10), not_after=NOW - timedelta(days=1))
        add_cert(store, issued)
        err = refusal(store, signed(request_xml(), issued))
        assert err.rule == "signature.certificate_expired"
        assert "expired on" in err.message

    def test_not_yet_valid(self, store, pki):
        issued = pki.issue(USER_EUI, 135, not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=10))
        add_cert(store, issued)
        err = refusal(store, signed(request_xml(), issued))
        assert err.rule == "signature.certificate_not_yet_valid"

    @pytest.mark.parametrize(
        "status, rule",
        [
            (SmkiStatus.REVOKED, "signature.certificate_revoked"),
            (SmkiStatus.PENDING, "signature.certificate_pending"),
            (SmkiStatus.NOT_IN_USE, "signature.certificate_not_in_use"),
            (SmkiStatus.EXPIRED, "signature.certificate_expired"),
        ],
    )
    def test_not_in_use_statuses(self, ready, user_cert, good, status, rule):
        (record,) = read_certificates(user_cert.cert_pem)
        assert ready.set_certificate_status(record.issuer, record.serial, status)
        err = refusal(ready, good)
        assert err.rule == rule
        assert status.label in err.message

    def test_originator_not_the_signer(self, store, pki):
        other = pki.issue(OTHER_EUI, 135)
        add_cert(store, other)
        raw = signed(request_xml(originator=USER_EUI), other)
        assert Verifier(store).verify(raw).signer.certificate.serial == other.serial  # the signature itself is fine
        err = refusal(store, raw)
        assert isinstance(err, SignatureRefused)
        assert err.rule == "signature.originator" and err.code == "E1"
        assert "90-B3-D5-1F-30-01-00-00" in err.message and "90-B3-D5-1F-30-01-00-99" in err.message  # as the DUIS writes them

    @pytest.mark.parametrize("usage, label", [("digital_signature", "Digital Signing"), ("key_agreement", "Key Agreement")])
    def test_key_separation(self, store, pki, usage, label):
        key = ec.generate_private_key(ec.SECP256R1())
        xml_cert = pki.issue(USER_EUI, 135, key=key)
        other = pki.issue(USER_EUI, 2, usage=usage, key=key)
        add_cert(store, xml_cert)
        raw = signed(request_xml(), xml_cert)
        assert Verifier(store).verify_request(raw) is not None  # fine until the other cert is known
        add_cert(store, other)
        err = refusal(store, raw)
        assert err.rule == "signature.key_separation"
        assert str(other.serial) in err.message
        assert label in err.message and "MP104" in err.message

    def test_key_separation_xml_key_in_key_agreement_cert_of_any_role(self, store, pki):
        key = ec.generate_private_key(ec.SECP256R1())
        xml_cert = pki.issue(USER_EUI, 135, key=key)
        add_cert(store, xml_cert)
        add_cert(store, pki.issue(USER_EUI, 135, usage="key_agreement", key=key))
        assert refusal(store, signed(request_xml(), xml_cert)).rule == "signature.key_separation"

    def test_p384_key(self, store, pki):
        issued = pki.issue(USER_EUI, 135, key=ec.generate_private_key(ec.SECP384R1()))
        add_cert(store, issued)
        err = refusal(store, signed(request_xml(), issued))
        assert err.rule == "signature.certificate_key"
        assert "P-256" in err.message

    def test_leniently_imported_certificate_cannot_verify(self, store, pki):
        issued = pki.issue(USER_EUI, 135)
        (record,) = read_certificates(non_minimal_serial(der_of(issued.cert_pem)))
        assert record.lenient and record.serial == issued.serial
        store.put_certificate(record)
        err = refusal(store, signed(request_xml(), issued))
        assert err.rule == "signature.certificate_unreadable"

    def test_signed_by_another_key_than_the_certificate(self, ready, user_cert, pki):
        # KeyInfo names the user's certificate, but an attacker's key made the signature
        raw = sign_duis(request_xml(), pki.issue(USER_EUI, 135).key_pem, user_cert.cert_pem)
        assert refusal(ready, raw).rule == "signature.invalid"

    def test_verify_request_on_a_response(self, store, pki):
        dsp = pki.issue("90-B3-D5-1F-30-00-00-02", 137)
        add_cert(store, dsp)
        response = f'<sr:Response xmlns:sr="{NS_SR}" schemaVersion="5.4"><sr:Header/></sr:Response>'.encode()
        raw = signed(response, dsp)
        assert Verifier(store).verify(raw).kind == "Response"
        err = refusal(store, raw)
        assert err.rule == "duis.root" and "Response" in err.message


# -- conformance with the real ZAZ1 keys and a DCC-signed response ---------------------------------
PKI_DIR = REFERENCE / "zaz1-test-pki"
DECISION_2026 = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
TEMPLATES = sorted((REFERENCE / "duis-templates").glob("*.XML"))


def _import(store, path: Path) -> None:
    for record in read_certificate_file(path):
        store.put_certificate(record)


def _resign(template: Path, name: str) -> bytes:
    return sign_duis(template.read_bytes(), (PKI_DIR / f"{name}.key.pem").read_bytes(), (PKI_DIR / f"{name}.pem").read_bytes())


@pytest.mark.reference
@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_reference_templates_resigned_verify(store, template):
    _import(store, PKI_DIR / "xml-sign-90B3D51F30010000-ds.pem")
    raw = _resign(template, "xml-sign-90B3D51F30010000-ds")
    expected = re.search(rb"<sr:RequestID>([^<]+)</sr:RequestID>", template.read_bytes()).group(1).decode()
    verified = Verifier(store).verify_request(raw, now=DECISION_2026)
    assert str(verified.request.header.request_id) == expected
    assert verified.signer.certificate.role == 135
    assert verified.signer.certificate.subject_eui == "90B3D51F30010000"
    if template.name.startswith("ECS04a"):
        assert verified.request.body.element == "UpdateMeterBalance"
    else:
        assert verified.request.body.kind == "UpdatePaymentMode"
        assert verified.request.body.mode == ("prepayment" if template.name.startswith("ECS03") else "credit")


@pytest.mark.reference
def test_reference_template_placeholder_signature_refused(store):
    _import(store, PKI_DIR / "xml-sign-90B3D51F30010000-ds.pem")
    template = (REFERENCE / "duis-templates" / "ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS_REQUEST_DUIS.XML").read_bytes()
    # the template's placeholder ds:Signature carries a NOTE comment: refused as it is
    assert refusal(store, template, now=DECISION_2026).rule == "xml.comment"
    # without it, the placeholder KeyInfo (CN=U1, OU=07 serial 1234567890) names no stored certificate
    template = re.sub(rb"<!--.*?-->", b"", template, flags=re.S)
    err = refusal(store, template, now=DECISION_2026)
    assert err.rule == "signature.unknown_certificate"
    assert "1234567890" in err.message and "CN=U1,OU=07" in err.message


@pytest.mark.reference
def test_reference_request_at_a_2026_decision_time(store):
    _import(store, PKI_DIR / "xml-sign-90B3D51F30010000-ds.pem")
    raw = sign_duis(
        request_xml(counter=5000),
        (PKI_DIR / "xml-sign-90B3D51F30010000-ds.key.pem").read_bytes(),
        (PKI_DIR / "xml-sign-90B3D51F30010000-ds.pem").read_bytes(),
    )
    verified = Verifier(store).verify_request(raw, now=DECISION_2026)
    assert verified.request.header.request_id.counter == 5000
    assert verified.signer.certificate.serial == 0x14BE4AD2EA1D0E4EC7F7156BD24624A7


@pytest.mark.reference
def test_reference_template_signed_with_supplier_key_refused_for_role(store):
    _import(store, PKI_DIR / "Z1-supplier-ds.pem")
    raw = _resign(REFERENCE / "duis-templates" / "ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS_REQUEST_DUIS.XML", "Z1-supplier-ds")
    for when in (DECISION_2026, datetime(2024, 1, 1, tzinfo=timezone.utc)):  # expired or not: role first
        err = refusal(store, raw, now=when)
        assert err.rule == "signature.certificate_role"
        assert "Supplier" in err.message


@pytest.mark.reference
def test_reference_xml_key_in_supplier_cert_would_breach_separation(store):
    # the ZAZ1 XML signing and supplier keys are distinct: importing everything is no breach
    for path in PKI_DIR.glob("*.pem"):
        if not path.name.endswith(".key.pem"):
            _import(store, path)
    raw = _resign(REFERENCE / "duis-templates" / "GCS02_1.6_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML", "xml-sign-90B3D51F30010000-ds")
    assert Verifier(store).verify_request(raw, now=DECISION_2026) is not None


DCC_RESPONSE = REFERENCE / "signed-messages" / "read-inventory-response-5.4.xml"
DSP_CERT = REFERENCE / "signed-messages" / "dsp-xml-sign-90B3D51F30000002-ds.pem"


@pytest.mark.reference
def test_reference_dcc_response_verifies_by_dsp_key(store):
    _import(store, DSP_CERT)
    message = Verifier(store).verify(DCC_RESPONSE.read_bytes(), now=DECISION_2026)
    assert message.kind == "Response"
    assert message.signer.resolved_by == "dsp-key"
    assert message.signer.certificate.role == 137
    assert message.signer.certificate.subject_eui == "90B3D51F30000002"
    (note,) = message.notes
    assert "20315062944123339095836004026371736578" in note  # the serial KeyInfo names
    assert str(message.signer.certificate.serial) in note  # the certificate that verified
    assert "not in the store" in note
    assert message.signed_root.findtext(f"{{{NS_SR}}}Header/{{{NS_SR}}}ResponseCode") == "I0"


@pytest.mark.reference
def test_reference_dcc_response_refused_when_dsp_certificate_revoked(store):
    _import(store, DSP_CERT)
    (record,) = store.find_certificates(role=137)
    store.set_certificate_status(record.issuer, record.serial, SmkiStatus.REVOKED)
    err = refusal(store, DCC_RESPONSE.read_bytes(), now=DECISION_2026, request=False)
    assert err.rule == "signature.certificate_revoked"
    assert str(record.serial) in err.message


@pytest.mark.reference
def test_reference_dcc_response_with_only_a_wrong_dsp_certificate(store, pki):
    add_cert(store, pki.issue("90-B3-D5-1F-30-00-00-02", 137))
    err = refusal(store, DCC_RESPONSE.read_bytes(), request=False)
    # KeyInfo names no stored certificate and no stored DCC key verifies it: the signer is unknown.
    assert err.rule == "signature.unknown_certificate"
    assert "no DCC XML signing certificate in the store verifies it" in err.message


@pytest.mark.reference
def test_reference_dcc_response_without_dsp_certificate(store):
    err = refusal(store, DCC_RESPONSE.read_bytes(), now=DECISION_2026, request=False)
    assert err.rule == "signature.unknown_certificate"


@pytest.mark.reference
@pytest.mark.parametrize(
    "old, new",
    [(b"<sr:ResponseCode>I0<", b"<sr:ResponseCode>I1<"), (b"CHTS V1.4", b"CHTS V1.5"), (b"88-73-84-90-6A-10-02-DB", b"88-73-84-90-6A-10-02-DC")],
)
def test_reference_dcc_response_changed_byte_refused(store, old, new):
    _import(store, DSP_CERT)
    raw = DCC_RESPONSE.read_bytes()
    assert old in raw
    err = refusal(store, raw.replace(old, new, 1), now=DECISION_2026, request=False)
    assert err.rule == "signature.digest"


@pytest.mark.reference
def test_reference_dcc_response_with_a_second_wrong_dsp_certificate(store, pki):
    # two DCC certificates configured, the wrong one tried first: the one whose key verifies wins
    _import(store, DSP_CERT)
    add_cert(store, pki.issue("00-00-00-00-00-00-00-01", 137))
    assert [c.subject_eui for c in store.find_certificates(role=137)][0] == "0000000000000001"
    message = Verifier(store).verify(DCC_RESPONSE.read_bytes())
    assert message.signer.certificate.subject_eui == "90B3D51F30000002"


# -- fuzzing the signature: only refusals, or the original signed content --------------------------
@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory, user_cert):
    from solr_policy.store import SqliteStore

    store = SqliteStore(tmp_path_factory.mktemp("fuzz") / "fuzz.db")
    add_cert(store, user_cert)
    raw = signed(request_xml(counter=31337), user_cert)
    yield Verifier(store), raw, Verifier(store).verify_request(raw).request
    store.close()


EDIT_TOKENS = [
    b"<!-- x -->", b"&amp;", b"&#13;", b"\x00", b"=", b"A", b"#", b"/", b'"', b" ", b"\n", b"\t", b"<", b"</", b"]]>",
    b"<ds:X/>", b'Id="x" ', b'xmlns:x="urn:x" ', b"\xc3\xa9",
]  # fmt: skip


@st.composite
def byte_edits(draw, raw: bytes, start: int = 0) -> bytes:
    """One to three byte-level edits at or after ``start``: flips, deletions, XML-ish insertions."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(start, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "delete", "insert"]))
        if kind == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 12))]
        else:
            data[pos:pos] = draw(st.sampled_from(EDIT_TOKENS))
    return bytes(data)


def test_fuzz_signature_mutations(fuzz_target):
    verifier, raw, original = fuzz_target

    @settings(max_examples=250, deadline=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(byte_edits(raw, start=raw.index(b"<ds:Signature")))
    def check(mutated):
        try:
            verified = verifier.verify_request(mutated)
        except Refused:
            return
        # accepted only when the signed content is still exactly the original request
        assert verified.request == original

    check()
