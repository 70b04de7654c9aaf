"""MP134B R2: which SMKI Organisation Certificates a SoLR Contingency Party may subscribe for.

A Party in the SoLR Contingency User Role (``SC``) may ask the SMKI for **XML Signing**
certificates (Remote Party Role 135, Key Usage digitalSignature) and never for **Digital
Signing** certificates (Supplier, Remote Party Role 2, digitalSignature): those sign Critical
Commands, which MP134B keeps away from this role. Everything else is refused by default:
Key Agreement certificates, any other Remote Party Role, CSRs that do not say which role or
key usage they want, roles nobody knows.

``check_csr`` reads a PKCS#10 request (PEM or DER) the way ``crypto/certs.py`` reads SMKI
certificates (subject OU = Remote Party Role in hex, uniqueIdentifier 2.5.4.45 = EUI-64 as
a BIT STRING, Key Usage from the extensionRequest) and returns a ``CsrVerdict`` with a
stable rule id. It never raises for bad input. ``solr_policy.testing.make_csr`` writes
SMKI-shaped CSRs for tests and the demo.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict

from solr_policy.crypto.certs import (
    _KU_NAMES,
    UNIQUE_IDENTIFIER,
    _eui_from_unique_identifier,
)
from solr_policy.eui import parse_eui64
from solr_policy.records import ROLE_NAMES, ROLE_SUPPLIER, ROLE_XML_SIGN
from solr_policy.store.base import Store
from solr_policy.world import SOLR_CONTINGENCY, USER_ROLES, UserStatus

# Stable rule ids (what a pipeline keys on).
ALLOWED = "R2.xml-signing-allowed"
DIGITAL_SIGNING_FORBIDDEN = "R2.digital-signing-forbidden"
KEY_AGREEMENT_REFUSED = "R2.key-agreement-refused"
ROLE_REFUSED = "R2.role-refused"
KEY_USAGE_REFUSED = "R2.key-usage-refused"
KEY_TYPE_REFUSED = "R2.key-not-p256"
NO_ROLE = "R2.no-role"
AMBIGUOUS_ROLE = "R2.ambiguous-role"
NO_KEY_USAGE = "R2.no-key-usage"
NO_EUI = "R2.no-eui"
AMBIGUOUS_EUI = "R2.ambiguous-eui"
BAD_SIGNATURE = "R2.bad-signature"
UNREADABLE = "R2.unreadable"
PRIVATE_KEY = "R2.private-key"
PARTY_ROLE_MISMATCH = "R2.party-role-mismatch"
NOT_A_USER_OF_PARTY = "R2.eui-not-a-user-of-party"
USER_NOT_ACTIVE = "R2.user-not-active"


class CsrVerdict(BaseModel):
    """The gate's answer for one CSR, with the facts it read from it."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    rule: str
    message: str
    source: str = "<csr>"
    subject_eui: str | None = None
    requested_role: int | None = None
    requested_role_name: str | None = None
    key_usage: list[str] = []
    key_type: str | None = None

    def facts(self) -> dict[str, object]:
        return {
            "subject_eui": self.subject_eui,
            "requested_role": self.requested_role,
            "requested_role_name": self.requested_role_name,
            "key_usage": list(self.key_usage),
            "key_type": self.key_type,
        }

    def to_json_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "rule": self.rule,
            "message": self.message,
            "source": self.source,
            "facts": self.facts(),
        }


def role_name(role: int | None) -> str | None:
    if role is None:
        return None
    return ROLE_NAMES.get(role, f"unknown role {role}")


def _role_label(role: int) -> str:
    return f"Remote Party Role {role} ({role_name(role)})"


