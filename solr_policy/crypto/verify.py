"""XML signature verification of DUIS messages against the certificate store.

Order of checks: hardened parse -> signature shape (one ds:Signature, child of the root,
DUIS algorithms, one whole-document reference, KeyInfo by X509IssuerSerial, and nothing
else in it) -> signer certificate (known, role, usage, validity at the decision time, SMKI
status, P-256, key separation) -> cryptographic check. What comes out is the *signed*
content, parsed from the canonical signed bytes; callers must read only that.

The cryptographic check is ``crypto.fastverify`` (the DUIS profile only, on the document
parsed once) unless ``Verifier(..., backend="signxml")`` asks for signxml, which re-parses
the bytes and is kept as the reference implementation (tests/test_verify_differential.py
proves the two agree).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLVerifier,
)
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature

from solr_policy.crypto import fastverify
from solr_policy.crypto.certs import (
    ROLE_DSP_XML_SIGN,
    ROLE_NAMES,
    ROLE_XML_SIGN,
    CertRecord,
    SmkiStatus,
    is_p256,
    issuer_key,
    public_key,
)
from solr_policy.duis.models import DuisRequest
from solr_policy.duis.parser import DEFAULT_LIMITS, NS_DS, ParserLimits, _parser, parse_document
from solr_policy.duis.request import build_request
from solr_policy.errors import ParseRefused, SignatureRefused
from solr_policy.store.base import Store

_DS = f"{{{NS_DS}}}"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

BACKENDS = ("fast", "signxml")

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
class Signer:
    certificate: CertRecord
    resolved_by: str  # "issuer-serial" or "dsp-key" (KeyInfo named no stored certificate)

    def summary(self) -> dict[str, object]:
        return {**self.certificate.summary(), "resolved_by": self.resolved_by}


@dataclass(frozen=True)
class VerifiedMessage:
    kind: str  # "Request" or "Response"
    signed_root: etree._Element  # the signed content, parsed from signed_bytes
    signer: Signer
    notes: tuple[str, ...] = field(default=())
    # Exactly the bytes the Reference digests: the document without its Signature in the
    # C14N the Reference names (exclusive for DUIS Users' signatures, C14N 1.0 when no
    # C14N transform is listed, as in DCC-signed messages).
    signed_bytes: bytes = b""


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


@lru_cache(maxsize=1024)
def _p256_key(der: bytes) -> ec.EllipticCurvePublicKey | None:
    """The certificate's P-256 public key, loaded once per certificate."""
    cert = _certificate_object(der)
    if cert is None:
        return None
    key = cert.public_key()
    return key if is_p256(key) else None


def _only(parent: etree._Element, tag: str, what: str, rule: str) -> etree._Element:
    found = parent.findall(f"{_DS}{tag}")
    if len(found) != 1:
        raise SignatureRefused(rule, f"{what}: expected exactly one ds:{tag}, found {len(found)}")
    return found[0]


@dataclass(frozen=True)
class _KeyRef:
    issuer: str
    serial: int


@dataclass(frozen=True)
class _Shape:
    key: _KeyRef
    parts: fastverify.SignatureParts


def _check_shape(root: etree._Element) -> _Shape:
    """The signature must be the DUIS profile and nothing else; refusals name the first
    rule broken. The common case, a signature exactly in the profile, is recognised from its
    canonical form in one step; anything else is examined element by element."""
    signatures = list(root.iter(f"{_DS}Signature"))
    if not signatures:
        raise SignatureRefused("signature.missing", "the message is not signed (no ds:Signature)")
    if len(signatures) > 1:
        raise SignatureRefused("signature.multiple", f"exactly one ds:Signature is allowed, found {len(signatures)}")
    signature = signatures[0]
    if signature.getparent() is not root:
        raise SignatureRefused("signature.location", "the ds:Signature must be a direct child of the root element")
    return _match_profile(root, signature) or _examine_shape(root, signature)


