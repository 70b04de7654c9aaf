"""One frozen ``Settings``: read once from the environment, flags override, a bad value is a
one-line error naming the variable or flag; and the CLI builds it once and passes it down."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import OfficerKeys
from solr_policy import logs
from solr_policy.cli import Context, cli
from solr_policy.policy import default_policy_dir
from solr_policy.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "solr_policy"


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    logs.reset()  # the CLI configures logging for its run


def test_defaults_from_an_empty_environment():
    settings = Settings.load({})
    assert settings == Settings(
        db=Path("solr-policy.db"), policies=default_policy_dir(), duis_xsd=None, log_format=None, log_level="INFO", synchronous="FULL",
        log_key=Path("solr-policy.db.log-key.pem"), checkpoint=Path("solr-policy.db.checkpoint"),
    )
    assert (settings.policies / "solr-contingency.yaml").is_file()


def test_the_log_key_and_checkpoint_sit_beside_the_database_unless_set(tmp_path):
    beside = Settings.load({"SOLR_POLICY_DB": str(tmp_path / "data" / "solr.db")})
    assert (beside.log_key, beside.checkpoint) == (tmp_path / "data" / "solr.db.log-key.pem", tmp_path / "data" / "solr.db.checkpoint")
    by_url = Settings.load({"SOLR_POLICY_DB": "postgresql://solr@db.example/solr"})
    assert (by_url.log_key, by_url.checkpoint) == (Path("solr-policy.log-key.pem"), Path("solr-policy.checkpoint"))
    environ = {"SOLR_POLICY_LOG_KEY": str(tmp_path / "keys" / "log.pem"), "SOLR_POLICY_CHECKPOINT": str(tmp_path / "ship" / "cp")}
    chosen = Settings.load(environ, checkpoint=tmp_path / "flag.cp")
    assert (chosen.log_key, chosen.checkpoint) == (tmp_path / "keys" / "log.pem", tmp_path / "flag.cp")
    with pytest.raises(SettingsError, match="^SOLR_POLICY_LOG_KEY: .* is a folder, not a key file$"):
        Settings.load({"SOLR_POLICY_LOG_KEY": str(tmp_path)})
    with pytest.raises(SettingsError, match="^--checkpoint: .* is a folder, not a checkpoint file$"):
        Settings.load({}, checkpoint=tmp_path)


def test_cli_log_key_and_checkpoint_flags_reach_init(tmp_path):
    keys = OfficerKeys(tmp_path)
    key, checkpoint = tmp_path / "elsewhere.pem", tmp_path / "shipped.checkpoint"
    result = invoke("--db", str(tmp_path / "f.db"), "--log-key", str(key), "--checkpoint", str(checkpoint), *keys.init_args("gov-a", "gov-b"))
    assert result.exit_code == 0, result.output
    assert key.exists() and checkpoint.exists() and (tmp_path / "elsewhere.pub.pem").exists()
    assert not (tmp_path / "f.db.log-key.pem").exists()


def test_every_variable_is_read_and_normalised(tmp_path):
    (tmp_path / "pol").mkdir()
    (tmp_path / "xsd").mkdir()
    environ = {
        "SOLR_POLICY_DB": str(tmp_path / "x.db"),
        "SOLR_POLICY_POLICIES": str(tmp_path / "pol"),
        "SOLR_POLICY_DUIS_XSD": str(tmp_path / "xsd"),
        "SOLR_POLICY_LOG_FORMAT": "Console",
        "SOLR_POLICY_LOG_LEVEL": "warning",
        "SOLR_POLICY_SYNCHRONOUS": "normal",
    }
    assert Settings.load(environ) == Settings(
        db=tmp_path / "x.db", policies=tmp_path / "pol", duis_xsd=tmp_path / "xsd", log_format="console", log_level="WARNING", synchronous="NORMAL"
    )


def test_flags_override_the_environment(tmp_path):
    environ = {"SOLR_POLICY_DB": "env.db", "SOLR_POLICY_LOG_LEVEL": "ERROR", "SOLR_POLICY_SYNCHRONOUS": "NORMAL"}
    settings = Settings.load(environ, db=tmp_path / "flag.db", log_level="DEBUG", synchronous=None)
    assert (settings.db, settings.log_level, settings.synchronous) == (tmp_path / "flag.db", "DEBUG", "NORMAL")


def test_an_empty_variable_counts_as_unset():
    assert Settings.load({"SOLR_POLICY_DB": "", "SOLR_POLICY_LOG_LEVEL": ""}) == Settings.load({})


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("SOLR_POLICY_LOG_LEVEL", "critical")
    assert Settings.load().log_level == "CRITICAL"


@pytest.mark.parametrize(
    "environ, flags, message",
    [
        ({"SOLR_POLICY_LOG_LEVEL": "LOUD"}, {}, "SOLR_POLICY_LOG_LEVEL: 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({}, {"log_level": "loud"}, "--log-level: 'loud' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({"SOLR_POLICY_LOG_FORMAT": "xml"}, {}, "SOLR_POLICY_LOG_FORMAT: 'xml' is not one of json, console"),
        ({"SOLR_POLICY_SYNCHRONOUS": "OFF"}, {}, "SOLR_POLICY_SYNCHRONOUS: 'OFF' is not one of FULL, NORMAL"),
        ({"SOLR_POLICY_SYNCHRONOUS": "OFF"}, {"synchronous": "EXTRA"}, "--synchronous: 'EXTRA' is not one of FULL, NORMAL"),
        ({"SOLR_POLICY_POLICIES": "{tmp}/absent"}, {}, "SOLR_POLICY_POLICIES: {tmp}/absent: no such folder"),
        ({}, {"duis_xsd": "{tmp}/absent"}, "--schema-dir: {tmp}/absent: no such folder"),
        ({"SOLR_POLICY_DB": "{tmp}"}, {}, "SOLR_POLICY_DB: {tmp} is a folder, not a database file"),
        ({}, {"db": "   "}, "--db: must not be empty"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_source(tmp_path, environ, flags, message):
    fill = lambda value: value.replace("{tmp}", str(tmp_path))  # noqa: E731
    with pytest.raises(SettingsError) as info:
        Settings.load({k: fill(v) for k, v in environ.items()}, **{k: fill(v) for k, v in flags.items()})
    assert str(info.value) == fill(message)


def test_frozen_and_validated_when_built_by_hand():
    settings = Settings.load({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.db = Path("other.db")  # type: ignore[misc]
    with pytest.raises(SettingsError, match="^synchronous: 'fast' is not one of FULL, NORMAL$"):
        Settings(synchronous="fast")
    with pytest.raises(TypeError, match="unknown setting"):
        Settings.load({}, database="x.db")


def test_only_settings_reads_the_environment():
    # A module that names a variable ("SOLR_POLICY_DB") or lets click read one (envvar=).
    # store/sqlite.py still reads SOLR_POLICY_DB and SOLR_POLICY_SYNCHRONOUS when no value is
    # passed in; it is being reshaped elsewhere and switches to Settings there (two lines).
    pending = {PACKAGE / "store" / "sqlite.py"}
    readers = {path for path in PACKAGE.rglob("*.py") if re.search(r"[\"']SOLR_POLICY_[A-Z_]+[\"']|envvar=", path.read_text())}
    assert readers - pending == {PACKAGE / "settings.py"}


# -- the command line builds one Settings and passes it down -------------------------------------
def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def test_cli_bad_environment_is_a_usage_error(tmp_path):
    result = invoke("--db", str(tmp_path / "x.db"), "certs", "list", env={"SOLR_POLICY_LOG_LEVEL": "LOUD"})
    assert result.exit_code == 2
    assert "SOLR_POLICY_LOG_LEVEL: 'LOUD' is not one of" in result.output
    assert not (tmp_path / "x.db").exists()  # stopped before opening anything


def test_cli_bad_flag_names_the_flag(tmp_path):
    result = invoke("--db", str(tmp_path / "x.db"), "--synchronous", "sometimes", "certs", "list")
    assert result.exit_code == 2 and "--synchronous: 'sometimes' is not one of FULL, NORMAL" in result.output


def test_cli_db_from_the_environment(tmp_path):
    db = tmp_path / "from-env.db"
    result = invoke("certs", "list", env={"SOLR_POLICY_DB": str(db)})
    assert result.exit_code == 0, result.output
    assert db.exists()


def test_cli_policies_from_environment_group_flag_and_command_flag(tmp_path):
    empty = tmp_path / "no-policies"
    empty.mkdir()
    world = tmp_path / "world.yaml"
    world.write_text("parties:\n  - id: READER\nusers:\n  - id: 90B3D51F300F0004\n    party: READER\n    role: MDR\n")
    env = {"SOLR_POLICY_POLICIES": str(empty), "SOLR_POLICY_DB": str(tmp_path / "w.db")}
    from_env = invoke("world", "load", str(world), env=env)
    assert from_env.exit_code == 2 and f"{empty}: no policy files" in from_env.output
    by_group_flag = invoke("--policies", str(ROOT / "policies"), "world", "load", str(world), env=env)
    assert by_group_flag.exit_code == 0, by_group_flag.output  # MDR is a role of the shipped policies
    by_command_flag = invoke("world", "load", str(world), "--policies", str(ROOT / "policies"), env=env)
    assert by_command_flag.exit_code == 0, by_command_flag.output


def test_cli_store_gets_db_and_synchronous_from_settings(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("solr_policy.cli.common.open_store", lambda path, **kw: opened.append((path, kw)) or "store")
    settings = Settings.load({"SOLR_POLICY_SYNCHRONOUS": "normal"}, db=tmp_path / "s.db")
    context = Context(settings)
    assert context.store == "store" and context.store == "store"
    assert opened == [(tmp_path / "s.db", {"synchronous": "NORMAL"})]  # opened once


def test_cli_log_settings_reach_the_logger(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(logs, "configure", lambda fmt, level: seen.append((fmt, level)))
    result = invoke("--log-level", "warning", "certs", "list", env={"SOLR_POLICY_LOG_FORMAT": "console", "SOLR_POLICY_DB": str(tmp_path / "l.db")})
    assert result.exit_code == 0, result.output
    assert seen == [("console", "WARNING")]


def test_main_reports_a_bad_setting_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLR_POLICY_")}
    env |= {"PYTHONPATH": str(ROOT), "SOLR_POLICY_SYNCHRONOUS": "sometimes"}
    done = subprocess.run(
        [sys.executable, "-m", "solr_policy.cli", "certs", "list"], capture_output=True, env=env, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines()[-1] == "Error: SOLR_POLICY_SYNCHRONOUS: 'sometimes' is not one of FULL, NORMAL"
    assert b"Traceback" not in done.stderr and done.stdout == b""
