"""SMKI Organisation Certificates: reading them into ``CertRecord`` facts.

The SMKI profile puts the party's EUI-64 in the subject ``uniqueIdentifier`` (OID 2.5.4.45,
a BIT STRING) and its Remote Party Role, in hex, in the subject OU (87 = 135 XML Sign).
``cryptography`` is tried first; some real SMKI certificates carry encodings its strict
DER parser refuses (non-minimal integers, odd string types), so ``asn1crypto``, which is
lenient and pure Python, reads those. A file neither can read is refused by name.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeGuard

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from solr_policy.errors import CertificateRefused
from solr_policy.records import ROLE_NAMES, CertRecord

UNIQUE_IDENTIFIER = "2.5.4.45"

_ATTR_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.11": "OU",
    "2.5.4.10": "O",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    UNIQUE_IDENTIFIER: "UNIQUEIDENTIFIER",
}
# A dotted OID also names its attribute.
_NAME_ALIASES = {"X500UNIQUEIDENTIFIER": "UNIQUEIDENTIFIER", "UID": "UNIQUEIDENTIFIER", **_ATTR_NAMES}


@lru_cache(maxsize=4096)
def issuer_key(name: str) -> str:
    """Order- and spacing-insensitive key for a distinguished name written as text.

    ``CN=U1, OU=07`` (DUIS KeyInfo), ``CN=Z1,OU=07`` and ``OU=07, CN=Z1`` (openssl) must all
    find the same certificate; the order of RDNs in XML KeyInfo varies between signers.
    """
    parts = [p for p in _split_dn(name) if p.strip()]
    pairs = []
    for part in parts:
        attr, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"{name!r} is not a distinguished name")
        attr = attr.strip().upper()
        pairs.append(f"{_NAME_ALIASES.get(attr, attr)}={_dn_value(value)}")
    return ",".join(sorted(pairs))


def _split_dn(name: str) -> list[str]:
    """Split at unescaped ``,`` and ``+`` (an escaped backslash does not escape the next one)."""
    parts, current, i = [], [], 0
    while i < len(name):
        if name[i] == "\\" and i + 1 < len(name):
            current.append(name[i : i + 2])
            i += 2
            continue
        if name[i] in ",+":
            parts.append("".join(current))
            current = []
        else:
            current.append(name[i])
        i += 1
    parts.append("".join(current))
    return parts


def _dn_value(raw: str) -> str:
    """An RFC 4514 attribute value unescaped (``\\,`` ``\\+`` ``\\ `` ``\\C3\\A9`` ...), outer
    unescaped whitespace dropped: what ``cryptography``'s ``rfc4514_string()`` escapes (and
    ``sign.py`` writes into KeyInfo) must compare equal to the certificate's own value."""
    raw = raw.lstrip()
    out, keep, i = bytearray(), 0, 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            pair = raw[i + 1 : i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out += bytes.fromhex(pair)
                i += 3
            else:
                out += raw[i + 1].encode()
                i += 2
            keep = len(out)
            continue
        out += raw[i].encode()
        if not raw[i].isspace():
            keep = len(out)
        i += 1
    return bytes(out[:keep]).decode("utf-8", errors="replace")


def _name_key(name: x509.Name) -> str:
    pairs = []
    for attribute in name:
        short = _ATTR_NAMES.get(attribute.oid.dotted_string, attribute.oid.dotted_string)
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
        pairs.append(f"{short}={value}")
    return ",".join(sorted(pairs))


def _role_from_ou(values: list[str]) -> int | None:
    """The Remote Party Role: hex in the OU (``87`` = 135); legacy DCC certificates write the
    three-digit roles in decimal (``137``), which cannot be hex of one byte."""
    for value in values:
        text = value.strip()
        if re.fullmatch(r"[0-9A-Fa-f]{1,2}", text):
            return int(text, 16)
        if re.fullmatch(r"[0-9]{3}", text) and int(text) in ROLE_NAMES:
            return int(text)
    return None


def role_written_in_decimal(record: CertRecord) -> bool:
    """True for a legacy certificate whose OU gives its role in decimal (e.g. ``137``)."""
    return record.role is not None and record.role >= 100 and f"OU={record.role}" in record.subject


def _eui_from_unique_identifier(raw: bytes) -> str | None:
    # The attribute is a BIT STRING: tag 03, length, unused-bits byte, then the 8 EUI bytes.
    if len(raw) == 11 and raw[0] == 0x03 and raw[1] == 0x09 and raw[2] == 0x00:
        return raw[3:].hex().upper()
    if len(raw) == 9 and raw[0] == 0x00:  # already unwrapped bit string payload
        return raw[1:].hex().upper()
    if len(raw) == 8:
        return raw.hex().upper()
    return None


_KU_NAMES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def _from_cryptography(cert: x509.Certificate, der: bytes) -> CertRecord:
    subject = cert.subject
    eui = None
    for attribute in subject.get_attributes_for_oid(x509.ObjectIdentifier(UNIQUE_IDENTIFIER)):
        value = attribute.value
        eui = _eui_from_unique_identifier(value if isinstance(value, bytes) else value.encode("latin-1"))
    ou = [a.value for a in subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)]
    usage: list[str] = []
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        usage = [name for name in _KU_NAMES if getattr(ku, name)]
    except x509.ExtensionNotFound:
        pass
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return CertRecord(
        serial=cert.serial_number,
        issuer=_name_key(cert.issuer),
        subject=_name_key(subject),
        subject_eui=eui,
        role=_role_from_ou([str(v) for v in ou]),
        key_usage=tuple(usage),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        spki_sha256=hashlib.sha256(spki).hexdigest(),
        fingerprint=hashlib.sha256(der).hexdigest(),
        der=der,
    )


