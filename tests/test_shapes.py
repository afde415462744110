"""Reading a page as a kind's shape says: pure, no HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.errors import FetchError
from monitor.shapes import KIND_SHAPES, Shape, cursor, entries, model_id

GEMINI = KIND_SHAPES["gemini"]
ANTHROPIC = KIND_SHAPES["anthropic"]
NESTED = Shape(items="result.models", id="meta.slug", next="result.cursor", next_param="c")


@pytest.mark.parametrize(
    ("shape", "document", "expected"),
    [
        (KIND_SHAPES["openai"], [{"id": "a"}], [{"id": "a"}]),  # a bare list, OpenAI-style
        (KIND_SHAPES["openai"], {"data": None}, []),
        (GEMINI, {"models": None}, []),
        (NESTED, {"result": {"models": [{"x": 1}]}}, [{"x": 1}]),
        (Shape(items=""), [{"id": "a"}], [{"id": "a"}]),
    ],
    ids=["bare", "data-null", "models-null", "nested", "items-empty"],
)
def test_entries_are_found_where_the_shape_says(
    shape: Shape, document: Any, expected: list[Any]
) -> None:
    assert entries(document, shape) == expected


@pytest.mark.parametrize(
    ("shape", "document", "reason"),
    [
        (GEMINI, [{"name": "models/a"}], "JSON of the wrong shape: expected an object, got a list"),
        (GEMINI, {"data": []}, 'JSON of the wrong shape: no "models" list (keys: data)'),
        (NESTED, {"result": 3}, 'no "result.models" list (keys: result)'),
        (GEMINI, {"models": {"a": 1}}, '"models" is an object, not a list'),
        (Shape(items=""), {"data": []}, "expected a list, got an object"),
    ],
    ids=["list-for-object", "missing", "nested-missing", "not-a-list", "object-for-list"],
)
def test_a_list_not_where_the_shape_says_is_a_failed_poll(
    shape: Shape, document: Any, reason: str
) -> None:
    with pytest.raises(FetchError) as caught:
        entries(document, shape)
    assert reason in caught.value.reason


def test_ids_come_from_the_shapes_field_with_the_prefix_taken_off() -> None:
    assert model_id({"name": "models/gemini-2.5-pro"}, GEMINI, 0) == "gemini-2.5-pro"
    assert model_id({"name": "tunedModels/x"}, GEMINI, 0) == "tunedModels/x"  # no prefix
    assert model_id({"meta": {"slug": "s"}}, NESTED, 0) == "s"
    with pytest.raises(FetchError, match=r'model entry models\[4\] has no "name"'):
        model_id({"id": "x"}, GEMINI, 4)
    with pytest.raises(FetchError, match=r'models\[0\] has an invalid "name" \(a string\)'):
        model_id({"name": "models/"}, GEMINI, 0)  # nothing left after the prefix


@pytest.mark.parametrize(
    ("shape", "document", "expected"),
    [
        (GEMINI, {"models": [], "nextPageToken": "t2"}, "t2"),
        (GEMINI, {"models": []}, None),
        (GEMINI, {"models": [], "nextPageToken": ""}, None),
        (KIND_SHAPES["cohere"], {"models": [], "next_page_token": None}, None),
        (NESTED, {"result": {"cursor": 40}}, "40"),
        (ANTHROPIC, {"data": [], "has_more": False, "last_id": "x"}, None),
        (ANTHROPIC, {"data": [], "has_more": True, "last_id": "x"}, "x"),
        (KIND_SHAPES["openai"], {"data": [], "next": "x"}, None),  # openai never pages
    ],
    ids=["token", "no-token", "empty", "null", "number", "no-more", "more", "openai"],
)
def test_the_next_cursor(shape: Shape, document: Any, expected: str | None) -> None:
    assert cursor(document, shape) == expected


@pytest.mark.parametrize(
    ("shape", "document", "reason"),
    [
        (ANTHROPIC, {"has_more": True}, '"has_more" without a "last_id" to continue from'),
        (GEMINI, {"nextPageToken": ["a"]}, 'invalid "nextPageToken" (a list); expected a string'),
        (GEMINI, {"nextPageToken": "\ud800"}, 'invalid string in "nextPageToken"'),
    ],
    ids=["more-without-cursor", "list-cursor", "lone-surrogate"],
)
def test_a_bad_cursor_is_a_failed_poll(shape: Shape, document: Any, reason: str) -> None:
    with pytest.raises(FetchError) as caught:
        cursor(document, shape)
    assert reason in caught.value.reason
