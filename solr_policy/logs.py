"""structlog set-up: JSON lines in production, readable lines at a terminal.

One event per decision with its reasons. Never pass private keys or whole certificates to
a logger: ``_redact`` drops values that look like them, as a second line of defence.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

ENV_LOG_FORMAT = "SOLR_POLICY_LOG_FORMAT"  # "json" (default when not a TTY) or "console"
ENV_LOG_LEVEL = "SOLR_POLICY_LOG_LEVEL"

_SECRET_MARKERS = ("PRIVATE KEY", "BEGIN CERTIFICATE")


def _redact(_logger, _name, event_dict):
    for key, value in list(event_dict.items()):
        if isinstance(value, (bytes, bytearray)):
            event_dict[key] = f"<{len(value)} bytes>"
        elif isinstance(value, str) and any(marker in value for marker in _SECRET_MARKERS):
            event_dict[key] = "<redacted>"
    return event_dict


def configure(fmt: str | None = None, level: str | None = None, stream=None) -> None:
    stream = stream or sys.stderr
    fmt = fmt or os.environ.get(ENV_LOG_FORMAT) or ("console" if stream.isatty() else "json")
    level_name = (level or os.environ.get(ENV_LOG_LEVEL) or "INFO").upper()
    renderer = structlog.dev.ConsoleRenderer(colors=False) if fmt == "console" else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "solr_policy"):
    return structlog.get_logger(name)
