"""What every command module shares: exit codes, JSON output, reading input, ``--now``, the
per-run ``Context`` (the store, and the keeper of its verifiable log) and the options several
commands take. Signing and submitting governance statements is in ``acting.py``.

Exit status everywhere: 0 success/valid/allow, 1 refused/invalid/reject, 2 usage error or
unreadable input, 3 quarantine (``decide``) or waiting (``alerts route``). Machine output is
JSON on stdout; logs go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn, ParamSpec, TypeVar

import click

from solr_policy.duis.xsd import DuisSchema
from solr_policy.errors import GovernanceRefused
from solr_policy.policy import PolicySet
from solr_policy.settings import Settings
from solr_policy.store import Store, open_store
from solr_policy.transparency.checkpoint import read_private_key
from solr_policy.transparency.log import LogKeeper
from solr_policy.transparency.merkle import LogRefused
from solr_policy.yamlio import DataFileError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_QUARANTINE = 0, 1, 2, 3

P = ParamSpec("P")
T = TypeVar("T")


def emit(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def refuse(data: object) -> NoReturn:
    """Print a refusal's JSON and exit 1."""
    emit(data)
    sys.exit(EXIT_REFUSED)


def read_input(source: str, *, limit: int | None = None) -> bytes:
    """The bytes of file ``source``, or of stdin for ``-``; unreadable is a usage error.

    ``limit``: more bytes than this is a usage error too, found by reading one byte past it
    (never the whole of a huge file, a device or an endless stream)."""
    size = -1 if limit is None else limit + 1
    if source == "-":
        data = sys.stdin.buffer.read(size)
    else:
        try:
            with open(source, "rb") as handle:
                data = handle.read(size)
        except OSError as exc:
            raise click.UsageError(f"cannot read {source}: {exc.strerror}") from None
    if limit is not None and len(data) > limit:
        raise click.UsageError(f"cannot read {'stdin' if source == '-' else source}: larger than {limit:,} bytes")
    return data


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 date-time with its zone, in UTC; anything else is a usage error naming ``option``."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 date-time", param_hint=option) from None
    if when.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-11-22T10:00:00Z", param_hint=option)
    return when.astimezone(timezone.utc)


def parse_now(text: str | None, option: str = "--now") -> datetime | None:
    return None if text is None else parse_time(text, option)


class Context:
    """What every command gets: the one ``Settings`` of this run, and the store it names."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: Store | None = None
        self._keeper: tuple[LogKeeper | None] | None = None  # (keeper,) once looked for

    @property
    def store(self) -> Store:
        # Opened on first use: commands that need no store (sign, gbcs inspect) never make one.
        if self._store is None:
            self._store = open_store(self.settings.db, synchronous=self.settings.synchronous)
        return self._store

    def close(self) -> None:
        """Close the store if the command opened it (in-process runs, tests, leave nothing open)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def log_keeper(self) -> LogKeeper | None:
        """The keeper of the store's verifiable log, signing with the log key ``init`` made;
        None for a store that was never ``init``-ed (no key file and no checkpoint)."""
        if self._keeper is None:
            self._keeper = (self._open_log_keeper(),)
        return self._keeper[0]

    def _open_log_keeper(self) -> LogKeeper | None:
        path = self.settings.log_key
        if not path.exists():
            # Fail closed: without its key a store that has checkpoints would run unguarded.
            if self.store.latest_checkpoint() is not None:
                raise click.UsageError(f"the store has signed checkpoints but there is no log key at {path} (--log-key, SOLR_POLICY_LOG_KEY)")
            return None
        try:
            key = read_private_key(path)
        except LogRefused as exc:
            raise click.UsageError(exc.message) from None
        return LogKeeper(self.store, key.public_key(), key=key, checkpoint_file=self.settings.checkpoint)


def public_key_file(log_key: Path) -> Path:
    """Where ``init`` writes the log's public key (what auditors need): beside the private one."""
    name = log_key.name.removesuffix(".pem")
    return log_key.with_name(f"{name}.pub.pem")


def from_settings(name: str) -> Callable[[click.Context, click.Parameter, object], object]:
    """Default of a command's own option: the value in the group's ``Settings``."""

    def fill(ctx: click.Context, _param: click.Parameter, value: object) -> object:
        if value is not None:
            return value
        context = ctx.find_object(Context)  # None only when a command is invoked without the group
        return getattr(context.settings if context is not None else Settings.load(), name)

    return fill


def load_policies(policy_dir: str | Path) -> PolicySet:
    try:
        return PolicySet.load_dir(policy_dir)
    except DataFileError as exc:
        raise click.UsageError(str(exc)) from None


def load_schema(schema_dir: str | Path | None) -> DuisSchema | None:
    if not schema_dir:
        return None
    try:
        return DuisSchema.from_folder(schema_dir)
    except Exception as exc:  # noqa: BLE001 - any schema loading problem is a usage error here
        raise click.UsageError(f"cannot load the DUIS schema from {schema_dir}: {exc}") from None


def governance_call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(...)``; a governance refusal is printed as JSON and ends the command with exit 1."""
    try:
        return fn(*args, **kwargs)
    except GovernanceRefused as refusal:
        refuse({"done": False, "reason": refusal.as_dict()})


policy_option = click.option(
    "--policies", "policy_dir", type=click.Path(file_okay=False), callback=from_settings("policies"),
    help="Folder of policy YAML files (default: the top-level --policies, SOLR_POLICY_POLICIES or the shipped ones).",
)
schema_option = click.option(
    "--schema-dir", callback=from_settings("duis_xsd"), help="Folder with the DUIS XSD; validates against it when given."
)
now_option = click.option("--now", help="When the step happens (ISO 8601 with zone); for tests and demos, recorded as a clock override. Default: the service clock.")
reason_option = click.option("--reason", required=True, help="Why (kept in the audit trail).")


def read_text(path: str, option: str) -> str:
    """A UTF-8 text file a statement carries (a public key, a certificate, an ADT file)."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from None
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path} is not UTF-8 text", param_hint=option) from None
