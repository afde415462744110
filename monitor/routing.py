"""Who hears of what (pure): ``[[notify.routes]]`` chosen by target, event and model,
the part of a change each URL is sent, and where a removed model is still served.

``notify.urls`` and a target's ``notify_urls`` are routes of every event and model. A
URL that several matching routes share gets one message: what all of them select
together (the whole change if one of them selects all of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.diff import ModelDiff
from monitor.globs import matches

EVENTS = ("added", "removed", "changed", "down", "recovered")


@dataclass(frozen=True)
class Route:
    """One ``[[notify.routes]]`` table (or the URLs every event goes to)."""

    urls: tuple[str, ...]
    targets: tuple[str, ...] = ()  # globs on target names; empty: every target
    events: frozenset[str] = frozenset(EVENTS)
    models: tuple[str, ...] = ()  # globs on model IDs; empty: every model
    digest: float | None = None  # seconds: collected and sent once a window

    def serves(self, target: str) -> bool:
        return not self.targets or matches(target, self.targets)

    def part_of(self, diff: ModelDiff) -> ModelDiff:
        """What of ``diff`` this route sends: its events, its models."""

        def wanted(model_id: str) -> bool:
            return not self.models or matches(model_id, self.models)

        def kept(kind: str, ids: frozenset[str]) -> frozenset[str]:
            return frozenset(i for i in ids if wanted(i)) if kind in self.events else frozenset()

        changed = tuple(c for c in diff.changed if wanted(c.id)) if "changed" in self.events else ()
        return ModelDiff(kept("added", diff.added), kept("removed", diff.removed), changed)


@dataclass(frozen=True)
class Audience:
    """The routes of one target's alerts, and the other configured targets (where a
    removed model may still be served)."""

    routes: tuple[Route, ...] = ()
    others: tuple[str, ...] = ()

    @classmethod
    def of(cls, urls: Sequence[str] | Audience) -> Audience:
        """An audience of plain URLs (every event): what ``notify_urls`` meant."""
        if isinstance(urls, Audience):
            return urls
        return cls((Route(tuple(dict.fromkeys(urls))),) if urls else ())

    @property
    def urls(self) -> tuple[str, ...]:
        """Every URL any of the routes may send to, once each."""
        return tuple(dict.fromkeys(u for r in self.routes for u in r.urls))

    def event_urls(self, kind: str) -> tuple[str, ...]:
        """The URLs a ``down`` or ``recovered`` alert goes to (at once or in a digest)."""
        return tuple(u for part in self.event_parts(kind) for u in part.urls)

    def event_parts(self, kind: str) -> list[Part]:
        """Where a ``down`` or ``recovered`` alert goes: at once, or into digests."""
        windows: dict[str, float | None] = {}
        for route in self.routes:
            if kind in route.events:
                for url in route.urls:
                    mine = route.digest
                    windows[url] = _sooner_of(windows[url], mine) if url in windows else mine
        return _grouped({url: (None, window) for url, window in windows.items()})

    def change_parts(self, diff: ModelDiff) -> list[Part]:
        """Each distinct part of ``diff`` to send, with the URLs it goes to (in the
        routes' order) and its digest window (None: at once); a URL is in one part only,
        and parts are never empty. A URL that one matching route sends to at once gets
        everything its routes select at once, digests included."""
        by_url: dict[str, tuple[ModelDiff, float | None]] = {}
        for route in self.routes:
            part = route.part_of(diff)
            if not part:
                continue
            for url in route.urls:
                if url in by_url:
                    before, window = by_url[url]
                    by_url[url] = (_union(diff, before, part), _sooner_of(window, route.digest))
                else:
                    by_url[url] = (part, route.digest)
        return _grouped(by_url)


@dataclass(frozen=True)
class Part:
    """What some URLs are sent of an alert, and when: ``digest`` seconds a window (its
    end is when the digest goes), or None: at once."""

    urls: tuple[str, ...]
    diff: ModelDiff | None  # a change's part; None for down and recovered
    digest: float | None = None


def _sooner_of(a: float | None, b: float | None) -> float | None:
    """At once wins over a digest; the shorter of two digests."""
    if a is None or b is None:
        return None
    return min(a, b)


def _grouped(by_url: Mapping[str, tuple[ModelDiff | None, float | None]]) -> list[Part]:
    grouped: dict[tuple[ModelDiff | None, float | None], list[str]] = {}
    for url, key in by_url.items():
        grouped.setdefault(key, []).append(url)
    return [Part(tuple(urls), diff, window) for (diff, window), urls in grouped.items()]


def _union(whole: ModelDiff, a: ModelDiff, b: ModelDiff) -> ModelDiff:
    fields = {(c.id, c.field) for c in (*a.changed, *b.changed)}
    return ModelDiff(
        a.added | b.added,
        a.removed | b.removed,
        tuple(c for c in whole.changed if (c.id, c.field) in fields),  # in the change's order
    )


def alias(model_id: str) -> str:
    """What a model is called across providers: lowercased, without a leading
    ``vendor/`` (``meta-llama/Llama-3.3-70B`` and ``llama-3.3-70b`` are the same)."""
    return model_id.split("/", 1)[-1].lower()


@dataclass(frozen=True)
class ServedAt:
    """A target that still lists a model, and the ID it lists it as."""

    target: str
    as_id: str


def still_served(
    removed: Iterable[str], listed: Mapping[str, Iterable[str]]
) -> dict[str, tuple[ServedAt, ...]]:
    """For each removed model, the targets whose latest good list (``listed``, by
    target) holds it: the same ID, else the same :func:`alias`. Models served nowhere
    else are left out; targets in the order given."""
    gone = sorted(set(removed))
    if not gone:
        return {}
    found: dict[str, list[ServedAt]] = {m: [] for m in gone}
    for target, listed_ids in listed.items():
        ids = set(listed_ids)
        by_alias: dict[str, str] = {}
        for i in sorted(ids):
            by_alias.setdefault(alias(i), i)
        for m in gone:
            if m in ids:
                found[m].append(ServedAt(target, m))
            elif (other := by_alias.get(alias(m))) is not None:
                found[m].append(ServedAt(target, other))
    return {m: tuple(at) for m, at in found.items() if at}


def still_at_json(served: Mapping[str, Sequence[ServedAt]]) -> dict[str, list[str]]:
    """``{"model": ["target", ...]}``: how a change stores and prints where its removed
    models are still served."""
    return {m: [s.target for s in at] for m, at in served.items()}


def counts(diff: ModelDiff) -> dict[str, int]:
    """What a change counts in a digest's title: models added, removed, changed."""
    return {
        "added": len(diff.added),
        "removed": len(diff.removed),
        "changed": len({c.id for c in diff.changed}),
    }


def window_end(at: datetime, seconds: float) -> datetime:
    """The end of the digest window ``at`` falls in: windows of ``seconds`` from the
    epoch, in UTC (a day's window ends at midnight UTC, an hour's on the hour)."""
    step = int(seconds * 1_000_000)
    micros = (at - EPOCH) // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=(micros // step + 1) * step)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
