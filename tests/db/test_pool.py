"""The connection pool: idle connections are checked before use, busy ones are not pinged on every request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from service.db.session import Database
from service.settings import Settings
from tests.conftest import _asyncpg_dsn, create_pg_database, drop_pg_database

pytestmark = pytest.mark.postgres
APP_NAME = "jiedui-pool-spec"


async def _server_drops_our_connections(url: str) -> int:
    """What a restarted server, a firewall or an idle timeout does to pooled connections."""
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        return await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", APP_NAME
        )
    finally:
        await conn.close()


def _database(url: str, *, idle_s: float) -> Database:
    settings = Settings(database_url=url, application_name=APP_NAME, db_pool_ping_idle_s=idle_s, db_pool_size=1)
    return Database.from_settings(settings)


async def _select_one(db: Database) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT 1"))).scalar_one()


@pytest.fixture
async def pg() -> AsyncIterator[str]:
    """An empty database of its own: the specs terminate server connections by application name."""
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


async def test_a_connection_dropped_while_idle_is_replaced_before_use(pg: str) -> None:
    db = _database(pg, idle_s=0.05)
    try:
        assert await _select_one(db) == 1
        assert await _server_drops_our_connections(pg) == 1
        await asyncio.sleep(0.1)  # longer than the idle threshold: the pool pings, sees it dead, reconnects
        assert await _select_one(db) == 1
    finally:
        await db.dispose()


async def test_a_connection_in_steady_use_is_not_pinged_so_a_dead_one_fails_once(pg: str) -> None:
    """The trade made for speed: within the idle threshold there is no ping, so a server-side drop costs one failed
    statement; SQLAlchemy then invalidates the pool and the next request gets a fresh connection."""
    db = _database(pg, idle_s=3600)
    try:
        assert await _select_one(db) == 1
        assert await _server_drops_our_connections(pg) == 1
        with pytest.raises(DBAPIError):
            await _select_one(db)
        assert await _select_one(db) == 1
    finally:
        await db.dispose()


async def test_reads_run_in_autocommit_and_leave_the_pooled_connection_transactional_for_writes(pg: str) -> None:
    """The read sessionmaker shares the pool; a connection it used must give the next write a real transaction."""
    db = _database(pg, idle_s=5)
    try:
        async with db.sessionmaker() as session, session.begin():
            await session.execute(sa.text("CREATE TABLE notes (body text)"))
        async with db.read_sessionmaker() as session:  # autocommit: a statement stands without a COMMIT
            await session.execute(sa.text("INSERT INTO notes VALUES ('义诊通知')"))
        with pytest.raises(RuntimeError):
            async with db.sessionmaker() as session, session.begin():
                await session.execute(sa.text("INSERT INTO notes VALUES ('走访记录')"))
                raise RuntimeError("the use case fails after its first write")
        async with db.read_sessionmaker() as session:
            assert (await session.execute(sa.text("SELECT body FROM notes"))).scalars().all() == ["义诊通知"]
    finally:
        await db.dispose()