def _from_asn1crypto(der: bytes) -> CertRecord:
    from asn1crypto import x509 as ax509  # lenient fallback only

    cert = ax509.Certificate.load(der)
    tbs = cert["tbs_certificate"]

    def key_of(name: "ax509.Name") -> tuple[str, dict[str, list[Any]]]:
        # asn1crypto values are untyped (no type information exists for it).
        pairs: list[str] = []
        by_oid: dict[str, list[Any]] = {}
        for rdn in name.chosen:
            for ava in rdn:
                oid = ava["type"].dotted
                value = ava["value"]
                by_oid.setdefault(oid, []).append(value)
                text = value.native if isinstance(value.native, str) else value.contents.hex()
                pairs.append(f"{_ATTR_NAMES.get(oid, oid)}={text}")
        return ",".join(sorted(pairs)), by_oid

    issuer, _ = key_of(tbs["issuer"])
    subject, by_oid = key_of(tbs["subject"])
    eui = None
    for value in by_oid.get(UNIQUE_IDENTIFIER, []):
        eui = _eui_from_unique_identifier(value.dump()) or _eui_from_unique_identifier(value.contents)
    role = _role_from_ou([v.native for v in by_oid.get("2.5.4.11", []) if isinstance(v.native, str)])
    usage: list[str] = []
    mapping = {
        "digital_signature": "digital_signature",
        "non_repudiation": "content_commitment",
        "key_encipherment": "key_encipherment",
        "data_encipherment": "data_encipherment",
        "key_agreement": "key_agreement",
        "key_cert_sign": "key_cert_sign",
        "crl_sign": "crl_sign",
    }
    for ext in tbs["extensions"]:
        if ext["extn_id"].native == "key_usage":
            usage = sorted({mapping[u] for u in ext["extn_value"].parsed.native if u in mapping}, key=_KU_NAMES.index)
    validity = tbs["validity"]
    spki = tbs["subject_public_key_info"].dump()
    serialization.load_der_public_key(spki)  # the key itself must be usable
    return CertRecord(
        serial=tbs["serial_number"].native,
        issuer=issuer,
        subject=subject,
        subject_eui=eui,
        role=role,
        key_usage=tuple(usage),
        not_before=validity["not_before"].native.astimezone(timezone.utc),
        not_after=validity["not_after"].native.astimezone(timezone.utc),
        spki_sha256=hashlib.sha256(spki).hexdigest(),
        fingerprint=hashlib.sha256(der).hexdigest(),
        der=der,
        lenient=True,
    )


_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)


def read_certificates(data: bytes, source: str = "<input>") -> list[CertRecord]:
    """All certificates in a PEM bundle or one DER file; refuses by ``source`` name."""
    if b"PRIVATE KEY" in data:
        raise CertificateRefused(
            "cert.private_key", f"{source}: holds a private key; import certificates only", None
        )
    ders: list[bytes] = []
    if b"-----BEGIN" in data:
        import base64
        import binascii

        for block in _PEM.findall(data):
            try:
                ders.append(base64.b64decode(b"".join(block.split()), validate=True))
            except (binascii.Error, ValueError):
                raise CertificateRefused("cert.pem", f"{source}: a PEM block is not valid base64") from None
        if not ders:
            raise CertificateRefused("cert.pem", f"{source}: no CERTIFICATE block found")
    else:
        ders.append(data)
    return [record_from_der(der, source) for der in ders]


def record_from_der(der: bytes, source: str = "<input>") -> CertRecord:
    try:
        return _from_cryptography(x509.load_der_x509_certificate(der), der)
    except Exception as strict_error:  # noqa: BLE001 - any strict refusal goes to the lenient reader
        try:
            return _from_asn1crypto(der)
        except Exception as lenient_error:  # noqa: BLE001 - neither could read it: refuse by name
            raise CertificateRefused(
                "cert.unreadable",
                f"{source}: not a readable X.509 certificate "
                f"(strict parser: {_short(strict_error)}; lenient parser: {_short(lenient_error)})",
            ) from None


def read_certificate_file(path: str | Path) -> list[CertRecord]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateRefused("cert.file", f"{path}: cannot read ({exc.strerror})") from None
    return read_certificates(data, str(path))


def public_key(record: CertRecord) -> PublicKeyTypes:
    """The certificate's public key, lenient certificates included."""
    try:
        return x509.load_der_x509_certificate(record.der).public_key()
    except Exception:  # noqa: BLE001 - lenient certificates: take the SPKI from asn1crypto
        from asn1crypto import x509 as ax509

        spki = ax509.Certificate.load(record.der)["tbs_certificate"]["subject_public_key_info"].dump()
        return serialization.load_der_public_key(spki)


def is_p256(key: object) -> TypeGuard[ec.EllipticCurvePublicKey]:
    return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
