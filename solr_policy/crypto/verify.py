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

The certificates a verification reads (the signer's record, the certificates sharing its
key, the DCC's signing certificates) are kept between verifications while the store's
world generation stays the same: every change to a certificate or its status, by any
program or node, bumps it in the same transaction (a trigger, ``store.sql.STATIC_FACT_TABLES``),
so each verification reads the generation first and sees any change committed before it.
(``Engine.prepare`` alone skips that read: its decision reads the generation in its
transaction and admits again a request prepared at another one.) The checks themselves
(role, usage, validity at the decision time, status, key separation) run on every
verification.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, TypeVar

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
from signxml.exceptions import (
    InvalidCertificate,
    InvalidDigest,
    InvalidInput,
    InvalidSignature,
)

from solr_policy.crypto import fastverify
from solr_policy.crypto.certs import is_p256, public_key
from solr_policy.crypto.profile import KeyRef, check_shape
from solr_policy.duis.models import DuisRequest
from solr_policy.duis.parser import (
    DEFAULT_LIMITS,
    ROOTS,
    ParserLimits,
    _parser,
    parse_document,
)
from solr_policy.duis.request import build_request
from solr_policy.duis.xsd import DuisSchema
from solr_policy.errors import ParseRefused, SignatureRefused
from solr_policy.eui import duis_form
from solr_policy.records import (
    ROLE_DSP_XML_SIGN,
    ROLE_XML_SIGN,
    CertRecord,
    KeyHolder,
    Signer,
    SmkiStatus,
    role_name,
)
from solr_policy.store.base import CertificateStore

T = TypeVar("T")

BACKENDS = ("fast", "signxml")

# The signing roles each message kind may be signed with.
SIGNER_ROLES = {"Request": frozenset({ROLE_XML_SIGN}), "Response": frozenset({ROLE_DSP_XML_SIGN})}


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
    signed_root: etree._Element  # the signed content, parsed from signed_bytes
    signer: Signer
    notes: tuple[str, ...] = field(default=())
    # Exactly the bytes the Reference digests: the document without its Signature in the
    # C14N the Reference names (exclusive for DUIS Users' signatures, C14N 1.0 when no
    # C14N transform is listed, as in DCC-signed messages).
    signed_bytes: bytes = b""
    signed_sha256: str = ""  # of signed_bytes, hex, when the verifier has it (the fast one)


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


# Certificates kept per generation: far more than a deployment signs with; past it, more are
# read from the store each time rather than kept.
_MAX_KEPT = 4096


class CertificateCache:
    """Certificate look-ups kept for one world generation of the store, shared by threads.

    Only certificates found are kept (an unknown serial is a refusal, read each time), so an
    outsider naming made-up certificates fills nothing."""

    def __init__(self, store: CertificateStore) -> None:
        self._store = store
        generation = getattr(store, "world_generation", None)
        self._read_generation: Callable[[], int] | None = generation if callable(generation) else None
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._kept: dict[tuple[Any, ...], Any] = {}

    def view(self, *, fresh: bool = True) -> "CertificateView":
        """The certificates as of the store's generation now (all dropped if it moved).

        ``fresh=False``: as of the generation last read, without reading it (the first time it
        is read). The view names that generation: whoever uses it must check it is still the
        store's before acting on what it gave (``Engine.decide_group`` does, in its transaction)."""
        if self._read_generation is None or _in_transaction(self._store):
            # A store without a generation, or a transaction of this thread that may change
            # certificates and roll back: read through, keep nothing.
            return CertificateView(self._store, None, None)
        if not fresh:
            with self._lock:
                if self._generation is not None:
                    return CertificateView(self._store, self._kept, self._generation)
        generation = self._read_generation()  # before any certificate is read for this view
        with self._lock:
            if generation != self._generation:
                self._generation, self._kept = generation, {}
            return CertificateView(self._store, self._kept, generation)

    def advance(self, generation: int) -> None:
        """The store was at ``generation`` (read in a transaction that changed no certificate
        and has committed): what is kept of another generation is dropped, and views taken
        without reading the generation are of this one."""
        with self._lock:
            if generation != self._generation:
                self._generation, self._kept = generation, {}


def _in_transaction(store: object) -> bool:
    # SqlStore counts the transaction() calls open on this thread (store.sql.SqlStore._tx).
    return bool(getattr(getattr(store, "_local", None), "depth", 0))


class CertificateView:
    """The store's certificate reads, each made at most once per generation (None: every time)."""

    __slots__ = ("_store", "_kept", "generation")

    def __init__(self, store: CertificateStore, kept: dict[tuple[Any, ...], Any] | None, generation: int | None) -> None:
        self._store, self._kept = store, kept
        # The world generation the kept certificates are of; None: read from the store now.
        self.generation = generation

    def _get(self, key: tuple[Any, ...], read: Callable[[], T], *, keep_none: bool = True) -> T:
        kept = self._kept
        if kept is None:
            return read()
        try:
            value: T = kept[key]
            return value
        except KeyError:
            value = read()
            if (keep_none or value is not None) and len(kept) < _MAX_KEPT:
                kept[key] = value
            return value

    def get_certificate(self, issuer: str, serial: int) -> CertRecord | None:
        return self._get(("cert", issuer, serial), lambda: self._store.get_certificate(issuer, serial), keep_none=False)

    def find_dsp_certificates(self) -> list[CertRecord]:
        return list(self._get(("dsp",), lambda: tuple(self._store.find_certificates(role=ROLE_DSP_XML_SIGN))))

    def key_shared_with(self, spki_sha256: str, fingerprint: str) -> tuple[KeyHolder, ...]:
        return self._get(("shared", spki_sha256, fingerprint), lambda: tuple(self._store.key_shared_with(spki_sha256, fingerprint)))


class Verifier:
    """Verifies DUIS message signatures against the certificate store. Thread-safe."""

    def __init__(
        self, store: CertificateStore, *, limits: ParserLimits = DEFAULT_LIMITS, schema: DuisSchema | None = None, backend: str = "fast"
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown verifier backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.store = store
        self.limits = limits
        self.schema = schema
        self.backend = backend  # "fast" (the default) or "signxml" (the reference implementation)
        self.certificates = CertificateCache(store)

    def verify(
        self, raw: bytes, *, now: datetime | None = None, certificates: CertificateView | None = None
    ) -> VerifiedMessage:
        """``certificates``: the view to read them through (default: as of the store's
        generation now)."""
        now = now or datetime.now(timezone.utc)
        root = parse_document(raw, self.limits)
        if self.schema is not None:
            self.schema.validate(root)
        kind = ROOTS[root.tag]  # parse_document admits these roots only
        shape = check_shape(root)
        ref = shape.key
        certificates = certificates if certificates is not None else self.certificates.view()
        candidates, resolved_by = self._resolve(ref, kind, certificates)
        failures: list[SignatureRefused] = []
        for record in candidates:
            try:
                self._check_certificate(record, kind, now, certificates)
                signed_root, signed_bytes, signed_sha256 = self._crypto_verify(raw, shape.parts, record, now)
            except SignatureRefused as refusal:
                failures.append(refusal)
                continue
            notes: tuple[str, ...] = ()
            if resolved_by == "dsp-key":
                notes = (
                    f"KeyInfo names serial {ref.serial} of {ref.issuer}, which is not in the store; "
                    f"the signature verified with the stored DCC certificate serial {record.serial}",
                )
            return VerifiedMessage(
                kind=kind, signed_root=signed_root, signer=Signer(record, resolved_by), notes=notes,
                signed_bytes=signed_bytes, signed_sha256=signed_sha256,
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
                f"the RequestID originator {duis_form(request.header.request_id.originator)} is not the signer "
                f"{duis_form(signer_eui) if signer_eui else '(the certificate names no EUI-64)'} "
                f"(certificate serial {verified.signer.certificate.serial})",
                code="E1",
            )
        return VerifiedRequest(request=request, signer=verified.signer)

    # -- steps --------------------------------------------------------------------------
    def _resolve(self, ref: KeyRef, kind: str, certificates: CertificateView | None = None) -> tuple[list[CertRecord], str]:
        certificates = certificates or CertificateView(self.store, None, None)
        record = certificates.get_certificate(ref.issuer, ref.serial)
        if record is not None:
            return [record], "issuer-serial"
        if kind == "Response":
            # DCC-signed messages: the DCC's own XML signing certificates are few and configured
            # by the operator; try them when KeyInfo names a serial we do not hold.
            # All of them, whatever their SMKI status: _check_certificate refuses one that is not
            # In use by its status (certificate_revoked, ...), rather than "not in the store".
            dsp = certificates.find_dsp_certificates()
            if dsp:
                return dsp, "dsp-key"
        raise SignatureRefused(
            "signature.unknown_certificate",
            f"no certificate with serial {ref.serial} from issuer {ref.issuer} is in the store",
        )

    def _check_certificate(
        self, record: CertRecord, kind: str, now: datetime, certificates: CertificateView | None = None
    ) -> None:
        allowed = SIGNER_ROLES.get(kind, frozenset())
        if record.role not in allowed:
            names = " or ".join(str(r) for r in sorted(allowed))
            raise SignatureRefused(
                "signature.certificate_role",
                f"{_who(record)} has Remote Party Role {record.role}; a {kind} must be signed with role {names}",
            )
        if "digital_signature" not in record.key_usage:
            raise SignatureRefused("signature.certificate_usage", f"{_who(record)} lacks the digitalSignature key usage")
        if now < record.not_before:
            raise SignatureRefused(
                "signature.certificate_not_yet_valid", f"{_who(record)} is not valid before {record.not_before.isoformat()}"
            )
        if now > record.not_after:
            raise SignatureRefused("signature.certificate_expired", f"{_who(record)} expired on {record.not_after.isoformat()}")
        if record.status is not SmkiStatus.IN_USE:
            raise SignatureRefused(
                f"signature.certificate_{record.status.name.lower()}",
                f"{_who(record)} has SMKI status {record.status.label}; only In use certificates may sign",
            )
        self._check_key_separation(record, certificates or CertificateView(self.store, None, None))

    def _check_key_separation(self, record: CertRecord, certificates: CertificateView) -> None:
        # SEC MP104: an XML signing key must not also be a Digital Signing or Key Agreement key.
        for other in certificates.key_shared_with(record.spki_sha256, record.fingerprint):
            if other.role not in (ROLE_XML_SIGN, ROLE_DSP_XML_SIGN) or "key_agreement" in other.key_usage:
                kind = "Key Agreement" if "key_agreement" in other.key_usage else "Digital Signing"
                raise SignatureRefused(
                    "signature.key_separation",
                    f"{_who(record)} shares its key with {kind} certificate serial {other.serial} "
                    f"({other.subject_eui}, {role_name(other.role)}); MP104 requires separate keys",
                )

    def _crypto_verify(
        self, raw: bytes, parts: fastverify.SignatureParts, record: CertRecord, now: datetime
    ) -> tuple[etree._Element, bytes, str]:
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
            return result.signed_root, result.signed_bytes, result.signed_sha256
        cert = _certificate_object(record.der)
        assert cert is not None  # for mypy: _p256_key(record.der) read the key from it
        return (*_signxml_verify(raw, cert, now), "")


def _who(record: CertRecord) -> str:
    return f"certificate serial {record.serial} ({record.subject_eui}, {record.role_name})"


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
    if isinstance(result, list):  # never with expect_references=1; refused all the same
        raise SignatureRefused("signature.reference", "the signature has more than one reference")
    signed = result.signed_xml
    if not isinstance(signed, etree._Element):
        raise SignatureRefused("signature.reference", "the signature does not cover an XML element")
    return signed, result.signed_data


def _first(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__
