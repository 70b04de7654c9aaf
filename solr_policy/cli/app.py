"""The ``solr-policy`` group: top-level options into one ``Settings``, logging configured
once, each command loaded by name when it runs, and ``main()`` (the console script)."""

from __future__ import annotations

import importlib
import sys

import click

from solr_policy import __version__, logs
from solr_policy.cli.common import EXIT_USAGE, Context
from solr_policy.errors import StoreUnavailable
from solr_policy.settings import Settings, SettingsError


class StoreFault(click.ClickException):
    exit_code = EXIT_USAGE


# Command -> (module of solr_policy.cli, attribute). A module is imported only when its command
# runs: importing them all (engine, signxml, governance, spec report...) at start-up doubled
# the CPU time of the light commands (gbcs inspect 0.40 -> 0.91 s, certs list 0.47 -> 1.00 s;
# scripts/bench_cli_startup.py). Only --help, showing every command's summary, loads them all.
COMMANDS: dict[str, tuple[str, str]] = {
    "adt": ("adt", "adt"),
    "alerts": ("alerts", "alerts"),
    "audit": ("audit", "audit"),
    "certs": ("certs", "certs"),
    "decide": ("decide", "decide"),
    "demo": ("demo", "demo"),
    "gbcs": ("gbcs", "gbcs"),
    "init": ("init", "init"),
    "instruction": ("instruction", "instruction"),
    "log": ("log", "log"),
    "officer": ("officer", "officer"),
    "quarantine": ("quarantine", "quarantine"),
    "rules": ("rules", "rules_command"),
    "serve": ("serve", "serve"),
    "sign": ("decide", "sign"),
    "spec": ("spec", "spec"),
    "srp": ("srp", "srp"),
    "statement": ("statement", "statement"),
    "status": ("status", "status"),
    "verify": ("decide", "verify"),
    "world": ("world", "world"),
}


class _Commands(click.Group):
    """Loads each command's module on first use, and ends any command that meets a broken
    store with one line and exit 2, not a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"solr_policy.cli.{module}"), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"solr_policy.cli.{module}.{attribute} is not a command")
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except StoreUnavailable as fault:
            raise StoreFault(fault.message) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", type=click.Path(dir_okay=False), metavar="FILE|URL", help="SQLite database file or postgresql:// URL (default: SOLR_POLICY_DB or ./solr-policy.db).")
@click.option("--policies", "policy_dir", type=click.Path(file_okay=False), help="Folder of policy YAML files (default: SOLR_POLICY_POLICIES or the shipped policies).")
@click.option("--schema-dir", help="Folder with the DUIS XSD; validates against it when given (default: SOLR_POLICY_DUIS_XSD).")
@click.option("--log-format", metavar="json|console", help="Log format on stderr (default: SOLR_POLICY_LOG_FORMAT, else console at a terminal, JSON otherwise).")
@click.option("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: SOLR_POLICY_LOG_LEVEL or INFO).")
@click.option("--synchronous", metavar="FULL|NORMAL", help="SQLite durability (default: SOLR_POLICY_SYNCHRONOUS or FULL; see README).")
@click.option("--log-key", type=click.Path(dir_okay=False), help="The log's private key, made by init (default: SOLR_POLICY_LOG_KEY or <db>.log-key.pem).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="The newest signed checkpoint, kept outside the database (default: SOLR_POLICY_CHECKPOINT or <db>.checkpoint).")
@click.version_option(__version__, prog_name="solr-policy")
@click.pass_context
def cli(
    ctx: click.Context, db: str | None, policy_dir: str | None, schema_dir: str | None, log_format: str | None, log_level: str | None,
    synchronous: str | None, log_key: str | None, checkpoint: str | None,
) -> None:
    """Policy engine for the SoLR Contingency User Role (SEC modification MP134B)."""
    try:
        settings = Settings.load(
            db=db, policies=policy_dir, duis_xsd=schema_dir, log_format=log_format, log_level=log_level, synchronous=synchronous,
            log_key=log_key, checkpoint=checkpoint,
        )
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    logs.configure(settings.log_format, settings.log_level)
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_USAGE)
