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
    written: tuple[Any, ...]  # per parameter: a value written into the statement, or _GIVEN
    keys: tuple[str, ...]  # result column keys, in order (none for a write without RETURNING)
    pairs: tuple[tuple[str, Processor], ...]  # (key, result processor) per result column

    def args(self, values: dict[str, Any]) -> list[Any]:
        """The driver's positional arguments: each parameter's value (given, or written into the statement) through
        its bind processor."""
        given = (values[name] if w is _GIVEN else w for name, w in zip(self.names, self.written, strict=True))
        return [value if bind is None else bind(value) for value, bind in zip(given, self.binds, strict=True)]

    def row(self, record: Any) -> dict[str, Any]:
        """A returned record as a dict keyed like `row._mapping`, through the result processors."""
        return {key: v if result is None else result(v) for (key, result), v in zip(self.pairs, record, strict=True)}


_GIVEN = object()  # the parameter's value comes with each execution


def _compiled(compiled: Any, dialect: sa.Dialect, written: tuple[Any, ...] | None = None) -> _Compiled | None:
    """What the driver path keeps of a compiled statement: its SQL, parameter order, written values and value
    processors; None when a result column's type needs the server's description of it (numerics)."""
    columns = compiled._result_columns
    if any(isinstance(c.type, sa.types.NumericCommon) for c in columns):
        return None
    names = tuple(compiled.positiontup)
    return _Compiled(
        sql=compiled.string,
        names=names,
        binds=tuple(compiled._bind_processors.get(name) for name in names),
        written=(_GIVEN,) * len(names) if written is None else written,
        keys=tuple(c.keyname for c in columns),
        pairs=tuple((c.keyname, c.type._cached_result_processor(dialect, None)) for c in columns),
    )


@functools.cache
def _compile(stmt: sa.Select[Any], dialect: sa.Dialect) -> _Compiled | None:
    """The statement's SQL and processors; None for one that needs more of SQLAlchemy (expanding or literal
    parameters, values written into the statement, result types whose processing depends on the column type the
    server reports, such as numerics)."""
    compiled = stmt.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params or compiled.positiontup is None:
        return None
    if any(not compiled.binds[name].required for name in compiled.positiontup):
        return None  # a value written into the statement (`column == 5`): SQLAlchemy fills those in
    return _compiled(compiled, dialect)


async def fetch_mappings(connection: AsyncConnection, stmt: sa.Select[Any], params: dict[str, Any]) -> list[dict]:
    """The rows of a prebuilt select (reused across requests, so compiled once) as dicts keyed like `row._mapping`."""
    c = _compile(stmt, connection.dialect) if connection.dialect.driver == "asyncpg" else None
    raw = await connection.get_raw_connection()
    if c is None or not raw.dbapi_connection.autocommit:
        return [dict(row._mapping) for row in await connection.execute(stmt, params)]
    try:
        records = await raw.driver_connection.fetch(c.sql, *c.args(params))
    except BaseException:
        # SQLAlchemy would have judged whether the connection survived; without it, never hand it out again.
        await connection.invalidate()
        raise
    return [c.row(record) for record in records]


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
    args = c.args(params)
    pooled = await engine.raw_connection()
    try:
        records = await pooled.driver_connection.fetch(c.sql, *args)
    except BaseException:
        await greenlet_spawn(pooled.invalidate)  # as in fetch_mappings: never hand it out again
        raise
    finally:
        await greenlet_spawn(pooled.close)
    return [c.row(record) for record in records]


@functools.cache
def _compile_write(stmt: sa.Insert | sa.Update, dialect: sa.Dialect, keys: tuple[str, ...]) -> _Compiled | None:
    """An INSERT of one row with these columns (or an UPDATE setting them), with its RETURNING if it has one; None
    if SQLAlchemy would add anything at execution (Python-side defaults of the columns left out, expanding
    parameters, values computed at each execution, returned numerics)."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    if (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.post_compile_params
        or compiled.positiontup is None
    ):
        return None
    binds = [compiled.binds[name] for name in compiled.positiontup]
    # values written into the statement (`owner_type == "station"`) are parameters too; SQLAlchemy fills them in
    if any(bind.callable is not None for bind in binds):
        return None  # a value computed at each execution
    return _compiled(compiled, dialect, tuple(_GIVEN if bind.required else bind.value for bind in binds))


async def _write(
    session: AsyncSession, stmt: sa.Insert | sa.Update, values: dict[str, Any]
) -> tuple[AsyncConnection, Any, _Compiled | None]:
    """The session's connection, its driver connection, and the compiled write when the row can go straight to the
    driver (asyncpg, the transaction open on the server; else None)."""
    connection = await session.connection()
    c = _compile_write(stmt, connection.dialect, tuple(values)) if connection.dialect.driver == "asyncpg" else None
    driver = (await connection.get_raw_connection()).driver_connection
    return connection, driver, c if c is not None and driver.is_in_transaction() else None


async def insert_in_transaction(session: AsyncSession, stmt: sa.Insert | sa.Update, values: dict[str, Any]) -> None:
    """A prebuilt INSERT of one row (or an UPDATE, its WHERE bound to parameters) as part of the session's open
    transaction.

    On asyncpg, once the transaction is open on the server (SQLAlchemy sends BEGIN with the first statement), the
    row goes straight to the driver: about 0.15 ms of CPU less than SQLAlchemy's execution (see above). Sessions
    here never autoflush, so nothing is skipped; before the transaction is open, SQLAlchemy executes it. A database
    error surfaces as asyncpg's exception rather than SQLAlchemy's wrapper of it (nothing here catches either: a 500).
    """
    connection, driver, c = await _write(session, stmt, values)
    if c is None or c.keys:
        await session.execute(stmt, values)
        return
    try:
        await driver.execute(c.sql, *c.args(values))
    except BaseException:
        await connection.invalidate()  # as in fetch_mappings; the session's rollback then ends the transaction
        raise


async def insert_returning(session: AsyncSession, stmt: sa.Insert, values: dict[str, Any]) -> dict[str, Any]:
    """A prebuilt INSERT … RETURNING of one row in the session's open transaction: the returned row as a dict keyed
    like `row._mapping`. Straight to the driver under the same conditions as `insert_in_transaction`."""
    connection, driver, c = await _write(session, stmt, values)
    if c is None or not c.keys:
        return dict((await session.execute(stmt, values)).mappings().one())
    try:
        record = await driver.fetchrow(c.sql, *c.args(values))
    except BaseException:
        await connection.invalidate()  # as in insert_in_transaction
        raise
    return c.row(record)
