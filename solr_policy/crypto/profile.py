"""The DUIS profile of an XML signature: what a ds:Signature may look like.

DUIS messages are signed one way only: one enveloped ds:Signature, a child of the root;
exclusive C14N of SignedInfo; ECDSA-SHA256; one Reference URI="" with the enveloped
transform and, optionally, exclusive C14N; SHA-256; KeyInfo naming the certificate by
X509IssuerSerial. ``check_shape`` refuses anything else, naming the first rule broken, before
any certificate is looked up or any cryptography is done; whichever verifier then runs
(``crypto.fastverify``, or signxml as the reference) sees only signatures in the profile.

XMLDSig allows more, and signxml alone would accept it: ds:Object, Id and Type attributes,
InclusiveNamespaces, HMACOutputLength, text in the method elements, base64 with stray
characters or non-zero pad bits (its decoder skips them), text after the Signature. None of
it occurs in DUIS messages, so none of it is accepted.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from xml.sax.saxutils import unescape

from lxml import etree

from solr_policy.crypto import fastverify
from solr_policy.crypto.certs import issuer_key
from solr_policy.duis.parser import NS_DS
from solr_policy.errors import SignatureRefused

_DS = f"{{{NS_DS}}}"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"


def _only(parent: etree._Element, tag: str, what: str, rule: str) -> etree._Element:
    found = parent.findall(f"{_DS}{tag}")
    if len(found) != 1:
        raise SignatureRefused(rule, f"{what}: expected exactly one ds:{tag}, found {len(found)}")
    return found[0]


@dataclass(frozen=True)
class KeyRef:
    issuer: str
    serial: int


@dataclass(frozen=True)
class Shape:
    key: KeyRef  # the certificate KeyInfo names
    parts: fastverify.SignatureParts  # what the cryptographic check needs


def check_shape(root: etree._Element) -> Shape:
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


def _examine_shape(root: etree._Element, signature: etree._Element) -> Shape:
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
    return Shape(
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


def _key_ref(issuer_text: str, serial_text: str) -> KeyRef:
    serial_text = serial_text.strip(_XML_SPACE)
    if not _SERIAL.fullmatch(serial_text):
        raise SignatureRefused("signature.key_info", f"X509SerialNumber {serial_text[:60]!r} is not a serial number")
    try:
        issuer = issuer_key(issuer_text.strip())
    except ValueError as exc:
        raise SignatureRefused("signature.key_info", f"X509IssuerName: {exc}") from None
    return KeyRef(issuer=issuer, serial=int(serial_text))


# The DUIS profile of ds:Signature, element by element: the attributes each may carry and
# the ds children it holds, in order (None: a value, text only).
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
    extra = [str(a) for a in element.attrib if a not in attributes]
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
            "(?P<signed_info><{p}SignedInfo>",
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
            "</{p}SignedInfo>)",
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


def _c14n_text(text: str) -> str:
    # C14N writes text with &amp; &lt; &gt; and &#xD;; unescape() undoes &amp; last.
    return unescape(text, {"&#xD;": "\r"}) if "&" in text else text


def _match_profile(root: etree._Element, signature: etree._Element) -> Shape | None:
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
    parents = (comment.getparent() for comment in signature.iter(etree.Comment))
    if any(parent is not None and parent.tag in _VALUES for parent in parents):
        return None  # a comment splits a value: the reading element by element decides
    digest = _decode_base64(_c14n_text(match["digest"]))
    value = _decode_base64(_c14n_text(match["value"]))
    if digest is None or value is None:
        return None
    try:
        key = _key_ref(_c14n_text(match["issuer"]), _c14n_text(match["serial"]))
    except SignatureRefused:
        return None
    signed_info = signature[0] if len(signature) else None  # comments are not rendered: find it if one is first
    if signed_info is None or signed_info.tag != f"{_DS}SignedInfo":
        signed_info = signature.find(f"{_DS}SignedInfo")
        if signed_info is None:  # the pattern matched one; examined element by element all the same
            return None
    parts = fastverify.SignatureParts(
        root=root,
        signature=signature,
        signed_info=signed_info,
        signature_value=value,
        digest_value=digest,
        exclusive=match["exclusive"] is not None,
        _signed_info_c14n=_signed_info_c14n(match),
    )
    return Shape(key=key, parts=parts)


def _signed_info_c14n(match: re.Match[str]) -> bytes:
    """SignedInfo's own exclusive C14N, read from the Signature's: the pattern admits no other
    namespace declaration and no prefixed attribute, so the two differ only in where the
    XMLDSig namespace is declared (on SignedInfo when it is the apex)."""
    prefix, opening = match["prefix"], f"<{match['p']}SignedInfo>"
    declaration = f' xmlns:{prefix}="{NS_DS}"' if prefix else f' xmlns="{NS_DS}"'
    return f"<{match['p']}SignedInfo{declaration}>{match['signed_info'][len(opening):]}".encode()
