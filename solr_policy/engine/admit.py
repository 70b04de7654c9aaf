"""Stage 1, admit: raw bytes in, a verified and typed request out (or a typed refusal).

Parse once (hardened), check the signature's shape, find and check the signer's
certificate, verify the cryptography, build the typed request from the *signed* content
only, and decode a Signed Pre-Command's GBCS header. Runs outside any transaction: it reads
only certificates, and is the costly part of a decision.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from solr_policy.crypto.verify import CertificateView, Verifier
from solr_policy.duis.models import DuisRequest, SignedPreCommand
from solr_policy.duis.request import build_request
from solr_policy.errors import GbcsRefused, Refused, StoreUnavailable
from solr_policy.gbcs import GbcsHeader, decode_general_signing
from solr_policy.records import Signer
from solr_policy.rules import GbcsError


@dataclass(frozen=True)
class Admitted:
    """A request whose signature verified, built from what was signed."""

    request: DuisRequest
    signer: Signer
    gbcs: GbcsHeader | GbcsError | None  # None: not a Signed Pre-Command
    signed_content: bytes  # exclusive C14N of the signed content: what a pipeline forwards
    content_sha256: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InputRefusal:
    """The request was refused before the rules could run: bad input, bad signature, no store."""

    rule: str
    message: str
    code: str | None = None


def admit(raw: bytes, verifier: Verifier, now: datetime, *, certificates: CertificateView | None = None) -> Admitted | InputRefusal:
    """``certificates``: as ``Verifier.verify`` takes them (default: as of the store's generation now)."""
    try:
        verified = verifier.verify(raw, now=now, certificates=certificates)
        if verified.kind != "Request":
            return InputRefusal("duis.root", f"expected a DUIS Request, got a {verified.kind}")
        request = build_request(verified.signed_root)
    except Refused as refusal:
        return InputRefusal(refusal.rule, refusal.message, refusal.code)
    except StoreUnavailable as fault:
        return InputRefusal("store.unavailable", f"the certificate store cannot be read ({fault}); refused by default")
    # The bytes the signature's digest covers (the fast verifier keeps them; signxml does not).
    signed = verified.signed_bytes or etree.tostring(verified.signed_root, method="c14n", exclusive=True)
    return Admitted(
        request=request,
        signer=verified.signer,
        gbcs=_decode_gbcs(request),
        signed_content=signed,
        content_sha256=verified.signed_sha256 or hashlib.sha256(signed).hexdigest(),
        notes=verified.notes,
    )


def _decode_gbcs(request: DuisRequest) -> GbcsHeader | GbcsError | None:
    if not isinstance(request.body, SignedPreCommand):
        return None
    try:
        return decode_general_signing(request.body.gbcs_payload)
    except GbcsRefused as refusal:
        return GbcsError(refusal.message, refusal.offset)
