"""``load_world``: reference data (Parties, Users, Devices) from YAML into the store,
idempotently and all or nothing, logged with the file's digest, with errors that name the file,
the line and the field. Sections that only a signed governance act may change (instructions,
officers, SRPs, certificates) are refused before anything is written."""

from __future__ import annotations

import hashlib
import sqlite3
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from solr_policy.engine import Engine
from solr_policy.policy import PolicySet
from solr_policy.store import SqliteStore
from solr_policy.testing.scenario import SolrScenario
from solr_policy.world import DeviceType, InstructionStatus, Party, Smets, UserStatus
from solr_policy.world_file import GOVERNED, WorldFile, load_world
from solr_policy.yamlio import DataFileError, load_yaml

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
NOW = datetime.now(UTC).replace(microsecond=0)

SC_EUI = "90-B3-D5-1F-30-0F-00-01"
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
"""

# Tables an audit entry writes to: the entries, the chain's head, the Merkle tree's nodes.
LOG_TABLES = {"audit", "audit_head", "log_nodes"}


@pytest.fixture()
def folder(tmp_path) -> Path:
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


def loads_logged(store: SqliteStore) -> list[dict]:
    return [e.payload_data() for e in store.audit_entries(kind="world.load")]


# -- loading ---------------------------------------------------------------------------------
class TestLoad:
    def test_loads_everything(self, folder, store):
        path = write(folder, WORLD)
        loaded = load_world(path, store)
        assert loaded == {"parties": 3, "users": 2, "devices": 4, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}

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
        # Reference data only: nothing that grants authority.
        assert store.instructions() == [] and store.list_certificates() == [] and store.list_srps() == []

    def test_each_load_is_logged_with_the_digest_and_counts(self, folder, store):
        path = write(folder, WORLD)
        before = datetime.now(UTC).replace(microsecond=0)
        loaded = load_world(path, store)
        (entry,) = store.audit_entries(kind="world.load")
        assert entry.payload_data() == {"file": str(path), **loaded}
        assert entry.actor is None  # nobody's authority: reference data
        assert before <= entry.at_time <= datetime.now(UTC)  # the service's clock
        assert store.verify_audit().intact

    def test_the_digest_is_of_the_bytes_as_stored(self, folder, store):
        # Same data, other line endings: the loads agree on the data and the log tells the files apart.
        unix = load_world(write(folder, WORLD), store)
        crlf_path = folder / "crlf.yaml"
        crlf_path.write_bytes(WORLD.replace("\n", "\r\n").encode())
        crlf = load_world(crlf_path, store)
        assert crlf["sha256"] == hashlib.sha256(crlf_path.read_bytes()).hexdigest() != unix["sha256"]
        assert {k: v for k, v in crlf.items() if k != "sha256"} == {k: v for k, v in unix.items() if k != "sha256"}
        assert [e["sha256"] for e in loads_logged(store)] == [unix["sha256"], crlf["sha256"]]

    def test_loading_twice_changes_no_data_and_logs_twice(self, folder, store):
        path = write(folder, WORLD)
        load_world(path, store)
        first = dump(store)
        assert first["devices"] and first["users"]
        load_world(path, store)
        again = dump(store)
        assert {t for t in first if first[t] != again[t]} <= LOG_TABLES
        assert len(again["audit"]) == len(first["audit"]) + 1
        first_load, second_load = loads_logged(store)
        assert first_load == second_load

    def test_reloading_an_edited_file_updates_in_place(self, folder, store):
        load_world(write(folder, WORLD), store)
        edited = edit("    role: IS\n    status: suspended\n", "    role: IS\n    status: withdrawn\n")
        edited = edit("    smets: SMETS2+\n    supplier: STEADY-POWER\n", "    smets: SMETS2+\n    supplier: FAILED-ENERGY\n", edited)
        load_world(write(folder, edited), store)
        assert store.get_user("90B3D51F300F0002").status is UserStatus.WITHDRAWN
        assert store.get_device("00DB1234567890B1").supplier == "FAILED-ENERGY"
        assert len(store.list_users()) == 2 and len(store.list_devices()) == 4

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

    def test_empty_file_changes_no_data_but_is_logged(self, folder, store):
        before = dump(store)
        path = write(folder, "")
        assert load_world(path, store) == {"parties": 0, "users": 0, "devices": 0, "sha256": hashlib.sha256(b"").hexdigest()}
        after = dump(store)
        assert {t for t in before if before[t] != after[t]} <= LOG_TABLES
        assert loads_logged(store) == [{"file": str(path), "parties": 0, "users": 0, "devices": 0, "sha256": hashlib.sha256(b"").hexdigest()}]


# -- sections only a signed governance act may change -------------------------------------------
SOLR_INSTRUCTION = """\
instructions:
  - reference: OFGEM-SOLR-2026-001
    failed_supplier: FAILED-ENERGY
    solr_party: SOLR-PARTY
    effective_from: 2026-11-21T00:00:00Z
