"""Fakes that implement the product's interfaces: a clock, a sender, stores that
refuse writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.errors import StorageError
from monitor.notify.message import Message
from monitor.notify.send import SendResult, redact_url
from monitor.store import SnapshotRecord, Store, Transaction

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class Clock:
    """``now`` for the outbox; moved by the test."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeSender:
    """A :class:`~monitor.notify.send.Sender` that records calls and fails on request.

    ``failing`` maps a URL to the error its sends report; ``hooks`` maps a URL to
    something to run (once) while that URL is being sent, before its result is known.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Message]] = []
        self.failing: dict[str, str] = {}
        self.hooks: dict[str, Callable[[], None]] = {}

    def send(self, url: str, message: Message) -> SendResult:
        self.calls.append((url, message))
        hook = self.hooks.pop(url, None)
        if hook is not None:
            hook()
        error = self.failing.get(url)
        return SendResult(redact_url(url), error is None, error, 7)

    @property
    def urls(self) -> list[str]:
        return [url for url, _ in self.calls]


class RefusingStore:
    """The real store, except that its writes fail as a database that went away or
    ran out of disk does: ``refuse`` more ``finish_delivery`` calls, or every write
    (claims, lease renewals, outcomes) while ``down``."""

    ERROR = "database error: disk I/O error"

    def __init__(self, store: Store) -> None:
        self._store = store
        self.refuse = 0
        self.down = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _check(self) -> None:
        if self.down:
            raise StorageError(self.ERROR)

    def claim_deliveries(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return self._store.claim_deliveries(*args, **kwargs)

    def renew_lease(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return self._store.renew_lease(*args, **kwargs)

    def finish_delivery(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        if self.refuse > 0:
            self.refuse -= 1
            raise StorageError(self.ERROR)
        return self._store.finish_delivery(*args, **kwargs)


class PollRefusingStore(Store):
    """The real store, except for recording polls: with ``fault`` set, recording a good
    poll raises it (a database refusing a list, as PostgreSQL refused U+0000, or a bug
    met while recording); with ``away``, every poll's transaction fails to begin, as on
    a database that takes no write at all."""

    def __init__(self, store: Store, fault: Exception | None = None, away: bool = False) -> None:
        super().__init__(store.engine)
        self.fault = fault
        self.away = away

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        if self.away:
            raise StorageError("database error: connection refused")
        with super().transaction() as tx:
            add = tx.add_snapshot

            def add_snapshot(**kwargs: Any) -> SnapshotRecord:
                if self.fault is not None and kwargs["models"] is not None:
                    raise self.fault
                return add(**kwargs)

            tx.add_snapshot = add_snapshot  # type: ignore[method-assign]
            yield tx
