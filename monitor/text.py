"""Text that came from a provider, made safe to show. Pure.

A provider's strings (model IDs, field values, error messages, headers) are
stored exactly, but a terminal, a chat message or a feed reader must not be
driven by them: a NUL, an escape sequence, a bidirectional override (U+202E)
or a line separator is shown as an escape (``\\x00``, ``\\x1b``, ``\\u202e``)
instead of being written out.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with every character that is not printable (controls, format
    characters such as bidi overrides, separators other than the space, lone
    surrogates) written as a Python-style escape. Idempotent."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def shown(text: str) -> str:
    """An identifier for a table or a message: as is when printable, else quoted
    with its unprintable characters escaped (``"bad\\x00id"``), so it cannot be
    mistaken for an ID that is printable."""
    if text.isprintable():
        return text
    return '"' + printable(text) + '"'


def one_line(text: str, limit: int = 160) -> str:
    """Whitespace runs (newlines included) as one space, unprintable characters
    escaped, at most ``limit`` characters (an ellipsis marks a cut)."""
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


_MARKUP = frozenset("\\`*_[]<>~&")


def markdown_literal(text: str) -> str:
    """``text`` (already printable) as Markdown that shows it as it is: the characters
    that start emphasis, code, links, autolinks, HTML and Slack's ``<!here>`` mentions
    are backslash-escaped, so a provider's ID never pings a channel or becomes a link."""
    if _MARKUP.isdisjoint(text):
        return text
    return "".join("\\" + c if c in _MARKUP else c for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
