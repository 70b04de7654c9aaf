"""``world import-devices``: CSV and JSON-lines inventories checked row by row (errors name the
line and the field, and nothing is written), then written in one transaction and logged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from solr_policy.cli import cli
from solr_policy.store import SqliteStore
from solr_policy.world import Party


@pytest.fixture()
def db(tmp_path) -> Path:
    path = tmp_path / "solr.db"
    store = SqliteStore(path)
    store.put_party(Party(id="FAILED", name="Failed"))
    store.close()
    return path


def run(db: Path, *args: str):
    return CliRunner().invoke(cli, ["--db", str(db), "--log-level", "WARNING", "world", "import-devices", *args])


def devices(db: Path) -> dict[str, tuple[str, str, str]]:
    store = SqliteStore(db)
    try:
        return {d.id: (d.type.value, d.smets.value, d.supplier) for d in store.list_devices()}
    finally:
        store.close()


def test_csv_and_jsonl_inventories_are_imported_and_logged(db, tmp_path):
    csv_file = tmp_path / "inventory.csv"
    csv_file.write_text("id,type,smets,supplier\n00-DB-00-00-00-00-00-01,ESME,SMETS2+,FAILED\n00db000000000002,GSME,SMETS1,FAILED\n")
    result = run(db, str(csv_file))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["devices"] == 2
    jsonl = tmp_path / "inventory.jsonl"
    jsonl.write_text(json.dumps({"id": "00DB000000000002", "type": "ESME", "smets": "SMETS2+", "supplier": "FAILED"}) + "\n\n")
    assert run(db, str(jsonl)).exit_code == 0
    assert devices(db) == {
        "00DB000000000001": ("ESME", "SMETS2+", "FAILED"),
        "00DB000000000002": ("ESME", "SMETS2+", "FAILED"),  # updated by the second file
    }
    store = SqliteStore(db)
    try:
        logged = [e.payload_data() for e in store.audit_entries(kind="world.import-devices")]
        assert [(e["file"], e["devices"]) for e in logged] == [(str(csv_file), 2), (str(jsonl), 1)]
        assert store.verify_audit().intact
    finally:
        store.close()


def test_a_wrong_row_names_its_line_and_writes_nothing(db, tmp_path):
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(
        "id,type,smets,supplier\n00DB000000000001,ESME,SMETS2+,FAILED\n00DB000000000002,TOASTER,SMETS2+,FAILED\n"
        "00DB000000000003,GSME,SMETS1,NOBODY\nnot-an-eui,GSME,SMETS1,FAILED\n"
    )
    result = run(db, str(csv_file))
    assert result.exit_code == 1
    assert f"{csv_file} line 3: field type:" in result.output
    assert f"{csv_file} line 4: field supplier: 'NOBODY' is not a Party in the store" in result.output
    assert f"{csv_file} line 5: field id:" in result.output
    assert "Traceback" not in result.output
    assert devices(db) == {}
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"id": "00DB000000000001", "type": "ESME", "smets": "SMETS1", "supplier": "FAILED", "x": 1}\n[1]\n{oops\n' + "[" * 100_000 + "\n")
    result = run(db, str(jsonl))
    assert result.exit_code == 1
    assert f"{jsonl} line 1: unknown field 'x'" in result.output
    assert f"{jsonl} line 2: not a JSON object" in result.output
    assert f"{jsonl} line 3: not JSON" in result.output
    assert f"{jsonl} line 4: not JSON (nested too deeply)" in result.output  # not a RecursionError traceback
    assert devices(db) == {}


def test_unreadable_or_misnamed_files(db, tmp_path):
    assert run(db, str(tmp_path / "missing.csv")).exit_code == 2
    header = tmp_path / "header.csv"
    header.write_text("eui,type\n")
    result = run(db, str(header))
    assert result.exit_code == 1 and "the header must name the columns id, type, smets, supplier" in result.output
    other = tmp_path / "inventory.xlsx"
    other.write_text("x")
    assert run(db, str(other)).exit_code == 1


def test_progress_for_both_passes_and_a_file_changed_between_them_writes_nothing(db, tmp_path):
    from solr_policy.inventory import InventoryError, import_devices

    rows = "".join(f"00DB{n:012X},ESME,SMETS2+,FAILED\n" for n in range(2500))
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("id,type,smets,supplier\n" + rows)
    seen: list[tuple[str, int]] = []

    def rewrite_after_the_check(phase: str, count: int) -> None:
        seen.append((phase, count))
        if (phase, count) == ("checked", 2000):  # another program replaces the file while it is checked
            edited = tmp_path / "edited.csv"
            edited.write_text("id,type,smets,supplier\n00DB000000000001,TOASTER,SMETS2+,FAILED\n")
            os.replace(edited, inventory)

    store = SqliteStore(db)
    try:
        with pytest.raises(InventoryError, match="line 2: field type: .*the file changed while it was imported"):
            import_devices(inventory, store, progress=rewrite_after_the_check)
        assert ("checked", 1000) in seen and store.list_devices() == []
        assert store.audit_entries(kind="world.import-devices") == []
        inventory.write_text("id,type,smets,supplier\n" + rows)
        seen.clear()
        assert import_devices(inventory, store, progress=lambda phase, count: seen.append((phase, count)))["devices"] == 2500
        assert [p for p in seen if p[0] == "checked"] == [("checked", 1000), ("checked", 2000)]
        assert [p for p in seen if p[0] == "written"] == [("written", 1000), ("written", 2000)]
    finally:
        store.close()
