"""Engine and session factory; SQLite gets foreign keys and WAL on every connection."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from service.db.reads import fetch_mappings, fetch_pooled
from service.settings import Settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(settings: Settings) -> AsyncEngine:
    """An async engine configured from settings for SQLite or PostgreSQL."""
    if settings.is_sqlite:
        _ensure_sqlite_dir(settings.database_url)
        engine = create_async_engine(settings.database_url, echo=settings.db_echo)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    ping_always = settings.db_pool_pre_ping and settings.db_pool_ping_idle_s == 0
    engine = create_async_engine(
        settings.database_url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=settings.db_pool_recycle_s,
        pool_pre_ping=ping_always,
        connect_args={
            "statement_cache_size": settings.db_statement_cache_size,
            "server_settings": {"application_name": settings.application_name},
        },
    )
    if settings.db_pool_pre_ping and not ping_always:
        IdlePing(settings.db_pool_ping_idle_s).attach(engine)
    return engine


class IdlePing:
    """Pre-ping only the pooled connections that sat idle longer than `idle_s`.

    SQLAlchemy's `pool_pre_ping` checks every checkout, and on asyncpg a ping is three round trips (BEGIN, `;`,
    ROLLBACK): about a quarter of a millisecond of CPU per request. A connection that was used a moment ago is
    alive unless the server itself went away, and then the first statement fails, SQLAlchemy sees the disconnect
    and invalidates the whole pool, so one request fails instead of none. Connections idle for longer (dropped by
    a firewall, a pgbouncer or an idle timeout) are the ones pre-ping exists for, and they still get it. Raising
    DisconnectionError from a checkout listener is SQLAlchemy's documented way to have the pool replace one.
    """

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s

    def attach(self, engine: AsyncEngine) -> None:
        pool = engine.sync_engine.pool
        dialect = engine.sync_engine.dialect
        event.listen(pool, "connect", self._stamp)
        event.listen(pool, "checkin", self._stamp)
        event.listen(pool, "checkout", lambda dbapi, record, _proxy: self._check(dialect, dbapi, record))

    @staticmethod
    def _stamp(_dbapi: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    def _check(self, dialect: Any, dbapi_connection: Any, record: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) <= self.idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure to ping means: use another connection
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc


def _ensure_sqlite_dir(url: str) -> None:
    from pathlib import Path

    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


@dataclass
class Database:
    """The engine and its session factories, owned by the app's lifespan.

    `sessionmaker` opens transactions (every write, every read that needs one snapshot across statements).
    `read_sessionmaker` shares the pool in DBAPI autocommit: each statement is its own snapshot and no BEGIN or
    COMMIT goes to the server, two of a simple read's three round trips. Only for reads of one statement, or of
    statements whose results need not agree with each other (SQLAlchemy: "Setting Isolation Level or DBAPI
    Autocommit for a Session").
    """

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = create_engine(settings)
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(
            engine,
            async_sessionmaker(engine, expire_on_commit=False, autoflush=False),
            async_sessionmaker(autocommit, expire_on_commit=False, autoflush=False),
        )

    async def fetch(self, stmt: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of one prebuilt select as dicts, autocommit: straight from the pool on asyncpg (db.reads), else
        through a read session."""
        rows = await fetch_pooled(self.engine, stmt, params)
        if rows is None:
            async with self.read_sessionmaker() as session:
                rows = await fetch_mappings(await session.connection(), stmt, params)
        return rows

    async def dispose(self) -> None:
        await self.engine.dispose()
