"""Retrying a poll after transient failures (monitor/fetch.py: fetch_with_retries).

Every case talks to the real local provider (the ``provider`` fixture): its
``queue`` holds one-off answers served before the model list. ``sleep`` is
injected and only records the waits, and ``now`` is a fixed moment, so no test
really waits.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from builders import make_target
from servers import SEED_KEY, SEED_MODELS, Answer, ProviderServer, free_port

from monitor.config import Secret, Target
from monitor.errors import FetchError
from monitor.fetch import (
    MAX_RETRY_AFTER,
    Fetched,
    fetch_with_retries,
    parse_retry_after,
)

KEY = Secret(SEED_KEY)
SEED_IDS = sorted(m["id"] for m in SEED_MODELS)
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def error(status: int, message: str = "upstream trouble", **headers: str) -> Answer:
    body = json.dumps({"error": {"message": message}}).encode()
    return Answer(status, body, headers=dict(headers))


@pytest.fixture
def target(provider: ProviderServer) -> Target:
    return make_target(provider.base_url)


class RetryingFetcher:
    """Calls fetch_with_retries with a recording sleep and a fixed clock."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.sleeps: list[float] = []

    def __call__(self, target: Target, api_key: Secret | None = KEY) -> Fetched:
        return fetch_with_retries(
            self.client, target, api_key, sleep=self.sleeps.append, now=lambda: NOW
        )

    def fails(self, target: Target, api_key: Secret | None = KEY) -> FetchError:
        with pytest.raises(FetchError) as caught:
            self(target, api_key)
        return caught.value


@pytest.fixture
def poll(client: httpx.Client) -> RetryingFetcher:
    return RetryingFetcher(client)


# -- transient failures are retried ---------------------------------------------


def test_two_server_errors_then_the_list_is_a_good_poll(
    provider: ProviderServer, target: Target, poll: RetryingFetcher
) -> None:
    provider.queue = [error(500), error(502)]
    fetched = poll(target)
    assert sorted(m.id for m in fetched.models.models) == SEED_IDS
    assert fetched.status == 200
    assert poll.sleeps == [0.5, 1.0]
    assert len(provider.requests) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599], ids=lambda s: f"HTTP-{s}")
def test_every_5xx_is_retried(
    provider: ProviderServer, target: Target, poll: RetryingFetcher, status: int
) -> None:
    provider.queue = [error(status)]
    assert sorted(m.id for m in poll(target).models.models) == SEED_IDS
    assert poll.sleeps == [0.5]
    assert len(provider.requests) == 2


def test_a_5xx_that_lasts_fails_the_poll_after_all_tries(
    provider: ProviderServer, target: Target, poll: RetryingFetcher
) -> None:
    provider.queue = [error(500), error(503), error(500, "still broken")]
    exc = poll.fails(target)
    assert exc.reason == "HTTP 500: server error (still broken)"  # the last answer is reported
    assert exc.status == 500
    assert poll.sleeps == [0.5, 1.0]
    assert len(provider.requests) == 3


@pytest.mark.parametrize(
    ("retries", "sleeps"),
    [
        pytest.param(0, [], id="retries=0-one-try"),
        pytest.param(1, [0.5], id="retries=1"),
        pytest.param(3, [0.5, 1.0, 2.0], id="retries=3-doubling"),
    ],
)
def test_retries_sets_how_many_extra_tries(
    provider: ProviderServer,
    target: Target,
    poll: RetryingFetcher,
    retries: int,
    sleeps: list[float],
) -> None:
    provider.answer = error(503)
    exc = poll.fails(dataclasses.replace(target, retries=retries))
    assert exc.status == 503
    assert poll.sleeps == sleeps
    assert len(provider.requests) == retries + 1


def test_a_timeout_is_retried(
    provider: ProviderServer, target: Target, poll: RetryingFetcher
) -> None:
    # the first answer stalls far past the timeout; the retry, answered at once, has the
    # whole second to arrive (the test does not wait for the stalled answer)
    provider.queue = [Answer(delay=30)]
    fetched = poll(dataclasses.replace(target, timeout=1.0))
    assert sorted(m.id for m in fetched.models.models) == SEED_IDS
    assert poll.sleeps == [0.5]
    assert len(provider.requests) == 2


def test_a_refused_connection_is_tried_retries_plus_one_times(
    target: Target, poll: RetryingFetcher
) -> None:
    nothing_there = dataclasses.replace(target, base_url=f"http://127.0.0.1:{free_port()}/v1")
    exc = poll.fails(nothing_there)
    assert exc.reason == "connection refused"
    assert poll.sleeps == [0.5, 1.0]  # three tries, two waits


def test_a_refused_connection_with_no_retries_fails_at_once(
    target: Target, poll: RetryingFetcher
) -> None:
    nothing_there = dataclasses.replace(
        target, base_url=f"http://127.0.0.1:{free_port()}/v1", retries=0
    )
    assert poll.fails(nothing_there).reason == "connection refused"
    assert poll.sleeps == []


