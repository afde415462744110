"""One poll of one target, end to end: fetch, decide, store, queue alerts.

The snapshot, the change or down/recovered event it found and one pending
delivery per notification URL are written in one transaction; sending happens
after the commit, from the outbox (:mod:`monitor.notify.outbox`). Collaborators
are passed in (HTTP client, store, clock), so the same function serves
``monitor check``, the daemon and the tests.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import structlog

from monitor.alerts import Decision, Policy, Poll, step
from monitor.config import Secret, Target
from monitor.diff import ModelDiff, diff_lists, diff_models, watch_digest
from monitor.errors import FetchError, StorageError
from monitor.fetch import ConditionalCache, Fetched, fetch_with_retries
from monitor.notify import Message, change_message, down_message, recovered_message
from monitor.notify.outbox import url_refs
from monitor.store import ChangeRecord, SnapshotRecord, Store, TargetEventRecord, Transaction
from monitor.text import one_line

log = structlog.get_logger("monitor.poll")


@dataclass(frozen=True)
class PollResult:
    """What one poll did, for the caller to report and deliver."""

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


def policy_of(target: Target) -> Policy:
    return Policy(
        confirm_polls=target.confirm_polls,
        allow_empty=target.allow_empty,
        alert_after_failures=target.alert_after_failures,
        repeat_down_every=(
            timedelta(seconds=target.repeat_down_every) if target.repeat_down_every else None
        ),
    )


def poll_target(
    target: Target,
    *,
    client: httpx.Client,
    api_key: Secret | None,
    store: Store,
    notify_urls: Sequence[str],
    now: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
    cache: ConditionalCache | None = None,
    after_commit: Callable[[], None] | None = None,
) -> PollResult:
    """Poll one target and record it. Whatever the provider sends, the poll is
    recorded: good, or failed with a reason that counts toward "down". Only a
    database that takes no write at all raises (a StorageError): then nothing
    was recorded.

    ``after_commit`` runs right after the poll's transaction commits, before anything
    is logged or sent: a seam for tests that crash or hang a process there."""
    started = time.monotonic()
    fetched_at = now()
    fetched: Fetched | None = None
    error: FetchError | None = None
    try:
        fetched = fetch_with_retries(client, target, api_key, sleep=sleep, now=now, cache=cache)
    except FetchError as exc:
        error = exc
    except Exception as exc:  # a bug met by some answer: a failed poll, not silence
        log.exception("unexpected error fetching; recorded as a failed poll", target=target.name)
        error = FetchError(f"internal error: {type(exc).__name__}")
    duration_ms = int((time.monotonic() - started) * 1000)
    if fetched is not None:
        for warning in fetched.warnings:
            log.warning("model list warning", target=target.name, warning=warning)
    record = functools.partial(
        _record,
        target,
        store=store,
        notify_urls=notify_urls,
        fetched_at=fetched_at,
        duration_ms=duration_ms,
    )
    try:
        result = record(fetched, error)
    except Exception as exc:
        if fetched is None:
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
        if cache is not None:  # the cached answer is the one that could not be stored
            cache.put(target.name, None)
        result = record(None, FetchError(reason, status=fetched.status))
    if after_commit is not None:
        after_commit()
    _log_result(target, result, duration_ms, notify_urls)
    return result


def _record(
    target: Target,
    fetched: Fetched | None,
    error: FetchError | None,
    *,
    store: Store,
    notify_urls: Sequence[str],
    fetched_at: datetime,
    duration_ms: int,
) -> PollResult:
    """Decide what the poll means, and write it (snapshot, events, deliveries) in
    one transaction."""
    poll = Poll(
        at=fetched_at,
        digest=(
            watch_digest(((m.id, m.data) for m in fetched.models.models), target.watch_fields)
            if fetched is not None
            else None
        ),
        count=len(fetched.models) if fetched is not None else 0,
        error=error.reason if error is not None else None,
    )
    with store.transaction() as tx:
        stored = tx.target_state(target.name)
        confirmed_id = stored.confirmed_snapshot_id
        stale = stored.updated_at is not None and stored.updated_at > fetched_at
        if stale:
            # another process recorded a newer poll while this one was in flight:
            # keep this one as history, but it must not move the state backwards
            decision = Decision(state=stored.state, error=poll.error)
        else:
            decision = step(stored.state, poll, policy_of(target))
        snapshot = tx.add_snapshot(
            target=target.name,
            fetched_at=fetched_at,
            ok=decision.ok,
            http_status=fetched.status if fetched is not None else error.status if error else None,
            error=decision.error,
            duration_ms=duration_ms,
            models=fetched.models if fetched is not None and decision.ok else None,
        )
        change, events, messages = _record_events(
            tx, target, decision, snapshot, confirmed_id, fetched
        )
        if decision.baseline or decision.changed:
            confirmed_id = snapshot.id
        delivery_ids = _queue(tx, target.name, notify_urls, messages, fetched_at)
        if not stale:
            tx.save_target_state(target.name, decision.state, confirmed_id, fetched_at)
    return PollResult(
        target=target.name,
        snapshot=snapshot,
        change=change,
        events=tuple(events),
        delivery_ids=tuple(delivery_ids),
        baseline=decision.baseline,
        failures=decision.state.failures,
    )


_EventMessages = list[tuple[ChangeRecord | TargetEventRecord, Message]]


def _record_events(
    tx: Transaction,
    watched: Target,
    decision: Decision,
    snapshot: SnapshotRecord,
    confirmed_id: int | None,
    fetched: Fetched | None,
) -> tuple[ChangeRecord | None, list[TargetEventRecord], _EventMessages]:
    target, at = watched.name, snapshot.fetched_at
    messages: _EventMessages = []
    events: list[TargetEventRecord] = []
    change: ChangeRecord | None = None
    if decision.recovered is not None:
        event = tx.add_target_event(
            target=target,
            kind="recovered",
            at=at,
            since=decision.recovered.since,
            duration_s=decision.recovered.duration.total_seconds(),
            snapshot_id=snapshot.id,
        )
        events.append(event)
        message = recovered_message(
            target, since=decision.recovered.since, duration=decision.recovered.duration, at=at
        )
        messages.append((event, message))
    if decision.down is not None:
        down = decision.down
        event = tx.add_target_event(
            target=target,
            kind="down",
            at=at,
            since=down.since,
            failures=down.failures,
            error=down.error,
            snapshot_id=snapshot.id,
        )
        events.append(event)
        message = down_message(
            target, error=down.error, failures=down.failures, since=down.since, repeat=down.repeat
        )
        messages.append((event, message))
    if decision.changed and fetched is not None and confirmed_id is not None:
        if watched.watch_fields:
            current = {m.id: m.data for m in fetched.models.models}
            previous = tx.snapshot_models(confirmed_id)
            diff: ModelDiff = diff_lists(previous, current, watched.watch_fields)
        else:
            diff = diff_models(tx.snapshot_model_ids(confirmed_id), fetched.models.ids)
        if diff:
            change = tx.add_change(
                target=target,
                detected_at=at,
                from_snapshot_id=confirmed_id,
                to_snapshot_id=snapshot.id,
                added=sorted(diff.added),
                removed=sorted(diff.removed),
                changed=diff.changed,
            )
            messages.append((change, change_message(target, diff, at)))
    return change, events, messages


def _queue(
    tx: Transaction,
    target: str,
    urls: Sequence[str],
    messages: _EventMessages,
    now: datetime,
) -> list[int]:
    if not messages:  # most polls: no need to parse the URLs (apprise) under the write lock
        return []
    refs = url_refs(urls)
    ids: list[int] = []
    for event, message in messages:
        is_change = isinstance(event, ChangeRecord)
        ids += tx.add_deliveries(
            target=target,
            urls=refs,
            title=message.title,
            body=message.body,
            now=now,
            change_event_id=event.id if is_change else None,
            target_event_id=None if is_change else event.id,
        )
    return ids


def _log_result(
    target: Target, result: PollResult, duration_ms: int, notify_urls: Sequence[str]
) -> None:
    snapshot = result.snapshot
    if snapshot.ok:
        log.info(
            "poll ok",
            target=target.name,
            snapshot_id=snapshot.id,
            status=snapshot.http_status,
            model_count=snapshot.model_count,
            duration_ms=duration_ms,
            baseline=result.baseline,
        )
    else:
        log.warning(
            "poll failed",
            target=target.name,
            snapshot_id=snapshot.id,
            status=snapshot.http_status,
            error=snapshot.error,
            duration_ms=duration_ms,
            consecutive_failures=result.failures,
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
