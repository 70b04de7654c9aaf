"""``load_world``: a whole scenario from YAML into the store, idempotently and all or nothing,
with errors that name the file, the line and the field."""

from __future__ import annotations

import sqlite3
import typing
from datetime import datetime, timezone
from pathlib import Path

import pytest

from solr_policy.crypto.certs import read_certificates
from solr_policy.policy import PolicySet
from solr_policy.records import SmkiStatus
from solr_policy.testing.pki import TestPki
from solr_policy.store import SqliteStore
from solr_policy.world import DeviceType, InstructionStatus, Party, Smets, UserStatus
from solr_policy.world_file import WorldFile, load_world
from solr_policy.yamlio import DataFileError, load_yaml

SC_EUI = "90-B3-D5-1F-30-0F-00-01"
SUPPLIER_EUI = "90-B3-D5-1F-30-0F-00-02"
MDR_EUI = "90B3D51F300F0003"

WORLD = """\
parties:
  - id: FAILED-ENERGY
    name: Failed Energy Ltd
  - id: SOLR-PARTY
    name: SoLR Contingency Services Ltd
  - id: STEADY-POWER
    name: Steady Power plc
users:
  - id: 90-B3-D5-1F-30-0F-00-01
    party: SOLR-PARTY
    role: SC
  - id: 90b3d51f300f0002
    party: STEADY-POWER
    role: IS
    status: suspended
certificates:
  - path: certs/sc.pem
  - path: certs/supplier.pem
    status: R
devices:
  - id: 00-DB-12-34-56-78-90-A0
    type: ESME
    smets: SMETS1
    supplier: FAILED-ENERGY
  - id: 00-DB-12-34-56-78-90-A1
    type: GSME
    smets: SMETS1
    supplier: FAILED-ENERGY
  - id: 00-DB-12-34-56-78-90-B0
    type: ESME
    smets: SMETS2+
    supplier: FAILED-ENERGY
  - id: 00-DB-12-34-56-78-90-B1
    type: GSME
    smets: SMETS2+
    supplier: STEADY-POWER
instructions:
  - reference: OFGEM-SOLR-2026-001
    failed_supplier: FAILED-ENERGY
    solr_party: SOLR-PARTY
    effective_from: 2026-11-21T00:00:00Z
    effective_until: 2026-12-21T00:00:00+01:00
  - reference: OFGEM-SOLR-2026-002
    failed_supplier: FAILED-ENERGY
    solr_party: SOLR-PARTY
    effective_from: "2026-11-01T00:00:00Z"
    status: ended
"""


@pytest.fixture(scope="module")
def certs() -> dict[str, bytes]:
    pki = TestPki("WORLD")
    return {"sc.pem": pki.issue(SC_EUI, 135).cert_pem, "supplier.pem": pki.issue(SUPPLIER_EUI, 135).cert_pem}


@pytest.fixture()
def folder(tmp_path, certs) -> Path:
    (tmp_path / "certs").mkdir()
    for name, pem in certs.items():
        (tmp_path / "certs" / name).write_bytes(pem)
    return tmp_path


