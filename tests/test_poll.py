"""One poll (monitor.poll): the pure decision as a table, then end to end against the
real provider and database."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import structlog
from builders import make_target, models
from fakes import FakeSender, PollRefusingStore
from servers import SEED_KEY, ProviderServer
from servers import Answer as ServerAnswer
from sqlalchemy import text

from monitor.alerts import EMPTY_LIST_ERROR, TargetState
from monitor.config import Secret, Target
from monitor.errors import StorageError
from monitor.fetch import ConditionalCache, Fetched
from monitor.modellist import ModelList
from monitor.notify.message import Message
from monitor.notify.outbox import Outbox
from monitor.notify.send import SendResult
from monitor.poll import Answer, Poller, PollResult, decide, poll_target
from monitor.store import Store, StoredState

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)

# -- the decision: a stored state and an answer in, a plan out ------------------------

WATCHED = make_target("http://127.0.0.1:9/v1", watch_fields=("pricing.prompt",))
A = models("a", "b", pricing={"prompt": "1"})
A_CHEAPER = models("a", "b", pricing={"prompt": "0.5"})
B = models("a", "c", pricing={"prompt": "1"})
DOWN_SINCE = T0 - timedelta(minutes=10)


def good(lst: ModelList, at: datetime = T1) -> Answer:
    return Answer(at, 5, 200, Fetched.parsed(200, lst, (), WATCHED))


def failed(at: datetime = T1) -> Answer:
    return Answer(at, 5, 503, error="HTTP 503: service unavailable")


def on(lst: ModelList | None, updated_at: datetime = T0, **state: Any) -> StoredState:
    """A target whose confirmed baseline (snapshot 7) is ``lst`` (None: never polled)."""
    if lst is None:
        return StoredState(TargetState(**state), None, None)
    confirmed = TargetState(confirmed_digest=good(lst).digest, confirmed_count=len(lst), **state)
    return StoredState(confirmed, 7, updated_at)


DOWN = {"failures": 3, "failing_since": DOWN_SINCE, "down_alerted_at": T0, "last_error": "x"}

# name, stored state, answer, confirm_polls, what the plan must say
DECISIONS = [
    ("first good poll: the baseline", on(None), good(A), 1,
     dict(ok=True, stored=True, baseline=True, rebase=True, compare_with=None, events=())),
    ("the same list: nothing to do", on(A), good(A), 1,
     dict(ok=True, stored=True, baseline=False, rebase=False, compare_with=None, events=())),
    ("another list: compared with the baseline", on(A), good(B), 1,
     dict(ok=True, stored=True, rebase=True, compare_with=7, events=())),
    ("a watched field changed: compared", on(A), good(A_CHEAPER), 1,
     dict(ok=True, rebase=True, compare_with=7)),
    ("another list seen once of two: waits", on(A), good(B), 2,
     dict(ok=True, stored=True, rebase=False, compare_with=None, candidate_seen=1)),
    ("seen twice of two: compared", on(A, candidate_digest=good(B).digest, candidate_seen=1),
     good(B), 2, dict(ok=True, rebase=True, compare_with=7, candidate_seen=0)),
    ("a failure below the threshold: no alert", on(A), failed(), 1,
     dict(ok=False, stored=False, error="HTTP 503: service unavailable", events=(),
          failures=1, rebase=False)),
    ("the third failure in a row: down", on(A, failures=2, failing_since=DOWN_SINCE), failed(),
     1, dict(ok=False, stored=False, events=(("down", DOWN_SINCE, 3),), failures=3)),
    ("a good poll after down: recovered", on(A, **DOWN), good(A), 1,
     dict(ok=True, stored=True, events=(("recovered", DOWN_SINCE, None),), failures=0,
          compare_with=None)),
    ("recovered with another list: both", on(A, **DOWN), good(B), 1,
     dict(ok=True, events=(("recovered", DOWN_SINCE, None),), compare_with=7, rebase=True)),
    ("an empty list after a full one: a failure", on(A), good(models()), 1,
     dict(ok=False, stored=False, error=EMPTY_LIST_ERROR, compare_with=None, failures=1)),
    ("older than the stored state: history only", on(A, updated_at=T1 + timedelta(seconds=1)),
     good(B), 1, dict(ok=True, stored=True, stale=True, compare_with=None, rebase=False,
                      failures=0)),
    ("a stale failure moves nothing either", on(A, updated_at=T1 + timedelta(seconds=1)),
     failed(), 1, dict(ok=False, stale=True, events=(), failures=0)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stored", "answer", "confirm_polls", "expected"),
    [row[1:] for row in DECISIONS],
    ids=[row[0] for row in DECISIONS],
)
def test_decide(
    stored: StoredState, answer: Answer, confirm_polls: int, expected: dict[str, object]
) -> None:
    plan = decide(replace(WATCHED, confirm_polls=confirm_polls), stored, answer)
    seen = {
        "ok": plan.ok,
        "error": plan.error,
        "stored": plan.listed is not None and plan.listed is answer.fetched,
        "baseline": plan.baseline,
        "rebase": plan.rebase,
        "compare_with": plan.compare_with,
        "stale": plan.stale,
        "events": tuple((e.kind, e.since, e.failures) for e in plan.events),
        "failures": plan.decision.state.failures,
        "candidate_seen": plan.decision.state.candidate_seen,
    }
    assert {key: seen[key] for key in expected} == expected
    if plan.stale:
        assert plan.decision.state == stored.state


def test_decide_writes_the_alert_of_each_event_it_plans() -> None:
    plan = decide(WATCHED, on(A, failures=2, failing_since=DOWN_SINCE), failed())
    (down,) = plan.events
    assert "dos-ai" in down.message.title
    assert "HTTP 503: service unavailable" in down.message.body
    assert down.error == "HTTP 503: service unavailable"


# -- end to end ------------------------------------------------------------------------


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


def test_a_bug_working_out_what_is_compared_is_a_failed_poll(
    provider: ProviderServer, store: Store, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest of the watched fields is taken of a provider's values: a bug met there
    is this poll's failure, recorded and counted toward "down", not a poll left out."""
    import monitor.fetch

    def bug(*_: object) -> str:
        raise RuntimeError("a bug in the digest")

    monkeypatch.setattr(monitor.fetch, "watch_digest", bug)
    with structlog.testing.capture_logs() as logs:
        result = poll(provider, store, client, T0)
    assert not result.ok and result.failures == 1
    assert result.snapshot.error == "internal error: RuntimeError"
    assert [s.error for s in store.history()] == ["internal error: RuntimeError"]
    assert any(e["log_level"] == "error" and "exc_info" in e for e in logs)


