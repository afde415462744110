"""Shell-style globs (``*``, ``?``, ``[abc]``, ``[!abc]``) on model IDs and target
names, case-sensitive, matched against the whole name: what ``include``/``exclude``,
routes and ``changes --model`` select with. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import translate
from functools import lru_cache


def glob_problem(pattern: object) -> str | None:
    """Why ``pattern`` is not a usable glob, or None."""
    if not isinstance(pattern, str) or not pattern:
        return 'is not a glob (a non-empty string such as "meta-llama/*")'
    depth_open = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "[" and not depth_open:
            depth_open = True
            i += 2 if pattern[i + 1 : i + 2] in ("!", "]") else 1  # "[!" and "[]" start a set
            continue
        if c == "]" and depth_open:
            depth_open = False
        i += 1
    if depth_open:
        return "has a '[' with no closing ']'"
    return None


@lru_cache(maxsize=1024)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns))


def matches(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``name`` matches any of ``patterns`` (none: False)."""
    return bool(patterns) and _compiled(patterns).match(name) is not None


@dataclass(frozen=True)
class ModelFilter:
    """A target's ``include`` and ``exclude``: the models it compares and alerts on.
    ``include`` empty means every model; ``exclude`` wins over ``include``."""

    include: tuple[str, ...] = field(default=())
    exclude: tuple[str, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def passes(self, model_id: str) -> bool:
        return (not self.include or matches(model_id, self.include)) and not matches(
            model_id, self.exclude
        )

    def select(self, model_ids: Iterable[str]) -> frozenset[str]:
        return frozenset(i for i in model_ids if self.passes(i))
