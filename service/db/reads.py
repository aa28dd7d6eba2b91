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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.util.concurrency import greenlet_spawn

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # bind parameter names, in positional order
    binds: tuple[Processor, ...]
    keys: tuple[str, ...]  # result column keys, in order
    results: tuple[Processor, ...]
    written: tuple[Any, ...] = ()  # per parameter: a value written into the statement, or _GIVEN


_GIVEN = object()  # the parameter's value comes with each execution


@functools.cache
def _compile(stmt: sa.Select[Any], dialect: sa.Dialect) -> _Compiled | None:
    """The statement's SQL and processors; None for one that needs more of SQLAlchemy (expanding or literal
    parameters, values written into the statement, result types whose processing depends on the column type the
    server reports, such as numerics)."""
    compiled = stmt.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params or compiled.positiontup is None:
        return None
    columns = compiled._result_columns
    if any(isinstance(c.type, sa.types.NumericCommon) for c in columns):
        return None
    names = tuple(compiled.positiontup)
    if any(not compiled.binds[name].required for name in names):
        return None  # a value written into the statement (`column == 5`): SQLAlchemy fills those in

    return _compiled(compiled, names, columns, dialect)


def _compiled(compiled: Any, names: tuple[str, ...], columns: Any, dialect: sa.Dialect) -> _Compiled:
    """What the driver path keeps of a compiled statement: its SQL, parameter order and value processors."""
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


async def fetch_pooled(engine: AsyncEngine, stmt: sa.Select[Any], params: dict[str, Any]) -> list[dict] | None:
    """`fetch_mappings` on a connection taken from the pool for this one statement, with no session or Connection
    around it (the hot routes' reads, api/hot.py): about 0.17 ms of CPU less per read than opening a read session
    (an ad-hoc loop, 110 against 280-300 µs per primary-key read). None where only SQLAlchemy's path applies (another
    driver, a statement `_compile` refuses): the caller then reads through a session.

    The pool's own events still run (checkout pings of idle connections, recycling); asyncpg runs a statement
    outside a transaction on its own, so the read is autocommit like the read sessions', and nothing is left to
    roll back when the connection goes back.
    """
    if engine.dialect.driver != "asyncpg":
        return None
    c = _compile(stmt, engine.dialect)
    if c is None:
        return None
    args = [params[name] if bind is None else bind(params[name]) for name, bind in zip(c.names, c.binds, strict=True)]
    pooled = await engine.raw_connection()
    try:
        records = await pooled.driver_connection.fetch(c.sql, *args)
    except BaseException:
        await greenlet_spawn(pooled.invalidate)  # as in fetch_mappings: never hand it out again
        raise
    finally:
        await greenlet_spawn(pooled.close)
    pairs = tuple(zip(c.keys, c.results, strict=True))
    return [
        {key: value if result is None else result(value) for (key, result), value in zip(pairs, record, strict=True)}
        for record in records
    ]


@functools.cache
def _compile_insert(stmt: sa.Insert | sa.Update, dialect: sa.Dialect, keys: tuple[str, ...]) -> _Compiled | None:
    """An INSERT of one row with these columns (or an UPDATE setting them); None if SQLAlchemy would add anything at
    execution (Python-side defaults of the columns left out, RETURNING, expanding parameters)."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    if (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.returning
        or compiled.post_compile_params
        or compiled.positiontup is None
    ):
        return None
    names = tuple(compiled.positiontup)
    binds = tuple(compiled._bind_processors.get(name) for name in names)
    # values written into the statement (`owner_type == "station"`) are parameters too; SQLAlchemy fills them in
    if any(compiled.binds[name].callable is not None for name in names):
        return None  # a value computed at each execution
    written = tuple(_GIVEN if compiled.binds[name].required else compiled.binds[name].value for name in names)
    return _Compiled(sql=compiled.string, names=names, binds=binds, keys=(), results=(), written=written)


async def insert_in_transaction(session: AsyncSession, stmt: sa.Insert | sa.Update, values: dict[str, Any]) -> None:
    """A prebuilt INSERT of one row (or an UPDATE, its WHERE bound to parameters) as part of the session's open
    transaction.

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
    given = (values[name] if written is _GIVEN else written for name, written in zip(c.names, c.written, strict=True))
    args = [value if bind is None else bind(value) for value, bind in zip(given, c.binds, strict=True)]
    try:
        await raw.driver_connection.execute(c.sql, *args)
    except BaseException:
        await connection.invalidate()  # as in fetch_mappings; the session's rollback then ends the transaction
        raise


@functools.cache
def _compile_returning(stmt: sa.Insert, dialect: sa.Dialect, keys: tuple[str, ...]) -> _Compiled | None:
    """An INSERT … RETURNING of one row with these columns; None where `_compile_insert` would refuse it but for
    its RETURNING, or where a returned column's type needs the server's description (`_compile`)."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    if compiled.insert_prefetch or compiled.post_compile_params or compiled.positiontup is None:
        return None
    names = tuple(compiled.positiontup)
    if any(not compiled.binds[name].required for name in names):
        return None
    columns = compiled._result_columns
    if not columns or any(isinstance(c.type, sa.types.NumericCommon) for c in columns):
        return None
    return _compiled(compiled, names, columns, dialect)


async def insert_returning(session: AsyncSession, stmt: sa.Insert, values: dict[str, Any]) -> dict[str, Any]:
    """A prebuilt INSERT … RETURNING of one row in the session's open transaction: the returned row as a dict keyed
    like `row._mapping`. Straight to the driver under the same conditions as `insert_in_transaction`."""
    connection = await session.connection()
    c = _compile_returning(stmt, connection.dialect, tuple(values)) if connection.dialect.driver == "asyncpg" else None
    raw = await connection.get_raw_connection()
    if c is None or not raw.driver_connection.is_in_transaction():
        return dict((await session.execute(stmt, values)).mappings().one())
    args = [values[name] if bind is None else bind(values[name]) for name, bind in zip(c.names, c.binds, strict=True)]
    try:
        record = await raw.driver_connection.fetchrow(c.sql, *args)
    except BaseException:
        await connection.invalidate()  # as in insert_in_transaction
        raise
    return {
        key: value if result is None else result(value)
        for key, result, value in zip(c.keys, c.results, record, strict=True)
    }
