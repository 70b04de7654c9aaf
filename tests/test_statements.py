"""Signed governance statements (DSSE envelopes): signing, strict parsing, verification."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from solr_policy.errors import GovernanceRefused
from solr_policy.governance.statements import (
    MAX_ENVELOPE_BYTES,
    PAYLOAD_TYPE,
    Envelope,
    check_fresh,
    cosign,
    key_id,
    make_statement,
    open_envelope,
    pae,
    parse_envelope,
    sign,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture()
def alice():
    return new_key()


@pytest.fixture()
def bob():
    return new_key()


def keys(*private) -> dict:
    return {key_id(k.public_key()): k.public_key() for k in private}


def approve(officer="gov-alice", at=NOW):
    return make_statement("instruction.approve", {"reference": "OFGEM-1", "reason": "checked"}, officer=officer, at=at)


def refused(rule: str, fn, *args, **kwargs) -> GovernanceRefused:
    with pytest.raises(GovernanceRefused) as info:
        fn(*args, **kwargs)
    assert info.value.rule == rule, info.value.message
    return info.value


def test_round_trip_through_json(alice):
    envelope = sign(approve(), alice)
    again = parse_envelope(envelope.to_json())
    statement, signers = open_envelope(again, keys(alice))
    assert statement.action == "instruction.approve" and statement.params["reference"] == "OFGEM-1"
    assert statement.issued_at == NOW and signers == (key_id(alice.public_key()),)
    assert envelope.payloadType == PAYLOAD_TYPE and len(envelope.digest) == 64


def test_the_signature_covers_dsse_pae_of_the_payload(alice):
    from cryptography.hazmat.primitives import hashes

    envelope = sign(approve(), alice)
    payload = base64.b64decode(envelope.payload)
    alice.public_key().verify(base64.b64decode(envelope.signatures[0].sig), pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    assert pae("t", b"ab") == b"DSSEv1 1 t 2 ab"


def test_nonces_differ(alice):
    assert approve().nonce != approve().nonce


def test_a_changed_payload_does_not_verify(alice):
    envelope = sign(approve(), alice)
    data = json.loads(base64.b64decode(envelope.payload))
    data["params"]["reference"] = "OFGEM-2"
    forged = envelope.model_copy(update={"payload": base64.b64encode(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).decode()})
    refused("statement.bad-signature", open_envelope, forged, keys(alice))


def test_a_key_that_is_not_registered_is_refused(alice, bob):
    refused("statement.unknown-key", open_envelope, sign(approve(), alice), keys(bob))


def test_another_officers_keyid_with_my_signature_is_refused(alice, bob):
    """Claiming to be Bob (his key id) while signing with Alice's key."""
    envelope = sign(approve("gov-bob"), alice)
    claimed = envelope.signatures[0].model_copy(update={"keyid": key_id(bob.public_key())})
    forged = envelope.model_copy(update={"signatures": [claimed]})
    refused("statement.bad-signature", open_envelope, forged, keys(alice, bob))


def test_cosigned_by_two_keys(alice, bob):
    envelope = cosign(sign(approve(), alice), bob)
    _, signers = open_envelope(parse_envelope(envelope.to_json()), keys(alice, bob))
    assert set(signers) == {key_id(alice.public_key()), key_id(bob.public_key())}
    refused("statement.duplicate-signature", cosign, envelope, bob)


def test_the_same_signature_twice_is_refused(alice):
    envelope = sign(approve(), alice)
    doubled = envelope.model_copy(update={"signatures": envelope.signatures * 2})
    refused("statement.duplicate-signature", open_envelope, doubled, keys(alice))


@pytest.mark.parametrize(
    "text, words",
    [
        (b"not json", "not a JSON statement envelope"),
        (b"[]", "valid"),
        (b'{"payloadType": "text/plain", "payload": "eA==", "signatures": [{"keyid": "' + b"0" * 64 + b'", "sig": "eA=="}]}', "payloadType"),
        (b'{"payloadType": "application/vnd.solr-policy.statement+json", "payload": "eA==", "signatures": []}', "signatures"),
        (b'{"payloadType": "application/vnd.solr-policy.statement+json", "payload": "eA==", "payload": "eQ==", "signatures": []}', "duplicate key"),
        (b'{"payloadType": "application/vnd.solr-policy.statement+json", "payload": "eA==", "signatures": [{"keyid": "zz", "sig": "eA=="}]}', "keyid"),
        # Nested deeper than Python's recursion limit, yet under MAX_ENVELOPE_BYTES.
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_envelopes_are_refused(text, words):
    err = refused("statement.malformed", parse_envelope, text)
    assert words in err.message


def test_a_huge_envelope_is_refused_before_parsing():
    refused("statement.too-large", parse_envelope, b" " * (MAX_ENVELOPE_BYTES + 1))


def test_a_signed_payload_that_is_not_a_statement_is_refused(alice):
    for payload in (b"not json", b"[" * 100_000, b'{"action": "instruction.approve"}', b'{"v":1,"action":"officer.become-admin","params":{},"officer":"x","issued_at":"2026-11-22T12:00:00.000000Z","nonce":"' + b"0" * 32 + b'"}'):
        from cryptography.hazmat.primitives import hashes

        sig = alice.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
        envelope = Envelope(
            payloadType=PAYLOAD_TYPE,
            payload=base64.b64encode(payload).decode(),
            signatures=[{"keyid": key_id(alice.public_key()), "sig": base64.b64encode(sig).decode()}],
        )
        refused("statement.malformed", open_envelope, envelope, keys(alice))


def test_a_signed_but_non_canonical_statement_is_refused(alice):
    from cryptography.hazmat.primitives import hashes

    statement = approve()
    payload = json.dumps(json.loads(statement.canonical()), indent=1).encode()  # same content, other bytes
    sig = alice.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    envelope = Envelope(
        payloadType=PAYLOAD_TYPE,
        payload=base64.b64encode(payload).decode(),
        signatures=[{"keyid": key_id(alice.public_key()), "sig": base64.b64encode(sig).decode()}],
    )
    refused("statement.not-canonical", open_envelope, envelope, keys(alice))


def test_unknown_actions_cannot_even_be_made():
    refused("statement.malformed", make_statement, "officer.become-admin", {}, officer="x")


def test_freshness():
    statement = approve(at=NOW)
    limits = {"max_age": timedelta(minutes=15), "max_skew": timedelta(minutes=2)}
    check_fresh(statement, NOW + timedelta(minutes=14), **limits)
    check_fresh(statement, NOW - timedelta(minutes=1), **limits)
    refused("statement.stale", check_fresh, statement, NOW + timedelta(minutes=16), **limits)
    refused("statement.future", check_fresh, statement, NOW - timedelta(minutes=3), **limits)


def test_a_non_p256_key_cannot_sign():
    refused("statement.key", sign, approve(), ec.generate_private_key(ec.SECP384R1()))