def key_type(public_key: object) -> str:
    """``EC P-256``, ``RSA 2048``, ``Ed25519``, ... for the public key of a CSR."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curves = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"EC {curves.get(public_key.curve.name, public_key.curve.name)}"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, dsa.DSAPublicKey):
        return f"DSA {public_key.key_size}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(public_key).__name__


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def _load(data: bytes) -> x509.CertificateSigningRequest:
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_csr(data)
    return x509.load_der_x509_csr(data)


def _roles_from_ou(values: list[str]) -> list[int]:
    roles = []
    for value in values:
        text = value.strip()
        if 1 <= len(text) <= 2 and all(c in "0123456789abcdefABCDEF" for c in text):
            roles.append(int(text, 16))
    return roles


def check_csr(
    data: bytes | str,
    *,
    party: str,
    role: str,
    store: Store | None = None,
    source: str = "<csr>",
) -> CsrVerdict:
    """Decide whether ``party``, acting in User Role ``role``, may subscribe for this CSR.

    Pure except for an optional read of ``store`` (``get_user``) to check that the CSR's
    subject EUI is a User of ``party`` in ``role``. Never raises for bad input.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    role_code = (role or "").strip().upper()

    def refuse(rule: str, message: str, **facts: Any) -> CsrVerdict:
        return CsrVerdict(allowed=False, rule=rule, message=f"{source}: {message}", source=source, **facts)

    # 1. Readable PKCS#10 (and nothing secret alongside it).
    if b"PRIVATE KEY" in data:
        return refuse(PRIVATE_KEY, "holds a private key; submit the certificate signing request only")
    try:
        csr = _load(data)
        subject = csr.subject
        public_key = csr.public_key()
    except Exception as exc:  # noqa: BLE001 - any parser refusal is a named refusal, never a traceback
        return refuse(UNREADABLE, f"not a readable PKCS#10 certificate signing request ({_short(exc)})")

    # Facts, as SMKI reads them from the subject and the extensionRequest.
    try:
        ou = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        euis = []
        for attribute in subject.get_attributes_for_oid(x509.ObjectIdentifier(UNIQUE_IDENTIFIER)):
            value = attribute.value
            raw = value if isinstance(value, bytes) else value.encode("latin-1")
            euis.append(_eui_from_unique_identifier(raw) or f"unreadable:{raw.hex()}")
        try:
            ku = csr.extensions.get_extension_for_class(x509.KeyUsage).value
            usage: list[str] | None = [name for name in _KU_NAMES if getattr(ku, name)]
        except x509.ExtensionNotFound:
            usage = None
    except Exception as exc:  # noqa: BLE001 - malformed subject or extensions
        return refuse(UNREADABLE, f"its subject or requested extensions cannot be read ({_short(exc)})")

    roles = sorted(set(_roles_from_ou(ou)))
    requested = roles[0] if len(roles) == 1 else None
    distinct_euis = sorted(set(euis))
    eui = distinct_euis[0] if len(distinct_euis) == 1 else None
    facts: dict[str, Any] = {
        "subject_eui": eui,
        "requested_role": requested,
        "requested_role_name": role_name(requested),
        "key_usage": list(usage or []),
        "key_type": key_type(public_key),
    }

    # 2. The request's own signature (proof of possession of the private key).
    try:
        signature_ok = csr.is_signature_valid
    except Exception:  # noqa: BLE001 - an unsupported or malformed signature does not verify
        signature_ok = False
    if not signature_ok:
        return refuse(BAD_SIGNATURE, "the request's own signature does not verify (altered, or not signed by its key)", **facts)

    # The gate decides for the SoLR Contingency role only.
    if role_code != SOLR_CONTINGENCY:
        known = f" ({USER_ROLES[role_code]})" if role_code in USER_ROLES else ""
        return refuse(
            PARTY_ROLE_MISMATCH,
            f"this gate decides certificate subscriptions for the SoLR Contingency role ({SOLR_CONTINGENCY}) only; "
            f"User Role {role_code or '(none)'!r}{known} is not decided here: refused (default deny)",
            **facts,
        )

    # 3. What is asked for.
    if not roles:
        seen = f" (OU: {', '.join(repr(v) for v in ou)})" if ou else ""
        return refuse(NO_ROLE, f"names no Remote Party Role: the subject OU must carry it in hex, e.g. 87 for XML Sign{seen}", **facts)
    if len(roles) > 1:
        names = ", ".join(_role_label(r) for r in roles)
        return refuse(AMBIGUOUS_ROLE, f"names several Remote Party Roles ({names}); a request asks for one", **facts)
    if usage is None or not usage:
        return refuse(NO_KEY_USAGE, "requests no Key Usage (the extensionRequest must carry digitalSignature or keyAgreement)", **facts)

    # 4. MP134B R2 for the SoLR Contingency role.
    assert requested is not None
    if requested == ROLE_SUPPLIER and "digital_signature" in usage:
        return refuse(
            DIGITAL_SIGNING_FORBIDDEN,
            "asks for a Digital Signing certificate (Remote Party Role 2 Supplier, digitalSignature); "
            "Digital Signing certificates sign Critical Commands and MP134B forbids them for the "
            "SoLR Contingency role",
            **facts,
        )
    if "key_agreement" in usage:
        return refuse(
            KEY_AGREEMENT_REFUSED,
            f"asks for a Key Agreement certificate ({_role_label(requested)}, keyAgreement); the SoLR Contingency "
            "role may subscribe for XML Signing certificates only",
            **facts,
        )
    if requested != ROLE_XML_SIGN:
        return refuse(
            ROLE_REFUSED,
            f"asks for {_role_label(requested)}; the SoLR Contingency role may subscribe for XML Signing "
            f"certificates (Remote Party Role {ROLE_XML_SIGN}) only: refused (default deny)",
            **facts,
        )
    if usage != ["digital_signature"]:
        return refuse(
            KEY_USAGE_REFUSED,
            f"asks for Key Usage {', '.join(usage)}; an XML Signing certificate carries digitalSignature only",
            **facts,
        )
    if facts["key_type"] != "EC P-256":
        return refuse(
            KEY_TYPE_REFUSED,
            f"carries a {facts['key_type']} key; SMKI Organisation Certificates use EC P-256 keys",
            **facts,
        )

    # 5. Whose certificate: the subject EUI must be a User of this Party in this role.
    if not euis:
        return refuse(
            NO_EUI,
            "carries no subject EUI-64 (uniqueIdentifier 2.5.4.45); SMKI Organisation CSRs name the User they are for",
            **facts,
        )
    if len(distinct_euis) > 1 or eui is None or eui.startswith("unreadable:"):
        return refuse(
            AMBIGUOUS_EUI,
            f"the subject uniqueIdentifier is not one EUI-64 ({', '.join(distinct_euis)})",
            **{**facts, "subject_eui": None},
        )
    if store is not None:
        user = store.get_user(parse_eui64(eui))
        if user is None or user.party != party or user.role != role_code:
            found = "is not a User in the store" if user is None else f"is a User of {user.party} in role {user.role}"
            return refuse(
                NOT_A_USER_OF_PARTY,
                f"subject EUI {eui} {found}, not a User of {party} in role {role_code}",
                **facts,
            )
        if user.status is not UserStatus.ACTIVE:
            status = getattr(user.status, "value", user.status)
            return refuse(USER_NOT_ACTIVE, f"User {eui} of {party} is {status}, not active", **facts)

    checked = f"; User {eui} of {party} in role {role_code}" if store is not None else ""
    return CsrVerdict(
        allowed=True,
        rule=ALLOWED,
        message=(
            f"{source}: XML Signing certificate ({_role_label(ROLE_XML_SIGN)}, digitalSignature) "
            f"may be requested by the SoLR Contingency role{checked}"
        ),
        source=source,
        **facts,
    )
