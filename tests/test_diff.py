from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.diff import ModelDiff, diff_models
from monitor.modellist import ModelList

ids = st.frozensets(st.text(min_size=1, max_size=8), max_size=12)


@pytest.mark.parametrize(
    ("previous", "current", "added", "removed", "summary"),
    [
        ({"a", "b"}, {"a", "b"}, set(), set(), "no change"),
        ({"a"}, {"a", "b"}, {"b"}, set(), "1 model added"),
        ({"a"}, {"a", "b", "c"}, {"b", "c"}, set(), "2 models added"),
        ({"a", "b"}, {"a"}, set(), {"b"}, "1 model removed"),
        ({"a", "b", "c"}, {"a"}, set(), {"b", "c"}, "2 models removed"),
        ({"a", "b"}, {"a", "c"}, {"c"}, {"b"}, "1 model added, 1 removed"),
        (set(), {"a"}, {"a"}, set(), "1 model added"),
        ({"a"}, set(), set(), {"a"}, "1 model removed"),
    ],
    ids=[
        "same",
        "one-added",
        "two-added",
        "one-removed",
        "two-removed",
        "swap",
        "from-empty",
        "to-empty",
    ],
)
def test_diff_table(
    previous: set[str], current: set[str], added: set[str], removed: set[str], summary: str
) -> None:
    result = diff_models(frozenset(previous), frozenset(current))
    assert result == ModelDiff(frozenset(added), frozenset(removed))
    assert bool(result) == bool(added or removed)
    assert result.summary() == summary


@given(ids, ids)
def test_diff_applied_to_previous_gives_current(
    previous: frozenset[str], current: frozenset[str]
) -> None:
    result = diff_models(previous, current)
    assert (previous - result.removed) | result.added == current
    assert not (result.added & result.removed)
    assert result.added.isdisjoint(previous)
    assert result.removed <= previous


@given(ids)
def test_list_digest_ignores_order_and_tracks_content(model_ids: frozenset[str]) -> None:
    objects = [{"id": i, "object": "model"} for i in model_ids]
    forward = ModelList.from_objects(objects)
    backward = ModelList.from_objects(list(reversed(objects)))
    assert forward.digest == backward.digest
    assert forward.ids == model_ids
    changed = ModelList.from_objects([*objects, {"id": "\x00new", "object": "model"}])
    assert changed.digest != forward.digest


def test_list_digest_sees_metadata_changes() -> None:
    before = ModelList.from_objects([{"id": "m", "pricing": {"prompt": "0.27"}}])
    after = ModelList.from_objects([{"id": "m", "pricing": {"prompt": "0.14"}}])
    assert before.ids == after.ids
    assert before.digest != after.digest


def test_watched_fields_nested_and_dotted() -> None:
    from monitor.diff import FieldChange, diff_lists

    before = {
        "a": {
            "id": "a",
            "pricing": {"prompt": "0.00000027", "completion": "0.0000011"},
            "context_length": 128000,
            "created": 1,
        },
        "b": {"id": "b", "pricing": {"prompt": "0.000001"}},
        "gone": {"id": "gone"},
    }
    after = {
        "a": {
            "id": "a",
            "pricing": {"prompt": "0.00000014", "completion": "0.0000011"},
            "context_length": 128000,
            "created": 2,
        },
        "b": {"id": "b", "pricing": {"prompt": "0.000001"}, "deprecation": "2026-12-31"},
        "new": {"id": "new"},
    }
    everything = diff_lists(before, after, ["pricing", "context_length", "deprecation"])
    assert everything.added == {"new"} and everything.removed == {"gone"}
    assert everything.changed == (
        FieldChange("a", "pricing.prompt", "0.00000027", "0.00000014"),
        FieldChange("b", "deprecation", None, "2026-12-31"),
    )
    assert everything.summary() == "1 model added, 1 removed, 2 changed"
    only_prompt = diff_lists(before, after, ["pricing.prompt"])
    assert [c.field for c in only_prompt.changed] == ["pricing.prompt"]
    assert diff_lists(before, after, []).changed == ()  # IDs only by default; created ignored


def test_watch_digest_moves_only_with_watched_values() -> None:
    from monitor.diff import watch_digest

    one = [("a", {"pricing": {"prompt": "1"}, "created": 1})]
    same = [("a", {"pricing": {"prompt": "1"}, "created": 2})]
    dearer = [("a", {"pricing": {"prompt": "2"}, "created": 1})]
    assert watch_digest(one, ["pricing"]) == watch_digest(same, ["pricing"])
    assert watch_digest(one, ["pricing"]) != watch_digest(dearer, ["pricing"])
    assert watch_digest(one, []) == watch_digest(dearer, [])
