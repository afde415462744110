from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import structlog
from servers import ProviderServer, ScriptedServer, SmtpServer, WebhookServer

from monitor.fetch import make_client
from monitor.store import Store, open_engine, upgrade

POSTGRES_URL = os.environ.get("MONITOR_TEST_POSTGRES_URL") or None


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


# DBAPI drivers the driver-hint tests need missing, whatever this machine has installed
DRIVER_MODULES = (
    "MySQLdb",
    "pymysql",
    "mysql.connector",
    "mariadb",
    "psycopg2",
    "pg8000",
    "pyodbc",
    "pymssql",
    "oracledb",
    "cx_Oracle",
)


@pytest.fixture
def without_drivers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Those drivers cannot be imported, in this process and (through the returned
    environment) in a console script started from it."""
    stubs = tmp_path / "no-drivers"
    stubs.mkdir()
    for name in DRIVER_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
        top = name.split(".")[0]
        (stubs / f"{top}.py").write_text(f"raise ImportError('no {top} here')\n")
    path = os.pathsep.join(p for p in (str(stubs), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


@pytest.fixture
def provider() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    """A local HTTP server answering each GET as its ``route`` says."""
    server = ScriptedServer()
    yield server
    server.stop()


_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    """The product's HTTP client; the servers are local, so a proxy in the environment
    must not matter."""
    for var in _PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    with make_client() as c:
        yield c


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


POSTGRES_MARK = "postgres"
_NO_POSTGRES = (
    "PostgreSQL tests need $MONITOR_TEST_POSTGRES_URL (e.g. "
    "postgresql+psycopg://postgres@127.0.0.1:5432/test)"
)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Without $MONITOR_TEST_POSTGRES_URL every ``postgres`` case is skipped before its
    fixtures run, so ``pytest`` alone never reaches PostgreSQL."""
    if POSTGRES_URL is None and item.get_closest_marker(POSTGRES_MARK) is not None:
        pytest.skip(_NO_POSTGRES)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """$MONITOR_TEST_POSTGRES_URL, the one way a test reaches PostgreSQL. Only for tests
    marked ``postgres``: CI runs those (and only those) with ``pytest -m postgres``, so an
    unmarked one would never run on PostgreSQL anywhere."""
    if request.node.get_closest_marker(POSTGRES_MARK) is None:
        pytest.fail(
            f"{request.node.nodeid} uses PostgreSQL but is not marked postgres: "
            'give it pytest.mark.postgres (or pytest.param("postgres", marks=...))',
            pytrace=False,
        )
    assert POSTGRES_URL is not None  # pytest_runtest_setup skipped the case otherwise
    return POSTGRES_URL


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on the PostgreSQL of ``url``: its URL, dropped after."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL of an empty database: SQLite in tmp, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated, empty store on each database of ``db_url``."""
    engine = open_engine(db_url, create=True)
    upgrade(engine)
    yield Store(engine)
    engine.dispose()
