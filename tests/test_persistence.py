"""The embedded default keeps data in a file: what was stored survives a restart of the app."""

from __future__ import annotations

import httpx

from service.db import migrate
from service.db.session import Database
from service.settings import Settings
from tests import factories as f
from tests.apps import with_client
from tests.conftest import TEST_JWT_SECRET


async def test_needs_survive_a_restart_on_the_sqlite_file(tmp_path):
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'var' / 'jiedui.db'}", jwt_secret=TEST_JWT_SECRET
    )
    db = Database.from_settings(settings)
    await migrate.upgrade(db.engine)
    await db.dispose()

    async def write(http: httpx.AsyncClient) -> int:
        station = await f.create_station(http)
        return (await f.create_need(http, station["id"]))["id"]

    need_id = await with_client(settings, write)

    async def read(http: httpx.AsyncClient) -> dict:
        return (await http.get(f"/api/v1/needs/{need_id}")).json()

    assert (await with_client(settings, read))["title"] == "独居老人每月探访"
    assert (tmp_path / "var" / "jiedui.db").exists()
