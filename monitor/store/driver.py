"""Statements on every poll's path, run on the database driver's own cursor.

A poll that changed nothing runs five short statements. Through SQLAlchemy each one
costs about 100 µs of Python (the compiled cache, parameter building, the execution
context, a result object): more than SQLite takes to run it. A :class:`Statement` is a
Core statement compiled once per dialect and run on the DBAPI connection underneath a
SQLAlchemy connection, so inside its transaction, with every parameter and result
column passed through its type's own bind and result processors: the driver receives
and hands back the same values SQLAlchemy would. Driver errors leave as SQLAlchemy's
``DBAPIError`` (so :func:`monitor.store.sql.db_errors` describes them), and a lost
server connection is invalidated, as SQLAlchemy itself would do.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ReturnsRows

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order a positional driver takes them
    defaults: tuple[Any, ...]  # the values bound in the statement (a LIMIT's)
    positional: bool
    binds: tuple[_Processor, ...]
    results: tuple[_Processor, ...]
    row: Any  # a namedtuple class over the result columns' names

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        given = (
            values.get(name, default)
            for name, default in zip(self.names, self.defaults, strict=True)
        )
        processed = [
            value if process is None or value is None else process(value)
            for value, process in zip(given, self.binds, strict=True)
        ]
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
    defaults = tuple(param.effective_value for param in params)
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
        self._by_dialect: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            with self._lock:
                compiled = self._by_dialect.get(dialect.name)
                if compiled is None:
                    compiled = self._by_dialect[dialect.name] = _compile(self._statement, dialect)
        return compiled

    def first(self, connection: Connection, values: Mapping[str, Any]) -> Any | None:
        """The first row (a named tuple), or None."""
        rows = self._run(connection.connection.dbapi_connection, connection, values, fetch=1)
        return rows[0] if rows else None

    def scalar(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        row = self.first(connection, values)
        return None if row is None else row[0]

    def rowcount(self, connection: Connection, values: Mapping[str, Any]) -> int:
        """How many rows the statement touched (an UPDATE's)."""
        count: int = self._run(connection.connection.dbapi_connection, connection, values)
        return count

    def scalar_unpooled(self, engine: Engine, values: Mapping[str, Any]) -> Any:
        """:meth:`scalar` on a pooled driver connection of its own, outside any
        transaction of SQLAlchemy's (a read that needs none: no BEGIN, no ROLLBACK)."""
        raw = engine.raw_connection()
        try:
            rows = self._run(raw.dbapi_connection, None, values, fetch=1, dialect=engine.dialect)
        except DBAPIError as exc:
            if engine.dialect.is_disconnect(exc.orig, raw.dbapi_connection, None):  # type: ignore[arg-type]
                raw.invalidate()
            raise
        finally:
            raw.close()
        return rows[0][0] if rows else None

    def _run(
        self,
        dbapi_connection: Any,
        connection: Connection | None,
        values: Mapping[str, Any],
        *,
        fetch: int | None = None,
        dialect: Dialect | None = None,
    ) -> Any:
        dialect = dialect if dialect is not None else connection.dialect  # type: ignore[union-attr]
        compiled = self._compiled(dialect)
        parameters = compiled.parameters(values)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(compiled.sql, parameters)
            if fetch is None:
                return cursor.rowcount
            return [compiled.result(raw) for raw in cursor.fetchmany(fetch)]
        except dialect.loaded_dbapi.Error as exc:
            if connection is not None and dialect.is_disconnect(exc, dbapi_connection, cursor):
                connection.invalidate()
            raise DBAPIError.instance(
                compiled.sql, parameters, exc, dialect.loaded_dbapi.Error
            ) from exc
        finally:
            cursor.close()