def write(folder: Path, text: str, name: str = "world.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def line_no(text: str, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} not in the test text"
    return hits[nth - 1]


def edit(old: str, new: str, text: str = WORLD) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def dump(store: SqliteStore) -> dict[str, list[tuple]]:
    """Every row of every table, read through a connection of its own (committed data only)."""
    conn = sqlite3.connect(store.path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    finally:
        conn.close()


# -- loading ---------------------------------------------------------------------------------
class TestLoad:
    def test_loads_everything(self, folder, store, certs):
        counts = load_world(write(folder, WORLD), store)
        assert counts == {"parties": 3, "users": 2, "certificates": 2, "devices": 4, "instructions": 2, "srps": 0}

        assert [p.id for p in store.list_parties()] == ["FAILED-ENERGY", "SOLR-PARTY", "STEADY-POWER"]
        assert store.get_party("SOLR-PARTY").name == "SoLR Contingency Services Ltd"

        sc = store.get_user("90B3D51F300F0001")  # canonical EUI-64
        assert (sc.party, sc.role, sc.status) == ("SOLR-PARTY", "SC", UserStatus.ACTIVE)
        supplier = store.get_user("90B3D51F300F0002")  # lower case, no hyphens in the file
        assert (supplier.role, supplier.status) == ("IS", UserStatus.SUSPENDED)

        devices = {d.id: d for d in store.list_devices()}
        assert set(devices) == {"00DB1234567890A0", "00DB1234567890A1", "00DB1234567890B0", "00DB1234567890B1"}
        assert (devices["00DB1234567890A1"].type, devices["00DB1234567890A1"].smets) == (DeviceType.GSME, Smets.SMETS1)
        assert (devices["00DB1234567890B0"].type, devices["00DB1234567890B0"].smets) == (DeviceType.ESME, Smets.SMETS2)
        assert devices["00DB1234567890B1"].supplier == "STEADY-POWER"

        first = store.get_instruction("OFGEM-SOLR-2026-001")
        assert first.effective_from == datetime(2026, 11, 21, tzinfo=timezone.utc)
        assert first.effective_until == datetime(2026, 12, 20, 23, 0, tzinfo=timezone.utc)  # +01:00 kept as an instant
        assert first.status is InstructionStatus.ACTIVE
        second = store.get_instruction("OFGEM-SOLR-2026-002")
        assert second.effective_until is None and second.status is InstructionStatus.ENDED
        assert [i.reference for i in store.instructions(solr_party="SOLR-PARTY")] == ["OFGEM-SOLR-2026-002", "OFGEM-SOLR-2026-001"]

        stored = {c.subject_eui: c for c in store.list_certificates()}
        sc_cert = read_certificates(certs["sc.pem"])[0]
        assert stored["90B3D51F300F0001"].fingerprint == sc_cert.fingerprint
        assert stored["90B3D51F300F0001"].status is SmkiStatus.IN_USE  # no status: as read

    def test_certificate_status_is_applied(self, folder, store):
        load_world(write(folder, WORLD), store)
        assert store.find_certificates(eui="90B3D51F300F0002")[0].status is SmkiStatus.REVOKED

    def test_certificate_status_applied_to_a_known_certificate(self, folder, store, certs):
        # Already in the store as In use: the world file's status R still wins.
        for record in read_certificates(certs["supplier.pem"]):
            store.put_certificate(record)
        assert store.find_certificates(eui="90B3D51F300F0002")[0].status is SmkiStatus.IN_USE
        load_world(write(folder, WORLD), store)
        assert store.find_certificates(eui="90B3D51F300F0002")[0].status is SmkiStatus.REVOKED

    def test_certificate_without_status_keeps_the_stored_one(self, folder, store, certs):
        for record in read_certificates(certs["sc.pem"]):
            store.put_certificate(record.model_copy(update={"status": SmkiStatus.NOT_IN_USE}))
        load_world(write(folder, WORLD), store)
        assert store.find_certificates(eui="90B3D51F300F0001")[0].status is SmkiStatus.NOT_IN_USE

    def test_certificate_path_is_relative_to_the_world_file(self, folder, store, monkeypatch, tmp_path_factory):
        monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # not the world file's folder
        load_world(write(folder, WORLD), store)
        assert len(store.list_certificates()) == 2

    def test_absolute_certificate_path(self, folder, store):
        text = edit("  - path: certs/sc.pem\n", f"  - path: {folder / 'certs' / 'sc.pem'}\n")
        load_world(write(folder, text), store)
        assert store.find_certificates(eui="90B3D51F300F0001")

    def test_loading_twice_changes_nothing(self, folder, store):
        path = write(folder, WORLD)
        load_world(path, store)
        first = dump(store)
        assert first["devices"] and first["certificates"] and first["instructions"]
        load_world(path, store)
        assert dump(store) == first

    def test_reloading_an_edited_file_updates_in_place(self, folder, store):
        load_world(write(folder, WORLD), store)
        edited = edit("    role: IS\n    status: suspended\n", "    role: IS\n    status: withdrawn\n")
        edited = edit("    status: ended\n", "    status: suspended\n", edited)
        load_world(write(folder, edited), store)
        assert store.get_user("90B3D51F300F0002").status is UserStatus.WITHDRAWN
        assert store.get_instruction("OFGEM-SOLR-2026-002").status is InstructionStatus.SUSPENDED
        assert len(store.list_users()) == 2 and len(store.instructions()) == 2

    def test_party_already_in_the_store_may_be_referenced(self, folder, store):
        store.put_party(Party(id="OLD-PARTY", name="Known before"))
        text = "users:\n  - id: 90B3D51F300F0009\n    party: OLD-PARTY\n    role: GS\n"
        assert load_world(write(folder, text), store)["users"] == 1
        assert store.get_user("90B3D51F300F0009").party == "OLD-PARTY"

    def test_role_from_a_policy(self, folder, store):
        text = f"parties:\n  - id: READER\nusers:\n  - id: {MDR_EUI}\n    party: READER\n    role: MDR\n"
        path = write(folder, text)
        with pytest.raises(DataFileError, match="unknown User Role 'MDR'"):
            load_world(path, store)
        load_world(path, store, role_codes=frozenset({"MDR"}))
        assert store.get_user(MDR_EUI).role == "MDR"

    def test_empty_file(self, folder, store):
        before = dump(store)
        assert load_world(write(folder, ""), store) == {"parties": 0, "users": 0, "certificates": 0, "devices": 0, "instructions": 0, "srps": 0}
        assert dump(store) == before


# -- errors: file, line, field; and nothing written ---------------------------------------------
def _case(old: str, new: str, needle: str, field: str, fragment: str, nth: int = 1):
    text = edit(old, new)
    return pytest.param(text, line_no(text, needle, nth), field, fragment, id=field)


ERRORS = [
    _case("    party: SOLR-PARTY\n    role: SC", "    party: NOBODY\n    role: SC", "NOBODY", "users.0.party", "unknown Party 'NOBODY'"),
    _case("    supplier: STEADY-POWER", "    supplier: GONE-BUST", "GONE-BUST", "devices.3.supplier", "unknown Party 'GONE-BUST'"),
    _case(
        "    solr_party: SOLR-PARTY\n    effective_from: \"",
        "    solr_party: NOT-A-PARTY\n    effective_from: \"",
        "NOT-A-PARTY",
        "instructions.1.solr_party",
        "unknown Party 'NOT-A-PARTY'",
    ),
    _case(
        "    failed_supplier: FAILED-ENERGY\n    solr_party: SOLR-PARTY\n    effective_from: 2026",
        "    failed_supplier: NO-SUCH\n    solr_party: SOLR-PARTY\n    effective_from: 2026",
        "NO-SUCH",
        "instructions.0.failed_supplier",
        "unknown Party 'NO-SUCH'",
    ),
    _case("    role: IS", "    role: XX", "role: XX", "users.1.role", "unknown User Role 'XX'"),
    _case("    role: IS", "    role: is", "role: is", "users.1.role", "'is' is not a User Role code"),
    _case("  - id: 90b3d51f300f0002", "  - id: 90b3d51f300f00", "90b3d51f300f00", "users.1.id", "is not an EUI-64"),
    _case("  - id: 00-DB-12-34-56-78-90-A1", "  - id: 00-DB-12-34-56-78-90-AG", "90-AG", "devices.1.id", "is not an EUI-64"),
    _case("    type: GSME\n    smets: SMETS1", "    type: WATER\n    smets: SMETS1", "WATER", "devices.1.type", "Input should be 'ESME', 'GSME'"),
    _case("    smets: SMETS2+\n    supplier: STEADY", "    smets: SMETS3\n    supplier: STEADY", "SMETS3", "devices.3.smets", "Input should be 'SMETS1' or 'SMETS2+'"),
    _case(
        "    effective_until: 2026-12-21T00:00:00+01:00",
        "    effective_until: 2026-11-20T00:00:00Z",
        "effective_until",
        "instructions.0.effective_until",
        "must be after effective_from",
    ),
    _case(
        "    effective_until: 2026-12-21T00:00:00+01:00",
        "    effective_until: 2026-11-21T00:00:00Z",
        "effective_until",
        "instructions.0.effective_until",
        "must be after effective_from",
    ),
    _case("  - path: certs/supplier.pem", "  - path: certs/missing.pem", "missing.pem", "certificates.1.path", "cannot read"),
    _case(
        "    effective_from: 2026-11-21T00:00:00Z",
        "    effective_from: 2026-11-21T00:00:00",
        "effective_from: 2026-11-21T00:00:00",
        "instructions.0.effective_from",
        "give a time zone",
    ),
    _case(
        '    effective_from: "2026-11-01T00:00:00Z"',
        '    effective_from: "2026-11-01T00:00:00"',
        "effective_from: \"2026-11-01",
        "instructions.1.effective_from",
        "give a time zone",
    ),
    _case("    smets: SMETS2+\n    supplier: STEADY", "    smets: SMETS2+\n    suplier: STEADY", "suplier", "devices.3.suplier", "unknown field"),
    _case("    status: R", "    staus: R", "staus", "certificates.1.staus", "unknown field"),
    _case("    status: R", "    status: X", "status: X", "certificates.1.status", "Input should be"),
    _case("instructions:\n", "instruction:\n", "instruction:", "instruction", "unknown field"),
    _case("    status: ended", "    status: approved", "approved", "instructions.1.status", "Input should be"),
    # bad enum
    _case("    status: suspended\n", "    status: asleep\n", "asleep", "users.1.status", "Input should be 'active', 'suspended' or 'withdrawn'"),
    # wrong type
    _case("    name: Failed Energy Ltd", "    name: [Failed, Energy]", "[Failed, Energy]", "parties.0.name", "Input should be a valid string"),
    _case("    role: SC\n", "    role: 7\n", "role: 7", "users.0.role", "Input should be a valid string"),
    _case(
        '    effective_from: "2026-11-01T00:00:00Z"',
        '    effective_from: "2026-11-01T00:00:00Z"\n    scope: 00-DB-12-34-56-78-90-A0',
        "scope:",
        "instructions.1.scope",
        "a list of Device IDs",
    ),
    # missing field: the line of the entry that lacks it
    _case("    type: GSME\n    smets: SMETS1\n", "    smets: SMETS1\n", "00-DB-12-34-56-78-90-A1", "devices.1.type", "Field required"),
    _case(
        "    solr_party: SOLR-PARTY\n    effective_from: 2026-11-21T00:00:00Z",
        "    effective_from: 2026-11-21T00:00:00Z",
        "OFGEM-SOLR-2026-001",
        "instructions.0.solr_party",
        "Field required",
    ),
    _case("  - id: 90b3d51f300f0002\n    party: STEADY-POWER\n", "  - id: 90b3d51f300f0002\n", "90b3d51f300f0002", "users.1.party", "Field required"),
    # duplicate id: the second one, pointing at the first; EUI-64s compared in canonical form
    _case("  - id: STEADY-POWER", "  - id: SOLR-PARTY", "id: SOLR-PARTY", "parties.2.id", f"'SOLR-PARTY' appears twice (first at line {line_no(WORLD, '  - id: SOLR-PARTY')})", nth=2),
    _case("  - id: 90b3d51f300f0002", "  - id: 90b3d51f300f0001", "90b3d51f300f0001", "users.1.id", f"'90B3D51F300F0001' appears twice (first at line {line_no(WORLD, SC_EUI)})"),
    _case("  - id: 00-DB-12-34-56-78-90-A1", "  - id: 00db1234567890a0", "00db1234567890a0", "devices.1.id", f"'00DB1234567890A0' appears twice (first at line {line_no(WORLD, '00-DB-12-34-56-78-90-A0')})"),
    _case(
        "  - reference: OFGEM-SOLR-2026-002",
        "  - reference: OFGEM-SOLR-2026-001",
        "OFGEM-SOLR-2026-001",
        "instructions.1.reference",
        f"appears twice (first at line {line_no(WORLD, 'OFGEM-SOLR-2026-001')})",
        nth=2,
    ),
    # bad date
    _case("    effective_from: 2026-11-21T00:00:00Z", "    effective_from: 21/11/2026", "21/11/2026", "instructions.0.effective_from", "Input should be a valid datetime"),
    _case("    effective_from: 2026-11-21T00:00:00Z", "    effective_from: 2026-13-21T00:00:00Z", "2026-13-21", "instructions.0.effective_from", "month value is outside"),
    _case('    effective_from: "2026-11-01T00:00:00Z"', "    effective_from: next tuesday", "next tuesday", "instructions.1.effective_from", "Input should be a valid datetime"),
    _case(
        "    effective_until: 2026-12-21T00:00:00+01:00",
        "    effective_until: 2026-12-32T00:00:00Z",
        "2026-12-32",
        "instructions.0.effective_until",
        "day value is outside",
    ),
    # bad serial (a certificate named by serial instead of path)
    _case("  - path: certs/supplier.pem", "  - serial: 12ab", "12ab", "certificates.1.serial", "'12ab' is not a certificate serial"),
    _case("  - path: certs/supplier.pem", "  - serial: -5", "serial: -5", "certificates.1.serial", "-5 is not a certificate serial"),
    _case("  - path: certs/supplier.pem", f"  - serial: {1 << 160}", "serial: 1", "certificates.1.serial", "is not a certificate serial (0 to 20 octets)"),
    _case("  - path: certs/supplier.pem", "  - serial: yes", "serial: yes", "certificates.1.serial", "a certificate serial is a number"),
    _case("  - path: certs/supplier.pem", "  - serial: 0x1234", "0x1234", "certificates.1.serial", "no certificate with serial 4660 (0x1234)"),
    _case("  - path: certs/supplier.pem\n    status: R", "  - serial: 7\n", "serial: 7", "certificates.1.status", "needs the status to set"),
    _case("  - path: certs/supplier.pem", "  - path: certs/supplier.pem\n    serial: 7", "path: certs/supplier.pem", "certificates.1", "give either path"),
    _case("  - path: certs/supplier.pem\n    status: R", "  - status: R", "status: R", "certificates.1", "give either path"),
    _case("  - path: certs/supplier.pem", "  - path: certs/supplier.pem\n    issuer: CN=X", "issuer: CN=X", "certificates.1.issuer", "issuer goes with serial"),
    _case("  - path: certs/supplier.pem", "  - serial: 7\n    issuer: nonsense", "nonsense", "certificates.1.issuer", "'nonsense' is not a distinguished name"),
]


class TestErrors:
    @pytest.mark.parametrize("text, line, field, fragment", ERRORS)
    def test_error_names_file_line_field(self, folder, store, text, line, field, fragment):
        path = write(folder, text)
        with pytest.raises(DataFileError) as info:
            load_world(path, store)
        message = str(info.value)
        assert f"{path} line {line}, field {field}: " in message
        assert fragment in message

    @pytest.mark.parametrize("text, line, field, fragment", ERRORS)
    def test_error_writes_nothing(self, folder, store, text, line, field, fragment):
        # A store that already holds a world: the failed load must not add to it or change it.
        load_world(write(folder, "parties:\n  - id: FAILED-ENERGY\n    name: before\n", "old.yaml"), store)
        before = dump(store)
        with pytest.raises(DataFileError):
            load_world(write(folder, text), store)
        assert dump(store) == before
        assert store.get_party("FAILED-ENERGY").name == "before"

    def test_duplicate_key(self, folder, store):
        text = edit("    role: SC\n", "    role: SC\n    role: IS\n")
        path = write(folder, text)
        with pytest.raises(DataFileError) as info:
            load_world(path, store)
        assert str(info.value) == f"{path} line {line_no(text, 'role: IS')}, field users.0.role: key 'role' appears twice"
        assert dump(store)["users"] == []

    def test_invalid_yaml(self, folder, store):
        text = edit("    name: Steady Power plc", "    name: Steady: Power plc")
        path = write(folder, text)
        with pytest.raises(DataFileError) as info:
            load_world(path, store)
        assert str(info.value).startswith(f"{path} line {line_no(text, 'Steady: Power')}: not valid YAML")
        assert dump(store)["parties"] == []

    def test_not_a_mapping(self, folder, store):
        with pytest.raises(DataFileError, match="a world file is a YAML mapping"):
            load_world(write(folder, "- parties\n"), store)

    def test_missing_world_file(self, folder, store):
        with pytest.raises(DataFileError) as info:
            load_world(folder / "absent.yaml", store)
        assert str(info.value).startswith(f"{folder / 'absent.yaml'}: cannot read")

    def test_certificate_file_holding_a_private_key(self, folder, store):
        (folder / "certs" / "key.pem").write_bytes(TestPki("K").issue(SC_EUI, 135).key_pem)
        text = edit("  - path: certs/sc.pem", "  - path: certs/key.pem")
        path = write(folder, text)
        with pytest.raises(DataFileError) as info:
            load_world(path, store)
        assert f"{path} line {line_no(text, 'key.pem')}, field certificates.0.path: " in str(info.value)
        assert "private key" in str(info.value)
        assert dump(store)["certificates"] == []

    def test_failure_while_writing_rolls_everything_back(self, folder, store, monkeypatch):
        # Validation passed; the store then fails half way through: the transaction undoes it all.
        before = dump(store)

        def broken(instruction):
            raise RuntimeError("disk full")

        monkeypatch.setattr(store, "put_instruction", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            load_world(write(folder, WORLD), store)
        assert dump(store) == before
        assert store.list_parties() == [] and store.list_users() == [] and store.list_devices() == []


# -- certificates named by serial: decimal, 0x hex, or openssl's colon-separated octets ----------
def _octets(serial: int) -> str:
    return serial.to_bytes((serial.bit_length() + 7) // 8, "big").hex(":")


class TestSerials:
    SERIAL = 0x123456  # as octets 12:34:56, which YAML 1.1 would read as the base-60 number 45296

    @pytest.fixture()
    def stored(self, store) -> int:
        issued = TestPki("SERIALS").issue(SC_EUI, 135, serial=self.SERIAL)
        for record in read_certificates(issued.cert_pem):
            store.put_certificate(record)
        return issued.serial

    @pytest.mark.parametrize(
        "written",
        [str(SERIAL), f"0x{SERIAL:X}", f'"0x{SERIAL:x}"', _octets(SERIAL), f'"{_octets(SERIAL).upper()}"', f"'{SERIAL}'"],
    )
    def test_every_form_names_the_stored_certificate(self, folder, store, stored, written):
        counts = load_world(write(folder, f"certificates:\n  - serial: {written}\n    status: R\n"), store)
        assert counts["certificates"] == 1
        assert store.find_certificates(eui="90B3D51F300F0001")[0].status is SmkiStatus.REVOKED

    def test_a_certificate_imported_by_the_same_file(self, folder, store):
        # Imported by path (status as read), then revoked by serial, in one load.
        serial = read_certificates((folder / "certs" / "supplier.pem").read_bytes())[0].serial
        text = f"certificates:\n  - path: certs/supplier.pem\n  - serial: 0x{serial:x}\n    status: E\n"
        load_world(write(folder, text), store)
        assert store.find_certificates(eui="90B3D51F300F0002")[0].status is SmkiStatus.EXPIRED

    def test_issuer_chooses_between_two_with_one_serial(self, folder, store):
        for pki, eui in ((TestPki("ISSUER-A"), SC_EUI), (TestPki("ISSUER-B"), SUPPLIER_EUI)):
            for record in read_certificates(pki.issue(eui, 135, serial=self.SERIAL).cert_pem):
                store.put_certificate(record)
        ambiguous = write(folder, f"certificates:\n  - serial: {self.SERIAL}\n    status: R\n")
        with pytest.raises(DataFileError) as info:
            load_world(ambiguous, store)
        assert f"{ambiguous} line 2, field certificates.0.serial: several issuers use serial 1193046 (0x123456)" in str(info.value)
        issuer = store.find_certificates(eui="90B3D51F300F0002")[0].issuer
        load_world(write(folder, f"certificates:\n  - serial: {self.SERIAL}\n    issuer: {issuer}\n    status: R\n"), store)
        statuses = {c.subject_eui: c.status for c in store.list_certificates()}
        assert statuses == {"90B3D51F300F0001": SmkiStatus.IN_USE, "90B3D51F300F0002": SmkiStatus.REVOKED}


# -- the documented example ----------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "world.yaml"


def _entry_models() -> dict[str, type]:
    """Section -> the model of its entries, from the loader's own schema."""
    return {name: typing.get_args(field.annotation)[0] for name, field in WorldFile.model_fields.items()}


class TestExample:
    def test_example_loads_cleanly(self, store):
        policies = PolicySet.load_dir(ROOT / "policies")
        counts = load_world(EXAMPLE, store, role_codes=policies.role_codes)
        assert counts == {"parties": 4, "users": 4, "certificates": 3, "devices": 5, "instructions": 2, "srps": 1}
        assert store.get_user("90B3D51F300F0004").role == "MDR"
        statuses = {c.subject_eui: c.status for c in store.list_certificates()}
        assert statuses == {"90B3D51F300F0001": SmkiStatus.IN_USE, "90B3D51F300F0002": SmkiStatus.REVOKED}  # revoked by serial
        scoped = store.get_instruction("OFGEM-SOLR-2026-001")
        assert scoped.scope == ("00DB1234567890A0", "00DB1234567890A1", "00DB1234567890B0")
        assert store.get_instruction("OFGEM-SOLR-2026-000").approved_by == "gov-bob"

    def test_example_uses_every_key_the_loader_accepts(self):
        data, _ = load_yaml(EXAMPLE.read_text(), str(EXAMPLE))
        for section, model in _entry_models().items():
            used = {key for entry in data[section] for key in entry}
            assert used == set(model.model_fields), f"{section}: the example leaves out {set(model.model_fields) - used}"

    def test_readme_documents_every_key(self):
        readme = (ROOT / "README.md").read_text()
        start = readme.index("## The world file")
        section = readme[start : readme.index("\n## ", start + 1)]
        for name, model in _entry_models().items():
            assert f"`{name}`" in section
            for key in model.model_fields:
                assert f"`{key}`" in section, f"README, The world file: {name}.{key} is not documented"