# -- failures another try cannot fix are not retried ----------------------------


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(error(400), "HTTP 400: bad request", id="400"),
        pytest.param(error(401), "HTTP 401: authentication failed", id="401"),
        pytest.param(error(403), "HTTP 403: forbidden", id="403"),
        pytest.param(error(404), "HTTP 404: not found", id="404"),
        pytest.param(
            Answer(200, b"<html><body>Sign in</body></html>", "text/html"),
            "response is not JSON (text/html",
            id="html-page",
        ),
        pytest.param(
            Answer(200, b'{"models": []}'), 'JSON of the wrong shape: no "data" list', id="no-data"
        ),
        pytest.param(
            Answer(200, b'{"data": [{"name": "x"}]}'), 'data[0] has no "id"', id="entry-no-id"
        ),
    ],
)
def test_permanent_failures_are_not_retried(
    provider: ProviderServer, target: Target, poll: RetryingFetcher, answer: Answer, reason: str
) -> None:
    provider.queue = [answer]  # a second request would get the good list
    assert reason in poll.fails(target).reason
    assert poll.sleeps == []
    assert len(provider.requests) == 1


def test_a_wrong_key_is_not_retried(
    provider: ProviderServer, target: Target, poll: RetryingFetcher
) -> None:
    exc = poll.fails(target, Secret("dos_sk_wrong"))
    assert exc.status == 401
    assert poll.sleeps == []
    assert len(provider.requests) == 1


# -- 429: only when the provider says how long to wait, and not too long ---------


@pytest.mark.parametrize(
    ("retry_after", "waited"),
    [
        pytest.param("2", 2.0, id="seconds"),
        pytest.param(" 3 ", 3.0, id="seconds-with-spaces"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(str(int(MAX_RETRY_AFTER)), MAX_RETRY_AFTER, id="exactly-the-maximum"),
        pytest.param(
            format_datetime(NOW + timedelta(seconds=5), usegmt=True), 5.0, id="http-date-in-5s"
        ),
        pytest.param(
            format_datetime(NOW - timedelta(minutes=5), usegmt=True), 0.0, id="http-date-past"
        ),
    ],
)
def test_a_429_is_retried_after_its_retry_after(
    provider: ProviderServer, target: Target, poll: RetryingFetcher, retry_after: str, waited: float
) -> None:
    provider.queue = [error(429, "slow down", **{"Retry-After": retry_after})]
    assert sorted(m.id for m in poll(target).models.models) == SEED_IDS
    assert poll.sleeps == [pytest.approx(waited)]
    assert len(provider.requests) == 2


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-retry-after"),
        pytest.param({"Retry-After": str(int(MAX_RETRY_AFTER) + 1)}, id="over-the-maximum"),
        pytest.param({"Retry-After": "3600"}, id="an-hour"),
        pytest.param(
            {"Retry-After": format_datetime(NOW + timedelta(minutes=10), usegmt=True)},
            id="http-date-in-10min",
        ),
        pytest.param({"Retry-After": "soon"}, id="garbage"),
        # latin-1 "²" is a Unicode digit: the provider's header must not crash the poll
        pytest.param({"Retry-After": "\u00b2"}, id="superscript-two"),
    ],
)
def test_a_429_without_a_short_retry_after_fails_at_once(
    provider: ProviderServer, target: Target, poll: RetryingFetcher, headers: dict[str, str]
) -> None:
    provider.queue = [error(429, "slow down", **headers)]
    exc = poll.fails(target)
    assert "HTTP 429" in exc.reason
    assert exc.status == 429
    assert poll.sleeps == []
    assert len(provider.requests) == 1


def test_a_429_on_the_last_try_fails_the_poll(
    provider: ProviderServer, target: Target, poll: RetryingFetcher
) -> None:
    provider.answer = error(429, "slow down", **{"Retry-After": "1"})
    exc = poll.fails(target)
    assert exc.reason == "HTTP 429: rate limited (slow down)"
    assert poll.sleeps == [1.0, 1.0]
    assert len(provider.requests) == 3


def test_5xx_and_429_share_the_tries(
    provider: ProviderServer, target: Target, poll: RetryingFetcher
) -> None:
    provider.queue = [error(502), error(429, "slow down", **{"Retry-After": "4"})]
    assert sorted(m.id for m in poll(target).models.models) == SEED_IDS
    assert poll.sleeps == [0.5, 4.0]  # the 429's own wait replaces the backoff
    assert len(provider.requests) == 3


# -- parse_retry_after -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 5 ", 5.0, id="spaces-around"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0, id="date"),
        pytest.param("Sun, 01 Nov 2026 12:00:07 GMT", 7.0, id="date-literal"),
        pytest.param("Sun, 01 Nov 2026 12:00:07", 7.0, id="date-without-zone-is-utc"),
        pytest.param("Sun, 01 Nov 2026 13:00:07 +0100", 7.0, id="date-with-offset"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="date-in-the-past"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("", None, id="empty"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("\u00b2", None, id="superscript-digit"),
        pytest.param(None, None, id="no-header"),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds
