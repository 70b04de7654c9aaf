"""SMKI-shaped certificate signing requests, for tests, the specs and the demo."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from solr_policy.crypto.certs import _KU_NAMES
from solr_policy.crypto.sign import load_private_key
from solr_policy.eui import parse_eui64


def make_csr(
    key: ec.EllipticCurvePrivateKey | bytes,
    *,
    role: int | None,
    eui: str | None,
    usage: str | Iterable[str] | None = "digital_signature",
    common_name: str | None = None,
) -> bytes:
    """Tooling for tests and the demo: an SMKI-shaped CSR in PEM.

    ``role`` goes into the subject OU in hex (None: no OU), ``eui`` into uniqueIdentifier as
    a BIT STRING (None: none), ``usage`` into a critical Key Usage in the extensionRequest
    (a name such as ``digital_signature`` or ``key_agreement``, several names, or None for
    no Key Usage at all). ``key`` is a private key object or its PEM.
    """
    if isinstance(key, bytes):
        key = load_private_key(key)
    attributes: list[x509.NameAttribute[str] | x509.NameAttribute[bytes]] = []
    if common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    if role is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{role:02X}"))
    if eui is not None:
        attributes.append(
            x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + bytes.fromhex(parse_eui64(eui)), _ASN1Type.BitString)
        )
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if usage is not None:
        names = {usage} if isinstance(usage, str) else set(usage)
        unknown = names - set(_KU_NAMES)
        if unknown:
            raise ValueError(f"unknown key usage {sorted(unknown)}; use {', '.join(_KU_NAMES)}")
        flags = {name: name in names for name in _KU_NAMES}
        builder = builder.add_extension(x509.KeyUsage(**flags, encipher_only=False, decipher_only=False), critical=True)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)
