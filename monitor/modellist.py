"""A provider's model list as a value: the model objects, their IDs and a content digest.

The digest lets an unchanged poll be recognised (and stored) without walking
the list: two lists with the same digest hold the same objects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Fields some servers rewrite on every request (vLLM's and LiteLLM's ``created``):
# left out of a model's digest, so they never make an unchanged list look new.
# The object stored is the first one seen with that digest.
VOLATILE_FIELDS = frozenset({"created"})


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same object always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Model:
    """One model object as the provider sent it."""

    id: str
    data: Mapping[str, Any] = field(compare=False, hash=False)
    digest: str  # sha256 of the object's canonical JSON


@dataclass(frozen=True)
class ModelList:
    """The models of one good poll, sorted by ID, each ID once."""

    models: tuple[Model, ...]
    digest: str  # sha256 over the sorted object digests

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(m.id for m in self.models)

    def __len__(self) -> int:
        return len(self.models)

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]]) -> ModelList:
        """Build from objects that each have a string ``id`` (already de-duplicated)."""
        return cls.from_models(Model(id=o["id"], data=o, digest=model_digest(o)) for o in objects)

    @classmethod
    def from_models(cls, models: Iterable[Model]) -> ModelList:
        """Build from models with distinct IDs, in any order."""
        ordered = sorted(models, key=lambda m: m.id)
        return cls(models=tuple(ordered), digest=list_digest(m.digest for m in ordered))


def model_text(data: Mapping[str, Any]) -> str:
    """What a model's digest is taken of: its canonical JSON, volatile fields left out."""
    if VOLATILE_FIELDS.isdisjoint(data):
        return canonical_json(data)
    return canonical_json({k: v for k, v in data.items() if k not in VOLATILE_FIELDS})


def model_digest(data: Mapping[str, Any]) -> str:
    """The digest of one model object, volatile fields left out. Raises
    UnicodeEncodeError for a string that is not valid Unicode (a lone surrogate)."""
    return digest_text(model_text(data))


def list_digest(model_digests: Iterable[str]) -> str:
    """The digest of a list, from its models' digests in ID order."""
    h = hashlib.sha256()
    for d in model_digests:
        h.update(d.encode("ascii"))
        h.update(b"\n")
    return h.hexdigest()


def ids_digest(ids: Iterable[str]) -> str:
    """The digest of a set of model IDs (order does not matter)."""
    return digest_text(canonical_json(sorted(ids)))
