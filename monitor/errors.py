"""The one error hierarchy of model-monitor.

Only these errors cross module boundaries; third-party errors (httpx, SQLAlchemy,
apprise, tomllib) are translated where they arise. The CLI turns any of them into
one line and an exit code.

    MonitorError                 base of everything we raise on purpose
    ├── ConfigError              the configuration file or a value in it is invalid
    ├── FetchError               a poll failed: network, HTTP status, body, shape
    └── StorageError             the database is unreachable, uninitialised or refused a write
        ├── NotFoundError        a snapshot or target named by the user does not exist
        └── ListGoneError        an answer seen before points at a list no longer stored

A notification that fails is not an error here: the sender reports it as a failed
``SendResult`` (monitor.notify), and the outbox retries it.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base class: raised on purpose by model-monitor, with a user-readable message."""


class ConfigError(MonitorError):
    """Raised when the configuration is invalid; the message names the key and value."""


class FetchError(MonitorError):
    """Raised when a poll fails; ``reason`` is short and readable, ``status`` the HTTP code.

    ``transient`` says another try may succeed (network, timeout, 5xx, 429);
    ``retry_after`` is a 429's ``Retry-After`` header as sent.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.transient = transient
        self.retry_after = retry_after


class StorageError(MonitorError):
    """Raised when the database cannot be reached, is not initialised, or refuses a write."""


class NotFoundError(StorageError):
    """Raised when a snapshot, target or event named on the command line does not exist."""


class ListGoneError(StorageError):
    """Raised when an answer recognised as seen before points at a stored list that is
    gone (pruned): the answer must be read again to be stored."""
