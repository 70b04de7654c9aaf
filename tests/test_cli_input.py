"""The CLI at the input boundary, driven in-process: certificate import (under a trust
anchor)/pin/list/status, verify (valid, invalid, unreadable), gbcs inspect, and a sign -> verify
round trip."""

from __future__ import annotations

import base64
import json

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import DEVICE_EUI, USER_EUI, OfficerKeys, request_xml, signed
from solr_policy import logs
from solr_policy.cli import cli
from solr_policy.testing.pki import TestPki


@pytest.fixture(autouse=True)
def _reset_logging():
    # the CLI configures logging for its run: leave the library unconfigured for other tests
    yield
    logs.reset()


@pytest.fixture()
def run(tmp_path):
    db = tmp_path / "cli.db"
    runner = CliRunner()

    def invoke(*args: str, input: bytes | str | None = None):
        return runner.invoke(cli, ["--db", str(db), "--log-format", "json", *args], input=input)

    return invoke


def out(result) -> object:
    return json.loads(result.stdout)


@pytest.fixture()
def cert_file(tmp_path, user_cert):
    path = tmp_path / "user.pem"
    path.write_bytes(user_cert.cert_pem)
    return path


@pytest.fixture()
def keys(tmp_path) -> OfficerKeys:
    return OfficerKeys(tmp_path)


@pytest.fixture()
def anchored(run, keys, tmp_path, pki):
    """A store made by init whose trust anchor is the test PKI's CA, added by two officers."""
    assert run(*keys.init_args("gov-alice", "gov-bob")).exit_code == 0
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca_cert_pem)
    added = run("certs", "anchor", "add", str(ca), *keys.signs("gov-alice", "gov-bob"))
    assert added.exit_code == 0, added.output
    return out(added)["anchor"]


# -- certs ---------------------------------------------------------------------------------------
def test_certs_import_good(run, anchored, cert_file, user_cert):
    result = run("certs", "import", str(cert_file))
    assert result.exit_code == 0, result.output
    (row,) = out(result)
    assert row["file"] == str(cert_file)
    assert row["imported"] is True and "already_known" not in row
    assert row["serial"] == str(user_cert.serial) and row["provenance"] == f"anchor:{anchored['subject']}"
    assert row["role"] == 135 and row["subject_eui"] == "90B3D51F30010000" and row["status"] == "I"

    again = run("certs", "import", str(cert_file))
    assert again.exit_code == 0
    assert out(again)[0]["already_known"] is True
    (logged,) = out(run("audit", "show", "--kind", "certificate.import"))
    assert logged["payload"]["serial"] == str(user_cert.serial)


def test_certs_import_refuses_a_look_alike_ca(run, anchored, tmp_path):
    # Same issuer name, the same User's EUI-64 and role, another key: not issued by the anchor.
    forged = tmp_path / "forged.pem"
    forged.write_bytes(TestPki("T9").issue(USER_EUI, 135).cert_pem)
    result = run("certs", "import", str(forged))
    assert result.exit_code == 1
    (row,) = out(result)
    assert row["imported"] is False and row["reason"]["rule"] == "certificate.untrusted"
    assert out(run("certs", "list", "--json")) == []


def test_certs_import_without_any_anchor_is_refused(run, cert_file):
    result = run("certs", "import", str(cert_file))
    assert result.exit_code == 1
    assert out(result)[0]["reason"]["rule"] == "certificate.untrusted"


def test_certs_anchor_list_and_remove_by_two_officers(run, anchored, keys):
    (listed,) = out(run("certs", "anchor", "list"))
    assert listed["fingerprint"] == anchored["fingerprint"] and listed["added_by"] == "gov-alice"
    alone = run("certs", "anchor", "remove", anchored["fingerprint"], "--reason", "retired", *keys.signs("gov-alice"))
    assert alone.exit_code == 1 and out(alone)["reason"]["rule"] == "governance.four-eyes"
    removed = run("certs", "anchor", "remove", anchored["fingerprint"], "--reason", "retired", *keys.signs("gov-bob", "gov-alice"))
    assert removed.exit_code == 0, removed.output
    assert out(run("certs", "anchor", "list")) == []


