"""Keeping secrets out of everything a user can see.

A :class:`Redactor` knows some secrets (API keys, tokens of notification URLs,
database passwords) in every form they can take in text that reaches us: as
they are, URL-encoded, JSON- or Python-escaped, HTML-escaped. It replaces
them with ``***``; text that still holds one once decoded (a key spelled with
JSON escapes in a provider's error page, say) is withheld as a whole.

:data:`LOGGED` is the process's own redactor for log output: every secret the
process reads is added to it, and the log handler scrubs each rendered line
with it (httpx, httpcore and apprise log what providers and services send).
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from monitor.jsonsafe import map_strings

MASK = "***"
WITHHELD = "(withheld: it held a secret)"
MIN_SECRET = 6  # shorter strings are too likely to be ordinary words
_ESCAPES = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})")


def forms(secret: str) -> set[str]:
    """The ways ``secret`` is spelled in URLs, JSON, logs and HTML."""
    found = {secret, html.escape(secret), json.dumps(secret)[1:-1], repr(secret)[1:-1]}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        found.add(encoded)
        found.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    return {f for f in found if f}


class Redactor:
    """Replaces known secrets in text; safe to share between threads."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        with self._lock:
            self._hold(self._secrets | {s for s in secrets if len(s) >= MIN_SECRET})

    def discard(self, *secrets: str) -> None:
        """Forget secrets no longer in use (temporary credentials replaced by new ones),
        so the pattern does not grow for as long as the process runs."""
        with self._lock:
            self._hold(self._secrets - set(secrets))

    def _hold(self, fresh: frozenset[str]) -> None:
        """Hold exactly ``fresh`` (under the lock): the pattern of all their spellings,
        longest first, rebuilt only when they changed."""
        if fresh == self._secrets:
            return
        spelled = sorted({f for s in fresh for f in forms(s)}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, spelled))) if spelled else None
        self._secrets = fresh

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def mask(self, text: str) -> str:
        """``text`` with every usual spelling of a secret masked (fast: for log lines)."""
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)

    def found(self, text: str) -> bool:
        """Whether ``text`` holds a secret in one of its usual spellings."""
        pattern = self._pattern
        return pattern is not None and pattern.search(text) is not None

    def __call__(self, text: str) -> str:
        """``text`` with every secret masked; withheld whole if one is still in it
        once URL, JSON and HTML escapes are decoded."""
        pattern = self._pattern
        if pattern is None:
            return text
        text = pattern.sub(MASK, text)
        if any(s in view for view in _decoded(text) for s in self._secrets):
            return WITHHELD
        return text

    def value(self, value: Any) -> Any:
        """A JSON value with every string in it (object keys too) redacted."""
        return map_strings(value, self)


def _decoded(text: str) -> set[str]:
    """``text`` with URL, JSON and HTML escapes decoded, each and twice over."""
    decoders = (unquote, unquote_plus, _unescape, html.unescape)
    views = {text}
    for _round in range(2):
        views |= {decode(v) for v in views for decode in decoders}
    return views


def _unescape(text: str) -> str:
    return _ESCAPES.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)


# every secret this process has read: scrubbed from every log line
LOGGED = Redactor()
