"""Reading a provider's JSON into values every part of the monitor can carry
(monitor/jsonsafe.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.jsonsafe import MAX_DEPTH, BadJSON, invalid_string, loads, too_deep


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(b"[" * 5000 + b"]" * 5000, "JSON nested too deep", id="deep-lists"),
        pytest.param(b'{"a":' * 5000 + b"1" + b"}" * 5000, "JSON nested too deep", id="deep-objs"),
        pytest.param(b'{"data":[{"id":"caf\xe9"}]}', "not UTF-8 text", id="latin-1"),
        pytest.param(b'{"data":[{"id":"a"}]', None, id="truncated"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_what_cannot_be_read_says_why(raw: bytes, reason: str | None) -> None:
    with pytest.raises(BadJSON) as caught:
        loads(raw)
    if reason is None:
        assert caught.value.reason is None
    else:
        assert caught.value.reason is not None and reason in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        pytest.param("NaN", "NaN", id="nan"),
        pytest.param("Infinity", "Infinity", id="infinity"),
        pytest.param("-Infinity", "-Infinity", id="minus-infinity"),
        pytest.param("1e999", "1e999", id="overflowing-float"),
        pytest.param("-1e999", "-1e999", id="overflowing-negative"),
        pytest.param("9" * 5000, "9" * 5000, id="5000-digits"),
        pytest.param("-" + "9" * 5000, "-" + "9" * 5000, id="5000-digits-negative"),
    ],
)
def test_numbers_json_cannot_carry_are_kept_as_written_with_a_warning(raw: str, value: str) -> None:
    document, warnings = loads(f'{{"x": {raw}}}'.encode())
    assert document == {"x": value}
    assert len(warnings) == 1 and "kept as strings" in warnings[0]
    json.dumps(document, allow_nan=False)  # plain JSON from here on


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        pytest.param("-0.0", 0.0, id="negative-zero"),
        pytest.param("1e20", 10**20, id="big-float-is-its-integer"),
        pytest.param("1.5e300", 15 * 10**299, id="huge-float-is-its-integer"),
        pytest.param("1e23", 10**23, id="spelled-as-python-writes-it"),
        pytest.param("0.1", 0.1, id="plain-float"),
        pytest.param("3e-06", 3e-06, id="small-float"),
        pytest.param("12345678901234567890", 12345678901234567890, id="big-int"),
        pytest.param("9" * 4300, int("9" * 4300), id="4300-digits"),
    ],
)
def test_numbers_are_the_values_both_databases_give_back(raw: str, value: object) -> None:
    document, warnings = loads(f'{{"x": {raw}}}'.encode())
    assert document == {"x": value} and type(document["x"]) is type(value)
    assert warnings == ()


def test_a_duplicate_key_keeps_the_last_value() -> None:
    assert loads(b'{"id":"a","id":"b"}')[0] == {"id": "b"}


def test_escapes_are_decoded() -> None:
    document, _ = loads(b'{"id":"\\u0000\\u202e\\ud83d\\ude00"}')
    assert document == {"id": "\x00\u202e\U0001f600"}


def nest(levels: int, container: str) -> object:
    """``levels`` levels of lists (``"[]"``) or objects (``"{}"``) around a leaf."""
    value: object = "leaf"
    for _ in range(levels):
        value = [value] if container == "[]" else {"a": value}
    return value


@pytest.mark.parametrize("container", ["[]", "{}"])
def test_depth_counts_objects_and_lists(container: str) -> None:
    assert not too_deep({"id": "x"})
    # the model object is a level itself: MAX_DEPTH levels in all, then one more
    assert not too_deep({"id": "x", "n": nest(MAX_DEPTH - 1, container)})
    assert too_deep({"id": "x", "n": nest(MAX_DEPTH, container)})


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"id": "s\ud800x"}, ".id"),
        ({"id": "a", "tags": ["ok", "bad\udfff"]}, ".tags[1]"),
        ({"id": "a", "\ud800": 1}, " (an object key)"),
        ({"id": "a", "p": {"q": [{"r": "\udc00"}]}}, ".p.q[0].r"),
        ({"id": "a", "ok": "\U0001f600"}, None),
    ],
)
def test_invalid_strings_are_found_by_path(value: object, path: str | None) -> None:
    assert invalid_string(value) == path


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_json_a_provider_writes_reads_back_as_plain_json(value: object) -> None:
    raw = json.dumps({"x": value}, ensure_ascii=False).encode("utf-8", "surrogatepass")
    document, _ = loads(raw)
    text = json.dumps(document, allow_nan=False)  # never NaN/Infinity out
    assert loads(text.encode())[0] == document  # and stable when read again
