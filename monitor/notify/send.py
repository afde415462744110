"""Delivering a message to notification URLs through apprise, one URL at a time.

Each URL gets its own ``Apprise`` object so its result is known on its own;
URLs carry secrets (tokens, passwords) and are only ever shown redacted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import apprise

from monitor.errors import ConfigError
from monitor.notify.message import Message


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one message to one URL."""

    url: str  # redacted, safe to show
    ok: bool
    error: str | None
    duration_ms: int


class Sender(Protocol):
    def send(self, url: str, message: Message) -> Delivery: ...


class _CaptureErrors(logging.Handler):
    """Collects apprise's own warnings for one send, to say why it failed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self._thread:  # other threads may be sending at the same time
            self.messages.append(record.getMessage())


class AppriseSender:
    def send(self, url: str, message: Message) -> Delivery:
        shown = redact_url(url)
        started = time.monotonic()
        app = apprise.Apprise()
        if not app.add(url):
            return Delivery(shown, False, "not a notification URL apprise understands", 0)
        capture = _CaptureErrors()
        logger = logging.getLogger("apprise")
        logger.addHandler(capture)
        try:
            ok = bool(
                app.notify(
                    title=message.title,
                    body=message.body,
                    body_format=apprise.NotifyFormat.MARKDOWN,
                )
            )
        except Exception as exc:  # apprise plugins may raise anything; one URL must not stop others
            ok = False
            capture.messages.append(f"{type(exc).__name__}: {exc}")
        finally:
            logger.removeHandler(capture)
        elapsed = int((time.monotonic() - started) * 1000)
        error = None
        if not ok:
            error = _scrub(capture.messages[-1], url) if capture.messages else "delivery failed"
        return Delivery(shown, ok, error, elapsed)


def redact_url(url: str) -> str:
    """The URL as apprise shows it with privacy on: secrets replaced, or just the scheme."""
    try:
        servers = apprise.Apprise.instantiate(url)
    except Exception:
        servers = None
    if servers:
        private: str = servers.url(privacy=True)  # type: ignore[no-untyped-call]
        return private.split("?")[0]
    return url.split("://", 1)[0] + "://…"


def check_urls(urls: Sequence[str], key: str) -> None:
    """Fail with the key (and the redacted URL) of any URL apprise cannot use."""
    for i, url in enumerate(urls):
        if apprise.Apprise.instantiate(url) is None:
            raise ConfigError(
                f"{key}[{i}]: {redact_url(url)!r} is not a notification URL apprise understands"
            )


def _scrub(text: str, url: str) -> str:
    """Remove anything of the URL's secret parts that an error text may repeat."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    for secret in (parts.password, *parts.path.split("/")):
        if secret and len(secret) >= 6 and secret in text:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:300]
