"""Pure comparison of two model lists: IDs added and removed, and changes in the
watched fields of the models in both."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.modellist import canonical_json, digest_text, ids_digest

_MISSING = object()


@dataclass(frozen=True)
class FieldChange:
    """A watched field of one model, before and after (None: the field was absent)."""

    id: str
    field: str  # dotted path of the leaf that changed, e.g. "pricing.prompt"
    old: Any
    new: Any

    def as_json(self) -> dict[str, Any]:
        """``{"id", "field", "old", "new"}``: how a change is stored and printed."""
        return {"id": self.id, "field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class ModelDiff:
    added: frozenset[str]
    removed: frozenset[str]
    changed: tuple[FieldChange, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def summary(self) -> str:
        """``"1 model added, 2 removed, 1 changed"``, for titles and log lines."""
        counts = [
            (len(self.added), "added"),
            (len(self.removed), "removed"),
            (len({c.id for c in self.changed}), "changed"),
        ]
        parts: list[str] = []
        for n, verb in counts:
            if n:
                noun = "" if parts else (" model" if n == 1 else " models")
                parts.append(f"{n}{noun} {verb}")
        return ", ".join(parts) or "no change"


NO_CHANGE = ModelDiff(frozenset(), frozenset())


def diff_models(previous: frozenset[str], current: frozenset[str]) -> ModelDiff:
    """Added and removed model IDs between two lists of the same target."""
    if previous == current:
        return NO_CHANGE
    return ModelDiff(added=current - previous, removed=previous - current)


def diff_lists(
    previous: Mapping[str, Mapping[str, Any]],
    current: Mapping[str, Mapping[str, Any]],
    watch_fields: Sequence[str] = (),
) -> ModelDiff:
    """IDs added and removed, and each watched field that differs for a model in both
    lists (``pricing`` watches every leaf under it; ``pricing.prompt`` only that one)."""
    ids = diff_models(frozenset(previous), frozenset(current))
    changed = []
    for model_id in sorted(previous.keys() & current.keys()):
        for path in watch_fields:
            before = dict(_leaves(_lookup(previous[model_id], path), path))
            after = dict(_leaves(_lookup(current[model_id], path), path))
            for leaf in sorted(before.keys() | after.keys()):
                old, new = before.get(leaf, _MISSING), after.get(leaf, _MISSING)
                if old != new:
                    changed.append(
                        FieldChange(
                            model_id,
                            leaf,
                            None if old is _MISSING else old,
                            None if new is _MISSING else new,
                        )
                    )
    return ModelDiff(ids.added, ids.removed, tuple(changed))


def watch_digest(
    models: Iterable[tuple[str, Mapping[str, Any]]], watch_fields: Sequence[str]
) -> str:
    """What a change is about: the IDs, and the watched fields' values of each model."""
    if not watch_fields:
        return ids_digest(model_id for model_id, _ in models)
    return digest_text(
        canonical_json(
            sorted(
                [model_id, [_plain(_lookup(data, path)) for path in watch_fields]]
                for model_id, data in models
            )
        )
    )


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _leaves(value: Any, path: str) -> Iterable[tuple[str, Any]]:
    if value is _MISSING:
        return
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            yield from _leaves(inner, f"{path}.{key}")
    else:
        yield path, value


def _plain(value: Any) -> Any:
    return None if value is _MISSING else value
