"""The statements every request makes, run on the database driver's own cursor, with SQLAlchemy's SQL
and type handling worked out once.

Every request reads its key, and a submission inserts its job and first event. Through
`Connection.execute` each statement costs about 100 µs of Python beyond the driver's own: the compiled
cache's lookup, an execution context, the result's set-up, the binds processed by name. That was half of
what a submission cost beyond the anchor app (bench request-cost). Here a statement is compiled once per
dialect and set of parameters, with its binds' processors and its columns' result processors, and runs
on the DBAPI cursor of the same connection, inside whatever transaction that connection is in, its
cursor events fired as `execute` fires them.

Statements are kept by identity: pass ones built once (a module's constant, a cached builder's), or each
call compiles anew.

What `execute` would do on an error is done here too: a driver error comes out as SQLAlchemy's
(`DBAPIError.instance`), and a connection the driver reports lost is invalidated, so that the pool never
hands it out again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

# Distinct (statement, dialect, parameter names) compiled: a few statements with one parameter set each.
MAX_PREPARED = 64

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Prepared:
    compiled: SQLCompiler
    # The driver's parameters in order (positional paramstyles, as SQLite's), or None for named ones.
    positions: tuple[str, ...] | None
    binds: tuple[tuple[str, Processor], ...]
    results: tuple[Processor | None, ...]


@functools.lru_cache(maxsize=MAX_PREPARED)
def _prepare(statement: ClauseElement, dialect: Dialect, names: frozenset[str]) -> _Prepared:
    compiled = statement.compile(dialect=dialect, column_keys=sorted(names))
    assert isinstance(compiled, SQLCompiler)
    if compiled.post_compile_params or compiled.literal_execute_params:
        # IN lists and the like are rendered per execution, which only `execute` does.
        raise ValueError("a statement with binds rendered at execution is not supported here; use execute")
    binds = []
    # By the names the compiled SQL gives its binds, which construct_params fills (anonymous ones among them).
    for bind, name in compiled.bind_names.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            binds.append((name, processor))
    # Without the driver's type code (there is no execution context to read it from): the types these
    # statements read (text, enums, JSON, times, booleans, integers, floats) do not look at it.
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in getattr(statement, "selected_columns", ())
    )
    positions = tuple(compiled.positiontup or ()) if dialect.positional else None
    return _Prepared(compiled, positions, tuple(binds), results)


def _run(connection: Connection, statement: ClauseElement, params: Mapping[str, Any]) -> tuple[_Prepared, Any]:
    prepared = _prepare(statement, connection.dialect, frozenset(params))
    if not connection.in_transaction():
        # What `execute` does first (SQLAlchemy's autobegin): without it, a later commit() would find no
        # transaction to commit, and the driver's own would be rolled back when the connection goes back.
        connection.begin()
    values = prepared.compiled.construct_params(dict(params))
    for name, processor in prepared.binds:
        values[name] = processor(values[name])
    driver_params: Sequence[Any] | Mapping[str, Any] = (
        values if prepared.positions is None else [values[name] for name in prepared.positions]
    )
    dialect, sql = connection.dialect, prepared.compiled.string
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    # Listeners of the cursor-level events (statement logging, tracing, tests counting round trips) see
    # these statements as they see every other, with no execution context, which these have none of.
    events = connection.dispatch
    try:
        if events.before_cursor_execute:
            events.before_cursor_execute(connection, cursor, sql, driver_params, None, False)
        cursor.execute(sql, driver_params)
        if events.after_cursor_execute:
            events.after_cursor_execute(connection, cursor, sql, driver_params, None, False)
    except BaseException as exc:
        # Closed whatever failed, a listener as well as the driver; only the driver's errors are translated.
        cursor.close()
        if not isinstance(exc, dialect.loaded_dbapi.Error):
            raise
        lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql, driver_params, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
        ) from exc
    return prepared, cursor


def execute(connection: Connection, statement: ClauseElement, params: Mapping[str, Any]) -> None:
    """Run `statement` (an INSERT, UPDATE or DELETE) with `params`, as `connection.execute` would."""
    _, cursor = _run(connection, statement, params)
    cursor.close()


def first(connection: Connection, statement: ClauseElement, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The first row of the SELECT `statement` with `params`, its values as `connection.execute` gives
    them, or None when there is none."""
    prepared, cursor = _run(connection, statement, params)
    try:
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    return tuple(
        value if process is None else process(value) for process, value in zip(prepared.results, row, strict=True)
    )
