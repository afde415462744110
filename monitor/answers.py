"""What a target answered last, kept by digests only, so the same answer again is
recognised without reading it: by its validators (a ``304 Not Modified``) or by the
digest of its bytes. Kept in memory by :class:`monitor.fetch.ConditionalCache` and in
the database (``known_answers``), so a new process recognises it too. Pure values."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from monitor.config import Target


@dataclass(frozen=True)
class KnownAnswer:
    """The last one-page answer of a target, by digests only (nothing the size of its
    list): what identifies it, and what its list was."""

    asked: bytes  # what was asked (URL, kind and shape, watched fields, model filter): another
    # question, another answer. Neither the key nor the headers: validators and bytes
    # identify the answer
    etag: bytes | None  # as sent (header bytes go back as they came, whatever they hold)
    last_modified: bytes | None
    body_digest: bytes  # the answer's bytes: the same bytes again need no parsing
    list_digest: str
    count: int
    watched: str
    warnings: tuple[str, ...]
    private: bool = False  # the validators echo the key: kept in memory, never stored


def asked_of(target: Target) -> bytes:
    """What identifies the question a target asks (see :attr:`KnownAnswer.asked`)."""
    question: tuple[object, ...] = (target.models_url, target.kind, tuple(target.watch_fields))
    if target.model_filter:  # (kept out otherwise: answers known before filters stay known)
        question += (target.include, target.exclude)
    if target.spelled is not None:  # a shape of the target's own (kind json, api_version)
        question += (target.spelled,)
    return hashlib.blake2b(repr(question).encode(), digest_size=16).digest()
