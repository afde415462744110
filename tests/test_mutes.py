"""Mutes (pure): what a mute covers, and what becomes of what it held back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.mutes import ALL, Held, Mute, muted, release

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("mute", "target", "at", "expected"),
    [
        (Mute(1, "dos-ai", T0, T0 + HOUR), "dos-ai", T0, True),
        (Mute(1, "dos-ai", T0, T0 + HOUR), "dos-ai", T0 + HOUR, False),  # ends exclusive
        (Mute(1, "dos-ai", T0, T0 + HOUR), "dos-ai", T0 - timedelta(seconds=1), False),
        (Mute(1, "dos-ai", T0, T0 + HOUR), "groq", T0, False),
        (Mute(1, ALL, T0, T0 + HOUR), "groq", T0, True),
        # unmuted by hand after 10 minutes
        (Mute(1, "dos-ai", T0, T0 + HOUR, ended_at=T0 + HOUR / 6), "dos-ai", T0 + HOUR / 3, False),
    ],
)
def test_a_mute_covers_its_target_from_its_start_to_its_end(
    mute: Mute, target: str, at: datetime, expected: bool
) -> None:
    assert mute.covers(target, at) is expected
    assert muted([mute], target, at) is expected


def test_a_mute_ends_at_its_end_or_when_unmuted() -> None:
    assert Mute(1, "x", T0, T0 + HOUR).ends_at == T0 + HOUR
    assert Mute(1, "x", T0, T0 + HOUR, ended_at=T0 + HOUR / 2).ends_at == T0 + HOUR / 2
    assert Mute(1, "x", T0, T0 + HOUR, ended_at=T0 + 2 * HOUR).ends_at == T0 + HOUR


@pytest.mark.parametrize(
    ("held", "down_now", "summarised", "resent", "suppressed"),
    [
        # changes: summarised; a down/recovered pair inside the mute: never sent
        (
            [("change", 1), ("down", 2), ("recovered", 3), ("change", 4)],
            set(),
            [1, 4],
            [],
            [2, 3],
        ),
        # down at the end: its latest "down" once, the earlier ones and recoveries not
        ([("down", 1), ("recovered", 2), ("down", 3)], {"t"}, [], [3], [1, 2]),
        # down before the mute (that alert was sent), back inside it: the recovery
        ([("recovered", 1)], set(), [], [1], []),
        # ... and down again by the end: what was sent last is still true, nothing more
        ([("recovered", 1), ("down", 2)], {"t"}, [], [], [1, 2]),
        # ... and back again by the end: the latest recovery
        ([("recovered", 1), ("down", 2), ("recovered", 3)], set(), [], [3], [1, 2]),
    ],
)
def test_what_a_mute_held_back_becomes_when_it_ends(
    held: list[tuple[str, int]],
    down_now: set[str],
    summarised: list[int],
    resent: list[int],
    suppressed: list[int],
) -> None:
    plan = release([Held(i, "t", "u", kind) for kind, i in held], set(), down_now)
    assert [h.id for h in plan.summarise] == summarised
    assert [h.id for h in plan.resend] == resent
    assert [h.id for h in plan.suppress] == suppressed


def test_a_target_another_mute_still_covers_keeps_its_alerts_back() -> None:
    held = [Held(1, "a", "u", "change"), Held(2, "b", "u", "change")]
    plan = release(held, still_muted={"b"}, down_now=set())
    assert [h.id for h in plan.summarise] == [1]
    assert plan.resend == plan.suppress == ()


helds = st.lists(
    st.builds(
        Held,
        id=st.integers(1, 10_000),
        target=st.sampled_from(["a", "b"]),
        url_hash=st.sampled_from(["u1", "u2"]),
        kind=st.sampled_from(["change", "down", "recovered"]),
    ),
    unique_by=lambda h: h.id,
    max_size=20,
)


@given(
    held=helds,
    still=st.sets(st.sampled_from(["a", "b"])),
    down=st.sets(st.sampled_from(["a", "b"])),
)
def test_each_released_alert_has_one_fate_and_at_most_one_down_per_target_and_url(
    held: list[Held], still: set[str], down: set[str]
) -> None:
    plan = release(held, still, down)
    fates = [h.id for part in (plan.summarise, plan.resend, plan.suppress) for h in part]
    assert len(fates) == len(set(fates))  # never twice
    assert set(fates) == {h.id for h in held if h.target not in still}  # all of the free
    assert all(h.kind == "change" for h in plan.summarise)
    # at most one down-or-recovered per target and URL, and it says what is true now
    pairs = [(h.target, h.url_hash) for h in plan.resend]
    assert len(pairs) == len(set(pairs))
    for h in plan.resend:
        assert (h.kind == "down") == (h.target in down)
        mine = [x for x in held if (x.target, x.url_hash) == (h.target, h.url_hash)]
        assert h.id == max(x.id for x in mine if x.kind == h.kind)  # the latest of its kind
