"""The alert state machine of one target. Pure: a state and a poll in, a decision out.

It decides three things from each poll:

- whether a good answer is really good: an empty list from a target whose
  confirmed list was not empty is a failure ("empty model list") unless the
  target allows empty lists;
- whether the model list changed: a new list becomes the confirmed baseline
  only after it was seen in ``confirm_polls`` consecutive good polls (failed
  polls in between neither count nor reset); a list that comes back to the
  confirmed one before that raises nothing;
- whether the target is down or back: after ``alert_after_failures``
  consecutive failures one "down" alert (again every ``repeat_down_every`` if
  set), and one "recovered" alert at the first good poll after it.

No database, clock or network here: time comes in with the poll.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

EMPTY_LIST_ERROR = "empty model list (set allow_empty = true if this target may list none)"


@dataclass(frozen=True)
class Policy:
    """A target's alert settings."""

    confirm_polls: int = 1
    allow_empty: bool = False
    alert_after_failures: int = 3
    repeat_down_every: timedelta | None = None


@dataclass(frozen=True)
class TargetState:
    """What the machine remembers between polls of one target."""

    confirmed_digest: str | None = None  # the baseline list; None before the first good poll
    confirmed_count: int = 0  # models in the baseline list
    candidate_digest: str | None = None  # a new list waiting for confirmation
    candidate_seen: int = 0  # consecutive good polls that returned it
    failures: int = 0  # consecutive failed polls
    failing_since: datetime | None = None  # first failure of the current streak
    last_error: str | None = None
    down_alerted_at: datetime | None = None  # set while a down alert stands


@dataclass(frozen=True)
class Poll:
    """One poll as the machine sees it."""

    at: datetime
    digest: str | None  # what is compared (the IDs' digest); None for a failed poll
    count: int = 0  # models in the list
    error: str | None = None  # why it failed


@dataclass(frozen=True)
class Down:
    since: datetime  # the first failure of the streak
    failures: int
    error: str
    repeat: bool  # a reminder, not the first alert


@dataclass(frozen=True)
class Recovered:
    since: datetime  # when the outage began
    duration: timedelta


@dataclass(frozen=True)
class Decision:
    state: TargetState
    error: str | None = None  # the stored error of a failed poll
    baseline: bool = False  # first good poll: the list becomes the baseline, no alert
    change_from: str | None = None  # set when a change is confirmed: the old baseline digest
    down: Down | None = None
    recovered: Recovered | None = None

    @property
    def ok(self) -> bool:
        """Whether the poll is stored as good."""
        return self.error is None

    @property
    def changed(self) -> bool:
        return self.change_from is not None


def step(state: TargetState, poll: Poll, policy: Policy) -> Decision:
    """The decision for one poll, and the state after it."""
    error = poll.error
    if (
        poll.digest is not None
        and poll.count == 0
        and not policy.allow_empty
        and state.confirmed_digest is not None
        and state.confirmed_count > 0
    ):
        error = EMPTY_LIST_ERROR
    if poll.digest is None or error is not None:
        return _failed(state, poll.at, error or "failed poll", policy)
    return _good(state, poll, policy)


def _failed(state: TargetState, at: datetime, error: str, policy: Policy) -> Decision:
    failures = state.failures + 1
    since = state.failing_since or at
    state = replace(state, failures=failures, failing_since=since, last_error=error)
    down = None
    if state.down_alerted_at is None:
        if failures >= policy.alert_after_failures:
            down = Down(since=since, failures=failures, error=error, repeat=False)
    elif policy.repeat_down_every is not None and at - state.down_alerted_at >= (
        policy.repeat_down_every
    ):
        down = Down(since=since, failures=failures, error=error, repeat=True)
    if down is not None:
        state = replace(state, down_alerted_at=at)
    return Decision(state=state, error=error, down=down)


def _good(state: TargetState, poll: Poll, policy: Policy) -> Decision:
    recovered = None
    if state.down_alerted_at is not None and state.failing_since is not None:
        recovered = Recovered(since=state.failing_since, duration=poll.at - state.failing_since)
    state = replace(state, failures=0, failing_since=None, last_error=None, down_alerted_at=None)
    if state.confirmed_digest is None:
        state = replace(state, confirmed_digest=poll.digest, confirmed_count=poll.count)
        return Decision(state=state, baseline=True, recovered=recovered)
    if poll.digest == state.confirmed_digest:
        state = replace(state, candidate_digest=None, candidate_seen=0)
        return Decision(state=state, recovered=recovered)
    seen = state.candidate_seen + 1 if poll.digest == state.candidate_digest else 1
    if seen < policy.confirm_polls:
        state = replace(state, candidate_digest=poll.digest, candidate_seen=seen)
        return Decision(state=state, recovered=recovered)
    previous = state.confirmed_digest
    state = replace(
        state,
        confirmed_digest=poll.digest,
        confirmed_count=poll.count,
        candidate_digest=None,
        candidate_seen=0,
    )
    return Decision(state=state, change_from=previous, recovered=recovered)
