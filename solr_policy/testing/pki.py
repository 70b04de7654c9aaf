"""A throw-away SMKI-shaped PKI made on the fly, for the demo and the tests.

Certificates follow the SMKI Organisation Certificate profile where the engine looks:
subject OU = Remote Party Role in hex, uniqueIdentifier (2.5.4.45) = EUI-64 as a BIT STRING,
P-256 keys, a critical Key Usage. Never use these outside tests and demos.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from solr_policy.crypto.sign import load_private_key
from solr_policy.eui import parse_eui64

_PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class Issued:
    key_pem: bytes
    cert_pem: bytes
    serial: int
    eui: str
    role: int

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        return load_private_key(self.key_pem)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def new_key_pem() -> bytes:
    """A fresh P-256 private key (PKCS#8 PEM), e.g. for an officer."""
    return _key_pem(ec.generate_private_key(ec.SECP256R1()))


def public_pem(key_pem: bytes) -> bytes:
    """The SubjectPublicKeyInfo PEM of a private key PEM."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.public_key().public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class TestPki:
    """An issuing authority (``OU=07, CN=<name>``) that issues SMKI-shaped certificates."""

    __test__ = False  # not a pytest class

    def __init__(self, name: str = "T9") -> None:
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.issuer = x509.Name(
            [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "07"), x509.NameAttribute(NameOID.COMMON_NAME, name)]
        )
        self._ca_pem: bytes | None = None

    @property
    def ca_cert_pem(self) -> bytes:
        """The issuing authority's own (self-signed) CA certificate: a trust anchor to add."""
        if self._ca_pem is None:
            now = datetime.now(timezone.utc).replace(microsecond=0)
            cert = (
                x509.CertificateBuilder()
                .subject_name(self.issuer)
                .issuer_name(self.issuer)
                .public_key(self._key.public_key())
                .serial_number(secrets.randbits(120) | (1 << 120))
                .not_valid_before(now - timedelta(days=6 * 365))
                .not_valid_after(now + timedelta(days=20 * 365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
                    ),
                    critical=True,
                )
                .sign(self._key, hashes.SHA256())
            )
            self._ca_pem = cert.public_bytes(_PEM)
        return self._ca_pem

    def crl_pem(self, revoked: list[int], *, next_update: timedelta = timedelta(days=7)) -> bytes:
        """A CRL signed by this authority listing the ``revoked`` serials."""
        now = datetime.now(timezone.utc).replace(microsecond=0)
        builder = x509.CertificateRevocationListBuilder().issuer_name(self.issuer).last_update(now).next_update(now + next_update)
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
            )
        return builder.sign(self._key, hashes.SHA256()).public_bytes(_PEM)

    def issue(
        self,
        eui: str,
        role: int,
        *,
        usage: str = "digital_signature",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
        serial: int | None = None,
        common_name: str | None = None,
        ou: str | None = None,
    ) -> Issued:
        """An SMKI-shaped certificate; ``ou`` overrides the role written in the subject OU
        (e.g. ``"137"``, as legacy DCC certificates write it in decimal)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        eui = parse_eui64(eui)
        attributes: list[x509.NameAttribute[str] | x509.NameAttribute[bytes]] = []
        if common_name:
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        attributes += [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou or f"{role:02X}"),
            x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + bytes.fromhex(eui), _ASN1Type.BitString),
        ]
        now = datetime.now(timezone.utc).replace(microsecond=0)
        serial = serial or secrets.randbits(120) | (1 << 120)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.issuer)
            .public_key(key.public_key())
            .serial_number(serial)
            # Valid from well before any decision time a test or demo uses.
            .not_valid_before(not_before or now - timedelta(days=5 * 365))
            .not_valid_after(not_after or now + timedelta(days=3650))
            .add_extension(
                x509.KeyUsage(
                    digital_signature=usage == "digital_signature",
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=usage == "key_agreement",
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        cert = builder.sign(self._key, hashes.SHA256())
        return Issued(key_pem=_key_pem(key), cert_pem=cert.public_bytes(_PEM), serial=serial, eui=eui, role=role)
