"""One poll of one target, end to end, and the one sequence that runs it.

fetch → :func:`decide` (pure: a :class:`Plan` of what to write and what to send)
→ :func:`record` the plan in one short transaction (the snapshot, the change or
down/recovered event it found, one pending delivery per notification URL, the
target's alert state) → send its alerts from the outbox. A :class:`Poller` takes
the target's turn among replicas and runs that sequence; the daemon's jobs and
``monitor check`` both use it. Collaborators (HTTP client, store, outbox, clock)
are passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import httpx
import structlog

from monitor.alerts import Decision, Policy, Poll, step
from monitor.config import Secret, Target
from monitor.diff import ModelDiff, diff_lists, diff_models
from monitor.errors import FetchError, ListGoneError, MonitorError, StorageError
from monitor.fetch import ConditionalCache, Fetched, fetch_with_retries
from monitor.notify import Message, change_message, down_message, recovered_message
from monitor.notify.outbox import Outbox, Outcome, url_refs
from monitor.routing import Audience, Part, counts, still_at_json, still_served, window_end
from monitor.store import (
    ChangeRecord,
    SnapshotRecord,
    Store,
    StoredState,
    TargetEventRecord,
    Transaction,
)
from monitor.text import one_line

log = structlog.get_logger("monitor.poll")

# A scheduled poll is skipped when any process polled the target within this share of
# its interval (replicas: about one poll per interval in all).
SKIP_IF_POLLED_WITHIN = 0.8


@dataclass(frozen=True)
class Answer:
    """What asking the provider gave, as the decision needs it: a good answer (its
    list, or the digest of a list stored already) or why there is none."""

    at: datetime  # when the poll started
    duration_ms: int
    status: int | None  # HTTP status, when there was one
    fetched: Fetched | None = None  # None: a failed poll
    error: str | None = None

    @property
    def digest(self) -> str | None:
        """What is compared: the IDs, and the watched fields (None: a failed poll)."""
        return self.fetched.watched if self.fetched is not None else None

    def failed(self, error: str) -> Answer:
        """The same poll, failed with ``error`` (the status stays)."""
        return replace(self, fetched=None, error=error)


@dataclass(frozen=True)
class TargetEventPlan:
    """A down or recovered event to write, and its alert."""

    kind: str  # "down" or "recovered"
    since: datetime
    message: Message
    failures: int | None = None
    error: str | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class Plan:
    """What one poll means, decided from the target's stored state: what to write and
    what to send. No I/O made it, and none is in it."""

    ok: bool
    error: str | None  # the stored error of a failed poll
    listed: Fetched | None  # the answer whose list the snapshot points at: good polls only
    events: tuple[TargetEventPlan, ...]  # recovered, then down
    compare_with: int | None  # a confirmed change: the baseline snapshot to compare with
    baseline: bool  # the target's first good poll: stored, not compared
    rebase: bool  # this poll's snapshot becomes the confirmed baseline
    decision: Decision  # the state machine's (its state is saved unless stale)
    stale: bool  # an older poll recorded after a newer one: history, moves no state


def policy_of(target: Target) -> Policy:
    return Policy(
        confirm_polls=target.confirm_polls,
        allow_empty=target.allow_empty,
        alert_after_failures=target.alert_after_failures,
        repeat_down_every=(
            timedelta(seconds=target.repeat_down_every) if target.repeat_down_every else None
        ),
    )


def decide(target: Target, stored: StoredState, answer: Answer) -> Plan:
    """What ``answer`` means for a target whose stored state is ``stored``."""
    poll = Poll(
        at=answer.at,
        digest=answer.digest,
        count=answer.fetched.count if answer.fetched is not None else 0,
        error=answer.error,
    )
    stale = stored.updated_at is not None and stored.updated_at > answer.at
    if stale:
        # another process recorded a newer poll while this one was in flight: keep
        # this one as history, but it must not move the state backwards
        decision = Decision(state=stored.state, error=poll.error)
    else:
        decision = step(stored.state, poll, policy_of(target))
    events: list[TargetEventPlan] = []
    if (back := decision.recovered) is not None:
        events.append(
            TargetEventPlan(
                "recovered",
                back.since,
                recovered_message(
                    target.name, since=back.since, duration=back.duration, at=answer.at
                ),
                duration_s=back.duration.total_seconds(),
            )
        )
    if (down := decision.down) is not None:
        message = down_message(
            target.name,
            error=down.error,
            failures=down.failures,
            since=down.since,
            repeat=down.repeat,
        )
        events.append(
            TargetEventPlan("down", down.since, message, failures=down.failures, error=down.error)
        )
    compare = decision.changed and answer.fetched is not None
    return Plan(
        ok=decision.ok,
        error=decision.error,
        listed=answer.fetched if decision.ok else None,
        events=tuple(events),
        compare_with=stored.confirmed_snapshot_id if compare else None,
        baseline=decision.baseline,
        rebase=decision.baseline or decision.changed,
        decision=decision,
        stale=stale,
    )


@dataclass(frozen=True)
class PollResult:
    """What one poll recorded, for the caller to report and deliver."""

    target: str
    snapshot: SnapshotRecord
    change: ChangeRecord | None
    events: tuple[TargetEventRecord, ...]  # down or recovered
    delivery_ids: tuple[int, ...]  # queued in the outbox, not sent yet
    baseline: bool  # the target's first good poll: recorded, not compared
    failures: int = 0  # consecutive failed polls, this one included

    @property
    def ok(self) -> bool:
        return self.snapshot.ok


def record(
    store: Store,
    target: Target,
    answer: Answer,
    audience: Audience,
    refs: Mapping[str, tuple[str, str]],
    now: Callable[[], datetime] | None = None,
) -> PollResult:
    """Decide what the poll means and write it, in one transaction: the target's state
    is read under its lock, so two processes recording the same target take turns.
    ``audience``: who hears of what; ``refs``: its URLs as deliveries name them
    (``(hash, redacted)`` by URL); ``now``: the clock (digest windows)."""

    def refs_of(urls: Sequence[str]) -> list[tuple[str, str]]:
        return [refs[u] for u in urls]

    with store.transaction() as tx:
        stored = tx.target_state(target.name)
        plan = decide(target, stored, answer)
        snapshot = tx.add_snapshot(
            target=target.name,
            fetched_at=answer.at,
            ok=plan.ok,
            http_status=answer.status,
            error=plan.error,
            duration_ms=answer.duration_ms,
            models=plan.listed.models if plan.listed is not None else None,
            seen=plan.listed.seen if plan.listed is not None else None,
        )
        if answer.fetched is not None and answer.fetched.news:
            tx.save_known_answer(target.name, answer.fetched.known)
        # each alert, and where it goes: at once, or held for a digest
        messages: list[tuple[ChangeRecord | TargetEventRecord, Message, Part, dict[str, int]]]
        messages = []
        events: list[TargetEventRecord] = []
        for event in plan.events:
            written = tx.add_target_event(
                target=target.name,
                kind=event.kind,
                at=answer.at,
                since=event.since,
                failures=event.failures,
                error=event.error,
                duration_s=event.duration_s,
                snapshot_id=snapshot.id,
            )
            events.append(written)
            for part in audience.event_parts(event.kind):
                messages.append((written, event.message, part, {event.kind: 1}))
        change = None
        if plan.compare_with is not None:
            diff = _compare(tx, target, plan.compare_with, snapshot.id)
            if diff:
                # where each removed model is still listed, as the other targets' latest
                # good polls have it (read only when something was removed)
                served = (
                    still_served(diff.removed, tx.listed_now(audience.others))
                    if diff.removed and audience.others
                    else {}
                )
                change = tx.add_change(
                    target=target.name,
                    detected_at=answer.at,
                    from_snapshot_id=plan.compare_with,
                    to_snapshot_id=snapshot.id,
                    added=sorted(diff.added),
                    removed=sorted(diff.removed),
                    changed=diff.changed,
                    still_at=still_at_json(served),
                )
                for part in audience.change_parts(diff):
                    assert part.diff is not None
                    message = change_message(target.name, part.diff, answer.at, still_at=served)
                    messages.append((change, message, part, counts(part.diff)))
        delivery_ids: list[int] = []
        # a muted target's alerts are kept back (a query only when there are alerts)
        muted = bool(messages) and tx.muted(target.name, answer.at)
        for about, message, part, summary in messages:
            held = None  # muted: kept back until the mute ends, whatever the route says
            if part.digest is not None and not muted:
                # the window open now, as it is written (not when the poll began: a
                # window may have closed, and its digest gone, while it was in flight)
                held = window_end(now() if now is not None else answer.at, part.digest)
            queued = tx.add_deliveries(
                about,
                refs_of(part.urls),
                title=message.title,
                body=message.body,
                now=answer.at,
                held_until=held,
                summary=summary if held is not None or muted else None,
                muted=muted,
            )
            if held is None and not muted:  # the others go with their digest or summary
                delivery_ids += queued
        if not plan.stale:
            confirmed = snapshot.id if plan.rebase else stored.confirmed_snapshot_id
            tx.save_target_state(target.name, plan.decision.state, confirmed, answer.at)
    return PollResult(
        target=target.name,
        snapshot=snapshot,
        change=change,
        events=tuple(events),
        delivery_ids=tuple(delivery_ids),
        baseline=plan.baseline,
        failures=plan.decision.state.failures,
    )


def _compare(tx: Transaction, target: Target, baseline_id: int, snapshot_id: int) -> ModelDiff:
    """The confirmed baseline's list against this poll's, as stored: IDs, and the
    watched fields (read back only when a change is confirmed: most polls have none),
    of the models the target's ``include``/``exclude`` select, on both sides: a filter
    edited since the baseline changes what is compared, not what changed."""
    selected = target.model_filter
    if target.watch_fields:
        previous, current = tx.snapshot_models(baseline_id), tx.snapshot_models(snapshot_id)
        if selected:
            previous = {i: m for i, m in previous.items() if selected.passes(i)}
            current = {i: m for i, m in current.items() if selected.passes(i)}
        return diff_lists(previous, current, target.watch_fields)
    previous_ids, current_ids = (
        tx.snapshot_model_ids(baseline_id),
        tx.snapshot_model_ids(snapshot_id),
    )
    if selected:
        previous_ids, current_ids = selected.select(previous_ids), selected.select(current_ids)
    return diff_models(previous_ids, current_ids)


def poll_target(
    target: Target,
    *,
    client: httpx.Client,
    api_key: Secret | None,
    store: Store,
    notify_urls: Sequence[str] | Audience,
    now: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
    cache: ConditionalCache | None = None,
    after_commit: Callable[[], None] | None = None,
    refs: Callable[[Sequence[str]], list[tuple[str, str]]] = url_refs,
) -> PollResult:
    """Poll one target and record it. Whatever the provider sends, the poll is
    recorded: good, or failed with a reason that counts toward "down". Only a
    database that takes no write at all raises (a StorageError): then nothing
    was recorded.

    ``after_commit`` runs right after the poll's transaction commits, before anything
    is logged or sent: a seam for tests that crash or hang a process there. ``refs``
    names the notification URLs as deliveries do (:meth:`Outbox.refs` keeps them parsed
    once per config); they are worked out before the transaction, never under its lock."""
    at = now()
    answer = _ask(target, client, api_key, at=at, now=now, sleep=sleep, cache=cache)
    audience = Audience.of(notify_urls)
    urls = audience.urls
    notify = dict(zip(urls, refs(urls), strict=True))
    try:
        try:
            result = record(store, target, answer, audience, notify, now)
        except ListGoneError:
            # an answer seen before whose list was pruned since: read it again, whole
            log.info("answer seen before, its list no longer stored: reading it again")
            if cache is not None:
                cache.put(target.name, None)
            answer = _ask(target, client, api_key, at=at, now=now, sleep=sleep, cache=None)
            result = record(store, target, answer, audience, notify, now)
    except Exception as exc:
        if answer.fetched is None:
            raise  # even a failed poll cannot be written: the database is away
        # the list could not be compared or stored (a database refusing a value, a
        # bug): the poll is recorded as failed, so it counts toward "down"
        if isinstance(exc, StorageError):
            reason = f"not stored: {one_line(str(exc))}"
            log.error(
                "poll not stored; recorded as a failed poll", target=target.name, error=reason
            )
        else:
            reason = f"internal error: {type(exc).__name__}"
            log.exception(
                "unexpected error recording a poll; recorded as failed", target=target.name
            )
        if cache is not None:  # the answer is the one that could not be stored
            cache.put(target.name, None)
        result = record(store, target, answer.failed(reason), audience, notify, now)
    if after_commit is not None:
        after_commit()
    _log_result(target, result, answer.duration_ms, urls)
    return result


def _ask(
    target: Target,
    client: httpx.Client,
    api_key: Secret | None,
    *,
    at: datetime,
    now: Callable[[], datetime],
    sleep: Callable[[float], None],
    cache: ConditionalCache | None,
) -> Answer:
    """The provider's answer, good or failed: never raises."""
    started = time.monotonic()
    try:
        fetched = fetch_with_retries(client, target, api_key, sleep=sleep, now=now, cache=cache)
    except FetchError as exc:
        return Answer(at, _ms_since(started), exc.status, error=exc.reason)
    except Exception as exc:  # a bug met by some answer: a failed poll, not silence
        log.exception("unexpected error fetching; recorded as a failed poll", target=target.name)
        return Answer(at, _ms_since(started), None, error=f"internal error: {type(exc).__name__}")
    for warning in fetched.warnings:
        log.warning("model list warning", target=target.name, warning=warning)
    return Answer(at, _ms_since(started), fetched.status, fetched)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _log_result(
    target: Target, result: PollResult, duration_ms: int, notify_urls: Sequence[str]
) -> None:
    snapshot = result.snapshot
    facts = {
        "target": target.name,
        "snapshot_id": snapshot.id,
        "status": snapshot.http_status,
        "duration_ms": duration_ms,
    }
    if snapshot.ok:
        log.info("poll ok", **facts, model_count=snapshot.model_count, baseline=result.baseline)
    else:
        log.warning(
            "poll failed", **facts, error=snapshot.error, consecutive_failures=result.failures
        )
    change = result.change
    if change is not None:
        log.info(
            "models changed",
            target=target.name,
            event_id=change.id,
            added=list(change.added),
            removed=list(change.removed),
        )
    for event in result.events:
        log.warning(f"target {event.kind}", target=target.name, target_event_id=event.id)
    if (change is not None or result.events) and not notify_urls:
        log.warning("no notification URLs: nothing will be alerted", target=target.name)


