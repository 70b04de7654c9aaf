"""Every ``solr-policy`` command the README shows exists, with the options it shows.

The README's shell blocks and inline commands are templates (``...``, ``[--json]``, ``a | b``
alternatives), so they are not run here (``make demo`` and the CLI tests run the behaviour);
what a reader types first is checked instead: each command path resolves in the real click
tree, and each option shown is one that command (or the top-level command) accepts. A renamed
command or option fails here, naming the README line."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from solr_policy.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[tuple[int, str]]:
    """(line, command) for each ``solr-policy ...`` in a shell block or an inline code span."""
    lines = README.read_text(encoding="utf-8").splitlines()
    found: list[tuple[int, str]] = []
    in_shell, pending, start = False, "", 0
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            in_shell = not in_shell and line.strip() == "```sh"
            continue
        if in_shell:
            text = re.sub(r"\s#.*$", "", line).rstrip()  # comments
            if not pending:
                start = number
            if text.endswith("\\"):
                pending += text[:-1] + " "
                continue
            text, pending = (pending + text).strip(), ""
            if text.startswith("solr-policy "):
                found.extend((start, part.strip()) for part in re.split(r"&&|\|\s*(?=solr-policy )", text))
        else:
            found.extend((number, span) for span in re.findall(r"`(solr-policy [^`]+)`", line))
    return found


def _option(command: click.Command, token: str) -> click.Parameter | None:
    name = token.split("=", 1)[0]
    return next((p for p in command.params if isinstance(p, click.Option) and name in (*p.opts, *p.secondary_opts)), None)


def subcommand(group: click.Group, name: str) -> click.Command | None:
    """A command of ``group`` by name (the top-level group loads its commands lazily)."""
    return group.get_command(click.Context(group), name)


def resolve(command_text: str) -> tuple[list[click.Command], list[str]]:
    """The commands a README line names (alternatives included) and the option tokens it shows."""
    tokens = [t.strip("[]") for t in shlex.split(command_text)[1:]]
    i = 0
    while i < len(tokens) and tokens[i].startswith("-"):  # top-level options before the command
        option = _option(cli, tokens[i])
        assert option is not None, f"{tokens[i]} is not an option of solr-policy"
        i += 1 if option.is_flag or "=" in tokens[i] else 2
    group: click.Group = cli
    leaves: list[click.Command] = []
    while i < len(tokens):
        names = tokens[i].split("|")
        found = [subcommand(group, n) for n in names]
        missing = [n for n, command in zip(names, found) if command is None]
        assert not missing, " ".join(["solr-policy has no command", *tokens[:i], missing[0]])
        chosen = [command for command in found if command is not None]
        i += 1
        if isinstance(chosen[0], click.Group):
            group = chosen[0]
            continue
        leaves = chosen
        break
    assert leaves, f"{command_text!r} names a group, not a command"
    rest = tokens[i:]
    # "list | release ID | discard ID --reason ...": more commands of the same group.
    leaves += [more for before, after in zip(rest, rest[1:]) if before == "|" and (more := subcommand(group, after)) is not None]
    shown = [t for t in rest if re.fullmatch(r"--[a-z][a-z0-9-]*(=.*)?|-[a-z]", t)]
    return leaves, shown


COMMANDS = readme_commands()


def test_the_readme_shows_commands():
    # The parser must keep finding them: the usage block alone names well over thirty.
    assert len(COMMANDS) > 40
    assert any(text.startswith("solr-policy decide --batch") for _, text in COMMANDS)


@pytest.mark.parametrize(("line", "text"), COMMANDS, ids=[f"README:{n}" for n, _ in COMMANDS])
def test_each_readme_command_and_option_exists(line, text):
    leaves, shown = resolve(text)
    for token in shown:
        accepted = any(_option(leaf, token) is not None for leaf in leaves) or _option(cli, token) is not None
        names = ", ".join(leaf.name or "" for leaf in leaves)
        assert accepted, f"README line {line}: {token} is not an option of {names} ({text})"


def test_the_check_catches_a_renamed_option_and_command():
    with pytest.raises(AssertionError, match="no command"):
        resolve("solr-policy instruction aprove X")
    leaves, shown = resolve("solr-policy quarantine list | release ID --reasons x")
    assert [leaf.name for leaf in leaves] == ["list", "release"] and shown == ["--reasons"]
    assert not any(_option(leaf, "--reasons") for leaf in leaves)
