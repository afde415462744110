"""Tests of monitor/store/engine.py: what opening a database says when it cannot."""

from __future__ import annotations

import pytest

from monitor.errors import StorageError
from monitor.store import open_engine

# (URL, what the hint must say, what it must not say)
MISSING_DRIVERS = [
    pytest.param(
        "mysql://monitor:pw@db.example.com/monitor",
        ["pip install mysqlclient", "mysql+pymysql://", "pip install pymysql"],
        id="mysql-default-driver",
    ),
    pytest.param(
        "mysql+pymysql://monitor@db.example.com/monitor", ["pip install pymysql"], id="pymysql"
    ),
    pytest.param(
        "mariadb://monitor@db.example.com/monitor",
        ["pip install mysqlclient", "mariadb+pymysql://"],
        id="mariadb",
    ),
    pytest.param(
        "postgresql+psycopg2://monitor@db.example.com/monitor",
        ["pip install psycopg2-binary", "postgresql+psycopg://", "model-monitor[postgres]"],
        id="psycopg2",
    ),
    pytest.param(
        "postgresql+asyncpg://monitor@db.example.com/monitor",
        ["asyncio", "postgresql+psycopg://"],
        id="async-driver",
    ),
    pytest.param("mssql+pyodbc://monitor@dsn", ["pip install pyodbc"], id="mssql"),
    pytest.param("oracle://monitor@db.example.com/x", ["pip install oracledb"], id="oracle"),
    pytest.param(
        "cockroachdb://monitor@db.example.com/monitor",
        ["SQLAlchemy has no dialect cockroachdb", "install the package that provides it"],
        id="unknown-dialect",
    ),
]


@pytest.mark.parametrize(("url", "says"), MISSING_DRIVERS)
def test_a_missing_driver_is_named_with_what_to_install(url: str, says: list[str]) -> None:
    with pytest.raises(StorageError) as info:
        open_engine(url, create=False)
    message = str(info.value)
    for text in says:
        assert text in message
    if "postgres" not in url:
        assert "model-monitor[postgres]" not in message
        assert "tested on SQLite and PostgreSQL" in message
    assert "\n" not in message and "pw@" not in message