def _examine_shape(root: etree._Element, signature: etree._Element) -> _Shape:
    """Element by element, in the order that decides which rule a refusal names."""
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
    data = _only(key_info, "X509Data", "ds:KeyInfo", "signature.key_info")
    if [c.tag for c in data if isinstance(c.tag, str)] != [f"{_DS}X509IssuerSerial"]:
        raise SignatureRefused("signature.key_info", "ds:X509Data must hold exactly one ds:X509IssuerSerial")
    issuer_serial = _only(data, "X509IssuerSerial", "ds:X509Data", "signature.key_info")
    issuer_text = _only(issuer_serial, "X509IssuerName", "ds:X509IssuerSerial", "signature.key_info").text or ""
    serial_text = _only(issuer_serial, "X509SerialNumber", "ds:X509IssuerSerial", "signature.key_info").text or ""
    key = _key_ref(issuer_text, serial_text)
    _check_profile(signature)
    if not _blank(signature.tail):
        raise SignatureRefused("signature.structure", "the signature is malformed: text follows ds:Signature")
    return _Shape(
        key=key,
        parts=fastverify.SignatureParts(
            root=root,
            signature=signature,
            signed_info=signed_info,
            signature_value=_base64(_only(signature, "SignatureValue", "ds:Signature", "signature.structure")),
            digest_value=_base64(_only(reference, "DigestValue", "ds:Reference", "signature.structure")),
            exclusive=transforms == [ENVELOPED, EXC_C14N],
        ),
    )


def _key_ref(issuer_text: str, serial_text: str) -> _KeyRef:
    serial_text = serial_text.strip(_XML_SPACE)
    if not _SERIAL.fullmatch(serial_text):
        raise SignatureRefused("signature.key_info", f"X509SerialNumber {serial_text[:60]!r} is not a serial number")
    try:
        issuer = issuer_key(issuer_text.strip())
    except ValueError as exc:
        raise SignatureRefused("signature.key_info", f"X509IssuerName: {exc}") from None
    return _KeyRef(issuer=issuer, serial=int(serial_text))


# The DUIS profile of ds:Signature, element by element: the attributes each may carry and
# the ds children it holds, in order (None: a value, text only). XMLDSig allows more (Id and
# Type attributes, ds:Object, InclusiveNamespaces, HMACOutputLength, text in the method
# elements); none of it occurs in DUIS messages, so none of it is accepted.
_PROFILE: dict[str, tuple[frozenset[str], tuple[str, ...] | None]] = {
    "Signature": (frozenset(), ("SignedInfo", "SignatureValue", "KeyInfo")),
    "SignedInfo": (frozenset(), ("CanonicalizationMethod", "SignatureMethod", "Reference")),
    "CanonicalizationMethod": (frozenset({"Algorithm"}), ()),
    "SignatureMethod": (frozenset({"Algorithm"}), ()),
    "Reference": (frozenset({"URI"}), ("Transforms", "DigestMethod", "DigestValue")),
    "Transforms": (frozenset(), ("Transform",)),  # one or two: the transforms check counted them
    "Transform": (frozenset({"Algorithm"}), ()),
    "DigestMethod": (frozenset({"Algorithm"}), ()),
    "DigestValue": (frozenset(), None),
    "SignatureValue": (frozenset(), None),
    "KeyInfo": (frozenset(), ("X509Data",)),
    "X509Data": (frozenset(), ("X509IssuerSerial",)),
    "X509IssuerSerial": (frozenset(), ("X509IssuerName", "X509SerialNumber")),
    "X509IssuerName": (frozenset(), None),
    "X509SerialNumber": (frozenset(), None),
}
_VALUES = frozenset(f"{_DS}{name}" for name, (_, children) in _PROFILE.items() if children is None)
# Whitespace allowed between the elements of the signature. Not a carriage return: only the
# character reference &#13; can make one, and signxml cannot re-read one after ds:Signature.
_BLANK = frozenset(" \t\n")
_XML_SPACE = " \t\r\n"
_SERIAL = re.compile(r"[0-9]{1,50}")
# Canonical base64 (what XML Schema's base64Binary allows, pad bits zero) once XML whitespace
# is removed. signxml's decoder would skip any other character; the profile refuses them.
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/][AQgw]==)?")
_SPACE = re.compile(f"[{_XML_SPACE}]")


def _blank(text: str | None) -> bool:
    return text is None or _BLANK.issuperset(text)


