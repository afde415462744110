"""Whatever a provider's list holds, every database stores it and reads it back
identical (monitor/store/schema.py: JsonDocument, SafeText)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from builders import record_poll
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.diff import FieldChange
from monitor.jsonsafe import loads
from monitor.modellist import ModelList
from monitor.store import Store

T0 = datetime(2026, 11, 1, tzinfo=UTC)

ODD = [
    {"id": "bad\x00id", "description": "nul\x00byte", "k\x00ey": ["\x00", "\x00\x00"]},
    {"id": "\ufdd0marker", "v": "\ufdd0", "w": "\ufdd00", "x": "a\ufdd0\x00b"},
    {"id": "\u202egnp.exe", "ctl": "\x1b[2J\x07\u2028", "emoji": "\U0001f600"},
    {"id": "numbers", "f": 0.1, "small": 3e-06, "big": 10**20, "huge": 12345678901234567890123},
    {"id": "kept", "nan": "NaN", "inf": "Infinity", "long": "7" * 5000, "neg": 0.0},
    {"id": "order", "z": 1, "a": 2, "mm": {"b": [3, {"d": 4, "c": 5}]}},
]


def stored_models(store: Store, objects: list[dict[str, Any]], at: datetime) -> list[Any]:
    with store.transaction() as tx:
        snapshot = record_poll(tx, "t", at, ModelList.from_objects(objects))
    return store.models(store.snapshot(snapshot.id))


def test_odd_values_read_back_exactly(store: Store) -> None:
    back = stored_models(store, ODD, T0)
    assert back == sorted(ODD, key=lambda m: m["id"])
    assert [list(m) for m in back] == [sorted(m) for m in back]  # one key order everywhere
    json.dumps(back, allow_nan=False)


def test_ids_with_nul_are_found_and_compared_exactly(store: Store) -> None:
    first = stored_models(store, [{"id": "a\x00"}, {"id": "b"}], T0)
    second = stored_models(store, [{"id": "a\x00"}, {"id": "\x00c"}], T0 + timedelta(minutes=1))
    assert [m["id"] for m in first] == ["a\x00", "b"]
    assert [m["id"] for m in second] == ["\x00c", "a\x00"]
    with store.transaction() as tx:
        change = tx.add_change(
            target="t",
            detected_at=T0 + timedelta(minutes=1),
            from_snapshot_id=1,
            to_snapshot_id=2,
            added=["\x00c"],
            removed=["b"],
            changed=[FieldChange("a\x00", "p\x00", "\x00", None)],
        )
    (back,) = store.changes()
    assert back == change
    assert back.added == ("\x00c",)
    assert back.changed == (FieldChange("a\x00", "p\x00", "\x00", None),)
    (sighting,) = store.model_sightings("a\x00")
    assert sighting.present


provider_strings = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from("\x00\ufdd0\u202e0")
)
provider_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | provider_strings,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(provider_strings, inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(provider_strings.filter(str.strip), provider_values), min_size=1, max_size=4)
)
def test_any_list_a_provider_sends_reads_back_as_it_was_read(
    store: Store, entries: list[tuple[str, Any]]
) -> None:
    raw = json.dumps({"data": [{"id": i, "v": v} for i, v in entries]}, ensure_ascii=False)
    document, _ = loads(raw.encode())  # what the fetch makes of it
    objects = list({o["id"]: o for o in document["data"]}.values())
    at = datetime.now(UTC)
    back = stored_models(store, objects, at)
    assert back == sorted(objects, key=lambda m: m["id"])
