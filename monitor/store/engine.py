"""Opening the database and applying migrations.

SQLite gets WAL, foreign keys and a busy timeout; any other SQLAlchemy URL is
used as given. Alembic owns the schema: :func:`upgrade` brings a database to
the newest revision shipped with the package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from monitor.errors import StorageError

VERSION_TABLE = "alembic_version"
MIGRATION_LOCK = 0x6D6F6E69746F7201  # advisory lock key held while migrating ("moni","tor",1)


def open_engine(url: str, *, create: bool, connections: int = 20) -> Engine:
    """An engine for ``url``; with ``create`` a missing SQLite file (and folder) is made;
    ``connections`` bounds its pool (threads beyond it wait for a connection).

    Without ``create`` a missing SQLite file is an error that says how to make it,
    so query commands never leave an empty database behind.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError("database.url is not an SQLAlchemy URL") from None
    problem = driver_problem(parsed)
    if problem is not None:
        raise StorageError(f"cannot use the database: {problem}")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        pool: dict[str, int] = {}
        if database and database != ":memory:" and not database.startswith("file:"):
            # a file: a connection for each thread that writes at once (the daemon's and
            # check's pools); SQLite lets one write at a time, the others wait (busy_timeout)
            pool = _pool(connections)
            path = Path(database)
            if not path.exists():
                if not create:
                    raise StorageError(
                        f"database {str(path)!r} does not exist yet; "
                        "run 'monitor check' or 'monitor db upgrade' first"
                    )
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StorageError(
                        f"database {str(path)!r} cannot be created: the folder "
                        f"{str(path.parent)!r} cannot be made: {exc.strerror}"
                    ) from None
            problem = sqlite_access_problem(path, write=create)
            if problem is not None:
                raise StorageError(problem)
        engine = create_engine(parsed, connect_args={"timeout": 30}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        # each poll in flight holds a connection for its advisory lock, and one more
        # for its transaction: ``connections`` is the most this process opens
        return create_engine(parsed, pool_pre_ping=True, **_pool(connections))
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise StorageError(f"cannot use the database {parsed.drivername}: {exc}") from None


def _pool(connections: int) -> dict[str, int]:
    """At most ``connections`` open at once: up to 10 kept, the rest opened as needed."""
    size = min(10, connections)
    return {"pool_size": size, "max_overflow": max(0, connections - size)}


TESTED = "model-monitor is tested on SQLite and PostgreSQL"
# what to install for a DBAPI driver SQLAlchemy names (the dialect's ``driver``)
_INSTALL = {
    "psycopg": "pip install 'model-monitor[postgres]'",
    "psycopg2": "pip install psycopg2-binary, or use postgresql+psycopg:// "
    "after pip install 'model-monitor[postgres]'",
    "pg8000": "pip install pg8000",
    "mysqldb": "pip install mysqlclient (it needs the MySQL client library), "
    "or use {backend}+pymysql:// after pip install pymysql",
    "pymysql": "pip install pymysql",
    "mysqlconnector": "pip install mysql-connector-python",
    "mariadbconnector": "pip install mariadb",
    "pyodbc": "pip install pyodbc",
    "pymssql": "pip install pymssql",
    "oracledb": "pip install oracledb",
    "cx_oracle": "pip install cx_Oracle",
}
# a synchronous driver for backends people reach for an asyncio one on
_SYNC = {
    "postgresql": "postgresql+psycopg://",
    "mysql": "mysql+pymysql://",
    "mariadb": "mariadb+pymysql://",
    "sqlite": "sqlite:///",
}


def driver_problem(url: URL) -> str | None:
    """Why ``url``'s dialect or DBAPI driver cannot be used here, and what to install;
    None when both load. The URL itself (its password) is never in the text."""
    backend = url.get_backend_name()
    note = "" if backend in ("sqlite", "postgresql") else f" ({TESTED})"
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        return f"SQLAlchemy has no dialect {backend}; install the package that provides it{note}"
    if getattr(dialect, "is_async", False):
        instead = _SYNC.get(backend, "a synchronous driver")
        return f"{url.drivername} is an asyncio driver; use a synchronous one: {instead}{note}"
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        install = _INSTALL.get(
            dialect.driver, f"install the DBAPI driver {dialect.driver} for {backend}"
        ).format(backend=backend)
        return f"the {backend} driver {dialect.driver} is not installed ({exc}); {install}{note}"
    return None


def sqlite_access_problem(path: Path, *, write: bool) -> str | None:
    """Why this user cannot use the SQLite database at ``path`` (to write, or only to
    read), naming the file or folder and the reason; None when it can.

    SQLite itself only says "unable to open database file" or "attempt to write a
    readonly database". In WAL mode even a reader needs ``NAME-wal`` and ``NAME-shm``
    beside the database, so the folder must be writable unless both exist writable.
    """
    doing = "opened for writing" if write else "opened"
    folder = path.parent
    if not path.exists():
        reason = _not_writable(folder)
        if reason is None:
            return None
        return f"database {str(path)!r} cannot be created: the folder {str(folder)!r} {reason}"
    if write and (reason := _not_writable(path)) is not None:
        return f"database {str(path)!r} cannot be {doing}: the file {reason}"
    beside = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    if all(f.exists() and _not_writable(f) is None for f in beside):
        return None
    if (reason := _not_writable(folder)) is not None:
        names = " and ".join(f.name for f in beside)
        return (
            f"database {str(path)!r} cannot be {doing}: the folder {str(folder)!r} {reason} "
            f"(SQLite's WAL mode needs {names} beside the database)"
        )
    return None


def _not_writable(path: Path) -> str | None:
    """Why this user cannot write ``path`` (create entries in it, for a folder), or None."""
    wanted = os.W_OK | os.X_OK if path.is_dir() else os.W_OK
    if os.access(path, wanted):
        return None
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "is on a read-only file system"
    except OSError:
        pass
    return f"is not writable by {_user()}"


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


WRITE = {"monitor_write": True}  # execution options of a connection that will write


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the driver, begins transactions (see _sqlite_begin)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """A transaction that will write takes SQLite's write lock at BEGIN: one that read
    first could not upgrade once another process committed (a "busy snapshot")."""
    write = connection.get_execution_options().get("monitor_write")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def migrations_path() -> Path:
    """The Alembic scripts: inside the installed package, or at the root of a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise StorageError("the database migrations are missing from this installation")


def _alembic_config() -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_path()))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` in one transaction (where the backend can)."""
    _migrate(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    _migrate(engine, "downgrade", revision)


def _migrate(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command

    cfg = _alembic_config()
    try:
        connecting = engine.connect()
    except SQLAlchemyError as exc:  # a database missing or refusing: not a migration's fault
        raise StorageError(f"cannot reach the database: {describe_db_error(exc)}") from None
    try:
        with connecting as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # SQLite alters a table by copying it and dropping the old one, which
                # foreign keys forbid while rows point at it; they are checked as a
                # whole before the migration commits instead (Alembic's batch mode
                # advice). The pragma only takes outside a transaction.
                _raw_sqlite(connection, "PRAGMA foreign_keys=OFF")
            try:
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        # replicas starting together migrate one after the other
                        connection.exec_driver_sql(
                            "SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,)
                        )
                    cfg.attributes["connection"] = connection
                    getattr(command, direction)(cfg, revision)
                    if sqlite:
                        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
                        if broken is not None:
                            raise StorageError(
                                f"database migration failed: it would leave a row of "
                                f"{broken[0]} pointing at a missing row of {broken[2]}"
                            )
            finally:
                if sqlite:
                    _raw_sqlite(connection, "PRAGMA foreign_keys=ON")
    except SQLAlchemyError as exc:
        raise StorageError(f"database migration failed: {describe_db_error(exc)}") from None


def _raw_sqlite(connection: Any, statement: str) -> None:
    """Run a statement on the driver's connection, outside any transaction."""
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.execute(statement)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrations_path()))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot reach the database: {describe_db_error(exc)}") from None


def require_current(engine: Engine) -> None:
    """For read-only commands: the schema must exist and be at the newest revision."""
    current = current_revision(engine)
    if current is None:
        raise StorageError(
            "the database has no model-monitor tables yet; "
            "run 'monitor check' or 'monitor db upgrade' first"
        )
    if current != head_revision():
        raise StorageError(
            f"the database schema is at revision {current}, this version needs "
            f"{head_revision()}; run 'monitor db upgrade'"
        )


def describe_db_error(exc: SQLAlchemyError) -> str:
    """The driver's own message, one line, without the SQL statement or parameters."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    return " ".join(text.split("\n")[0].split()) or type(exc).__name__
