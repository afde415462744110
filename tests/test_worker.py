"""One poll end to end (monitor.worker) against the real provider and database."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import structlog
from builders import make_target
from fakes import PollRefusingStore
from servers import SEED_KEY, ProviderServer

from monitor.config import Secret, Target
from monitor.errors import StorageError
from monitor.fetch import ConditionalCache
from monitor.store import Store
from monitor.worker import poll_target

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def target(provider: ProviderServer) -> Target:
    return make_target(provider.base_url, retries=0)


def poll(  # type: ignore[no-untyped-def]
    provider: ProviderServer,
    store: Store,
    client: httpx.Client,
    at: datetime,
    cache: ConditionalCache | None = None,
    after_commit: Callable[[], None] | None = None,
):
    return poll_target(
        target(provider),
        client=client,
        api_key=Secret(SEED_KEY),
        store=store,
        notify_urls=["json://127.0.0.1:9/"],
        now=lambda: at,
        cache=cache,
        after_commit=after_commit,
    )


def test_after_commit_runs_once_the_poll_and_its_alert_are_stored(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    """The tests' crash and hang point: by then another process sees the poll and the
    alert it queued."""
    seen: list[tuple[int, int]] = []

    def after_commit() -> None:
        seen.append((len(store.history()), store.count_pending()))

    assert poll(provider, store, client, T0).baseline
    provider.set_ids(["dos-ai", "kimi-k2"])
    result = poll(provider, store, client, T0 + timedelta(minutes=1), after_commit=after_commit)
    assert result.change is not None
    assert seen == [(2, 1)]


def test_a_poll_that_finishes_after_a_newer_one_does_not_move_the_baseline_back(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    assert poll(provider, store, client, T0).baseline
    provider.set_ids(["dos-ai", "kimi-k2"])
    newer = poll(provider, store, client, T0 + timedelta(minutes=2))
    assert newer.change is not None
    # a poll that started before the newer one but is recorded after it, with the old list
    provider.set_ids(["dos-ai", "llama-3.3-70b", "deepseek-v3", "llama-3.1-8b"])
    late = poll(provider, store, client, T0 + timedelta(minutes=1))
    assert late.ok and late.change is None and late.delivery_ids == ()
    assert len(store.changes()) == 1
    provider.set_ids(["dos-ai", "kimi-k2"])
    assert poll(provider, store, client, T0 + timedelta(minutes=3)).change is None


def test_two_processes_seeing_the_same_change_alert_it_once(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    assert poll(provider, store, client, T0).baseline
    provider.set_ids(["dos-ai", "kimi-k2"])
    results = []
    barrier = threading.Barrier(4)

    def run(i: int) -> None:
        barrier.wait()
        results.append(poll(provider, store, client, T0 + timedelta(minutes=1, seconds=i)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4 and all(r.ok for r in results)
    assert len(store.changes()) == 1
    assert sum(len(r.delivery_ids) for r in results) == 1


def test_a_304_is_a_good_unchanged_poll(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:

    cache = ConditionalCache()
    provider.etag = '"list-v1"'

    first = poll(provider, store, client, T0, cache)
    assert first.baseline and first.snapshot.http_status == 200
    second = poll(provider, store, client, T0 + timedelta(minutes=1), cache)
    assert provider.requests[-1]["headers"]["If-None-Match"] == '"list-v1"'
    assert second.ok and second.snapshot.http_status == 304
    assert second.snapshot.model_count == 4 and second.change is None
    assert second.snapshot.model_list_id == first.snapshot.model_list_id
    provider.set_ids(["dos-ai", "kimi-k2"])
    provider.etag = '"list-v2"'
    third = poll(provider, store, client, T0 + timedelta(minutes=2), cache)
    assert third.snapshot.http_status == 200 and third.change is not None
    assert third.change.added == ("kimi-k2",)


# -- whatever happens while polling, the poll is recorded -----------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param(
            StorageError("database error: unsupported Unicode escape sequence"),
            "not stored: database error: unsupported Unicode escape sequence",
            id="database-refuses-the-list",
        ),
        pytest.param(RecursionError("deep"), "internal error: RecursionError", id="a-bug"),
    ],
)
def test_a_list_that_cannot_be_recorded_is_a_failed_poll_that_counts_toward_down(
    fault: Exception, reason: str, provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    refusing = PollRefusingStore(store, fault)
    results = [
        poll_target(
            make_target(provider.base_url, retries=0, alert_after_failures=2),
            client=client,
            api_key=Secret(SEED_KEY),
            store=refusing,
            notify_urls=["json://127.0.0.1:9/"],
            now=lambda at=T0 + timedelta(minutes=i): at,  # type: ignore[misc]
        )
        for i in range(2)
    ]
    assert [r.ok for r in results] == [False, False]
    assert [r.snapshot.error for r in results] == [reason, reason]
    assert [r.snapshot.http_status for r in results] == [200, 200]
    assert [len(r.events) for r in results] == [0, 1]
    assert results[1].events[0].kind == "down"
    assert [s.error for s in store.history()] == [reason, reason]


def test_an_unexpected_error_while_fetching_is_a_failed_poll(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    def bug(response: httpx.Response) -> None:  # a bug met below the fetch, per answer
        raise RuntimeError("a bug somewhere below the fetch")

    client.event_hooks["response"] = [bug]
    with structlog.testing.capture_logs() as logs:
        result = poll(provider, store, client, T0)
    assert provider.requests  # the provider did answer
    assert not result.ok and result.failures == 1
    assert result.snapshot.error == "internal error: RuntimeError"
    assert any(e["log_level"] == "error" and "exc_info" in e for e in logs)
    assert store.history()[0].error == "internal error: RuntimeError"


def test_a_database_that_takes_no_write_raises_and_records_nothing(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    with pytest.raises(StorageError):
        poll_target(
            target(provider),
            client=client,
            api_key=Secret(SEED_KEY),
            store=PollRefusingStore(store, away=True),
            notify_urls=[],
            now=lambda: T0,
        )
    assert store.history() == []