@dataclass(frozen=True)
class Polled:
    """One turn of one target: what its poll recorded and the alerts sent right after,
    or why nothing was recorded."""

    target: Target
    result: PollResult | None  # None: not recorded (then not_recorded says why)
    sent: tuple[Outcome, ...] = ()
    not_recorded: str | None = None  # the database took no write, or a bug
    bug: bool = False  # not recorded because of a bug (logged with its traceback)


@dataclass(frozen=True, kw_only=True)
class Poller:
    """The poll sequence, the same for the daemon's jobs and ``monitor check``: take
    the target's turn among replicas → poll and record → send the alerts it queued
    (what is not sent now, the outbox retries). Each recorded poll is reported to
    ``observe`` before its alerts are sent. ``after_commit``: see :func:`poll_target`
    (tests only)."""

    store: Store
    client: httpx.Client
    outbox: Outbox
    now: Callable[[], datetime]
    cache: ConditionalCache | None = None  # the daemon's: ETag / Last-Modified per target
    after_commit: Callable[[], None] | None = None

    def poll(
        self,
        target: Target,
        api_key: Secret | None,
        notify_urls: Sequence[str] | Audience,
        *,
        scheduled: bool = False,
        observe: Callable[[PollResult], None] | None = None,
    ) -> Polled | None:
        """One turn of ``target``; None when it was not this process's turn.

        A scheduled poll gives up when another process polls the target now or polled
        it within :data:`SKIP_IF_POLLED_WITHIN` of its interval; any other poll waits
        for a replica polling it right now, then polls. Never raises: one target's
        trouble is its own."""
        min_gap = target.interval * SKIP_IF_POLLED_WITHIN if scheduled else None
        try:
            with self.store.poll_turn(
                target.name, now=self.now(), min_gap=min_gap, wait=not scheduled
            ) as mine:
                if not mine:
                    return None
                result = poll_target(
                    target,
                    client=self.client,
                    api_key=api_key,
                    store=self.store,
                    notify_urls=notify_urls,
                    now=self.now,
                    cache=self.cache,
                    after_commit=self.after_commit,
                    refs=self.outbox.refs,
                )
        except MonitorError as exc:
            # the database is away: nothing was recorded, so nothing is lost either;
            # the next poll after it is back compares with the last stored list
            return Polled(target, None, not_recorded=str(exc))
        except Exception as exc:  # a bug past what poll_target records itself
            log.exception("unexpected error in poll, not recorded", target=target.name)
            reason = f"internal error: {type(exc).__name__}"
            return Polled(target, None, not_recorded=reason, bug=True)
        if observe is not None:
            observe(result)
        if not result.delivery_ids:
            return Polled(target, result)
        try:
            sent = self.outbox.deliver(ids=result.delivery_ids, due_only=False)
        except Exception:  # committed: the outbox job or the next run retries them
            log.exception(
                "unexpected error sending alerts; they stay in the outbox", target=target.name
            )
            sent = []
        return Polled(target, result, tuple(sent))

    def poll_each(
        self,
        targets: Sequence[Target],
        keys: Mapping[str, Secret | None],
        urls: Callable[[Target], Sequence[str] | Audience],
        *,
        concurrency: int,
    ) -> list[Polled]:
        """Every target once, ``concurrency`` at a time (one shared HTTP client), each
        waiting for a replica polling it right now (so every turn is this process's);
        in the order given."""

        def turn(target: Target) -> Polled:
            polled = self.poll(target, keys[target.name], urls(target))
            assert polled is not None  # an unscheduled poll waits for its turn
            return polled

        workers = max(1, min(concurrency, len(targets)))
        with ThreadPoolExecutor(workers, thread_name_prefix="poll") as pool:
            # interrupted (Ctrl-C, a bug), map cancels what has not started
            return list(pool.map(turn, targets))
