"""The alert state machine (monitor.alerts): tables of poll sequences and properties."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.alerts import EMPTY_LIST_ERROR, Decision, Policy, Poll, TargetState, step

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
COUNTS = {"A": 4, "B": 3, "C": 5, "0": 0}  # "0" is an empty list, "x" a failed poll


def poll(token: str, at: datetime) -> Poll:
    if token == "x":
        return Poll(at=at, digest=None, error="HTTP 500: server error")
    return Poll(at=at, digest=token, count=COUNTS[token])


@dataclass
class Run:
    decisions: list[Decision]
    log: list[str]


def run(tokens: str, policy: Policy | None = None, minutes: float = 1) -> Run:
    """Feed polls one minute apart; describe what each one decided."""
    policy = policy or Policy()
    state = TargetState()
    decisions, log = [], []
    for i, token in enumerate(tokens.split()):
        decision = step(state, poll(token, T0 + timedelta(minutes=i * minutes)), policy)
        state = decision.state
        decisions.append(decision)
        parts = []
        if decision.recovered:
            parts.append(f"recovered after {int(decision.recovered.duration.total_seconds())}s")
        if decision.baseline:
            parts.append("baseline")
        if decision.changed:
            parts.append(f"change {decision.change_from}->{state.confirmed_digest}")
        if not decision.ok:
            parts.append("fail")
        if decision.down:
            parts.append("still down" if decision.down.repeat else "down")
        log.append(", ".join(parts) or "-")
    return Run(decisions, log)


@pytest.mark.parametrize(
    ("tokens", "policy", "expected"),
    [
        ("A A B B A", Policy(), ["baseline", "-", "change A->B", "-", "change B->A"]),
        ("A B A", Policy(confirm_polls=2), ["baseline", "-", "-"]),
        ("A B B B", Policy(confirm_polls=2), ["baseline", "-", "change A->B", "-"]),
        ("A B x B", Policy(confirm_polls=2), ["baseline", "-", "fail", "change A->B"]),
        ("A B C C", Policy(confirm_polls=2), ["baseline", "-", "-", "change A->C"]),
        ("A B B A A", Policy(confirm_polls=3), ["baseline", "-", "-", "-", "-"]),
        ("A 0 A", Policy(), ["baseline", "fail", "-"]),
        ("A 0", Policy(allow_empty=True), ["baseline", "change A->0"]),
        ("0 A", Policy(), ["baseline", "change 0->A"]),
        ("0 0 A", Policy(), ["baseline", "-", "change 0->A"]),
    ],
    ids=[
        "each-change-once",
        "flap-ignored",
        "confirmed-after-two",
        "failure-between-sightings",
        "latest-candidate-wins",
        "confirm-three-flap",
        "empty-list-is-a-failure",
        "empty-allowed",
        "empty-first-list-is-a-baseline",
        "empty-to-models",
    ],
)
def test_changes(tokens: str, policy: Policy, expected: list[str]) -> None:
    assert run(tokens, policy).log == expected


def test_an_empty_list_says_why_it_failed() -> None:
    decision = run("A 0").decisions[1]
    assert decision.error == EMPTY_LIST_ERROR
    assert decision.state.confirmed_digest == "A"


@pytest.mark.parametrize(
    ("tokens", "policy", "expected"),
    [
        (
            "A x x x x A",
            Policy(alert_after_failures=3),
            ["baseline", "fail", "fail", "fail, down", "fail", "recovered after 240s"],
        ),
        ("A x x A", Policy(alert_after_failures=3), ["baseline", "fail", "fail", "-"]),
        ("x x x A", Policy(), ["fail", "fail", "fail, down", "recovered after 180s, baseline"]),
        (
            "A x x x B",
            Policy(),
            ["baseline", "fail", "fail", "fail, down", "recovered after 180s, change A->B"],
        ),
        (
            "A x A x",
            Policy(alert_after_failures=1),
            ["baseline", "fail, down", "recovered after 60s", "fail, down"],
        ),
    ],
    ids=[
        "down-once-then-back",
        "short-outage-is-silent",
        "never-good",
        "change-during-outage",
        "each-outage-alerted",
    ],
)
def test_down_and_recovered(tokens: str, policy: Policy, expected: list[str]) -> None:
    assert run(tokens, policy).log == expected


def test_down_names_the_last_error_and_when_it_began() -> None:
    decisions = run("A x x x").decisions
    down = decisions[3].down
    assert down is not None
    assert down.error == "HTTP 500: server error"
    assert down.since == T0 + timedelta(minutes=1)
    assert down.failures == 3


def test_down_reminders_only_when_asked() -> None:
    tokens = "A " + " ".join(["x"] * 25)
    plain = run(tokens).log
    assert plain.count("fail, down") == 1 and "fail, still down" not in plain
    every_ten = run(tokens, Policy(repeat_down_every=timedelta(minutes=10))).log
    # down at the 3rd failure (minute 3), reminders at minutes 13 and 23
    assert [i for i, entry in enumerate(every_ten) if "down" in entry] == [3, 13, 23]


# -- properties -------------------------------------------------------------------

tokens = st.lists(st.sampled_from(["A", "B", "C", "0", "x"]), max_size=40)
policies = st.builds(
    Policy,
    confirm_polls=st.integers(1, 3),
    allow_empty=st.booleans(),
    alert_after_failures=st.integers(1, 4),
)


@settings(max_examples=300)
@given(tokens, policies)
def test_failures_never_change_the_list(sequence: list[str], policy: Policy) -> None:
    result = run(" ".join(sequence), policy) if sequence else Run([], [])
    for token, decision in zip(sequence, result.decisions, strict=True):
        if token == "x" or not decision.ok:
            assert not decision.changed and not decision.baseline


@settings(max_examples=300)
@given(tokens, policies)
def test_each_real_change_is_alerted_exactly_once(sequence: list[str], policy: Policy) -> None:
    if not sequence:
        return
    result = run(" ".join(sequence), policy)
    good = []  # the lists of the polls stored as good, in order
    confirmed = None
    for token, decision in zip(sequence, result.decisions, strict=True):
        if decision.ok:
            good.append(token)
        if decision.changed:
            # what is alerted was seen in the last confirm_polls good polls, and is new
            assert good[-policy.confirm_polls :] == [token] * policy.confirm_polls
            assert decision.change_from == confirmed != token
        if decision.baseline or decision.changed:
            confirmed = token
        assert decision.state.confirmed_digest == confirmed
    # a list that held for confirm_polls good polls at the end is the confirmed one
    tail = good[-policy.confirm_polls :]
    if len(tail) == policy.confirm_polls and len(set(tail)) == 1:
        assert confirmed == tail[0]
    # without allow_empty, a list never empties by a change: that is a failed poll
    if not policy.allow_empty:
        for d in result.decisions:
            if d.changed and d.state.confirmed_digest == "0":
                assert d.change_from is None or COUNTS[d.change_from] == 0


@settings(max_examples=300)
@given(tokens, policies)
def test_one_down_and_one_recovery_per_long_outage(sequence: list[str], policy: Policy) -> None:
    if not sequence:
        return
    result = run(" ".join(sequence), policy)
    streaks, current = [], 0  # lengths of runs of polls stored as failed
    recovered_after = 0
    for decision in result.decisions:
        if not decision.ok:
            current += 1
        else:
            if current >= policy.alert_after_failures:
                recovered_after += 1
            if current:
                streaks.append(current)
            current = 0
    if current:
        streaks.append(current)
    downs = sum(1 for d in result.decisions if d.down is not None)
    assert downs == sum(1 for s in streaks if s >= policy.alert_after_failures)
    assert sum(1 for d in result.decisions if d.recovered is not None) == recovered_after
