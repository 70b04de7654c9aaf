"""One frozen ``Settings``: read once from the environment, flags override, validated.

This is the only module that reads ``SOLR_POLICY_*`` variables. The command line builds one
``Settings`` at start-up and passes it down; the library takes plain values as arguments.

=========================  ================  ==============================================
variable                   flag              meaning (default)
=========================  ================  ==============================================
SOLR_POLICY_DB             --db              SQLite file or postgresql:// URL (``./solr-policy.db``)
SOLR_POLICY_POLICIES       --policies        folder of policy YAML files (the shipped ones)
SOLR_POLICY_DUIS_XSD       --schema-dir      DUIS XSD folder; validate against it (off)
SOLR_POLICY_LOG_FORMAT     --log-format      ``json`` or ``console`` (console at a terminal)
SOLR_POLICY_LOG_LEVEL      --log-level       DEBUG, INFO, WARNING, ERROR, CRITICAL (INFO)
SOLR_POLICY_SYNCHRONOUS    --synchronous     SQLite ``FULL`` or ``NORMAL`` (FULL)
SOLR_POLICY_LOG_KEY        --log-key         the log's private key, made by ``init``
                                             (``<db>.log-key.pem`` beside a SQLite db)
SOLR_POLICY_CHECKPOINT     --checkpoint      the newest signed checkpoint, outside the db
                                             (``<db>.checkpoint`` beside a SQLite db)
SOLR_POLICY_API_TOKEN      (none)            bearer token of ``serve``'s decision endpoints (none)
=========================  ================  ==============================================

A database named by URL (``scheme://...``) has no folder to sit beside: its log key and
checkpoint default to ``./solr-policy.log-key.pem`` and ``./solr-policy.checkpoint``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from solr_policy.policy import default_policy_dir
from solr_policy.store import check_postgres_url, is_postgres_url

LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SYNCHRONOUS_MODES = ("FULL", "NORMAL")


class SettingsError(ValueError):
    """A setting has a bad value; the message is one line naming the variable or flag."""


def _text(value: object) -> str:
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must not be empty")
    return text


def _db(value: object) -> Path | str:
    text = _text(value)
    if is_postgres_url(text):
        return check_postgres_url(text.strip())  # a URL stays text: Path("postgresql://h/db") is not it
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a database file")
    return path


def _file(what: str) -> Callable[[object], Path]:
    def check(value: object) -> Path:
        path = Path(_text(value))
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not {what}")
        return path

    return check


def _folder(value: object) -> Path:
    path = Path(_text(value))
    if not path.is_dir():
        raise ValueError(f"{path}: no such folder")
    return path


def _optional_folder(value: object) -> Path | None:
    return None if value is None else _folder(value)


def _choice(choices: tuple[str, ...], *, upper: bool) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _text(value).strip()
        text = text.upper() if upper else text.lower()
        if text not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return text

    return check


def _token(value: object) -> str:
    text = _text(value).strip()
    if len(text) < 16 or any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("an API token is at least 16 printable characters without spaces")
    return text


def _optional(check: Callable[[object], str]) -> Callable[[object], str | None]:
    return lambda value: None if value is None else check(value)


# field name -> (environment variable, flag, check). The check normalises or raises ValueError.
_SOURCES: dict[str, tuple[str, str, Callable[[object], Any]]] = {
    "db": ("SOLR_POLICY_DB", "--db", _db),
    "policies": ("SOLR_POLICY_POLICIES", "--policies", _folder),
    "duis_xsd": ("SOLR_POLICY_DUIS_XSD", "--schema-dir", _optional_folder),
    "log_format": ("SOLR_POLICY_LOG_FORMAT", "--log-format", _optional(_choice(LOG_FORMATS, upper=False))),
    "log_level": ("SOLR_POLICY_LOG_LEVEL", "--log-level", _choice(LOG_LEVELS, upper=True)),
    "synchronous": ("SOLR_POLICY_SYNCHRONOUS", "--synchronous", _choice(SYNCHRONOUS_MODES, upper=True)),
    "log_key": ("SOLR_POLICY_LOG_KEY", "--log-key", _file("a key file")),
    "checkpoint": ("SOLR_POLICY_CHECKPOINT", "--checkpoint", _file("a checkpoint file")),
    # No flag: a token on the command line would show in the process list.
    "api_token": ("SOLR_POLICY_API_TOKEN", "SOLR_POLICY_API_TOKEN", _optional(_token)),
}

# Default of the files kept beside the database: filled in from ``db`` when not given.
BESIDE_DB = Path("")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


def beside_db(db: Path | str, suffix: str) -> Path:
    """``<db><suffix>`` in the database's folder; ``./solr-policy<suffix>`` for a database named
    by URL, which has no folder of its own."""
    if _URL.match(str(db)):
        return Path(f"solr-policy{suffix}")
    path = Path(db)
    return path.with_name(path.name + suffix)


_BESIDE_DB_SUFFIX = {"log_key": ".log-key.pem", "checkpoint": ".checkpoint"}


@dataclass(frozen=True)
class Settings:
    db: Path | str = Path("solr-policy.db")  # an SQLite file, or a postgresql:// URL
    policies: Path = field(default_factory=default_policy_dir)
    duis_xsd: Path | None = None
    log_format: str | None = None  # None: console at a terminal, JSON otherwise
    log_level: str = "INFO"
    synchronous: str = "FULL"
    log_key: Path = BESIDE_DB  # the log's private key (``init`` makes it)
    checkpoint: Path = BESIDE_DB  # the newest signed checkpoint, kept outside the database
    api_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Built by hand or by load(): either way a value that passed is in its normal form.
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _BESIDE_DB_SUFFIX and value == BESIDE_DB:
                value = beside_db(self.db, _BESIDE_DB_SUFFIX[item.name])
            try:
                object.__setattr__(self, item.name, _SOURCES[item.name][2](value))
            except ValueError as exc:
                raise SettingsError(f"{item.name}: {exc}") from None

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **flags: object) -> "Settings":
        """Settings from ``environ`` (default ``os.environ``), each overridden by a flag given
        as a keyword (``db=``, ``policies=``, ...; ``None`` means the flag was not given).
        An empty variable counts as unset. Raises ``SettingsError`` naming the culprit."""
        unknown = set(flags) - set(_SOURCES)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (variable, flag, check) in _SOURCES.items():
            if flags.get(name) is not None:
                raw, source = flags[name], flag
            elif environ.get(variable):
                raw, source = environ[variable], variable
            else:
                continue
            try:
                values[name] = check(raw)
            except ValueError as exc:
                raise SettingsError(f"{source}: {exc}") from None
        return cls(**values)
