"""Mutes (pure): which alerts a mute holds back, and what becomes of them when it ends.

While a target is muted its polls, snapshots and events are recorded as usual; its
alerts are stored as ``muted`` deliveries instead of being sent. When no mute covers the
target any more, what was held back for each URL is released:

- every change: in one summary per URL (like a digest);
- down and recovered: a pair that happened inside the mute is not sent; if the target
  is down at that moment, its latest "down" alert is sent (once); if it went down before
  the mute (that alert was sent) and is back, its latest "recovered" is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

ALL = "*"  # a mute of every target


@dataclass(frozen=True)
class Mute:
    id: int
    target: str  # a target's name, or ALL
    starts_at: datetime
    until: datetime
    reason: str | None = None
    ended_at: datetime | None = None  # unmuted by hand

    @property
    def ends_at(self) -> datetime:
        """When it stops holding alerts back: its end, or when it was unmuted."""
        return min(self.until, self.ended_at) if self.ended_at is not None else self.until

    def covers(self, target: str, at: datetime) -> bool:
        return self.target in (ALL, target) and self.starts_at <= at < self.ends_at


def muted(mutes: Iterable[Mute], target: str, at: datetime) -> bool:
    """Whether any of ``mutes`` holds back ``target``'s alerts at ``at``."""
    return any(m.covers(target, at) for m in mutes)


@dataclass(frozen=True)
class Held:
    """A muted delivery as the release needs it."""

    id: int
    target: str
    url_hash: str
    kind: str  # "change", "down" or "recovered"


@dataclass(frozen=True)
class Release:
    summarise: tuple[Held, ...]  # changes: one summary per URL
    resend: tuple[Held, ...]  # the one down or recovered that says what is true now
    suppress: tuple[Held, ...]  # down/recovered the mute swallowed: never sent


def release(held: Sequence[Held], still_muted: set[str], down_now: set[str]) -> Release:
    """What becomes of the muted deliveries ``held`` once their targets' mutes ended;
    those of targets in ``still_muted`` (another mute covers them now) stay held.

    For down and recovered, each URL gets the one alert that brings what it was last
    told to what is true now: it was told "up" (the first alert held back is a "down")
    and the target is down: the latest "down"; it was told "down" (the first held back is
    a "recovered") and the target is up: the latest "recovered"; otherwise nothing."""
    free = [h for h in held if h.target not in still_muted]
    changes = tuple(h for h in free if h.kind == "change")
    by_url: dict[tuple[str, str], list[Held]] = {}
    for h in sorted(free, key=lambda h: h.id):
        if h.kind != "change":
            by_url.setdefault((h.target, h.url_hash), []).append(h)
    resend = []
    for (target, _), events in by_url.items():
        told_down = events[0].kind == "recovered"  # it was sent "down" before the mute
        is_down = target in down_now
        if told_down != is_down:
            wanted = "down" if is_down else "recovered"
            latest = [h for h in events if h.kind == wanted]
            if latest:
                resend.append(latest[-1])
    resent = tuple(sorted(resend, key=lambda h: h.id))
    sent = {h.id for h in changes} | {h.id for h in resent}
    return Release(changes, resent, tuple(h for h in free if h.id not in sent))
