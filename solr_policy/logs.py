"""Structured logs: the library emits, the application decides where they go.

The library never configures global logging (structlog's and the standard library's rule
for libraries). Its structlog loggers are bound to standard ``logging`` loggers under
``solr_policy`` with a ``NullHandler``: embedded in another program, solr-policy prints
nothing unless that program configures ``logging`` (or calls ``configure``). Events reach
``logging`` as dicts, redacted and time-stamped, and ``configure`` renders them.

``configure`` is the one place the command line (or a service) turns them into JSON lines or
console lines on stderr. One event per decision with its reasons. Never pass private keys or
whole certificates to a logger: ``_redact`` drops values that look like them, as a second line
of defence, before an event leaves the library.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

LOGGER_NAME = "solr_policy"
FORMATS = ("json", "console")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_SECRET_MARKERS = ("PRIVATE KEY", "BEGIN CERTIFICATE")

logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return "<redacted>" if any(marker in value for marker in _SECRET_MARKERS) else value
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub(item) for item in value]
    return value


def _redact(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Nested too: a reason or a request summary is a list or a dict of text.
    for key, value in list(event_dict.items()):
        event_dict[key] = _scrub(value)
    return event_dict


_LIBRARY_CHAIN: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _redact,
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
]


_METHOD_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}


class _BoundLogger(structlog.stdlib.BoundLogger):
    """Drops an event nobody listens to before building it: one decision, one event, and an
    unconfigured library should cost next to nothing."""

    def _proxy_to_logger(self, method_name: str, event: str | None = None, *event_args: str, **event_kw: Any) -> Any:
        if not self._logger.isEnabledFor(_METHOD_LEVELS.get(method_name, logging.CRITICAL)):
            return None
        return super()._proxy_to_logger(method_name, event, *event_args, **event_kw)


def get_logger(name: str = LOGGER_NAME) -> Any:
    """A structlog logger that goes through ``logging.getLogger(name)``, whatever the
    application did to structlog's global configuration."""
    if name != LOGGER_NAME and not name.startswith(LOGGER_NAME + "."):
        raise ValueError(f"solr_policy loggers live under {LOGGER_NAME!r}, not {name!r}")
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_LIBRARY_CHAIN,
        wrapper_class=_BoundLogger,
        cache_logger_on_first_use=True,  # the chain never changes; levels are read per event
    )


class _CurrentStderr(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when an event comes (test runners swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]  # read-only on purpose: always the current sys.stderr
        return sys.stderr


_installed: logging.Handler | None = None


def configure(fmt: str | None = None, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Render solr_policy's events to ``stream`` (default: the current stderr): ``json``
    lines, or ``console`` lines; ``fmt=None`` picks console at a terminal, JSON otherwise.
    Calling it again replaces the earlier set-up. For applications, never the library."""
    global _installed
    fmt = fmt or ("console" if (stream or sys.stderr).isatty() else "json")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    if level.upper() not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    renderer = structlog.dev.ConsoleRenderer(colors=False) if fmt == "console" else structlog.processors.JSONRenderer()
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer])
    )
    reset()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False  # rendered here; the root logger's handlers would print it twice
    _installed = handler


def reset() -> None:
    """Undo ``configure``: events go nowhere again (unless the application set up logging)."""
    global _installed
    logger = logging.getLogger(LOGGER_NAME)
    if _installed is not None:
        logger.removeHandler(_installed)
        _installed = None
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
