"""Tests of monitor/store/engine.py: what opening a database says when it cannot."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.errors import StorageError
from monitor.store import open_engine, upgrade

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
@pytest.mark.usefixtures("without_drivers")
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


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A folder and the same folder mounted read-only (needs root and mount rights)."""
    source, mounted = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    mounted.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a read-only bind mount needs root")
    bind = subprocess.run(["mount", "--bind", str(source), str(mounted)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mounted)], check=True)
        yield source, mounted
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_a_database_on_a_read_only_file_system_says_so(
    read_only_mount: tuple[Path, Path],
) -> None:
    source, mounted = read_only_mount
    upgrade_engine = open_engine(f"sqlite:///{source / 'monitor.db'}", create=True)
    upgrade(upgrade_engine)
    upgrade_engine.dispose()
    for name in ("monitor.db-wal", "monitor.db-shm"):
        (source / name).unlink(missing_ok=True)

    with pytest.raises(StorageError) as info:
        open_engine(f"sqlite:///{mounted / 'monitor.db'}", create=True)
    assert str(info.value) == (
        f"database {str(mounted / 'monitor.db')!r} cannot be opened for writing: "
        "the file is on a read-only file system"
    )
    with pytest.raises(StorageError) as info:
        open_engine(f"sqlite:///{mounted / 'new.db'}", create=True)
    assert str(info.value) == (
        f"database {str(mounted / 'new.db')!r} cannot be created: "
        f"the folder {str(mounted)!r} is on a read-only file system"
    )
