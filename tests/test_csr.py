"""MP134B R2: the SoLR Contingency role may subscribe for XML Signing certificates (role 135,
digitalSignature) and never for Digital Signing certificates (Supplier role 2, digitalSignature);
everything else is refused by default. CSRs are made here with P-256 keys."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from solr_policy.cli import cli
from solr_policy.governance.csr import CsrVerdict, check_csr
from solr_policy.testing.csr import make_csr
from solr_policy.store import SqliteStore
from solr_policy.world import Party, User, UserStatus

SC_EUI = "90-B3-D5-1F-30-01-00-10"
OTHER_EUI = "90-B3-D5-1F-30-01-00-20"
SC_EUI_CANON = "90B3D51F30010010"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def csr(key, role=135, eui=SC_EUI, usage="digital_signature", common_name="SOLR1") -> bytes:
    return make_csr(key, role=role, eui=eui, usage=usage, common_name=common_name)


def sc(data: bytes, **kw) -> CsrVerdict:
    kw.setdefault("party", "SOLR1")
    kw.setdefault("role", "SC")
    return check_csr(data, **kw)


@pytest.fixture()
def world(store: SqliteStore) -> SqliteStore:
    for party in ("SOLR1", "SUP9"):
        store.put_party(Party(id=party, name=party))
    store.put_user(User(id=SC_EUI, party="SOLR1", role="SC"))
    store.put_user(User(id=OTHER_EUI, party="SUP9", role="IS"))
    return store


# -- the gate ------------------------------------------------------------------------------
class TestGate:
    def test_xml_signing_allowed(self, key):
        verdict = sc(csr(key))
        assert verdict.allowed is True
        assert verdict.rule == "R2.xml-signing-allowed"
        assert verdict.subject_eui == SC_EUI_CANON
        assert verdict.requested_role == 135 and verdict.requested_role_name == "XML Sign"
        assert verdict.key_usage == ["digital_signature"]
        assert verdict.key_type == "EC P-256"

    def test_der_input_is_read_too(self, key):
        der = x509.load_pem_x509_csr(csr(key)).public_bytes(serialization.Encoding.DER)
        assert sc(der).rule == "R2.xml-signing-allowed"

    def test_supplier_digital_signing_forbidden(self, key):
        verdict = sc(csr(key, role=2))
        assert not verdict.allowed
        assert verdict.rule == "R2.digital-signing-forbidden"
        assert "Critical Commands" in verdict.message and "MP134B" in verdict.message
        assert verdict.requested_role == 2 and verdict.requested_role_name == "Supplier"

    def test_supplier_digital_signing_forbidden_even_with_key_agreement_too(self, key):
        verdict = sc(csr(key, role=2, usage=("digital_signature", "key_agreement")))
        assert verdict.rule == "R2.digital-signing-forbidden"

    @pytest.mark.parametrize("role", [135, 2, 3])
    def test_key_agreement_refused(self, key, role):
        verdict = sc(csr(key, role=role, usage="key_agreement"))
        assert not verdict.allowed
        assert verdict.rule == "R2.key-agreement-refused"
        assert verdict.key_usage == ["key_agreement"]

    def test_network_operator_refused(self, key):
        verdict = sc(csr(key, role=3))
        assert not verdict.allowed
        assert verdict.rule == "R2.role-refused"
        assert "Network Operator" in verdict.message

    @pytest.mark.parametrize("role", [0, 1, 3, 4, 5, 6, 7, 8, 127, 137, 0x42, 0xFF])
    def test_every_other_role_is_refused(self, key, role):
        verdict = sc(csr(key, role=role))
        assert (verdict.allowed, verdict.rule) == (False, "R2.role-refused")
        assert verdict.requested_role == role

    def test_no_ou_refused(self, key):
        verdict = sc(csr(key, role=None))
        assert (verdict.allowed, verdict.rule) == (False, "R2.no-role")
        assert verdict.requested_role is None

    def test_non_hex_ou_is_no_role(self, key):
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "XML Sign")]))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .sign(key, hashes.SHA256())
        )
        verdict = sc(request.public_bytes(serialization.Encoding.PEM))
        assert verdict.rule == "R2.no-role" and "XML Sign" in verdict.message

    def test_two_roles_refused(self, key):
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "87"),
                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "02"),
                    ]
                )
            )
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .sign(key, hashes.SHA256())
        )
        assert sc(request.public_bytes(serialization.Encoding.PEM)).rule == "R2.ambiguous-role"

    def test_no_key_usage_refused(self, key):
        verdict = sc(csr(key, usage=None))
        assert (verdict.allowed, verdict.rule) == (False, "R2.no-key-usage")
        assert verdict.key_usage == []

    def test_extra_key_usage_refused(self, key):
        verdict = sc(csr(key, usage=("digital_signature", "key_cert_sign")))
        assert (verdict.allowed, verdict.rule) == (False, "R2.key-usage-refused")

    def test_not_p256_refused(self):
        verdict = sc(csr(ec.generate_private_key(ec.SECP384R1())))
        assert (verdict.allowed, verdict.rule, verdict.key_type) == (False, "R2.key-not-p256", "EC P-384")

    def test_no_eui_refused(self, key):
        verdict = sc(csr(key, eui=None))
        assert (verdict.allowed, verdict.rule) == (False, "R2.no-eui")
        assert "EUI" in verdict.message

    @pytest.mark.parametrize("role", ["IS", "GS", "ED", "OU", "", "XX"])
    def test_other_user_roles_are_not_decided_here(self, key, role):
        verdict = sc(csr(key), role=role)
        assert (verdict.allowed, verdict.rule) == (False, "R2.party-role-mismatch")
        assert "SoLR Contingency role (SC) only" in verdict.message


# -- broken input ---------------------------------------------------------------------------
class TestBrokenInput:
    def test_tampered_tbs_fails_the_signature(self, key):
        der = bytearray(x509.load_pem_x509_csr(csr(key, common_name="SOLR1")).public_bytes(serialization.Encoding.DER))
        at = der.index(b"SOLR1")
        der[at] ^= 0x01  # 'S' -> 'R': still well-formed, no longer what was signed
        verdict = sc(bytes(der))
        assert (verdict.allowed, verdict.rule) == (False, "R2.bad-signature")
        assert verdict.requested_role == 135  # facts still reported

    def test_tampered_signature_fails(self, key):
        der = bytearray(x509.load_pem_x509_csr(csr(key)).public_bytes(serialization.Encoding.DER))
        der[-1] ^= 0x01  # last byte of the ECDSA s integer
        verdict = sc(bytes(der))
        assert not verdict.allowed
        assert verdict.rule in ("R2.bad-signature", "R2.unreadable")

    def test_signed_by_another_key_fails(self, key):
        """A request whose public key is swapped for another one no longer verifies."""
        mine = x509.load_pem_x509_csr(csr(key)).public_bytes(serialization.Encoding.DER)
        other_key = ec.generate_private_key(ec.SECP256R1())
        spki = lambda k: k.public_key().public_bytes(  # noqa: E731
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        swapped = mine.replace(spki(key), spki(other_key))
        assert swapped != mine
        assert sc(swapped).rule == "R2.bad-signature"

    @pytest.mark.parametrize(
        "data",
        [b"", b"garbage", b"\x30\x03\x02\x01\x00", b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n"],
    )
    def test_garbage_refused_by_name(self, data):
        verdict = check_csr(data, party="SOLR1", role="SC", source="req-42.csr")
        assert (verdict.allowed, verdict.rule) == (False, "R2.unreadable")
        assert verdict.message.startswith("req-42.csr:")

    def test_certificate_is_not_a_csr(self, pki):
        verdict = check_csr(pki.issue(SC_EUI, 135).cert_pem, party="SOLR1", role="SC", source="c.pem")
        assert verdict.rule == "R2.unreadable" and "c.pem" in verdict.message

    def test_private_key_alongside_is_refused(self, key):
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        verdict = sc(csr(key) + key_pem)
        assert (verdict.allowed, verdict.rule) == (False, "R2.private-key")


# -- the store: whose certificate ------------------------------------------------------------
class TestStore:
    def test_user_of_the_party_in_sc_allowed(self, key, world):
        verdict = sc(csr(key), store=world)
        assert verdict.allowed and verdict.rule == "R2.xml-signing-allowed"

    def test_another_partys_user_refused(self, key, world):
        verdict = sc(csr(key, eui=OTHER_EUI), store=world)
        assert (verdict.allowed, verdict.rule) == (False, "R2.eui-not-a-user-of-party")
        assert "SUP9" in verdict.message

    def test_unknown_eui_refused(self, key, world):
        verdict = sc(csr(key, eui="90-B3-D5-1F-30-01-00-99"), store=world)
        assert verdict.rule == "R2.eui-not-a-user-of-party"

    def test_right_eui_wrong_party_refused(self, key, world):
        verdict = sc(csr(key), party="SUP9", store=world)
        assert verdict.rule == "R2.eui-not-a-user-of-party"

    def test_user_in_another_role_refused(self, key, world):
        world.put_user(User(id=SC_EUI, party="SOLR1", role="IS"))
        assert sc(csr(key), store=world).rule == "R2.eui-not-a-user-of-party"

    def test_suspended_user_refused(self, key, world):
        world.put_user(User(id=SC_EUI, party="SOLR1", role="SC", status=UserStatus.SUSPENDED))
        assert sc(csr(key), store=world).rule == "R2.user-not-active"

    def test_store_does_not_override_the_gate(self, key, world):
        assert sc(csr(key, role=2), store=world).rule == "R2.digital-signing-forbidden"


# -- the command ------------------------------------------------------------------------------
class TestCli:
    def run(self, tmp_path, world, data: bytes, *args: str):
        path = tmp_path / "req.csr"
        path.write_bytes(data)
        db = str(tmp_path / "test.db")  # the `world` fixture's database
        return CliRunner().invoke(cli, ["--db", db, "certs", "check-csr", str(path), *args])

    def test_allowed_exits_0_with_json(self, tmp_path, key, world):
        result = self.run(tmp_path, world, csr(key), "--party", "SOLR1", "--role", "SC", "--json")
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        assert out["allowed"] is True and out["rule"] == "R2.xml-signing-allowed"
        assert out["facts"] == {
            "subject_eui": SC_EUI_CANON,
            "requested_role": 135,
            "requested_role_name": "XML Sign",
            "key_usage": ["digital_signature"],
            "key_type": "EC P-256",
        }

    def test_digital_signing_exits_1(self, tmp_path, key, world):
        result = self.run(tmp_path, world, csr(key, role=2), "--party", "SOLR1", "--role", "SC", "--json")
        assert result.exit_code == 1
        out = json.loads(result.output)
        assert out["allowed"] is False and out["rule"] == "R2.digital-signing-forbidden"

    def test_uses_the_store(self, tmp_path, key, world):
        result = self.run(tmp_path, world, csr(key, eui=OTHER_EUI), "--party", "SOLR1", "--role", "SC", "--json")
        assert result.exit_code == 1
        assert json.loads(result.output)["rule"] == "R2.eui-not-a-user-of-party"

    def test_garbage_exits_1_naming_the_file(self, tmp_path, world):
        result = self.run(tmp_path, world, b"garbage", "--party", "SOLR1", "--role", "SC", "--json")
        assert result.exit_code == 1
        out = json.loads(result.output)
        assert out["rule"] == "R2.unreadable" and "req.csr" in out["message"]

    def test_text_output(self, tmp_path, key, world):
        result = self.run(tmp_path, world, csr(key), "--party", "SOLR1", "--role", "SC")
        assert result.exit_code == 0
        assert result.output.startswith("ALLOWED R2.xml-signing-allowed")

    def test_missing_file_exits_2(self, tmp_path, world):
        db = str(tmp_path / "test.db")
        result = CliRunner().invoke(
            cli, ["--db", db, "certs", "check-csr", str(tmp_path / "nope.csr"), "--party", "SOLR1", "--role", "SC"]
        )
        assert result.exit_code == 2
        assert "nope.csr" in result.output