"""

# (id, section, text appended to WORLD): every shape the sections used to accept, and empty ones.
GOVERNED_CASES = [
    ("instruction", "instructions", SOLR_INSTRUCTION),
    ("instruction-self-approved", "instructions", SOLR_INSTRUCTION + "    status: active\n    proposed_by: mallory\n    approved_by: mallory\n"),
    ("no-instructions", "instructions", "instructions: []\n"),
    ("officer", "officers", "officers:\n  - id: gov-mallory\n    kind: governance\n"),
    ("srp", "srps", "srps:\n  - id: SRP-1\n    name: Alert Relay\n    endpoint: https://srp.example/alerts\n    serves: [FAILED-ENERGY]\n"),
    ("no-srps", "srps", "srps:\n"),
    ("certificate-file", "certificates", "certificates:\n  - path: certs/sc.pem\n"),
    ("certificate-file-with-status", "certificates", "certificates:\n  - path: certs/sc.pem\n    status: I\n"),
    ("certificate-serial-status", "certificates", "certificates:\n  - serial: 0x1234\n    issuer: CN=ZAZ1, OU=07\n    status: R\n"),
]

# The command each refusal must name (README, "The world file").
COMMANDS = {
    "instructions": "solr-policy instruction propose ... --key FILE",
    "officers": "officer register-governance",
    "srps": "solr-policy srp add ... --key FILE",
    "certificates": "solr-policy certs import FILE",
}


class TestGovernedSections:
    @pytest.mark.parametrize("section, appended", [pytest.param(s, a, id=i) for i, s, a in GOVERNED_CASES])
    def test_refused_naming_file_line_section_and_command(self, folder, store, section, appended):
        # A store that already holds reference data: the refused load must not change it or log.
        load_world(write(folder, "parties:\n  - id: FAILED-ENERGY\n    name: before\n", "old.yaml"), store)
        before = dump(store)
        text = WORLD + appended
        path = write(folder, text)
        with pytest.raises(DataFileError) as info:
            load_world(path, store)
        message = str(info.value)
        assert message.startswith(f"{path} line {line_no(text, f'{section}:')}, section {section}: a world file holds reference data only")
        assert COMMANDS[section] in message
        assert dump(store) == before
        assert store.get_party("FAILED-ENERGY").name == "before"

    def test_a_status_change_names_the_signed_set_status(self, folder, store):
        path = write(folder, "certificates:\n  - serial: 4660\n    status: R\n")
        with pytest.raises(DataFileError, match=r"certs pin \.\.\. --key FILE; an SMKI status is changed by a signed solr-policy certs set-status"):
            load_world(path, store)

    def test_every_refused_section_is_named_in_file_order(self, folder, store):
        text = "srps: []\nparties: []\ncertificates: []\ninstructions: []\nofficers: []\n"
        path = write(folder, text)
        with pytest.raises(DataFileError) as info:
            load_world(path, store)
        named = [part.split(", section ")[1].split(":")[0] for part in str(info.value).split("; ") if ", section " in part]
        assert named == ["srps", "certificates", "instructions", "officers"]
        assert f"{path} line 4, section instructions" in str(info.value)

    def test_refused_before_any_other_check(self, folder, store):
        # A file with a mistake as well: the governance refusal is what it is told.
        text = edit("    supplier: STEADY-POWER", "    supplier: NOBODY") + SOLR_INSTRUCTION
        with pytest.raises(DataFileError) as info:
            load_world(write(folder, text), store)
        assert ", section instructions: " in str(info.value) and "NOBODY" not in str(info.value)

    def test_readme_names_the_command_for_every_refused_section(self):
        readme = (ROOT / "README.md").read_text()
        start = readme.index("## The world file")
        section = readme[start : readme.index("\n## ", start + 1)]
        for name in GOVERNED:
            row = next((line for line in section.splitlines() if line.startswith(f"| `{name}` |")), None)
            assert row is not None, f"README, The world file: no row for refused section {name}"
            assert "--key FILE" in row or "certs import" in row


class TestRedTeamInstructionByWorldFile:
    """Issue 10, "`world load` bypasses governance": an Authority instruction written into a YAML
    file (self-approved, reviving an ended one, or overlapping another) must not become active."""

    @staticmethod
    def forged(reference: str) -> str:
        return (
            "parties:\n  - id: SOLR-PARTY\n    name: renamed by the forged file\n"
            f"instructions:\n  - reference: {reference}\n    failed_supplier: FAILED-ENERGY\n    solr_party: SOLR-PARTY\n"
            f"    effective_from: {(NOW - timedelta(days=1)).isoformat()}\n    status: active\n"
            "    proposed_by: mallory\n    approved_by: mallory\n"
        )

    @pytest.mark.parametrize("case", ["self-approved", "revives-an-ended-one", "overlaps-another"])
    def test_refused_nothing_written_and_R6_still_refuses(self, folder, store, case):
        scenario = SolrScenario()
        reference = "OFGEM-SOLR-FORGED"
        if case == "self-approved":
            scenario.install(store, now=NOW, instruction_status=None)
        elif case == "revives-an-ended-one":
            scenario.install(store, now=NOW, instruction_status=InstructionStatus.ENDED)
            reference = scenario.instruction_ref
        else:  # another SoLR Party's active instruction already covers the failed Supplier
            scenario.install(store, now=NOW, instruction_status=None)
            store.put_party(Party(id="OTHER-SOLR", name="Another SoLR Party"))
            store.put_instruction(scenario.instruction(NOW).model_copy(update={"reference": "OFGEM-OTHER", "solr_party": "OTHER-SOLR"}))
        before = dump(store)

        path = write(folder, self.forged(reference))
        with pytest.raises(DataFileError) as info:
            load_world(path, store)
        assert f"{path} line 4, section instructions: " in str(info.value)
        assert "solr-policy instruction propose ... --key FILE" in str(info.value)
        assert dump(store) == before  # no instruction, no renamed Party, no log entry
        assert all(i.solr_party != "SOLR-PARTY" or i.status is not InstructionStatus.ACTIVE for i in store.instructions())

        engine = Engine(store, PolicySet.load_dir(POLICIES))
        decision = engine.decide(scenario.requests().switch_to_credit(scenario.device("electricity meter (SMETS1)")), now=NOW)
        assert decision.outcome == "reject"
        assert [r.rule for r in decision.reasons] == ["R6.instruction-active"]  # the only thing missing


# -- errors: file, line, field; and nothing written ---------------------------------------------
def _case(old: str, new: str, needle: str, field: str, fragment: str, nth: int = 1):
    text = edit(old, new)
    return pytest.param(text, line_no(text, needle, nth), field, fragment, id=field)


ERRORS = [
    _case("    party: SOLR-PARTY\n    role: SC", "    party: NOBODY\n    role: SC", "NOBODY", "users.0.party", "unknown Party 'NOBODY'"),
    _case("    supplier: STEADY-POWER", "    supplier: GONE-BUST", "GONE-BUST", "devices.3.supplier", "unknown Party 'GONE-BUST'"),
    _case("    role: IS", "    role: XX", "role: XX", "users.1.role", "unknown User Role 'XX'"),
    _case("    role: IS", "    role: is", "role: is", "users.1.role", "'is' is not a User Role code"),
    _case("  - id: 90b3d51f300f0002", "  - id: 90b3d51f300f00", "90b3d51f300f00", "users.1.id", "is not an EUI-64"),
    _case("  - id: 00-DB-12-34-56-78-90-A1", "  - id: 00-DB-12-34-56-78-90-AG", "90-AG", "devices.1.id", "is not an EUI-64"),
    _case("    type: GSME\n    smets: SMETS1", "    type: WATER\n    smets: SMETS1", "WATER", "devices.1.type", "Input should be 'ESME', 'GSME'"),
    _case("    smets: SMETS2+\n    supplier: STEADY", "    smets: SMETS3\n    supplier: STEADY", "SMETS3", "devices.3.smets", "Input should be 'SMETS1' or 'SMETS2+'"),
    _case("    smets: SMETS2+\n    supplier: STEADY", "    smets: SMETS2+\n    suplier: STEADY", "suplier", "devices.3.suplier", "unknown field"),
    _case("devices:\n", "device:\n", "device:", "device", "unknown field"),
    # bad enum
    _case("    status: suspended\n", "    status: asleep\n", "asleep", "users.1.status", "Input should be 'active', 'suspended' or 'withdrawn'"),
    # wrong type
    _case("    name: Failed Energy Ltd", "    name: [Failed, Energy]", "[Failed, Energy]", "parties.0.name", "Input should be a valid string"),
    _case("    role: SC\n", "    role: 7\n", "role: 7", "users.0.role", "Input should be a valid string"),
    # missing field: the line of the entry that lacks it
    _case("    type: GSME\n    smets: SMETS1\n", "    smets: SMETS1\n", "00-DB-12-34-56-78-90-A1", "devices.1.type", "Field required"),
    _case("  - id: 90b3d51f300f0002\n    party: STEADY-POWER\n", "  - id: 90b3d51f300f0002\n", "90b3d51f300f0002", "users.1.party", "Field required"),
    # duplicate id: the second one, pointing at the first; EUI-64s compared in canonical form
    _case("  - id: STEADY-POWER", "  - id: SOLR-PARTY", "id: SOLR-PARTY", "parties.2.id", f"'SOLR-PARTY' appears twice (first at line {line_no(WORLD, '  - id: SOLR-PARTY')})", nth=2),
    _case("  - id: 90b3d51f300f0002", "  - id: 90b3d51f300f0001", "90b3d51f300f0001", "users.1.id", f"'90B3D51F300F0001' appears twice (first at line {line_no(WORLD, SC_EUI)})"),
    _case("  - id: 00-DB-12-34-56-78-90-A1", "  - id: 00db1234567890a0", "00db1234567890a0", "devices.1.id", f"'00DB1234567890A0' appears twice (first at line {line_no(WORLD, '00-DB-12-34-56-78-90-A0')})"),
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
        # A store that already holds a world: the failed load must not add to it, change it or log.
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
        assert dump(store)["users"] == [] and loads_logged(store) == []

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

    def test_not_utf8(self, folder, store):
        path = folder / "latin1.yaml"
        path.write_bytes("parties:\n  - id: X\n    name: Énergie\n".encode("latin-1"))
        with pytest.raises(DataFileError) as info:
            load_world(path, store)
        assert str(info.value) == f"{path}: not UTF-8 text"

    def test_missing_world_file(self, folder, store):
        with pytest.raises(DataFileError) as info:
            load_world(folder / "absent.yaml", store)
        assert str(info.value).startswith(f"{folder / 'absent.yaml'}: cannot read")

    @pytest.mark.parametrize("broken", ["put_device", "append_audit"])
    def test_failure_while_writing_rolls_everything_back(self, folder, store, monkeypatch, broken):
        # Validation passed; the store then fails half way through (or at the log entry, which
        # is written in the same transaction): the transaction undoes it all.
        before = dump(store)

        def fail(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(store, broken, fail)
        with pytest.raises(RuntimeError, match="disk full"):
            load_world(write(folder, WORLD), store)
        assert dump(store) == before
        assert store.list_parties() == [] and store.list_users() == [] and store.list_devices() == []


# -- the documented example ----------------------------------------------------------------------
EXAMPLE = ROOT / "examples" / "world.yaml"


def _entry_models() -> dict[str, type]:
    """Section -> the model of its entries, from the loader's own schema."""
    return {name: typing.get_args(field.annotation)[0] for name, field in WorldFile.model_fields.items()}


