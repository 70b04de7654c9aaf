"""GBCS conformance: General-Ciphering frames (DD), a trailing Signature Length of 00 read as
unsigned, every GBCS vector of ../shared/reference decoded, and the Message Code table
checked against the DUIS request matrix (read in place, never copied)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gbcs import CONTENT, OFF_CONTENT, RECIPIENT, VECTORS, build, der

from conftest import REFERENCE
from solr_policy.cli import cli
from solr_policy.errors import GbcsRefused
from solr_policy.gbcs import (
    MESSAGE_CODES,
    GbcsHeader,
    GeneralCiphering,
    decode,
    decode_general_ciphering,
    decode_general_signing,
    lookup,
    parse_payload_text,
)
from solr_policy.gbcs.message_codes import USE_CASES_WITHOUT_A_KNOWN_CODE

EMPTY_HEADER = b"\x00" * 5 + b"\x00"  # transaction-id, titles, date-time, other-info; no key-info
MAC = bytes(range(0xA0, 0xAC))


def frame(
    apdu: bytes,
    *,
    control: int = 0x11,
    invocation_counter: int = 7,
    header: bytes = EMPTY_HEADER,
    mac: bytes | None = MAC,
    length: bytes | None = None,
) -> bytes:
    """A General-Ciphering frame around ``apdu``, as GBCS sends a Command to a Device."""
    content = bytes([control]) + invocation_counter.to_bytes(4, "big") + apdu + (mac or b"")
    return b"\xdd" + header + (length if length is not None else der(len(content))) + content


def refused(payload: bytes, offset: int, phrase: str) -> GbcsRefused:
    with pytest.raises(GbcsRefused) as caught:
        decode(payload)
    assert caught.value.offset == offset, caught.value.message
    assert phrase in caught.value.message, caught.value.message
    return caught.value


# --------------------------------------------------------------------------- unsigned "00"
class TestSignatureLengthZero:
    def test_a_trailing_00_reads_as_unsigned_ready_to_sign(self) -> None:
        h = decode_general_signing(build(trailer=b"\x00"))
        assert (h.signed, h.signature_length, h.signature_part) == (False, 0, "empty")
        assert h.content_offset + h.content_length == OFF_CONTENT + len(CONTENT)

    def test_the_three_signature_parts(self) -> None:
        assert decode_general_signing(build()).signature_part == "none"
        signed = decode_general_signing(build(signature=bytes(64)))
        assert (signed.signed, signed.signature_part) == (True, "signature")

    def test_anything_after_the_00_is_refused(self) -> None:
        with pytest.raises(GbcsRefused) as caught:
            decode_general_signing(build(trailer=b"\x00\x40"))
        assert "1 trailing bytes after a signature length of 0" in caught.value.message


# --------------------------------------------------------------------------- General-Ciphering
class TestGeneralCiphering:
    def test_mac_header_around_a_signed_command(self) -> None:
        apdu = build(signature=bytes(64))
        f = decode(frame(apdu))
        assert isinstance(f, GeneralCiphering)
        assert (f.transaction_id, f.originator, f.recipient, f.date_time_raw) == ("", None, None, None)
        assert (f.other_information, f.message_code, f.key_info) == ("", None, None)
        assert (f.security_control, f.authenticated, f.encrypted, f.invocation_counter) == (0x11, True, False, 7)
        assert f.mac == MAC.hex().upper()
        assert f.apdu_offset == 1 + len(EMPTY_HEADER) + 1 + 5 and f.apdu_length == len(apdu)
        assert f.apdu == decode_general_signing(apdu)
        assert f.apdu.use_case == "ECS02" and f.apdu.signed and f.apdu_note is None

    def test_filled_header_fields_and_an_agreed_key(self) -> None:
        header = (
            der(9) + b"\x01" + (1006).to_bytes(8, "big")
            + der(8) + RECIPIENT + der(8) + bytes.fromhex("90B3D51F30010000")
            + der(12) + bytes.fromhex("07E8031F070C22384E800000")
            + der(4) + b"\x00\x6c\xab\xcd"
            + b"\x01\x02" + der(3) + b"\x01\x02\x03" + der(16) + bytes(16)
        )
        f = decode_general_ciphering(frame(bytes(20), control=0x31, header=header))
        assert f.transaction_id == "01" + "00000000000003EE"
        assert (f.originator, f.recipient) == ("00DB1234567890A0", "90B3D51F30010000")
        assert f.date_time_raw == "07E8031F070C22384E800000"
        assert (f.message_code, f.message_code_hex, f.use_case) == (0x006C, "0x006C", "GCS02")
        assert f.key_info == "agreed-key, 3 parameter bytes, 16 key bytes"
        # Encrypted: header fields only, and it says why.
        assert f.encrypted and f.apdu is None and "encrypted" in f.apdu_note
        assert f.apdu_length == 20

    def test_identified_and_wrapped_keys(self) -> None:
        identified = decode(frame(b"", control=0x00, header=b"\x00" * 5 + b"\x01\x00\x00", mac=None))
        assert identified.key_info == "identified-key 0" and not identified.authenticated
        wrapped = decode(frame(b"", control=0x00, header=b"\x00" * 5 + b"\x01\x01\x00" + der(24) + bytes(24), mac=None))
        assert wrapped.key_info == "wrapped-key 0, 24 key bytes"

    def test_clear_content_that_is_not_general_signing(self) -> None:
        f = decode(frame(bytes.fromhex("D901020304"), control=0x10))
        assert f.apdu is None and "not DF09" in f.apdu_note and "D901" in f.apdu_note

    def test_unknown_message_code_in_other_information(self) -> None:
        f = decode(frame(b"", control=0x00, header=b"\x00" * 4 + der(2) + b"\xab\xcd" + b"\x00", mac=None))
        assert (f.message_code, f.use_case, f.use_case_name) == (0xABCD, None, None)

    @pytest.mark.parametrize(
        ("cut", "offset", "phrase"),
        [
            (1, 1, "transaction-id length"),
            (3, 3, "recipient system title length"),
            (6, 6, "key-info presence"),
            (7, 7, "ciphered content length"),
        ],
    )
    def test_truncated(self, cut: int, offset: int, phrase: str) -> None:
        refused(frame(build())[:cut], offset, phrase)

    def test_refusals(self) -> None:
        refused(frame(build(), header=b"\x00" + der(5) + bytes(5) + b"\x00\x00\x00\x00"), 2, "is 5 bytes, expected 0 or 8")
        refused(frame(build(), header=b"\x00" * 5 + b"\x02"), 6, "presence flag 0x02")
        refused(frame(build(), header=b"\x00" * 5 + b"\x01\x07"), 7, "choice 0x07")
        refused(frame(build()) + b"\x00", len(frame(build())), "1 trailing bytes after the ciphered content")
        refused(frame(b"", mac=bytes(10)), 8, "cannot hold the security header and the 12-byte MAC")
        refused(frame(build(), length=b"\x84\xff\xff\xff\xff"), 7, "runs past the end")
        refused(b"\xdd", 1, "transaction-id length")

    def test_a_broken_apdu_inside_is_refused_at_its_offset_in_the_frame(self) -> None:
        apdu = build(content_length=b"\x66")  # content length past the end of the APDU
        err = refused(frame(apdu), 13 + 33, "APDU inside: content length 102 runs past the end")
        assert err.message.endswith(f"(at byte offset {13 + 33})")

    def test_decode_dispatches_on_the_tag(self) -> None:
        assert isinstance(decode(build()), GbcsHeader)
        assert isinstance(decode(frame(build())), GeneralCiphering)
        refused(b"\xe0\x01\x02", 0, "expected DF09 (general signing) or DD (general ciphering)")
        refused(b"", 0, "payload is empty")
        with pytest.raises(GbcsRefused):
            decode("DD00")  # type: ignore[arg-type]

    @settings(max_examples=400, deadline=None, database=None)
    @given(st.binary(max_size=160))
    def test_arbitrary_bytes_after_the_tag_decode_or_are_refused(self, data: bytes) -> None:
        try:
            decode(b"\xdd" + data)
        except GbcsRefused as err:
            assert 0 <= err.offset <= len(data) + 1

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.data())
    def test_mutations_of_a_valid_frame_decode_or_are_refused(self, data: st.DataObject) -> None:
        base = frame(build(signature=bytes(64)))
        i = data.draw(st.integers(0, len(base) - 1))
        mutated = base[:i] + bytes([data.draw(st.integers(0, 255))]) + base[i + 1 :]
        try:
            decode(mutated)
        except GbcsRefused:
            pass

    def test_cli_inspects_a_general_ciphering_frame(self) -> None:
        result = CliRunner().invoke(cli, ["gbcs", "inspect", frame(build(signature=bytes(64))).hex()])
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        assert out["valid"] and out["frame"] == "general-ciphering"
        assert out["header"]["apdu"]["use_case"] == "ECS02" and out["header"]["mac"] == MAC.hex().upper()

    def test_cli_general_signing_says_its_frame(self) -> None:
        result = CliRunner().invoke(cli, ["gbcs", "inspect", build(trailer=b"\x00").hex()])
        out = json.loads(result.output)
        assert out["frame"] == "general-signing" and out["header"]["signature_part"] == "empty"


# --------------------------------------------------------------------------- reference vectors
def reference_vectors() -> list:
    return sorted(VECTORS.glob("*.HEX")) if VECTORS.is_dir() else []


@pytest.mark.reference
class TestEveryReferenceVector:
    def test_there_are_vectors(self) -> None:
        assert reference_vectors(), f"no GBCS vectors in {VECTORS}"

    @pytest.mark.parametrize("path", reference_vectors(), ids=lambda p: p.name)
    def test_decodes_bare_with_00_and_in_a_mac_header(self, path) -> None:
        payload = parse_payload_text(path.read_text())
        bare = decode(payload)
        assert isinstance(bare, GbcsHeader) and bare.cra == "command" and not bare.signed
        # The use case in the file name is the one the Message Code names.
        assert bare.use_case == path.name.split("_")[0]
        ready = decode(payload + b"\x00")
        assert not ready.signed and ready.signature_part == "empty"
        assert ready.model_dump(exclude={"signature_part"}) == bare.model_dump(exclude={"signature_part"})
        wrapped = decode(frame(payload + b"\x40" + bytes(64)))
        assert isinstance(wrapped, GeneralCiphering) and wrapped.apdu.signed
        assert wrapped.apdu.model_dump(exclude={"signature_part", "signed", "signature_length"}) == bare.model_dump(
            exclude={"signature_part", "signed", "signature_length"}
        )


# --------------------------------------------------------------------------- Message Codes
class TestMessageCodeTable:
    def test_meter_of_a_use_case(self) -> None:
        assert (lookup(0x001A).meter, lookup(0x006C).meter, lookup(0x0109).meter) == ("electricity", "gas", None)

    def test_every_entry_is_named_and_typed(self) -> None:
        for entry in MESSAGE_CODES.values():
            assert entry.name and entry.use_case and 0 <= entry.code <= 0xFFFF
            assert entry.critical in (True, False, None)
            assert all(sr.count(".") == 1 for sr in entry.service_references), entry

    def test_no_guessed_codes_for_use_cases_without_one(self) -> None:
        named = {entry.use_case for entry in MESSAGE_CODES.values()}
        assert not named & set(USE_CASES_WITHOUT_A_KNOWN_CODE)


def _matrix() -> list[dict]:
    return json.loads((REFERENCE / "duis-request-matrix.json").read_text())


def _service_reference(srv: str) -> str:
    # From the SRV itself: the matrix's own "Service Reference" reads 6.20.x as "6.2".
    return ".".join(srv.split(".")[:2])


@pytest.mark.reference
class TestMessageCodesAgainstTheMatrix:
    def test_every_device_service_request_has_its_use_cases(self) -> None:
        covered = {sr for entry in MESSAGE_CODES.values() for sr in entry.service_references}
        covered |= {sr for sr, _ in USE_CASES_WITHOUT_A_KNOWN_CODE.values()}
        device = {_service_reference(row["Service Reference Variant"]) for row in _matrix() if row["Non-Device Request"] == "No"}
        assert device, "the matrix names no device Service Request"
        assert sorted(device - covered, key=lambda s: [int(x) for x in s.split(".")]) == []

    def test_every_service_reference_in_the_table_is_in_the_matrix(self) -> None:
        known = {_service_reference(row["Service Reference Variant"]) for row in _matrix()}
        used = {sr for entry in MESSAGE_CODES.values() for sr in entry.service_references}
        used |= {sr for sr, _ in USE_CASES_WITHOUT_A_KNOWN_CODE.values()}
        assert used - known == set()

    def test_critical_use_cases_serve_critical_service_requests(self) -> None:
        critical: dict[str, set[bool]] = {}
        for row in _matrix():
            critical.setdefault(_service_reference(row["Service Reference Variant"]), set()).add(row["Critical"] == "Yes")
        for entry in MESSAGE_CODES.values():
            for sr in entry.service_references:
                if critical[sr] == {True}:
                    assert entry.critical is not False, f"{entry.use_case} is non-critical but SRV {sr} is critical"
                # Credentials updates are critical GBCS commands even where the DCC or the
                # CoS party signs them for a non-critical DUIS request (6.21, 6.23, 8.5).
                if critical[sr] == {False} and entry.use_case != "CS02b":
                    assert entry.critical is not True, f"{entry.use_case} is critical but SRV {sr} is not"

    def test_payment_mode_use_cases_are_1_6(self) -> None:
        names = {e.use_case: e for e in MESSAGE_CODES.values() if "1.6" in e.service_references}
        assert set(names) == {"ECS02", "ECS03", "GCS02", "GCS03"}
        srv = next(row for row in _matrix() if row["Service Reference Variant"] == "1.6")
        assert srv["Service Request Name"] == "Update Payment Mode" and srv["Critical"] == "Yes"
