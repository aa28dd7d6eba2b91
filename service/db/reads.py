"""The hottest statements run on the asyncpg connection itself, with SQL that SQLAlchemy compiled once.

For a prebuilt Core select on an autocommit connection (`Database.read_sessionmaker`), SQLAlchemy's execution
path (execution context, compiled-cache lookup, the cursor adapter and its greenlet hop, the Result) costs about
0.16 ms of CPU per statement over the driver's own `fetch` (`bench/LOAD.md`). Here the statement is compiled once
per dialect, its parameters and result values go through the same bind and result processors SQLAlchemy would
apply, and the rows come back as dicts. Any other driver, and any connection inside a transaction (whose BEGIN
SQLAlchemy issues lazily, so a statement sent past it could run outside the transaction), take SQLAlchemy's path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # bind parameter names, in positional order
    binds: tuple[Processor, ...]
    keys: tuple[str, ...]  # result column keys, in order
    results: tuple[Processor, ...]


@functools.cache
def _compile(stmt: sa.Select[Any], dialect: sa.Dialect) -> _Compiled | None:
    """The statement's SQL and processors; None for one that needs more of SQLAlchemy (expanding or literal
    parameters, result types whose processing depends on the column type the server reports, such as numerics)."""
    compiled = stmt.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params or compiled.positiontup is None:
        return None
    columns = compiled._result_columns
    if any(isinstance(c.type, sa.types.NumericCommon) for c in columns):
        return None
    names = tuple(compiled.positiontup)
    return _Compiled(
        sql=compiled.string,
        names=names,
        binds=tuple(compiled._bind_processors.get(name) for name in names),
        keys=tuple(c.keyname for c in columns),
        results=tuple(c.type._cached_result_processor(dialect, None) for c in columns),
    )


async def fetch_mappings(connection: AsyncConnection, stmt: sa.Select[Any], params: dict[str, Any]) -> list[dict]:
    """The rows of a prebuilt select (reused across requests, so compiled once) as dicts keyed like `row._mapping`."""
    c = _compile(stmt, connection.dialect) if connection.dialect.driver == "asyncpg" else None
    raw = await connection.get_raw_connection()
    if c is None or not raw.dbapi_connection.autocommit:
        return [dict(row._mapping) for row in await connection.execute(stmt, params)]
    args = [params[name] if bind is None else bind(params[name]) for name, bind in zip(c.names, c.binds, strict=True)]
    try:
        records = await raw.driver_connection.fetch(c.sql, *args)
    except BaseException:
        # SQLAlchemy would have judged whether the connection survived; without it, never hand it out again.
        await connection.invalidate()
        raise
    pairs = tuple(zip(c.keys, c.results, strict=True))
    return [
        {key: value if result is None else result(value) for (key, result), value in zip(pairs, record, strict=True)}
        for record in records
    ]


@functools.cache
def _compile_insert(stmt: sa.Insert, dialect: sa.Dialect, keys: tuple[str, ...]) -> _Compiled | None:
    """An INSERT of one row with these columns; None if SQLAlchemy would add anything at execution (Python-side
    defaults of the columns left out, RETURNING, expanding parameters)."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    if compiled.insert_prefetch or compiled.returning or compiled.post_compile_params or compiled.positiontup is None:
        return None
    names = tuple(compiled.positiontup)
    binds = tuple(compiled._bind_processors.get(name) for name in names)
    return _Compiled(sql=compiled.string, names=names, binds=binds, keys=(), results=())


async def insert_in_transaction(session: AsyncSession, stmt: sa.Insert, values: dict[str, Any]) -> None:
    """A prebuilt INSERT of one row as part of the session's open transaction.

    On asyncpg, once the transaction is open on the server (SQLAlchemy sends BEGIN with the first statement), the
    row goes straight to the driver: about 0.15 ms of CPU less than SQLAlchemy's execution (see above). Sessions
    here never autoflush, so nothing is skipped; before the transaction is open, SQLAlchemy executes it. A database
    error surfaces as asyncpg's exception rather than SQLAlchemy's wrapper of it (nothing here catches either: a 500).
    """
    connection = await session.connection()
    c = _compile_insert(stmt, connection.dialect, tuple(values)) if connection.dialect.driver == "asyncpg" else None
    raw = await connection.get_raw_connection()
    if c is None or not raw.driver_connection.is_in_transaction():
        await session.execute(stmt, values)
        return
    args = [values[name] if bind is None else bind(values[name]) for name, bind in zip(c.names, c.binds, strict=True)]
    try:
        await raw.driver_connection.execute(c.sql, *args)
    except BaseException:
        await connection.invalidate()  # as in fetch_mappings; the session's rollback then ends the transaction
        raise
