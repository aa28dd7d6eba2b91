"""Migrations own the schema: they run up and down on both databases and match the models exactly."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from service.db import migrate
from service.db.base import metadata
from service.db.migrate import include_name
from service.db.session import Database
from service.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database


def _diff(connection: sa.Connection) -> list:
    opts = {"compare_type": True, "include_name": include_name}
    return compare_metadata(MigrationContext.configure(connection, opts=opts), metadata)


async def _round_trip(url: str) -> None:
    db = Database.from_settings(Settings(database_url=url))
    try:
        await migrate.upgrade(db.engine)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            assert (await conn.execute(sa.text("SELECT count(*) FROM service_types"))).scalar_one() == 30
        async with db.engine.begin() as conn:
            await conn.run_sync(_downgrade_to_base)
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await migrate.upgrade(db.engine)
        assert await migrate.current_revision(db.engine) == migrate.head_revision()
    finally:
        await db.dispose()


def _downgrade_to_base(connection: sa.Connection) -> None:
    from alembic import command

    cfg = migrate.alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, "base")


async def test_migrations_round_trip_on_sqlite(tmp_path):
    await _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_migrations_round_trip_on_postgresql():
    url = await create_pg_database()
    try:
        await _round_trip(url)
    finally:
        await drop_pg_database(url)
