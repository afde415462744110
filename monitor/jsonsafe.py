"""Reading a provider's JSON into values that every part of model-monitor can
carry: store on SQLite and PostgreSQL alike, compare, digest and print as JSON.
Pure: bytes in, values (or a short reason) out.

What JSON allows but the rest cannot carry, and what becomes of it:

- nesting deeper than Python's parser goes: ``JSON nested too deep``; a model
  object nested deeper than :data:`MAX_DEPTH` levels is refused the same way;
- ``NaN``, ``Infinity``, ``-Infinity``, numbers out of a double's range
  (``1e999``) and integers of more than :data:`MAX_INT_DIGITS` digits: kept as
  the text the provider wrote (a JSON string), with a warning: JSON output and
  PostgreSQL's jsonb have no such numbers;
- ``-0.0`` becomes ``0.0``, and a float of 1e16 or more the integer it is
  written as: PostgreSQL's jsonb gives them back that way, so both databases
  hold the same value;
- a lone surrogate (``"\\ud800"``) is not text: :func:`invalid_string` says
  where it is, and the poll fails with that;
- invalid UTF-8 is a failed poll; duplicate keys keep the last value, as
  JavaScript does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

MAX_DEPTH = 32  # levels of objects and lists within one model object
MAX_INT_DIGITS = 4300  # Python's own limit for turning digits into an int and back
_BIG_FLOAT = 1e16  # from here on Python writes floats with an exponent (1e+16)


class BadJSON(ValueError):
    """The body is not JSON we can read; ``reason`` says why (None: not JSON at all)."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason or "not JSON")
        self.reason = reason


def loads(body: bytes | str) -> tuple[Any, tuple[str, ...]]:
    """The document, and warnings about values kept in another form."""
    kept: list[str] = []
    try:
        try:
            document = json.loads(body, parse_constant=_keep(kept), parse_float=_float(kept))
        except ValueError as exc:
            if isinstance(exc, UnicodeDecodeError) or "digits" not in str(exc):
                raise
            # an integer too long for Python's int(): again, reading integers one by one
            kept.clear()
            document = json.loads(
                body, parse_constant=_keep(kept), parse_float=_float(kept), parse_int=_int(kept)
            )
    except RecursionError:
        raise BadJSON("JSON nested too deep") from None
    except UnicodeDecodeError as exc:
        raise BadJSON(f"response is not UTF-8 text (invalid byte at offset {exc.start})") from None
    except ValueError:
        raise BadJSON(None) from None
    warnings: tuple[str, ...] = ()
    if kept:
        shown = ", ".join(sorted(set(kept))[:3]) + (", ..." if len(set(kept)) > 3 else "")
        warnings = (f"{len(kept)} numbers JSON cannot carry exactly kept as strings: {shown}",)
    return document, warnings


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether objects and lists nest more than ``limit`` levels in ``value``."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def invalid_string(value: Any, path: str = "") -> str | None:
    """The path (``.description``, ``.tags[2]``, ``.{key}``) of the first string in
    ``value`` that is not valid Unicode (a lone surrogate), or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not is_text(item):
                return where
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, dict):
            for key, inner in reversed(list(item.items())):
                if not is_text(key):
                    return f"{where} (an object key)"
                stack.append((inner, f"{where}.{key}"))
    return None


def map_strings(value: Any, convert: Callable[[str], str]) -> Any:
    """A JSON value with ``convert`` applied to every string in it, object keys too."""
    if isinstance(value, str):
        return convert(value)
    if isinstance(value, list):
        return [map_strings(v, convert) for v in value]
    if isinstance(value, dict):
        return {convert(k): map_strings(v, convert) for k, v in value.items()}
    return value


def is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _keep(kept: list[str]) -> Callable[[str], str]:
    def constant(text: str) -> str:
        kept.append(text)
        return text

    return constant


def _float(kept: list[str]) -> Callable[[str], float | int | str]:
    def parse(text: str) -> float | int | str:
        value = float(text)
        if not math.isfinite(value):
            kept.append(text if len(text) <= 24 else text[:21] + "...")
            return text
        if value == 0:
            return 0.0  # no negative zero in PostgreSQL
        if abs(value) >= _BIG_FLOAT:
            # what jsonb gives back for it: the integer Python's shortest form spells
            return int(Decimal(repr(value)))
        return value

    return parse


def _int(kept: list[str]) -> Callable[[str], int | str]:
    def parse(text: str) -> int | str:
        if len(text) - text.startswith("-") > MAX_INT_DIGITS:
            kept.append(f"an integer of {len(text)} digits")
            return text
        return int(text)

    return parse