def test_certs_pin_is_signed_and_shows_as_pinned(run, anchored, keys, tmp_path):
    unpublished = TestPki("ZAZ1-like").issue("90B3D51F30010077", 135)
    der = tmp_path / "zaz1.der"
    der.write_bytes(read_der(unpublished.cert_pem))
    pinned = run("certs", "pin", str(der), "--reason", "ZAZ1: no published CA", *keys.signs("gov-bob"))
    assert pinned.exit_code == 0, pinned.output
    assert out(pinned)["certificate"]["pinned"] is True and out(pinned)["signed_by"] == "gov-bob"
    assert "pinned" in run("certs", "list").stdout
    again = run("certs", "pin", str(der), "--reason", "twice", *keys.signs("gov-bob"))
    assert again.exit_code == 1 and out(again)["reason"]["rule"] == "certificate.exists"


def test_certs_crl_import(run, anchored, pki, cert_file, user_cert, tmp_path):
    run("certs", "import", str(cert_file))
    forged = tmp_path / "forged.crl"
    forged.write_bytes(TestPki("T9").crl_pem([user_cert.serial]))
    refused = run("certs", "crl", "import", str(forged))
    assert refused.exit_code == 1 and out(refused)["reason"]["rule"] == "crl.untrusted"
    crl = tmp_path / "t9.crl"
    crl.write_bytes(pki.crl_pem([user_cert.serial]))
    done = run("certs", "crl", "import", str(crl))
    assert done.exit_code == 0, done.output
    assert out(done)["revoked"] == [str(user_cert.serial)]
    assert out(run("certs", "list", "--json"))[0]["status"] == "R"
    # The revocation is covered by a checkpoint at once: a restored backup cannot undo it unnoticed.
    verified = out(run("audit", "verify"))
    assert verified["intact"] and verified["checkpoint"]["size"] == verified["entries"]


def read_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def test_certs_import_with_status(run, anchored, cert_file):
    result = run("certs", "import", "--status", "P", str(cert_file))
    assert result.exit_code == 0
    assert out(result)[0]["status"] == "P"


def test_certs_import_bad_status(run, cert_file):
    result = run("certs", "import", "--status", "Q", str(cert_file))
    assert result.exit_code == 2
    assert "unknown SMKI status" in result.output


def test_certs_import_bad_file(run, anchored, tmp_path, cert_file):
    bad = tmp_path / "broken.pem"
    bad.write_bytes(b"definitely not a certificate")
    result = run("certs", "import", str(cert_file), str(bad))
    assert result.exit_code == 1
    good_row, bad_row = out(result)
    assert good_row["imported"] is True  # the good file still imports
    assert bad_row["file"] == str(bad) and bad_row["imported"] is False
    assert bad_row["reason"]["rule"] == "cert.unreadable"
    assert "broken.pem" in bad_row["reason"]["message"]


def test_certs_import_missing_file(run, tmp_path):
    result = run("certs", "import", str(tmp_path / "absent.pem"))
    assert result.exit_code == 1
    (row,) = out(result)
    assert row["reason"]["rule"] == "cert.file" and "absent.pem" in row["reason"]["message"]


def test_certs_import_private_key(run, tmp_path, user_cert):
    key = tmp_path / "user.key.pem"
    key.write_bytes(user_cert.key_pem)
    result = run("certs", "import", str(key))
    assert result.exit_code == 1
    assert out(result)[0]["reason"]["rule"] == "cert.private_key"
    assert "PRIVATE KEY" not in result.output  # the key is never echoed


def test_certs_list(run, anchored, cert_file, user_cert):
    empty = run("certs", "list")
    assert empty.exit_code == 0 and "no certificates" in empty.stdout
    run("certs", "import", str(cert_file))
    table = run("certs", "list")
    assert table.exit_code == 0
    assert "90B3D51F30010000" in table.stdout and "XML Sign" in table.stdout and str(user_cert.serial) in table.stdout
    listed = run("certs", "list", "--json")
    (row,) = out(listed)
    assert row["serial"] == str(user_cert.serial) and row["status_label"] == "In use"


