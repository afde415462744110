"""Statements on every poll's path, run on the database driver's own cursor.

A poll that changed nothing runs five short statements. Through SQLAlchemy each one
costs about 100 µs of Python (the compiled cache, parameter building, the execution
context, a result object): more than SQLite takes to run it. A :class:`Statement` is a
Core statement compiled once per dialect and driver, and run on the DBAPI connection
underneath a SQLAlchemy connection, so inside its transaction. Every parameter and
result column goes through its type's own bind and result processors (a parameter
without a value is an error, as in SQLAlchemy; None is passed as NULL without its
processor, which is what the column types used here do with it). Errors leave as
SQLAlchemy's: a driver error as ``DBAPIError``, a value a processor refuses as
``StatementError``, so :func:`monitor.store.sql.db_errors` describes them; a
connection the server dropped is invalidated, so the pool does not hand it out again.
"""

from __future__ import annotations

import contextlib
import threading
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ReturnsRows

_Processor = Callable[[Any], Any] | None
_REQUIRED = object()  # a parameter with no value of its own in the statement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order a positional driver takes them
    defaults: tuple[Any, ...]  # the values bound in the statement (a LIMIT's), or _REQUIRED
    positional: bool
    binds: tuple[_Processor, ...]
    results: tuple[_Processor, ...]
    row: Any  # a namedtuple class over the result columns' names

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        processed = []
        for name, default, process in zip(self.names, self.defaults, self.binds, strict=True):
            value = values.get(name, default)
            if value is _REQUIRED:
                raise StatementError(
                    f"a value is required for bind parameter {name!r}", self.sql, None, None
                )
            processed.append(value if process is None or value is None else process(value))
        return processed if self.positional else dict(zip(self.names, processed, strict=True))

    def result(self, raw: Sequence[Any]) -> Any:
        return self.row._make(
            value if process is None else process(value)
            for value, process in zip(raw, self.results, strict=True)
        )


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    by_name = {name: param for param, name in compiled.bind_names.items()}
    names = tuple(compiled.positiontup or ()) if dialect.positional else tuple(by_name)
    params = [by_name[name] for name in names]
    binds = tuple(param.type.dialect_impl(dialect).bind_processor(dialect) for param in params)
    defaults = tuple(_REQUIRED if param.required else param.effective_value for param in params)
    columns = list(statement.exported_columns) if isinstance(statement, ReturnsRows) else []
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    row = namedtuple("Row", [str(column.key) for column in columns], rename=True)  # type: ignore[misc]
    return _Compiled(compiled.string, names, defaults, dialect.positional, binds, results, row)


class Statement:
    """A Core statement run on the driver's cursor; see the module's docstring."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._by_dialect: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def _compiled(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)  # placeholders and casts differ by driver
        compiled = self._by_dialect.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._by_dialect.get(key)
                if compiled is None:
                    compiled = self._by_dialect[key] = _compile(self._statement, dialect)
        return compiled

    def first(self, connection: Connection, values: Mapping[str, Any]) -> Any | None:
        """The first row (a named tuple), or None."""
        rows = self._run(connection, values, fetch=1)
        return rows[0] if rows else None

    def scalar(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        row = self.first(connection, values)
        return None if row is None else row[0]

    def rowcount(self, connection: Connection, values: Mapping[str, Any]) -> int:
        """How many rows the statement touched (an UPDATE's)."""
        count: int = self._run(connection, values)
        return count

    def scalar_outside_transaction(self, engine: Engine, values: Mapping[str, Any]) -> Any:
        """:meth:`scalar` on a connection of the pool, with no transaction begun (a read
        that needs none, on SQLite: no BEGIN, no ROLLBACK, no SQLAlchemy connection)."""
        dialect = engine.dialect
        try:
            raw = engine.raw_connection()
        except dialect.loaded_dbapi.Error as exc:  # the pool does not translate these
            raise DBAPIError.instance(
                None, None, exc, dialect.loaded_dbapi.Error, dialect=dialect
            ) from exc
        try:
            assert raw.dbapi_connection is not None
            rows = self._execute(raw.dbapi_connection, dialect, values, 1, raw.invalidate)
        finally:
            raw.close()
        return rows[0][0] if rows else None

    def _run(
        self, connection: Connection, values: Mapping[str, Any], *, fetch: int | None = None
    ) -> Any:
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None  # a connection SQLAlchemy has open
        return self._execute(
            dbapi_connection, connection.dialect, values, fetch, connection.invalidate
        )

    def _execute(
        self,
        dbapi_connection: Any,
        dialect: Dialect,
        values: Mapping[str, Any],
        fetch: int | None,
        invalidate: Callable[[BaseException], None],
    ) -> Any:
        compiled = self._compiled(dialect)
        try:
            parameters = compiled.parameters(values)
        except StatementError:
            raise
        except Exception as exc:  # a value the column's type refuses (a naive datetime)
            raise StatementError(str(exc), compiled.sql, None, exc) from exc
        cursor = None
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute(compiled.sql, parameters)
            if fetch is None:
                return cursor.rowcount
            return [compiled.result(raw) for raw in cursor.fetchmany(fetch)]
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
            if lost:
                invalidate(exc)
            raise DBAPIError.instance(
                compiled.sql,
                parameters,
                exc,
                dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=dialect,
            ) from exc
        finally:
            if cursor is not None:
                with contextlib.suppress(Exception):  # as SQLAlchemy closes its cursors
                    cursor.close()
