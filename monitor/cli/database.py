"""The configured database, as the commands open it: writers migrate it first,
readers refuse one that is not at this version's schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from monitor.cli.options import parse_time
from monitor.cli.state import current_state, start_logging, utcnow
from monitor.config import Config

if TYPE_CHECKING:  # the store loads SQLAlchemy: only commands that need it import it
    from sqlalchemy import Engine

    from monitor.store import Store

_T = TypeVar("_T")


@contextmanager
def configured_engine(*, write: bool) -> Iterator[Engine]:
    """An engine on the configured database at this version's schema: writers migrate
    it first, readers refuse another revision. Disposed of on leaving."""
    from sqlalchemy.engine import make_url

    from monitor.redact import LOGGED
    from monitor.store import open_engine, upgrade
    from monitor.store.engine import require_current

    config = current_state().config()
    password = make_url(config.database_url).password
    if password:
        LOGGED.add(str(password))  # never in a log line, whatever a driver logs
    # two per poll in flight (its lock and its transaction), and a few for the rest
    engine = open_engine(
        config.database_url, create=write, connections=2 * config.max_concurrency + 4
    )
    try:
        if write:
            upgrade(engine)
        else:
            require_current(engine)
        yield engine
    finally:
        engine.dispose()


@contextmanager
def configured_store(*, write: bool) -> Iterator[Store]:
    """The store of the configured database; writers migrate it first."""
    from monitor.store import Store

    with configured_engine(write=write) as engine:
        yield Store(engine)


def read_rows(
    target_name: str | None, since: str | None, fetch: Callable[[Store, datetime | None], _T]
) -> _T:
    """What ``fetch`` reads from the database, ``--since`` parsed and ``--target``
    checked against the config and the history first."""
    start_logging()
    since_at = parse_time(since, utcnow(), "--since") if since else None
    with configured_store(write=False) as store:
        check_target(current_state().config(), store, target_name)
        return fetch(store, since_at)


def check_target(config: Config, store: Store, name: str | None) -> None:
    from monitor.views import check_target as check

    check(config, store, name)
