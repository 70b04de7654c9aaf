"""XML signature verification of DUIS messages against the certificate store.

Order of checks: hardened parse -> signature shape (one ds:Signature, child of the root,
DUIS algorithms, one whole-document reference, KeyInfo by X509IssuerSerial) -> signer
certificate (known, role, usage, validity at the decision time, SMKI status, P-256,
key separation) -> cryptographic check by signxml. What comes out is the *signed* content
as signxml returns it; callers must read only that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

from cryptography import x509
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLVerifier,
)
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature

from solr_policy.crypto.certs import is_p256, issuer_key, public_key
from solr_policy.duis.models import DuisRequest
from solr_policy.duis.parser import DEFAULT_LIMITS, NS_DS, ParserLimits, _parser, parse_document
from solr_policy.duis.request import build_request
from solr_policy.errors import ParseRefused, SignatureRefused
from solr_policy.records import ROLE_DSP_XML_SIGN, ROLE_XML_SIGN, CertRecord, Signer, SmkiStatus, role_name
from solr_policy.store.base import CertificateStore

_DS = f"{{{NS_DS}}}"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

# The signing roles each message kind may be signed with.
SIGNER_ROLES = {"Request": frozenset({ROLE_XML_SIGN}), "Response": frozenset({ROLE_DSP_XML_SIGN})}

_CONFIG_CACHE: dict[datetime, SignatureConfiguration] = {}


def _config(now: datetime) -> SignatureConfiguration:
    return SignatureConfiguration(
        require_x509=True,
        location="./",  # the Signature must be a child of the root
        expect_references=1,
        signature_methods=frozenset({SignatureMethod.ECDSA_SHA256}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
        verification_time=now,
        # XMLDSig: a node-set left by the transforms becomes octets by Canonical XML 1.0.
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
    )


@dataclass(frozen=True)
class VerifiedMessage:
    kind: str  # "Request" or "Response"
    signed_root: etree._Element  # the signed content, as returned by signxml
    signer: Signer
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class VerifiedRequest:
    request: DuisRequest
    signer: Signer


@lru_cache(maxsize=1024)
def _certificate_object(der: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def _only(parent: etree._Element, tag: str, what: str, rule: str) -> etree._Element:
    found = parent.findall(f"{_DS}{tag}")
    if len(found) != 1:
        raise SignatureRefused(rule, f"{what}: expected exactly one ds:{tag}, found {len(found)}")
    return found[0]


@dataclass(frozen=True)
class _KeyRef:
    issuer: str
    serial: int


def _check_shape(root: etree._Element) -> _KeyRef:
    signatures = list(root.iter(f"{_DS}Signature"))
    if not signatures:
        raise SignatureRefused("signature.missing", "the message is not signed (no ds:Signature)")
    if len(signatures) > 1:
        raise SignatureRefused("signature.multiple", f"exactly one ds:Signature is allowed, found {len(signatures)}")
    signature = signatures[0]
    if signature.getparent() is not root:
        raise SignatureRefused("signature.location", "the ds:Signature must be a direct child of the root element")
    signed_info = _only(signature, "SignedInfo", "ds:Signature", "signature.structure")
    c14n = _only(signed_info, "CanonicalizationMethod", "ds:SignedInfo", "signature.structure").get("Algorithm")
    if c14n != EXC_C14N:
        raise SignatureRefused("signature.c14n", f"canonicalization must be exclusive C14N ({EXC_C14N}), not {c14n}")
    method = _only(signed_info, "SignatureMethod", "ds:SignedInfo", "signature.structure").get("Algorithm")
    if method != ECDSA_SHA256:
        raise SignatureRefused("signature.algorithm", f"signature method must be ECDSA-SHA256, not {method}")
    references = signed_info.findall(f"{_DS}Reference")
    if len(references) != 1:
        raise SignatureRefused("signature.reference", f"exactly one ds:Reference is allowed, found {len(references)}")
    reference = references[0]
    if reference.get("URI") != "":
        raise SignatureRefused(
            "signature.reference",
            f'the reference must cover the whole document (URI=""), not URI={reference.get("URI")!r}',
        )
    transforms = [t.get("Algorithm") for t in reference.iter(f"{_DS}Transform")]
    if transforms not in ([ENVELOPED], [ENVELOPED, EXC_C14N]):
        raise SignatureRefused(
            "signature.transforms", f"transforms must be enveloped-signature (then exclusive C14N), not {transforms}"
        )
    digest = _only(reference, "DigestMethod", "ds:Reference", "signature.structure").get("Algorithm")
    if digest != SHA256:
        raise SignatureRefused("signature.digest_algorithm", f"digest method must be SHA-256, not {digest}")
    key_info = _only(signature, "KeyInfo", "ds:Signature", "signature.key_info")
    if [c.tag for c in key_info if isinstance(c.tag, str)] != [f"{_DS}X509Data"]:
        raise SignatureRefused("signature.key_info", "ds:KeyInfo must hold only ds:X509Data with ds:X509IssuerSerial")
    data = key_info[0] if isinstance(key_info[0].tag, str) else _only(key_info, "X509Data", "ds:KeyInfo", "signature.key_info")
    if [c.tag for c in data if isinstance(c.tag, str)] != [f"{_DS}X509IssuerSerial"]:
        raise SignatureRefused("signature.key_info", "ds:X509Data must hold exactly one ds:X509IssuerSerial")
    issuer_serial = _only(data, "X509IssuerSerial", "ds:X509Data", "signature.key_info")
    issuer_text = (_only(issuer_serial, "X509IssuerName", "ds:X509IssuerSerial", "signature.key_info").text or "").strip()
    serial_text = (_only(issuer_serial, "X509SerialNumber", "ds:X509IssuerSerial", "signature.key_info").text or "").strip()
    if not serial_text.isdigit() or len(serial_text) > 50:
        raise SignatureRefused("signature.key_info", f"X509SerialNumber {serial_text[:60]!r} is not a serial number")
    try:
        issuer = issuer_key(issuer_text)
    except ValueError as exc:
        raise SignatureRefused("signature.key_info", f"X509IssuerName: {exc}") from None
    return _KeyRef(issuer=issuer, serial=int(serial_text))


class Verifier:
    """Verifies DUIS message signatures against the certificate store. Thread-safe."""

    def __init__(self, store: CertificateStore, *, limits: ParserLimits = DEFAULT_LIMITS, schema=None) -> None:
        self.store = store
        self.limits = limits
        self.schema = schema  # optional solr_policy.duis.xsd.DuisSchema

    def verify(self, raw: bytes, *, now: datetime | None = None) -> VerifiedMessage:
        now = now or datetime.now(timezone.utc)
        root = parse_document(raw, self.limits)
        if self.schema is not None:
            self.schema.validate(root)
        kind = etree.QName(root).localname
        ref = _check_shape(root)
        candidates, resolved_by = self._resolve(ref, kind)
        failures: list[SignatureRefused] = []
        for record in candidates:
            try:
                self._check_certificate(record, kind, now)
                result = self._crypto_verify(raw, record, now)
            except SignatureRefused as refusal:
                failures.append(refusal)
                continue
            notes = ()
            if resolved_by == "dsp-key":
                notes = (
                    f"KeyInfo names serial {ref.serial} of {ref.issuer}, which is not in the store; "
                    f"the signature verified with the stored DCC certificate serial {record.serial}",
                )
            return VerifiedMessage(kind=kind, signed_root=result, signer=Signer(record, resolved_by), notes=notes)
        # KeyInfo named a stored certificate: its own refusal is the answer. Otherwise, if no
        # stored DCC key even verifies the signature, the signer is simply not known to us;
        # but a DCC certificate whose key does verify and that is refused (revoked, expired)
        # is reported as such.
        key_mismatch = {"signature.invalid"}  # a digest mismatch is a changed document, whatever the key
        if resolved_by == "issuer-serial":
            raise failures[0]
        relevant = [f for f in failures if f.rule not in key_mismatch]
        if relevant:
            raise relevant[0]
        raise SignatureRefused(
            "signature.unknown_certificate",
            f"no certificate with serial {ref.serial} from issuer {ref.issuer} is in the store, "
            f"and no DCC XML signing certificate in the store verifies it ({failures[0].message if failures else 'none stored'})",
        )

    def verify_request(self, raw: bytes, *, now: datetime | None = None) -> VerifiedRequest:
        verified = self.verify(raw, now=now)
        if verified.kind != "Request":
            raise ParseRefused("duis.root", f"expected a DUIS Request, got a {verified.kind}")
        request = build_request(verified.signed_root)
        signer_eui = verified.signer.certificate.subject_eui
        if request.header.request_id.originator != signer_eui:
            raise SignatureRefused(
                "signature.originator",
                f"the RequestID originator {request.header.request_id.originator} is not the signer "
                f"{signer_eui} (certificate serial {verified.signer.certificate.serial})",
                code="E1",
            )
        return VerifiedRequest(request=request, signer=verified.signer)

    # -- steps --------------------------------------------------------------------------
    def _resolve(self, ref: _KeyRef, kind: str) -> tuple[list[CertRecord], str]:
        record = self.store.get_certificate(ref.issuer, ref.serial)
        if record is not None:
            return [record], "issuer-serial"
        if kind == "Response":
            # DCC-signed messages: the DCC's own XML signing certificates are few and configured
            # by the operator; try them when KeyInfo names a serial we do not hold.
            # All of them, whatever their SMKI status: _check_certificate refuses one that is not
            # In use by its status (certificate_revoked, ...), rather than "not in the store".
            dsp = self.store.find_certificates(role=ROLE_DSP_XML_SIGN)
            if dsp:
                return dsp, "dsp-key"
        raise SignatureRefused(
            "signature.unknown_certificate",
            f"no certificate with serial {ref.serial} from issuer {ref.issuer} is in the store",
        )

    def _check_certificate(self, record: CertRecord, kind: str, now: datetime) -> None:
        who = f"certificate serial {record.serial} ({record.subject_eui}, {record.role_name})"
        allowed = SIGNER_ROLES.get(kind, frozenset())
        if record.role not in allowed:
            names = " or ".join(str(r) for r in sorted(allowed))
            raise SignatureRefused(
                "signature.certificate_role",
                f"{who} has Remote Party Role {record.role}; a {kind} must be signed with role {names}",
            )
        if "digital_signature" not in record.key_usage:
            raise SignatureRefused("signature.certificate_usage", f"{who} lacks the digitalSignature key usage")
        if now < record.not_before:
            raise SignatureRefused("signature.certificate_not_yet_valid", f"{who} is not valid before {record.not_before.isoformat()}")
        if now > record.not_after:
            raise SignatureRefused("signature.certificate_expired", f"{who} expired on {record.not_after.isoformat()}")
        if record.status is not SmkiStatus.IN_USE:
            raise SignatureRefused(
                f"signature.certificate_{record.status.name.lower()}",
                f"{who} has SMKI status {record.status.label}; only In use certificates may sign",
            )
        self._check_key_separation(record, who)

    def _check_key_separation(self, record: CertRecord, who: str) -> None:
        # SEC MP104: an XML signing key must not also be a Digital Signing or Key Agreement key.
        for other in self.store.key_shared_with(record.spki_sha256, record.fingerprint):
            if other.role not in (ROLE_XML_SIGN, ROLE_DSP_XML_SIGN) or "key_agreement" in other.key_usage:
                kind = "Key Agreement" if "key_agreement" in other.key_usage else "Digital Signing"
                raise SignatureRefused(
                    "signature.key_separation",
                    f"{who} shares its key with {kind} certificate serial {other.serial} "
                    f"({other.subject_eui}, {role_name(other.role)}); MP104 requires separate keys",
                )

    def _crypto_verify(self, raw: bytes, record: CertRecord, now: datetime) -> etree._Element:
        cert = _certificate_object(record.der)
        if cert is None or not is_p256(cert.public_key()):
            if not is_p256(public_key(record)):
                raise SignatureRefused("signature.certificate_key", f"certificate serial {record.serial} has no P-256 key")
            raise SignatureRefused(
                "signature.certificate_unreadable",
                f"certificate serial {record.serial} was imported leniently and cannot verify XML signatures",
            )
        try:
            result = XMLVerifier().verify(
                raw, x509_cert=cert, parser=_parser(), expect_config=_config(now)
            )
        except InvalidDigest:
            raise SignatureRefused("signature.digest", "the signed content was changed after signing (digest mismatch)") from None
        except InvalidCertificate as exc:
            raise SignatureRefused("signature.certificate", f"certificate refused: {_first(exc)}") from None
        except InvalidSignature as exc:
            raise SignatureRefused("signature.invalid", f"the signature does not verify: {_first(exc)}") from None
        except InvalidInput as exc:
            raise SignatureRefused("signature.structure", f"the signature is malformed: {_first(exc)}") from None
        except etree.LxmlError as exc:
            raise SignatureRefused("signature.structure", f"the signature is malformed: {_first(exc)}") from None
        except (ValueError, TypeError) as exc:
            # signxml lets base64 errors through: a non-ASCII or badly padded SignatureValue
            # (binascii.Error / ValueError), an empty one (TypeError on None).
            raise SignatureRefused("signature.structure", f"the signature is malformed: {_first(exc)}") from None
        signed = result.signed_xml
        if not isinstance(signed, etree._Element):
            raise SignatureRefused("signature.reference", "the signature does not cover an XML element")
        return signed


def _first(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__