# -- the Poller: turn, poll, deliver -----------------------------------------------------


class RaisingSender(FakeSender):
    def send(self, url: str, message: Message) -> SendResult:
        super().send(url, message)
        raise RuntimeError("a bug in a sender")


def poller(store: Store, client: httpx.Client, sender: FakeSender, at: datetime) -> Poller:
    outbox = Outbox(store, sender, [HOOK], now=lambda: at)
    return Poller(store=store, client=client, outbox=outbox, now=lambda: at)


HOOK = "json://127.0.0.1:9/"
KEY = Secret(SEED_KEY)


def test_the_poller_polls_records_and_sends_what_the_poll_queued(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    sender, seen = FakeSender(), []
    dos = target(provider)

    def observe(result: PollResult) -> None:  # the poll is seen before its alerts go
        seen.append((result.snapshot.id, len(sender.calls)))

    first = poller(store, client, sender, T0).poll(dos, Secret(SEED_KEY), [HOOK], observe=observe)
    assert first is not None and first.result is not None and first.result.baseline
    provider.set_ids(["dos-ai", "kimi-k2"])
    later = poller(store, client, sender, T0 + timedelta(minutes=1))
    second = later.poll(dos, Secret(SEED_KEY), [HOOK], observe=observe)
    assert second is not None and second.result is not None
    assert second.result.change is not None
    assert [(o.delivery.url, o.ok) for o in second.sent] == [("json://127.0.0.1:9/", True)]
    assert seen == [(first.result.snapshot.id, 0), (second.result.snapshot.id, 0)]
    assert sender.urls == [HOOK]


def test_a_scheduled_poll_leaves_a_target_polled_moments_ago(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    dos = target(provider)  # every 60 s: a scheduled poll skips it for 48 s after a poll
    assert poller(store, client, FakeSender(), T0).poll(dos, KEY, []) is not None
    soon = poller(store, client, FakeSender(), T0 + timedelta(seconds=30))
    assert soon.poll(dos, KEY, [], scheduled=True) is None
    assert soon.poll(dos, KEY, []) is not None  # asked for (monitor check): polled
    later = poller(store, client, FakeSender(), T0 + timedelta(seconds=90))
    assert later.poll(dos, KEY, [], scheduled=True) is not None
    assert [s.ok for s in store.history()] == [True, True, True]


def test_a_poll_the_database_does_not_take_is_reported_not_recorded(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    away = PollRefusingStore(store, away=True)
    polled = poller(away, client, FakeSender(), T0).poll(target(provider), None, [])
    assert polled is not None and polled.result is None and not polled.bug
    assert polled.not_recorded == "database error: connection refused"


def test_a_bug_past_the_poll_is_reported_not_recorded_and_logged_once(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    class BuggyTurns(Store):
        def poll_turn(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug in taking turns")

    with structlog.testing.capture_logs() as logs:
        polled = poller(BuggyTurns(store.engine), client, FakeSender(), T0).poll(
            target(provider), None, []
        )
    assert polled is not None and polled.result is None and polled.bug
    assert polled.not_recorded == "internal error: RuntimeError"
    assert [e["event"] for e in logs if "exc_info" in e] == [
        "unexpected error in poll, not recorded"
    ]


def test_a_sender_that_raises_leaves_the_poll_recorded_and_its_alert_pending(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    dos = target(provider)
    assert poller(store, client, FakeSender(), T0).poll(dos, KEY, [HOOK]) is not None
    provider.set_ids(["dos-ai", "kimi-k2"])
    with structlog.testing.capture_logs() as logs:
        polled = poller(store, client, RaisingSender(), T0 + timedelta(minutes=1)).poll(
            dos, KEY, [HOOK]
        )
    assert polled is not None and polled.result is not None and polled.result.change
    assert polled.sent == ()
    assert store.count_pending() == 1  # the outbox job (or the next run) sends it
    (logged,) = [e for e in logs if "exc_info" in e]
    assert logged["event"].startswith("unexpected error sending alerts")
    assert logged["target"] == "dos-ai"


# -- answers seen before -----------------------------------------------------------------


def test_a_new_process_recognises_an_unchanged_answer_without_reading_it(
    provider: ProviderServer, store: Store, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an answer was is kept in the database by digests: the next process (a
    `monitor check` run, a restarted daemon) stores the same answer again by pointing at
    its list, without parsing it or building a model object."""
    first = poll(provider, store, client, T0, cache=ConditionalCache())
    assert set(store.known_answers()) == {"dos-ai"}
    built: list[object] = []
    monkeypatch.setattr(ModelList, "from_models", lambda *a: built.append(a))
    fresh = ConditionalCache(store.known_answers())  # a new process
    again = poll(provider, store, client, T0 + timedelta(minutes=1), cache=fresh)
    assert built == []  # nothing read
    assert again.ok and again.change is None
    assert again.snapshot.model_list_id == first.snapshot.model_list_id
    assert again.snapshot.model_count == first.snapshot.model_count == 4


def test_an_answer_seen_before_whose_list_is_gone_is_read_again(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    first = poll(provider, store, client, T0, cache=ConditionalCache())
    with store.engine.begin() as connection:  # as if its list had been pruned since
        connection.execute(text("UPDATE known_answers SET list_digest = :d"), {"d": "0" * 64})
    with structlog.testing.capture_logs() as logs:
        again = poll(
            provider,
            store,
            client,
            T0 + timedelta(minutes=1),
            cache=ConditionalCache(store.known_answers()),
        )
    assert again.ok and again.snapshot.model_list_id == first.snapshot.model_list_id
    assert any("reading it again" in e["event"] for e in logs)
    assert store.known_answers()["dos-ai"].list_digest != "0" * 64


def test_validators_that_echo_the_key_are_remembered_but_never_stored(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    document = json.dumps({"data": [{"id": "a", "object": "model"}]}).encode()
    provider.answer = ServerAnswer(200, document, headers={"ETag": f'"{SEED_KEY}"'})
    cache = ConditionalCache()
    assert poll(provider, store, client, T0, cache=cache).ok
    known = cache.get("dos-ai")
    assert known is not None and known.etag == f'"{SEED_KEY}"'.encode()  # asked with it next
    stored = store.known_answers()["dos-ai"]
    assert (stored.etag, stored.body_digest) == (None, known.body_digest)
