"""Delivering a message to notification URLs through apprise, one URL at a time.

Each URL gets its own ``Apprise`` object so its result is known on its own;
URLs carry secrets (tokens, passwords) and are only ever shown redacted. apprise's
own log lines can carry them too: they never reach our log output
(:func:`monitor.logs.configure_logging`), and a failure's reason is scrubbed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from monitor.config import toml_value
from monitor.errors import ConfigError
from monitor.notify.message import Message
from monitor.redact import MIN_SECRET, Redactor
from monitor.text import one_line


@dataclass(frozen=True)
class SendResult:
    """The outcome of sending one message to one URL."""

    url: str  # redacted, safe to show
    ok: bool
    error: str | None
    duration_ms: int


class Sender(Protocol):
    def send(self, url: str, message: Message) -> SendResult: ...


class AppriseSender:
    def send(self, url: str, message: Message) -> SendResult:
        shown = redact_url(url)
        started = time.monotonic()
        app = apprise.Apprise()
        if not app.add(url):
            return SendResult(shown, False, "not a notification URL apprise understands", 0)
        if "overflow=" not in url:
            # a message past a service's limit (Telegram 4096, Slack 35000 characters)
            # goes as several messages rather than being cut or refused
            for server in app:
                server.overflow_mode = apprise.OverflowMode.SPLIT
        problems: list[str] = []
        try:
            result = app.notify(
                title=message.title,
                body=message.body,
                body_format=apprise.NotifyFormat.MARKDOWN,
            )
            ok = bool(result)
            # this call's own log (apprise >= 2): why it failed, whatever other threads do
            problems = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
        except Exception as exc:  # apprise plugins may raise anything; one URL must not stop others
            ok = False
            problems = [f"{type(exc).__name__}: {exc}"]
        elapsed = int((time.monotonic() - started) * 1000)
        error = None
        if not ok:
            error = _scrub(problems[-1], url) if problems else "delivery failed"
        return SendResult(shown, ok, error, elapsed)


def redact_url(url: str) -> str:
    """The URL as apprise shows it with privacy on, without what apprise leaves in its
    path that may be a token (a webhook's ``/in/abcdEFGH12345678``, an ntfy topic):
    every path segment of :data:`MIN_SECRET` characters or more that apprise did not
    mask already, and every query, go; or just the scheme."""
    try:
        servers = apprise.Apprise.instantiate(url)
    except Exception:
        servers = None
    if servers:
        private: str = servers.url(privacy=True)  # type: ignore[no-untyped-call]
        return mask_path(private.split("?")[0])
    return url.split("://", 1)[0] + "://…"


def mask_path(shown: str) -> str:
    """``shown`` (a URL already without its query) with each path segment that could be
    a secret replaced by ``…``: long ones, unless apprise masked them (``T...2``) or
    they are an e-mail address (a recipient)."""
    scheme, sep, rest = shown.partition("://")
    if not sep:
        return shown
    host, slash, path = rest.partition("/")
    if not slash:
        return shown

    def kept(segment: str) -> str:
        if len(segment) < MIN_SECRET or "..." in segment or "****" in segment:
            return segment
        if re.fullmatch(r"[^/@%]+(@|%40)[\w.-]+\.\w+", segment):
            return segment
        return "…"

    return f"{scheme}://{host}/" + "/".join(kept(s) for s in path.split("/"))


def check_urls(urls: Sequence[str], key: str) -> None:
    """Fail with the key (and the redacted URL) of any URL apprise cannot use."""
    for i, url in enumerate(urls):
        if apprise.Apprise.instantiate(url) is None:
            raise ConfigError(
                f"{key}[{i}]: {toml_value(redact_url(url))} is not a notification URL "
                "apprise understands"
            )


def url_secrets(url: str) -> set[str]:
    """The parts of a notification URL that are secret: every part (user, password,
    host, path segment, query value, fragment) that apprise does not show in its
    privacy form of the URL (tokens, passwords, webhook IDs)."""
    try:
        parts = urlsplit(url)
        pieces = [parts.username, parts.password, parts.fragment, parts.netloc]
    except ValueError:  # not a URL we can take apart: all of it is secret
        return {url}
    pieces += re.split("[:@]", parts.netloc)  # tokens in the host part (tgram://ID:TOKEN/)
    pieces += parts.path.split("/")
    pieces += [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    # a host name (with a dot) is where the service is, not a secret
    pieces = [p for p in pieces if p and not re.fullmatch(r"[\w-]+(\.[\w-]+)+", p)]
    shown = redact_url(url)
    visible = shown + " " + unquote(shown)
    return {unquote(p) for p in pieces if p and len(p) >= 6 and unquote(p) not in visible}


def _scrub(text: str, url: str) -> str:
    """Remove anything of the URL's secret parts that an error text may repeat."""
    return one_line(Redactor(url_secrets(url))(text), 300)