def test_certs_set_status(run, anchored, keys, cert_file, user_cert):
    run("certs", "import", str(cert_file))
    result = run("certs", "set-status", str(user_cert.serial), "revoked", "--reason", "key compromise", *keys.signs("gov-alice"))
    assert result.exit_code == 0, result.output
    body = out(result)
    assert (body["action"], body["signed_by"], body["serial"], body["status"]) == ("certificate.set-status", "gov-alice", str(user_cert.serial), "R")
    assert out(run("certs", "list", "--json"))[0]["status"] == "R"
    with_issuer = run("certs", "set-status", "--issuer", "OU=07, CN=T9", str(user_cert.serial), "I", "--reason", "reinstated", *keys.signs("gov-bob"))
    assert with_issuer.exit_code == 0 and out(with_issuer)["status"] == "I"
    (first, second) = out(run("audit", "show", "--kind", "certificate.set-status"))
    assert (first["actor"], first["payload"]["to"], second["actor"], second["payload"]["to"]) == ("gov-alice", "R", "gov-bob", "I")


def test_certs_set_status_needs_a_governance_officers_signature(run, anchored, keys, cert_file, user_cert):
    run("certs", "import", str(cert_file))
    unsigned = run("certs", "set-status", str(user_cert.serial), "R", "--reason", "x")
    assert unsigned.exit_code == 2 and "--officer" in unsigned.output
    forged = run("certs", "set-status", str(user_cert.serial), "R", "--reason", "x", "--officer", "gov-alice", "--key", keys.key("mallory"))
    assert forged.exit_code == 1 and out(forged)["reason"]["rule"] == "statement.unknown-key"
    assert out(run("certs", "list", "--json"))[0]["status"] == "I"


def test_certs_set_status_takes_hex_serials(run, anchored, keys, cert_file, user_cert):
    # As SMKI listings (0x...) and `openssl x509 -text` (colon-separated octets) show them.
    run("certs", "import", str(cert_file))
    octets = user_cert.serial.to_bytes((user_cert.serial.bit_length() + 7) // 8, "big")
    for serial, status in ((f"0x{user_cert.serial:X}", "R"), (octets.hex(":"), "N"), (octets.hex(":").upper(), "I")):
        result = run("certs", "set-status", serial, status, "--reason", "test", *keys.signs("gov-alice"))
        assert result.exit_code == 0, result.output
        assert out(result)["serial"] == str(user_cert.serial)
        assert out(run("certs", "list", "--json"))[0]["status"] == status


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["12ab", "R"], "'12ab' is not a certificate serial"),  # bare hex: 1234 would be ambiguous
        (["0x", "R"], "'0x' is not a certificate serial"),
        (["999", "R"], "no certificate with serial 999 (0x3E7)"),
        (["1", "bogus"], "unknown SMKI status"),
        (["--issuer", "T9", "1", "R"], "'T9' is not a distinguished name"),
    ],
)
def test_certs_set_status_refusals(run, anchored, keys, cert_file, args, fragment):
    run("certs", "import", str(cert_file))
    result = run("certs", "set-status", *args, "--reason", "test", *keys.signs("gov-alice"))
    assert result.exit_code == 2
    assert fragment in result.output


def test_certs_set_status_of_an_ambiguous_serial_needs_the_issuer(run, anchored, keys, cert_file, user_cert, tmp_path):
    other_ca = TestPki("T8")
    ca = tmp_path / "t8.pem"
    ca.write_bytes(other_ca.ca_cert_pem)
    assert run("certs", "anchor", "add", str(ca), *keys.signs("gov-alice", "gov-bob")).exit_code == 0
    twin = tmp_path / "twin.pem"
    twin.write_bytes(other_ca.issue("90B3D51F30010002", 135, serial=user_cert.serial).cert_pem)
    assert run("certs", "import", str(cert_file), str(twin)).exit_code == 0
    result = run("certs", "set-status", str(user_cert.serial), "R", "--reason", "x", *keys.signs("gov-alice"))
    assert result.exit_code == 2 and "several issuers use serial" in result.output
    chosen = run("certs", "set-status", str(user_cert.serial), "R", "--issuer", "CN=T8, OU=07", "--reason", "x", *keys.signs("gov-alice"))
    assert chosen.exit_code == 0, chosen.output
    assert sorted(c["status"] for c in out(run("certs", "list", "--json"))) == ["I", "R"]


