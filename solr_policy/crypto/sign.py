"""Signing DUIS messages the way DUIS Users do (for tests, the demo and user tooling).

Enveloped XMLDSig, exclusive C14N, ECDSA-SHA256, SHA-256 digest, one ``Reference URI=""``
and a KeyInfo naming the certificate by X509IssuerSerial, as in the DUIS templates. The
reference lists the exclusive C14N transform explicitly after enveloped-signature: without
it XMLDSig says the digest is over *inclusive* C14N (what the DCC's own signer does), and
naming it leaves no doubt for any verifier.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner

from solr_policy.duis.parser import NS_DS

_DS = f"{{{NS_DS}}}"


def _issuer_text(cert: x509.Certificate) -> str:
    return cert.issuer.rfc4514_string()


def key_info_for(cert: x509.Certificate) -> etree._Element:
    key_info = etree.Element(f"{_DS}KeyInfo", nsmap={"ds": NS_DS})
    data = etree.SubElement(key_info, f"{_DS}X509Data")
    issuer_serial = etree.SubElement(data, f"{_DS}X509IssuerSerial")
    etree.SubElement(issuer_serial, f"{_DS}X509IssuerName").text = _issuer_text(cert)
    etree.SubElement(issuer_serial, f"{_DS}X509SerialNumber").text = str(cert.serial_number)
    return key_info


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """An unencrypted PEM EC private key (DUIS signatures are ECDSA); ``ValueError`` otherwise."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("a DUIS signing key is an EC (P-256) private key")
    return key


def sign_duis(document: bytes | etree._Element, key_pem: bytes, cert_pem: bytes) -> bytes:
    """Return the document signed; any existing ds:Signature under the root is replaced."""
    if isinstance(document, (bytes, bytearray)):
        root = etree.fromstring(bytes(document), parser=etree.XMLParser(resolve_entities=False, no_network=True))
    else:
        root = etree.fromstring(etree.tostring(document))
    for old in root.findall(f"{_DS}Signature"):
        root.remove(old)
    cert = x509.load_pem_x509_certificate(cert_pem)
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.ECDSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signed = signer.sign(
        root,
        key=load_private_key(key_pem),
        key_info=key_info_for(cert),
    )
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
