"""SMKI trust: does a certificate (or a CRL) carry the authority of a trust anchor?

Governance adds the anchors (SMKI Root and Organisation CA certificates) by signed act. An
Organisation Certificate is trusted when an anchor issued it: the issuer name matches and the
anchor's key verifies its signature (``verify_directly_issued_by``), and both are valid at
the time of the check. A CRL is trusted when an anchor signed it. Test PKIs whose CA
certificates are not published (such as ZAZ1) are supported only by an explicit, signed pin
of a single certificate (``governance``), never by anything here.

Pure: certificates in, a verdict out. No store, no clock (the caller gives the time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@dataclass(frozen=True, slots=True)
class Verdict:
    trusted: bool
    reason: str
    anchor: str | None = None  # the anchor's subject, when trusted


def load_certificate(data: bytes) -> x509.Certificate:
    """PEM or DER; ``ValueError`` if neither."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def check_anchor(cert: x509.Certificate, at: datetime) -> str | None:
    """Why ``cert`` cannot be a trust anchor, or None if it can."""
    if not is_ca(cert):
        return "it is not a CA certificate (no Basic Constraints with cA true)"
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        return f"it is not valid at {at.isoformat()} (valid {cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()})"
    if not isinstance(cert.public_key(), (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        return "its key is neither EC nor RSA"
    return None


def issued_by_anchor(cert: x509.Certificate, anchors: list[x509.Certificate], at: datetime) -> Verdict:
    """Whether one of ``anchors`` directly issued ``cert``, and both are valid at ``at``."""
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        return Verdict(False, f"the certificate is not valid at {at.isoformat()}")
    named = [a for a in anchors if a.subject == cert.issuer]
    if not named:
        return Verdict(False, f"no trust anchor is named {cert.issuer.rfc4514_string()}, the certificate's issuer")
    for anchor in named:
        if not anchor.not_valid_before_utc <= at <= anchor.not_valid_after_utc:
            continue
        try:
            cert.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return Verdict(True, f"issued by trust anchor {anchor.subject.rfc4514_string()}", anchor.subject.rfc4514_string())
    return Verdict(
        False,
        f"no trust anchor named {cert.issuer.rfc4514_string()} verifies its signature "
        "(a look-alike issuer with another key, or an anchor not valid now)",
    )


def crl_signed_by_anchor(crl: x509.CertificateRevocationList, anchors: list[x509.Certificate], at: datetime) -> Verdict:
    named = [a for a in anchors if a.subject == crl.issuer]
    if not named:
        return Verdict(False, f"no trust anchor is named {crl.issuer.rfc4514_string()}, the CRL's issuer")
    if crl.next_update_utc is not None and crl.next_update_utc < at:
        return Verdict(False, f"the CRL's next update was due {crl.next_update_utc.isoformat()}; it is stale")
    for anchor in named:
        public = anchor.public_key()
        if isinstance(public, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)) and crl.is_signature_valid(public):
            return Verdict(True, f"signed by trust anchor {anchor.subject.rfc4514_string()}", anchor.subject.rfc4514_string())
    return Verdict(False, f"no trust anchor named {crl.issuer.rfc4514_string()} verifies the CRL's signature")


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)
