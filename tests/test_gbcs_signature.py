"""GBCS signatures on Signed Pre-Commands: verified with a key, never counted."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from solr_policy.gbcs import decode_general_signing, parse_payload_text
from solr_policy.gbcs.signature import signed_bytes, verify_gbcs_signature
from solr_policy.testing.gbcs import build_general_signing

from conftest import REFERENCE

ORIGINATOR, RECIPIENT = "90B3D51F30010000", "00DB1234567890A0"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sign_apdu(unsigned: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    r, s = decode_dss_signature(key.sign(unsigned[1:], ec.ECDSA(hashes.SHA256())))
    return unsigned + b"\x40" + r.to_bytes(32, "big") + s.to_bytes(32, "big")


def check(payload: bytes, key) -> bool:
    return verify_gbcs_signature(payload, decode_general_signing(payload), key)


@pytest.fixture()
def key():
    return new_key()


@pytest.fixture()
def unsigned():
    return build_general_signing(message_code=0x001A, originator=ORIGINATOR, recipient=RECIPIENT, counter=7)


def test_a_good_signature_verifies_with_its_key_only(unsigned, key):
    signed = sign_apdu(unsigned, key)
    assert check(signed, key.public_key())
    assert not check(signed, new_key().public_key())  # valid signature, untrusted key


def test_the_signed_bytes_exclude_the_tag_and_the_signature_part(unsigned, key):
    signed = sign_apdu(unsigned, key)
    assert signed_bytes(signed, decode_general_signing(signed)) == unsigned[1:]


def test_the_builder_signs_as_gbcs_does(key):
    payload = build_general_signing(message_code=0x001A, originator=ORIGINATOR, recipient=RECIPIENT, counter=7, key=key)
    assert check(payload, key.public_key())


@pytest.mark.parametrize(
    "signature",
    [b"\x01", b"\x00" * 64, b"\xff" * 64, b"\x00" * 32 + b"\x01" * 32, b"\x01" * 63, b"\x01" * 65],
    ids=["1 byte", "64 zero bytes", "r and s above the group order", "r zero", "63 bytes", "65 bytes"],
)
def test_signatures_that_are_present_but_not_valid_do_not_count(unsigned, key, signature):
    payload = unsigned + bytes([len(signature)]) + signature
    assert decode_general_signing(payload).signed  # the header says signed ...
    assert not check(payload, key.public_key())  # ... but nothing verifies it


def test_a_changed_command_does_not_verify(unsigned, key):
    signed = bytearray(sign_apdu(unsigned, key))
    signed[12] ^= 0x01  # a byte of the originator counter
    assert not check(bytes(signed), key.public_key())


def test_a_non_p256_key_verifies_nothing(unsigned):
    other = ec.generate_private_key(ec.SECP384R1())
    payload = unsigned + b"\x40" + b"\x01" * 64
    assert not check(payload, other.public_key())


@pytest.mark.reference
def test_the_real_rtds_pre_command_signed_with_the_zaz1_supplier_key():
    """The RTDS ECS02 Pre-Command, signed as a Supplier would with the ZAZ1 Digital Signing key,
    verifies with the public key of the ZAZ1 Supplier Digital Signing certificate."""
    unsigned = parse_payload_text((REFERENCE / "gbcs-vectors" / "ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS_PRECOMMAND_GBCS.HEX").read_text())
    pki = REFERENCE / "zaz1-test-pki"
    key = serialization.load_pem_private_key((pki / "Z1-supplier-ds.key.pem").read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((pki / "Z1-supplier-ds.pem").read_bytes())
    signed = sign_apdu(unsigned, key)
    assert check(signed, cert.public_key())
    xml_cert = x509.load_pem_x509_certificate((pki / "xml-sign-90B3D51F30010000-ds.pem").read_bytes())
    assert not check(signed, xml_cert.public_key())
