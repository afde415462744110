"""Who hears of what (pure): ``[[notify.routes]]`` chosen by target, event and model,
the part of a change each URL is sent, and where a removed model is still served.

``notify.urls`` and a target's ``notify_urls`` are routes of every event and model. A
URL that several matching routes share gets one message: what all of them select
together (the whole change if one of them selects all of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from monitor.diff import ModelDiff
from monitor.globs import matches

EVENTS = ("added", "removed", "changed", "down", "recovered")
CHANGE_EVENTS = frozenset({"added", "removed", "changed"})


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
        """The URLs a ``down`` or ``recovered`` alert goes to."""
        return tuple(dict.fromkeys(u for r in self.routes if kind in r.events for u in r.urls))

    def change_parts(self, diff: ModelDiff) -> list[tuple[tuple[str, ...], ModelDiff]]:
        """Each distinct part of ``diff`` to send, with the URLs it goes to (in the
        routes' order); a URL is in one part only, and parts are never empty."""
        by_url: dict[str, ModelDiff] = {}
        for route in self.routes:
            part = route.part_of(diff)
            if not part:
                continue
            for url in route.urls:
                by_url[url] = _union(diff, by_url[url], part) if url in by_url else part
        grouped: dict[ModelDiff, list[str]] = {}
        for url, part in by_url.items():
            grouped.setdefault(part, []).append(url)
        return [(tuple(urls), part) for part, urls in grouped.items()]


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
