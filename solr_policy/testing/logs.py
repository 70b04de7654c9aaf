"""Capture solr_policy's structured log events in tests, like ``structlog.testing.capture_logs``.

structlog's own helper swaps structlog's global configuration, which solr_policy's loggers do
not use (they go through standard ``logging``); this one listens on the ``solr_policy``
logger instead, and sees each event as the library emitted it (already redacted).

    with capture_logs() as events:
        engine.decide(raw)
    assert events[0]["event"] == "decision"
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from solr_policy.logs import LOGGER_NAME


class _Collect(logging.Handler):
    def __init__(self, events: list[dict[str, Any]]) -> None:
        super().__init__(logging.DEBUG)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        # Events from solr_policy.logs carry their dict as the message; anything else is text.
        if isinstance(record.msg, dict):
            self.events.append(dict(record.msg))
        else:
            self.events.append({"event": record.getMessage(), "level": record.levelname.lower()})


@contextmanager
def capture_logs(level: str = "DEBUG") -> Iterator[list[dict[str, Any]]]:
    """Collect every event at ``level`` or above, as dicts, while the block runs."""
    logger = logging.getLogger(LOGGER_NAME)
    events: list[dict[str, Any]] = []
    handler = _Collect(events)
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield events
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
