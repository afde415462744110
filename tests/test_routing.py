"""Who hears of what (pure): routes by target, event and model, one message per URL,
and where a removed model is still served."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.diff import FieldChange, ModelDiff
from monitor.routing import (
    EVENTS,
    Audience,
    Part,
    Route,
    ServedAt,
    alias,
    still_served,
    window_end,
)

PRICE = FieldChange("meta-llama/b", "pricing.prompt", "1", "2")
DIFF = ModelDiff(
    added=frozenset({"meta-llama/new", "deepseek/new"}),
    removed=frozenset({"meta-llama/old", "x/gone:free"}),
    changed=(PRICE, FieldChange("deepseek/c", "context_length", 8, 16)),
)


@pytest.mark.parametrize(
    ("route", "added", "removed", "changed"),
    [
        (Route(("u",)), DIFF.added, DIFF.removed, DIFF.changed),
        (Route(("u",), events=frozenset({"removed"})), set(), DIFF.removed, ()),
        (
            Route(("u",), models=("meta-llama/*",)),
            {"meta-llama/new"},
            {"meta-llama/old"},
            (PRICE,),
        ),
        (
            Route(("u",), events=frozenset({"removed"}), models=("meta-llama/*",)),
            set(),
            {"meta-llama/old"},
            (),
        ),
        (Route(("u",), events=frozenset({"down"})), set(), set(), ()),
    ],
)
def test_a_route_takes_its_events_and_models_of_a_change(
    route: Route, added: set[str], removed: set[str], changed: tuple[FieldChange, ...]
) -> None:
    part = route.part_of(DIFF)
    assert (set(part.added), set(part.removed), part.changed) == (added, removed, changed)


def test_a_url_shared_by_routes_gets_one_message_with_what_they_select_together() -> None:
    audience = Audience(
        (
            Route(("pager", "chat"), events=frozenset({"removed"}), models=("meta-llama/*",)),
            Route(("chat",), events=frozenset({"added"})),
            Route(("news",), events=frozenset({"added"}), models=("nothing/*",)),  # nothing
        )
    )
    parts = {p.urls: p.diff for p in audience.change_parts(DIFF)}
    assert set(parts) == {("pager",), ("chat",)}
    assert parts[("pager",)] == ModelDiff(frozenset(), frozenset({"meta-llama/old"}))
    assert parts[("chat",)] == ModelDiff(DIFF.added, frozenset({"meta-llama/old"}))


def test_urls_given_the_same_part_share_one_message_and_the_whole_change_wins() -> None:
    audience = Audience((Route(("a", "b")), Route(("b",), models=("meta-llama/*",)), Route(("c",))))
    assert audience.change_parts(DIFF) == [Part(("a", "b", "c"), DIFF)]


def test_down_and_recovered_go_to_the_routes_with_those_events_once_each() -> None:
    audience = Audience(
        (
            Route(("all",)),
            Route(("all", "pager"), events=frozenset({"down"})),
            Route(("news",), events=frozenset({"added"})),
        )
    )
    assert audience.event_urls("down") == ("all", "pager")
    assert audience.event_urls("recovered") == ("all",)
    assert audience.urls == ("all", "pager", "news")
    assert Audience.of(["x", "x", "y"]).event_urls("down") == ("x", "y")
    assert Audience.of([]).urls == ()


changes = st.builds(
    ModelDiff,
    added=st.frozensets(st.sampled_from(["a/1", "a/2", "b/1"])),
    removed=st.frozensets(st.sampled_from(["a/3", "b/2", "b/3"])),
)
routes = st.lists(
    st.builds(
        Route,
        urls=st.lists(st.sampled_from(["u1", "u2", "u3"]), min_size=1, max_size=2).map(tuple),
        events=st.frozensets(st.sampled_from(EVENTS), min_size=1),
        models=st.lists(st.sampled_from(["a/*", "b/*", "*/1"]), max_size=2).map(tuple),
    ),
    max_size=4,
)


@given(diff=changes, chosen=routes)
def test_each_url_gets_at_most_one_part_and_only_what_a_route_of_it_selects(
    diff: ModelDiff, chosen: list[Route]
) -> None:
    parts = [(p.urls, p.diff) for p in Audience(tuple(chosen)).change_parts(diff)]
    urls = [u for group, _ in parts for u in group]
    assert len(urls) == len(set(urls))  # never twice
    for group, part in parts:
        assert part is not None
        assert part  # nothing empty is sent
        for url in group:
            mine = [r.part_of(diff) for r in chosen if url in r.urls]
            assert part.added == frozenset().union(*(m.added for m in mine))
            assert part.removed == frozenset().union(*(m.removed for m in mine))
    # every URL whose routes select something is sent it
    wanted = {u for r in chosen if r.part_of(diff) for u in r.urls}
    assert set(urls) == wanted


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("meta-llama/Llama-3.3-70B", "llama-3.3-70b"),
        ("llama-3.3-70b", "llama-3.3-70b"),
        ("a/b/c", "b/c"),  # only a leading vendor/ goes
        ("GPT-4o", "gpt-4o"),
    ],
)
def test_an_alias_is_lowercased_without_a_leading_vendor(model_id: str, expected: str) -> None:
    assert alias(model_id) == expected


def test_a_removed_model_is_still_served_where_another_target_lists_it_or_its_alias() -> None:
    listed = {
        "together": {"meta-llama/Llama-3.3-70B-Instruct", "Llama-3.3-70b"},
        "openrouter": {"meta-llama/llama-3.3-70b", "gpt-4o"},
        "groq": {"something-else"},
    }
    found = still_served(["llama-3.3-70b", "gpt-4o", "gone-everywhere"], listed)
    assert found == {
        "llama-3.3-70b": (
            ServedAt("together", "Llama-3.3-70b"),
            ServedAt("openrouter", "meta-llama/llama-3.3-70b"),
        ),
        "gpt-4o": (ServedAt("openrouter", "gpt-4o"),),
    }
    # the same ID wins over an alias on the same target
    both = still_served(["a/x"], {"t": {"b/x", "a/x"}})
    assert both == {"a/x": (ServedAt("t", "a/x"),)}
    assert still_served([], listed) == {}


def test_a_url_sent_at_once_by_one_route_is_not_also_digested() -> None:
    audience = Audience(
        (
            Route(("chat",), events=frozenset({"added"}), digest=86400),
            Route(("chat", "pager"), events=frozenset({"removed"})),
            Route(("daily",), digest=86400),
            Route(("daily", "hourly"), digest=3600),
        )
    )
    parts = {p.urls: (p.diff, p.digest) for p in audience.change_parts(DIFF)}
    assert parts[("chat",)] == (ModelDiff(DIFF.added, DIFF.removed), None)  # at once, both
    assert parts[("pager",)] == (ModelDiff(frozenset(), DIFF.removed), None)
    # "daily" gets the shorter window of its two routes: then it shares "hourly"'s part
    assert parts[("daily", "hourly")] == (DIFF, 3600)
    downs = {p.urls: p.digest for p in audience.event_parts("down")}
    assert downs == {("daily", "hourly"): 3600.0}


@pytest.mark.parametrize(
    ("at", "seconds", "end"),
    [
        ("2026-11-30T10:15:00", 3600, "2026-11-30T11:00:00"),
        ("2026-11-30T11:00:00", 3600, "2026-11-30T12:00:00"),  # a boundary opens a window
        ("2026-11-30T23:59:59.999999", 86400, "2026-12-01T00:00:00"),
        ("2026-11-30T00:00:00.000001", 86400, "2026-12-01T00:00:00"),
        ("2026-11-30T10:07:00", 300, "2026-11-30T10:10:00"),
    ],
)
def test_digest_windows_are_fixed_from_the_epoch_in_utc(at: str, seconds: int, end: str) -> None:
    from datetime import UTC, datetime

    moment = datetime.fromisoformat(at).replace(tzinfo=UTC)
    assert window_end(moment, seconds) == datetime.fromisoformat(end).replace(tzinfo=UTC)