def _check_profile(element: etree._Element) -> None:
    name = element.tag[len(_DS) :]  # a ds element: the caller matched its tag
    attributes, children = _PROFILE[name]
    extra = [a for a in element.attrib if a not in attributes]
    if extra:
        raise SignatureRefused("signature.structure", f"the signature is malformed: ds:{name} may not carry {', '.join(extra)}")
    if children is None:
        if len(element):  # a comment or element would split the value
            raise SignatureRefused("signature.structure", f"the signature is malformed: ds:{name} must hold only text")
        return
    if not _blank(element.text) or not all(_blank(child.tail) for child in element):
        raise SignatureRefused("signature.structure", f"the signature is malformed: ds:{name} holds text")
    found = [child for child in element if isinstance(child.tag, str)]  # comments may sit between
    expected = [f"{_DS}{c}" for c in children] * (len(found) if name == "Transforms" else 1)
    if [child.tag for child in found] != expected:
        names = ", ".join(etree.QName(child).localname for child in found) or "nothing"
        raise SignatureRefused("signature.structure", f"the signature is malformed: ds:{name} holds {names}")
    for child in found:
        _check_profile(child)


def _decode_base64(text: str) -> bytes | None:
    if _SPACE.search(text):
        text = _SPACE.sub("", text)
    return binascii.a2b_base64(text) if text and _BASE64.fullmatch(text) else None


def _base64(element: etree._Element) -> bytes:
    value = _decode_base64(element.text or "")
    if value is None:
        raise SignatureRefused("signature.structure", f"the signature is malformed: ds:{element.tag[len(_DS):]} is not base64")
    return value


# The whole profile as exclusive C14N (no comments) renders it: fixed algorithms, one prefix
# (or the default namespace) for every element, whitespace between elements, four values.
_DS_URI = re.escape(NS_DS)
_PROFILE_C14N = re.compile(
    r"<(?P<p>(?:(?P<prefix>[^\s<>/:=\"]+):)?)Signature xmlns(?(prefix):(?P=prefix))=\"" + _DS_URI + r"\">"
    + "".join(
        f"[ \\t\\n]*{part}"
        for part in (
            "<{p}SignedInfo>",
            f'<{{p}}CanonicalizationMethod Algorithm="{re.escape(EXC_C14N)}"></{{p}}CanonicalizationMethod>',
            f'<{{p}}SignatureMethod Algorithm="{re.escape(ECDSA_SHA256)}"></{{p}}SignatureMethod>',
            '<{p}Reference URI="">',
            "<{p}Transforms>",
            f'<{{p}}Transform Algorithm="{re.escape(ENVELOPED)}"></{{p}}Transform>',
            f'(?P<exclusive><{{p}}Transform Algorithm="{re.escape(EXC_C14N)}"></{{p}}Transform>)?',
            "</{p}Transforms>",
            f'<{{p}}DigestMethod Algorithm="{re.escape(SHA256)}"></{{p}}DigestMethod>',
            "<{p}DigestValue>(?P<digest>[^<]*)</{p}DigestValue>",
            "</{p}Reference>",
            "</{p}SignedInfo>",
            "<{p}SignatureValue>(?P<value>[^<]*)</{p}SignatureValue>",
            "<{p}KeyInfo>",
            "<{p}X509Data>",
            "<{p}X509IssuerSerial>",
            "<{p}X509IssuerName>(?P<issuer>[^<]*)</{p}X509IssuerName>",
            "<{p}X509SerialNumber>(?P<serial>[^<]*)</{p}X509SerialNumber>",
            "</{p}X509IssuerSerial>",
            "</{p}X509Data>",
            "</{p}KeyInfo>",
            "</{p}Signature>",
        )
    ).replace("{p}", "(?P=p)"),
)
_C14N_TEXT = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&#xD;": "\r"}


def _c14n_text(text: str) -> str:
    for escaped, char in _C14N_TEXT.items():
        if escaped in text:
            text = text.replace(escaped, char)
    return text


