"""Logging: structlog for our events, with the standard library's loggers
(httpx, APScheduler, SQLAlchemy, Alembic, apprise) sent through the same output.

JSON lines when the stream is not a terminal (journald, files), a readable
console otherwise. Every line is scrubbed of the secrets the process has read
(:data:`monitor.redact.LOGGED`): at debug level httpx and httpcore log what a
provider sends (headers, reason phrases) and urllib3 the paths apprise posts to.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from monitor.redact import LOGGED, Redactor

LEVELS = ("debug", "info", "warning", "error")
# Libraries that are chatty at INFO: quiet unless we debug.
_NOISY = (
    "httpx",
    "httpcore",
    "apscheduler",
    "sqlalchemy",
    "apprise",
    "alembic",
    "aiosmtpd",
    "urllib3",
    "requests",
    "uvicorn",
)


# syslog priorities, for journald's "<N>" line prefix
_PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "info": 6, "debug": 7}


class _JournalPrefix:
    """Wraps a renderer: ``<3>{...}`` so ``journalctl -p err`` can filter."""

    def __init__(self, renderer: Any) -> None:
        self._renderer = renderer

    def __call__(self, logger: Any, name: str, event: Any) -> str:
        level = str(event.get("level", "info")) if isinstance(event, dict) else "info"
        return f"<{_PRIORITY.get(level, 6)}>{self._renderer(logger, name, event)}"


class _Redacting:
    """Wraps a renderer: the rendered line with every known secret masked."""

    def __init__(self, renderer: Any, secrets: Redactor) -> None:
        self._renderer = renderer
        self._secrets = secrets

    def __call__(self, logger: Any, name: str, event: Any) -> str:
        return self._secrets.mask(str(self._renderer(logger, name, event)))


def configure_logging(
    level: str = "info",
    *,
    stream: TextIO | None = None,
    json: bool | None = None,
    journal: bool = False,
) -> None:
    """``journal``: prefix each line with its syslog priority (set when ``$JOURNAL_STREAM`` is)."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    renderer = _Redacting(renderer, LOGGED)
    if journal:
        renderer = _JournalPrefix(renderer)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _identity,
            renderer,
        ],
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    numeric = getattr(logging, level.upper())
    root.setLevel(numeric)
    for name in _NOISY:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
    # apprise logs the URLs it posts to, tokens and all: its messages reach only the
    # sender, which scrubs them into a delivery's error (monitor.notify.send).
    apprise_logger = logging.getLogger("apprise")
    apprise_logger.propagate = False
    if not apprise_logger.handlers:
        apprise_logger.addHandler(logging.NullHandler())


def _identity(_logger: Any, _name: str, event: Any) -> Any:
    return event