# -- verify --------------------------------------------------------------------------------------
def test_verify_valid(run, anchored, tmp_path, cert_file, user_cert):
    run("certs", "import", str(cert_file))
    message = tmp_path / "request.xml"
    message.write_bytes(signed(request_xml(counter=77), user_cert))
    result = run("verify", str(message))
    assert result.exit_code == 0, result.output
    data = out(result)
    assert data["valid"] is True and data["kind"] == "Request"
    assert data["signer"]["serial"] == str(user_cert.serial)
    assert data["signer"]["subject_eui"] == "90B3D51F30010000"
    assert data["signer"]["role"] == 135
    assert data["signer"]["resolved_by"] == "issuer-serial"
    assert data["request"]["request_id"] == f"{USER_EUI}:{DEVICE_EUI}:77"
    assert data["request"]["counter"] == 77


def test_verify_from_stdin(run, anchored, cert_file, user_cert):
    run("certs", "import", str(cert_file))
    result = run("verify", "-", input=signed(request_xml(), user_cert))
    assert result.exit_code == 0, result.output
    assert out(result)["valid"] is True


def test_verify_invalid(run, anchored, tmp_path, cert_file, user_cert):
    run("certs", "import", str(cert_file))
    message = tmp_path / "tampered.xml"
    message.write_bytes(signed(request_xml(counter=77), user_cert).replace(b":77<", b":78<"))
    result = run("verify", str(message))
    assert result.exit_code == 1
    data = out(result)
    assert data["valid"] is False and data["reason"]["rule"] == "signature.digest"


def test_verify_unknown_signer(run, tmp_path, user_cert):
    message = tmp_path / "request.xml"
    message.write_bytes(signed(request_xml(), user_cert))
    result = run("verify", str(message))
    assert result.exit_code == 1
    assert out(result)["reason"]["rule"] == "signature.unknown_certificate"


def test_verify_revoked_after_set_status(run, anchored, keys, tmp_path, cert_file, user_cert):
    run("certs", "import", str(cert_file))
    assert run("certs", "set-status", str(user_cert.serial), "R", "--reason", "revoked", *keys.signs("gov-alice")).exit_code == 0
    message = tmp_path / "request.xml"
    message.write_bytes(signed(request_xml(), user_cert))
    result = run("verify", str(message))
    assert result.exit_code == 1
    assert out(result)["reason"]["rule"] == "signature.certificate_revoked"


def test_verify_not_xml(run, tmp_path):
    message = tmp_path / "junk.xml"
    message.write_bytes(b"\x00\x01 not xml")
    result = run("verify", str(message))
    assert result.exit_code == 1
    assert out(result)["reason"]["rule"] == "xml.malformed"


def test_verify_originator_mismatch(run, anchored, tmp_path, pki):
    other = pki.issue("90-B3-D5-1F-30-01-00-99", 135)
    cert = tmp_path / "other.pem"
    cert.write_bytes(other.cert_pem)
    run("certs", "import", str(cert))
    message = tmp_path / "request.xml"
    message.write_bytes(signed(request_xml(), other))
    result = run("verify", str(message))
    assert result.exit_code == 1
    reason = out(result)["reason"]
    assert (reason["rule"], reason["code"]) == ("signature.originator", "E1")
    assert "90-B3-D5-1F-30-01-00-00" in reason["message"] and "90-B3-D5-1F-30-01-00-99" in reason["message"]  # as the DUIS writes them


def test_verify_now_option(run, anchored, tmp_path, cert_file, user_cert):
    run("certs", "import", str(cert_file))
    message = tmp_path / "request.xml"
    message.write_bytes(signed(request_xml(), user_cert))
    result = run("verify", "--now", "2000-01-01T00:00:00Z", str(message))
    assert result.exit_code == 1
    assert out(result)["reason"]["rule"] == "signature.certificate_not_yet_valid"
    no_zone = run("verify", "--now", "2030-01-01T00:00:00", str(message))
    assert no_zone.exit_code == 2 and "time zone" in no_zone.output
    garbage = run("verify", "--now", "soon", str(message))
    assert garbage.exit_code == 2 and "ISO 8601" in garbage.output


def test_verify_missing_file(run, tmp_path):
    result = run("verify", str(tmp_path / "nowhere.xml"))
    assert result.exit_code == 2
    assert "cannot read" in result.output and "nowhere.xml" in result.output


def test_main_exit_code_for_missing_file(tmp_path, monkeypatch, capsys):
    from solr_policy.cli import main

    monkeypatch.setattr("sys.argv", ["solr-policy", "--db", str(tmp_path / "db"), "verify", str(tmp_path / "nowhere.xml")])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    assert "nowhere.xml" in capsys.readouterr().err