class TestExample:
    def test_example_loads_cleanly(self, store):
        policies = PolicySet.load_dir(POLICIES)
        loaded = load_world(EXAMPLE, store, role_codes=policies.role_codes)
        assert loaded == {"parties": 4, "users": 4, "devices": 5, "sha256": hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()}
        assert store.get_user("90B3D51F300F0004").role == "MDR"
        assert store.get_device("00DB1234567890C0").type is DeviceType("CHF")

    def test_example_uses_every_key_the_loader_accepts(self):
        data, _ = load_yaml(EXAMPLE.read_text(), str(EXAMPLE))
        assert set(data) == set(WorldFile.model_fields)
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


def test_a_large_file_wrong_throughout_names_the_first_errors_and_counts_the_rest():
    from solr_policy.world_file import parse_world
    from solr_policy.yamlio import MAX_ERRORS

    devices = "".join(f"  - {{id: '00DB{i:012X}', type: TOASTER, smets: SMETS2+, supplier: FAILED}}\n" for i in range(30))
    with pytest.raises(DataFileError) as info:
        parse_world("parties:\n  - {id: FAILED, name: Failed}\ndevices:\n" + devices, "big.yaml")
    message = str(info.value)
    assert message.count("field devices.") == MAX_ERRORS and message.endswith("and 10 more errors")
    assert message.startswith("big.yaml line 4, field devices.0.type")


def test_a_duplicate_key_is_named_with_its_line_and_field():
    with pytest.raises(DataFileError) as info:
        load_yaml("parties:\n  - id: A\n    name: x\n    name: y\n", "dup.yaml")
    assert str(info.value) == "dup.yaml line 4, field parties.0.name: key 'name' appears twice"
