"""The daemon's jobs (monitor.daemon.Daemon) in-process, against the real provider and
database, with a fake sender and a clock the tests move: what a reload keeps, when the
first polls go. ``monitor run`` as a process is tested in tests/e2e/test_daemon.py
(hence this file's name)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fakes import T0, Clock, FakeSender, RefusingStore
from servers import ProviderServer
from structlog.testing import capture_logs

from monitor.config import Config, parse_config
from monitor.daemon import Daemon, first_poll
from monitor.store import Store

HOOK_A = "json://hooks.example/a"
HOOK_B = "json://hooks.example/b"


def config(provider: ProviderServer, urls: list[str], **target: Any) -> Config:
    return parse_config(
        {
            "notify": {"urls": urls},
            "targets": [
                {"name": "dos-ai", "base_url": provider.base_url, "interval": 60, **target}
            ],
        },
        path=None,
        environ={},
    )


def make_daemon(
    cfg: Config,
    store: Any,
    client: httpx.Client,
    sender: FakeSender,
    clock: Clock,
    stop_timeout: float = 10.0,
) -> Daemon:
    return Daemon(
        cfg,
        store=store,
        client=client,
        sender=sender,
        keys={t.name: None for t in cfg.targets},
        now=clock,
        stop_timeout=stop_timeout,
    )


def test_a_sent_alert_the_database_did_not_record_survives_a_reload_and_goes_once(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    provider.api_key = None
    clock, sender = Clock(), FakeSender()
    refusing = RefusingStore(store)
    daemon = make_daemon(config(provider, [HOOK_A]), refusing, client, sender, clock)
    daemon.poll("dos-ai")  # the baseline
    provider.set_ids(["dos-ai", "kimi-k2"])
    clock.advance(minutes=1)
    refusing.refuse = 1

    daemon.poll("dos-ai")  # the change: sent, and its record refused

    assert sender.urls == [HOOK_A]
    (delivery,) = store.deliveries()[0]
    assert delivery.status == "pending"
    daemon.apply(config(provider, [HOOK_A, HOOK_B], interval=120), {"dos-ai": None})
    clock.advance(minutes=3)  # the lease has run out: only the kept outcome holds it back
    daemon.retry_deliveries()

    assert sender.urls == [HOOK_A]
    sent = store.delivery(delivery.id)
    assert (sent.status, sent.attempts) == ("sent", 1)


def alert_sent_unrecorded(
    provider: ProviderServer, store: Store, client: httpx.Client, refuse: int, stop: float
) -> tuple[Daemon, FakeSender, int]:
    """A daemon that sent a change's alert while the database refused ``refuse`` writes."""
    provider.api_key = None
    clock, sender = Clock(), FakeSender()
    refusing = RefusingStore(store)
    daemon = make_daemon(config(provider, [HOOK_A]), refusing, client, sender, clock, stop)
    daemon.poll("dos-ai")
    provider.set_ids(["dos-ai", "kimi-k2"])
    clock.advance(minutes=1)
    refusing.refuse = refuse
    daemon.poll("dos-ai")
    (delivery,) = store.deliveries()[0]
    assert (delivery.status, sender.urls) == ("pending", [HOOK_A])
    return daemon, sender, delivery.id


def test_at_shutdown_the_daemon_writes_a_send_the_database_missed(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    daemon, sender, delivery_id = alert_sent_unrecorded(provider, store, client, 3, 10.0)
    daemon._shutdown()  # retries once a second while the stop timeout lasts
    assert store.delivery(delivery_id).status == "sent"
    assert sender.urls == [HOOK_A]


def test_at_shutdown_a_send_still_unrecorded_is_logged_as_sent(
    provider: ProviderServer, store: Store, client: httpx.Client
) -> None:
    daemon, _, delivery_id = alert_sent_unrecorded(provider, store, client, 10**6, 0.2)
    with capture_logs() as logs:
        daemon._shutdown()  # bounded by the stop timeout, not by the lease
    (error,) = [e for e in logs if e["log_level"] == "error"]
    assert error["event"].startswith(
        f"stopping with the alert of delivery {delivery_id} to {HOOK_A} WAS sent, but the "
        "database did not record it"
    )
    assert store.delivery(delivery_id).status == "pending"


@pytest.mark.parametrize(
    ("ago", "interval", "after", "reason"),
    [
        pytest.param(None, 300, 0, "not polled before", id="never"),
        pytest.param(20, 300, 220, "polled 20s ago; interval 5m", id="recent-waits"),
        pytest.param(239, 300, 1, "polled 3m 59s ago; interval 5m", id="just-inside"),
        pytest.param(240, 300, 0, "polled 4m ago; interval 5m", id="80-percent-now"),
        pytest.param(3600, 300, 0, "polled 1h ago; interval 5m", id="long-ago"),
        pytest.param(-30, 60, 78, "polled 0s ago; interval 1m", id="clock-behind"),
    ],
)
def test_the_first_poll_goes_when_the_replica_rule_lets_it(
    ago: float | None, interval: float, after: float, reason: str
) -> None:
    now = T0 + timedelta(hours=5)
    last = None if ago is None else now - timedelta(seconds=ago)
    assert first_poll(now, last, interval) == (now + timedelta(seconds=after), reason)