# -- sign -> verify --------------------------------------------------------------------------------
def test_sign_then_verify_round_trip(run, anchored, tmp_path, cert_file, user_cert):
    key = tmp_path / "user.key.pem"
    key.write_bytes(user_cert.key_pem)
    unsigned = tmp_path / "unsigned.xml"
    unsigned.write_bytes(request_xml(counter=123))
    signed_file = tmp_path / "signed.xml"
    result = run("sign", str(unsigned), "--key", str(key), "--cert", str(cert_file), "-o", str(signed_file))
    assert result.exit_code == 0, result.output
    assert b"<ds:SignatureValue>" in signed_file.read_bytes()

    run("certs", "import", str(cert_file))
    verified = run("verify", str(signed_file))
    assert verified.exit_code == 0, verified.output
    assert out(verified)["request"]["counter"] == 123

    # sign to stdout, verify from stdin
    to_stdout = run("sign", str(unsigned), "--key", str(key), "--cert", str(cert_file))
    assert to_stdout.exit_code == 0
    assert out(run("verify", "-", input=to_stdout.stdout_bytes))["valid"] is True


def test_sign_with_bad_key(run, tmp_path, cert_file):
    key = tmp_path / "bad.key.pem"
    key.write_bytes(b"not a key")
    unsigned = tmp_path / "unsigned.xml"
    unsigned.write_bytes(request_xml())
    result = run("sign", str(unsigned), "--key", str(key), "--cert", str(cert_file))
    assert result.exit_code == 2
    assert "cannot sign" in result.output


def test_sign_with_another_certificates_key(run, tmp_path, cert_file):
    """README: a key that is not the certificate's is refused (exit 2), not signed into a
    request every verifier would refuse."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    key = tmp_path / "other.key.pem"
    key.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    unsigned = tmp_path / "unsigned.xml"
    unsigned.write_bytes(request_xml())
    signed = tmp_path / "signed.xml"
    result = run("sign", str(unsigned), "--key", str(key), "--cert", str(cert_file), "-o", str(signed))
    assert result.exit_code == 2
    assert "not the private key of the certificate" in result.output
    assert "Traceback" not in result.output and not signed.exists()


def test_sign_missing_key_file(run, tmp_path, cert_file):
    unsigned = tmp_path / "unsigned.xml"
    unsigned.write_bytes(request_xml())
    result = run("sign", str(unsigned), "--key", str(tmp_path / "nokey.pem"), "--cert", str(cert_file))
    assert result.exit_code == 2


# -- gbcs inspect ----------------------------------------------------------------------------------
def _payload() -> bytes:
    originator, recipient = bytes.fromhex("90B3D51F30010000"), bytes.fromhex("00DB1234567890A0")
    content = bytes(range(10))
    return (
        b"\xdf\x09" + b"\x01" + (1002).to_bytes(8, "big")
        + b"\x08" + originator + b"\x08" + recipient
        + b"\x00"  # no date-time
        + b"\x02\x00\x1a"  # other information: Message Code 0x001A (ECS02)
        + bytes([len(content)]) + content
    )


def test_gbcs_inspect_hex(run):
    pytest.importorskip("solr_policy.gbcs")
    result = run("gbcs", "inspect", _payload().hex())
    assert result.exit_code == 0, result.output
    data = out(result)
    assert data["valid"] is True
    header = data["header"]
    assert header["originator_counter"] == 1002
    assert header["originator"] == "90B3D51F30010000" and header["recipient"] == "00DB1234567890A0"
    assert header["message_code"] == 0x001A
    assert header["content_length"] == 10


def test_gbcs_inspect_base64_from_stdin(run):
    pytest.importorskip("solr_policy.gbcs")
    result = run("gbcs", "inspect", "-", input=base64.b64encode(_payload()).decode())
    assert result.exit_code == 0, result.output
    assert out(result)["header"]["message_code"] == 0x001A


@pytest.mark.parametrize("text", ["df0901", "zz-not-hex-or-base64!", ""])
def test_gbcs_inspect_refused(run, text):
    pytest.importorskip("solr_policy.gbcs")
    result = run("gbcs", "inspect", text)
    assert result.exit_code == 1
    data = out(result)
    assert data["valid"] is False and data["reason"]["rule"].startswith("gbcs.")
