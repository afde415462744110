"""Pure comparison of two model lists: which IDs were added and which removed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelDiff:
    added: frozenset[str]
    removed: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def summary(self) -> str:
        """``"1 model added, 2 removed"``, for titles and log lines."""
        parts = []
        if self.added:
            parts.append(f"{len(self.added)} model{'s' if len(self.added) != 1 else ''} added")
        if self.removed:
            noun = "" if self.added else (" model" if len(self.removed) == 1 else " models")
            parts.append(f"{len(self.removed)}{noun} removed")
        return ", ".join(parts) or "no change"


NO_CHANGE = ModelDiff(frozenset(), frozenset())


def diff_models(previous: frozenset[str], current: frozenset[str]) -> ModelDiff:
    """Added and removed model IDs between two lists of the same target."""
    if previous == current:
        return NO_CHANGE
    return ModelDiff(added=current - previous, removed=previous - current)
