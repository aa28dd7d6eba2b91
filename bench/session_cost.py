"""CPU per database round of the API's data layer against raw asyncpg, on the load benchmark's database.

    .venv/bin/python -m bench.session_cost

Seeds a throwaway database like `bench.load`, then times (CPU and wall, per call, after a warm-up) one transaction
reading one need by primary key: through raw asyncpg, and through the service's SQLAlchemy async session
(`session.get` + commit) with and without pool pre-ping. Prints a markdown table with ratios to raw asyncpg.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
import sqlalchemy as sa

from bench import load
from service.db.models.needs import Need
from service.db.session import Database
from service.settings import Settings

CALLS = 2000


async def _measure(fn: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(CPU ms, wall ms) per call."""
    for _ in range(100):
        await fn()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(CALLS):
        await fn()
    return (time.process_time() - cpu) / CALLS * 1000, (time.perf_counter() - wall) / CALLS * 1000


async def main() -> None:
    url = await load.create_database()
    try:
        await load.seed(url)
        rows: list[tuple[str, float, float]] = []
        conn = await asyncpg.connect(load.libpq(url))

        async def raw() -> None:
            async with conn.transaction():
                await conn.fetchrow("SELECT * FROM needs WHERE id = $1", 1)

        rows.append(("raw asyncpg: transaction + fetchrow", *await _measure(raw)))
        await conn.close()
        for pre_ping in (True, False):
            db = Database.from_settings(Settings(database_url=url, jwt_secret=load.SECRET, db_pool_pre_ping=pre_ping))

            async def orm(db: Database = db) -> None:
                async with db.sessionmaker() as session:
                    await session.get(Need, 1)
                    await session.commit()

            name = f"SQLAlchemy session.get + commit, pre-ping {'on' if pre_ping else 'off'}"
            rows.append((name, *await _measure(orm)))
            await db.dispose()
        db = Database.from_settings(Settings(database_url=url, jwt_secret=load.SECRET))
        by_id = sa.select(Need.__table__).where(Need.__table__.c.id == 1)

        async def core() -> None:
            async with db.engine.connect() as c:
                (await c.execute(by_id)).one()
                await c.commit()

        async def core_autocommit() -> None:
            async with db.engine.connect() as c:
                c = await c.execution_options(isolation_level="AUTOCOMMIT")
                (await c.execute(by_id)).one()

        async def driver() -> None:
            async with db.engine.connect() as c:
                raw = await c.get_raw_connection()
                await raw.driver_connection.fetchrow("SELECT * FROM needs WHERE id = $1", 1)

        rows.append(("SQLAlchemy Core connection: select + commit", *await _measure(core)))
        rows.append(("SQLAlchemy Core connection, autocommit: select", *await _measure(core_autocommit)))
        rows.append(("SQLAlchemy pool, asyncpg driver connection: fetchrow", *await _measure(driver)))
        await db.dispose()
        base = rows[0][1]
        print("| path | CPU ms/call | wall ms/call | CPU vs raw |")
        print("| --- | ---: | ---: | ---: |")
        for name, cpu, wall in rows:
            print(f"| {name} | {cpu:.3f} | {wall:.3f} | {cpu / base:.1f}x |")
    finally:
        await load.drop_database(url)


if __name__ == "__main__":
    asyncio.run(main())