def _match_profile(root: etree._Element, signature: etree._Element) -> _Shape | None:
    """The shape of a signature exactly in the profile, or None to examine it element by
    element (which then names the rule it breaks, or accepts what this pattern is too
    narrow for). Gives the same result as _examine_shape whenever it gives one."""
    try:
        canonical = etree.tostring(signature, method="c14n", exclusive=True, with_comments=False).decode()
    except etree.LxmlError:
        return None
    match = _PROFILE_C14N.fullmatch(canonical)
    if match is None or not _blank(signature.tail):
        return None
    if any(comment.getparent().tag in _VALUES for comment in signature.iter(etree.Comment)):
        return None  # a comment splits a value: the reading element by element decides
    digest = _decode_base64(_c14n_text(match["digest"]))
    value = _decode_base64(_c14n_text(match["value"]))
    if digest is None or value is None:
        return None
    try:
        key = _key_ref(_c14n_text(match["issuer"]), _c14n_text(match["serial"]))
    except SignatureRefused:
        return None
    signed_info = signature.find(f"{_DS}SignedInfo")
    parts = fastverify.SignatureParts(
        root=root,
        signature=signature,
        signed_info=signed_info,
        signature_value=value,
        digest_value=digest,
        exclusive=match["exclusive"] is not None,
    )
    return _Shape(key=key, parts=parts)


class Verifier:
    """Verifies DUIS message signatures against the certificate store. Thread-safe."""

    def __init__(self, store: Store, *, limits: ParserLimits = DEFAULT_LIMITS, schema=None, backend: str = "fast") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown verifier backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.store = store
        self.limits = limits
        self.schema = schema  # optional solr_policy.duis.xsd.DuisSchema
        self.backend = backend  # "fast" (the default) or "signxml" (the reference implementation)

    def verify(self, raw: bytes, *, now: datetime | None = None) -> VerifiedMessage:
        now = now or datetime.now(timezone.utc)
        root = parse_document(raw, self.limits)
        if self.schema is not None:
            self.schema.validate(root)
        kind = etree.QName(root).localname
        shape = _check_shape(root)
        ref = shape.key
        candidates, resolved_by = self._resolve(ref, kind)
        failures: list[SignatureRefused] = []
        for record in candidates:
            try:
                self._check_certificate(record, kind, now)
                signed_root, signed_bytes = self._crypto_verify(raw, shape.parts, record, now)
            except SignatureRefused as refusal:
                failures.append(refusal)
                continue
            notes = ()
            if resolved_by == "dsp-key":
                notes = (
                    f"KeyInfo names serial {ref.serial} of {ref.issuer}, which is not in the store; "
                    f"the signature verified with the stored DCC certificate serial {record.serial}",
                )
            return VerifiedMessage(
                kind=kind, signed_root=signed_root, signer=Signer(record, resolved_by), notes=notes, signed_bytes=signed_bytes
            )
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
        for serial, role, usage, eui in self.store.key_shared_with(record.spki_sha256, record.fingerprint):
            usages = usage.split(",")
            if role not in (ROLE_XML_SIGN, ROLE_DSP_XML_SIGN) or "key_agreement" in usages:
                kind = "Key Agreement" if "key_agreement" in usages else "Digital Signing"
                role_name = ROLE_NAMES.get(role, f"role {role}") if role is not None else "unknown role"
                raise SignatureRefused(
                    "signature.key_separation",
                    f"{who} shares its key with {kind} certificate serial {serial} "
                    f"({eui}, {role_name}); MP104 requires separate keys",
                )

    def _crypto_verify(
        self, raw: bytes, parts: fastverify.SignatureParts, record: CertRecord, now: datetime
    ) -> tuple[etree._Element, bytes]:
        key = _p256_key(record.der)
        if key is None:
            if not is_p256(public_key(record)):
                raise SignatureRefused("signature.certificate_key", f"certificate serial {record.serial} has no P-256 key")
            raise SignatureRefused(
                "signature.certificate_unreadable",
                f"certificate serial {record.serial} was imported leniently and cannot verify XML signatures",
            )
        if self.backend == "fast":
            result = fastverify.verify(parts, key)
            return result.signed_root, result.signed_bytes
        return _signxml_verify(raw, _certificate_object(record.der), now)


def _signxml_verify(raw: bytes, cert: x509.Certificate, now: datetime) -> tuple[etree._Element, bytes]:
    """The reference implementation: signxml, restricted to the DUIS algorithms."""
    try:
        result = XMLVerifier().verify(raw, x509_cert=cert, parser=_parser(), expect_config=_config(now))
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
    return signed, result.signed_data


def _first(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__
