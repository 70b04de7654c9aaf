"""The shape of ``solr_policy.cli``: every command reachable by name, each command module
loaded only when its command runs, and no imports hidden inside functions."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from solr_policy.cli import cli
from solr_policy.cli.app import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
CLI_DIR = ROOT / "solr_policy" / "cli"


def test_every_command_loads_under_its_own_name():
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
    assert cli.get_command(ctx, "no-such-command") is None


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    lines = result.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("   ")] == sorted(COMMANDS)


def test_a_light_command_loads_only_its_own_module(tmp_path):
    code = (
        "import sys\n"
        "from solr_policy.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('solr_policy.cli.', 'solr_policy.engine', 'signxml'))))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLR_POLICY_")} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, "--db", str(tmp_path / "s.db"), "gbcs", "inspect", "00"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == "['solr_policy.cli.app', 'solr_policy.cli.common', 'solr_policy.cli.gbcs']", done.stderr


def test_imports_are_at_module_top():
    hidden = []
    for path in sorted(CLI_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                hidden += [f"{path.name}:{inner.lineno}" for inner in ast.walk(node) if isinstance(inner, (ast.Import, ast.ImportFrom))]
    assert hidden == []
