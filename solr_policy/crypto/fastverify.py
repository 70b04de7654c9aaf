"""The strict DUIS-profile XML signature verifier: the default cryptographic check.

It works on the document ``duis.parser.parse_document`` parsed once, after the shape check
of ``crypto.verify`` has pinned the signature to the DUIS profile (one enveloped ds:Signature
under the root, exclusive C14N of SignedInfo, ECDSA-SHA256, one Reference URI="" with the
enveloped transform and optionally exclusive C14N, SHA-256) and decoded its base64 values.
Nothing else reaches this module, so it has no algorithm choices to make.

Order, as in signxml (the reference implementation the differential test compares against):
the ECDSA signature over the canonical SignedInfo first, then the digest of the document
without its Signature. Only a document whose SignedInfo a trusted key signed is therefore
ever canonicalised as a whole. The signed content handed back is parsed from the canonical
signed bytes, never taken from the parsed tree: comments and anything else outside the
canonical form are gone, exactly as in what signxml returns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from solr_policy.duis.parser import _parser
from solr_policy.errors import SignatureRefused

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_P256_VALUE_BYTES = 64  # XMLDSig ECDSA: r || s, 32 bytes each


@dataclass(eq=False)
class SignatureParts:
    """One shape-checked signature and its document, ready for any number of candidate keys."""

    root: etree._Element  # the parsed document; verify() takes its Signature out, once
    signature: etree._Element
    signed_info: etree._Element
    signature_value: bytes  # decoded base64
    digest_value: bytes  # decoded base64
    exclusive: bool  # the Reference names exclusive C14N; otherwise XMLDSig's default, C14N 1.0
    _signed_info_c14n: bytes | None = field(default=None, repr=False)
    _content_c14n: bytes | None = field(default=None, repr=False)

    def signed_info_c14n(self) -> bytes:
        if self._signed_info_c14n is None:
            self._signed_info_c14n = _c14n(self.signed_info, exclusive=True)
        return self._signed_info_c14n

    def content_c14n(self) -> bytes:
        """The bytes the Reference digests: the document without its Signature, canonical,
        comments excluded (URI="" selects no comments)."""
        if self._content_c14n is None:
            _remove_enveloped(self.signature)
            self._content_c14n = _c14n(self.root, exclusive=self.exclusive)
        return self._content_c14n


@dataclass(frozen=True)
class FastResult:
    signed_root: etree._Element  # parsed from signed_bytes
    signed_bytes: bytes  # exactly what the digest covers
    signed_sha256: str  # their SHA-256, hex: the digest the signature vouches for


def verify(parts: SignatureParts, key: ec.EllipticCurvePublicKey) -> FastResult:
    """Check the signature with ``key`` (a P-256 key), then the digest; return what was signed."""
    _check_signature(parts, key)
    content = parts.content_c14n()
    if hashlib.sha256(content).digest() != parts.digest_value:
        raise SignatureRefused("signature.digest", "the signed content was changed after signing (digest mismatch)")
    try:
        signed_root = etree.fromstring(content, parser=_parser())
    except etree.XMLSyntaxError:
        raise SignatureRefused("signature.reference", "the signature does not cover an XML element") from None
    return FastResult(signed_root=signed_root, signed_bytes=content, signed_sha256=parts.digest_value.hex())


def _check_signature(parts: SignatureParts, key: ec.EllipticCurvePublicKey) -> None:
    value = parts.signature_value
    if len(value) != _P256_VALUE_BYTES:
        raise SignatureRefused(
            "signature.invalid",
            f"the signature does not verify: expected a {_P256_VALUE_BYTES} byte SignatureValue, got {len(value)}",
        )
    half = _P256_VALUE_BYTES // 2
    der = encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))
    try:
        key.verify(der, parts.signed_info_c14n(), _ECDSA_SHA256)
    except InvalidSignature:
        raise SignatureRefused("signature.invalid", "the signature does not verify: ECDSA verification failed") from None


def _c14n(element: etree._Element, *, exclusive: bool) -> bytes:
    try:
        return etree.tostring(element, method="c14n", exclusive=exclusive, with_comments=False)
    except etree.LxmlError as exc:  # e.g. a relative namespace URI, which C14N cannot render
        raise SignatureRefused("signature.structure", f"the signature is malformed: {exc}") from None


def _remove_enveloped(signature: etree._Element) -> None:
    # The enveloped-signature transform removes the element, not the text after it; lxml's
    # remove() drops the tail with the element, so the tail moves to where it stood.
    parent = signature.getparent()
    if parent is None:
        return
    tail = signature.tail
    if tail:
        previous = signature.getprevious()
        if previous is None:
            parent.text = (parent.text or "") + tail
        else:
            previous.tail = (previous.tail or "") + tail
    parent.remove(signature)
