"""``solr_policy.serials``: certificate serials as people copy them (decimal, ``0x`` hex, or
openssl's colon-separated octets), and choosing the one stored certificate a serial names.
The ``certs set-status`` CLI tests (``test_cli_input.py``) drive the same code end to end."""

from __future__ import annotations

import pytest

from solr_policy.crypto.certs import read_certificates
from solr_policy.records import CertRecord
from solr_policy.serials import parse_serial, select_by_serial, serial_text
from solr_policy.testing.pki import TestPki
from solr_policy.yamlio import load_yaml

SERIAL = 0x123456  # as octets 12:34:56, which YAML 1.1 would read as the base-60 number 45296
EUI = "90B3D51F300F0001"


def octets(serial: int) -> str:
    return serial.to_bytes((serial.bit_length() + 7) // 8, "big").hex(":")


@pytest.mark.parametrize(
    "written",
    [SERIAL, str(SERIAL), f"0x{SERIAL:X}", f"0x{SERIAL:x}", f"0X{SERIAL:x}", octets(SERIAL), octets(SERIAL).upper(), f" {SERIAL} "],
)
def test_every_form_names_the_serial(written):
    assert parse_serial(written) == SERIAL


@pytest.mark.parametrize("text", [octets(SERIAL), "0123"])
def test_a_serial_in_a_yaml_data_file_stays_text(text):
    # YAML 1.2 numbers: no base 60, no leading-zero octal, so the serial reaches parse_serial as written.
    data, _ = load_yaml(f"serial: {text}\n", "<test>")
    assert data["serial"] == text
    assert parse_serial(data["serial"]) == int(text.replace(":", ""), 16 if ":" in text else 10)


def test_twenty_octets_is_the_limit():
    assert parse_serial((1 << 160) - 1) == (1 << 160) - 1
    assert parse_serial("ff:" * 19 + "ff") == (1 << 160) - 1


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("12ab", "'12ab' is not a certificate serial"),  # bare hex: 1234 would be ambiguous
        ("0x", "'0x' is not a certificate serial"),
        ("1:2", "'1:2' is not a certificate serial"),  # octets are two digits each
        ("", "'' is not a certificate serial"),
        (-5, "-5 is not a certificate serial (0 to 20 octets)"),
        (1 << 160, "is not a certificate serial (0 to 20 octets)"),
        (f"0x{1 << 160:x}", "is not a certificate serial (0 to 20 octets)"),
        (True, "a certificate serial is a number"),  # YAML's yes, never 1
        (None, "a certificate serial is a number"),
        (1.5, "a certificate serial is a number"),
    ],
)
def test_refused_with_the_reason(value, fragment):
    with pytest.raises(ValueError) as info:
        parse_serial(value)
    assert fragment in str(info.value)


def test_serial_text_gives_decimal_and_hex():
    assert serial_text(6699) == "6699 (0x1A2B)"


# -- choosing the certificate ------------------------------------------------------------------
def issued(ca: str, serial: int = SERIAL) -> CertRecord:
    (record,) = read_certificates(TestPki(ca).issue(EUI, 135, serial=serial).cert_pem)
    return record


def test_selects_the_one_with_the_serial():
    wanted, other = issued("SERIALS-A"), issued("SERIALS-A", serial=SERIAL + 1)
    assert select_by_serial([other, wanted], SERIAL) == wanted


def test_no_such_serial():
    with pytest.raises(LookupError) as info:
        select_by_serial([issued("SERIALS-A")], 0x1234)
    assert info.value.args[0] == "no certificate with serial 4660 (0x1234)"


def test_two_issuers_with_one_serial_need_the_issuer():
    a, b = issued("ISSUER-A"), issued("ISSUER-B")
    with pytest.raises(LookupError) as info:
        select_by_serial([a, b], SERIAL)
    assert info.value.args[0] == "several issuers use serial 1193046 (0x123456); name the issuer"
    assert select_by_serial([a, b], SERIAL, b.issuer) == b
    with pytest.raises(LookupError, match="from issuer CN=NOBODY"):
        select_by_serial([a, b], SERIAL, "CN=NOBODY")
