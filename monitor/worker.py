"""One poll of one target, end to end: fetch, store, compare, alert.

Collaborators are passed in (HTTP client, store, sender, clock), so the same
function serves ``monitor check``, the daemon and the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
import structlog

from monitor.config import Secret, Target
from monitor.diff import ModelDiff, diff_models
from monitor.errors import FetchError
from monitor.fetch import Fetched, fetch_models
from monitor.notify import Delivery, Sender, change_message
from monitor.store import ChangeRecord, SnapshotRecord, Store

log = structlog.get_logger("monitor.poll")


@dataclass(frozen=True)
class PollResult:
    """What one poll did, for the caller to report."""

    target: str
    snapshot: SnapshotRecord
    change: ChangeRecord | None
    deliveries: tuple[Delivery, ...]
    baseline: bool  # the target's first good poll: recorded, not compared

    @property
    def ok(self) -> bool:
        return self.snapshot.ok


def poll_target(
    target: Target,
    *,
    client: httpx.Client,
    api_key: Secret | None,
    store: Store,
    sender: Sender,
    notify_urls: Sequence[str],
    now: Callable[[], datetime],
) -> PollResult:
    started = time.monotonic()
    fetched_at = now()
    fetched: Fetched | None = None
    error: FetchError | None = None
    try:
        fetched = fetch_models(client, target, api_key)
    except FetchError as exc:
        error = exc
    duration_ms = int((time.monotonic() - started) * 1000)
    status = fetched.status if fetched is not None else error.status if error else None
    if fetched is not None:
        for warning in fetched.warnings:
            log.warning("model list warning", target=target.name, warning=warning)

    change: ChangeRecord | None = None
    diff: ModelDiff | None = None
    with store.transaction() as tx:
        baseline = tx.latest_good(target.name) if fetched is not None else None
        snapshot = tx.add_snapshot(
            target=target.name,
            fetched_at=fetched_at,
            ok=fetched is not None,
            http_status=status,
            error=error.reason if error is not None else None,
            duration_ms=duration_ms,
            models=fetched.models if fetched is not None else None,
        )
        if (
            fetched is not None
            and baseline is not None
            and baseline.list_digest != fetched.models.digest
            and baseline.snapshot.model_list_id is not None
        ):
            previous = tx.model_ids(baseline.snapshot.model_list_id)
            diff = diff_models(previous, fetched.models.ids)
            if diff:
                change = tx.add_change(
                    target=target.name,
                    detected_at=fetched_at,
                    from_snapshot_id=baseline.snapshot.id,
                    to_snapshot_id=snapshot.id,
                    added=sorted(diff.added),
                    removed=sorted(diff.removed),
                )

    if error is not None:
        log.warning(
            "poll failed",
            target=target.name,
            snapshot_id=snapshot.id,
            status=error.status,
            error=error.reason,
            duration_ms=duration_ms,
        )
    else:
        log.info(
            "poll ok",
            target=target.name,
            snapshot_id=snapshot.id,
            status=snapshot.http_status,
            model_count=snapshot.model_count,
            duration_ms=duration_ms,
            baseline=baseline is None,
        )

    deliveries: tuple[Delivery, ...] = ()
    if change is not None and diff is not None:
        log.info(
            "models changed",
            target=target.name,
            event_id=change.id,
            added=list(change.added),
            removed=list(change.removed),
        )
        message = change_message(target.name, diff, fetched_at)
        deliveries = tuple(sender.send(url, message) for url in notify_urls)
        for delivery in deliveries:
            if delivery.ok:
                log.info("alert sent", target=target.name, event_id=change.id, url=delivery.url)
            else:
                log.error(
                    "alert failed",
                    target=target.name,
                    event_id=change.id,
                    url=delivery.url,
                    error=delivery.error,
                )
        if not notify_urls:
            log.warning("change not alerted: no notification URLs", target=target.name)
    return PollResult(
        target=target.name,
        snapshot=snapshot,
        change=change,
        deliveries=deliveries,
        baseline=fetched is not None and baseline is None,
    )
