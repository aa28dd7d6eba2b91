"""Probes: /healthz answers while the process lives; /readyz only when the database is reachable and at head."""

from __future__ import annotations

import httpx

from service.db import migrate
from service.settings import Settings
from tests.apps import with_client
from tests.conftest import TEST_JWT_SECRET


async def test_healthz_and_readyz_on_a_migrated_database(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["revision"] == migrate.head_revision()


async def _probe(settings: Settings) -> httpx.Response:
    return await with_client(settings, lambda http: http.get("/readyz"))


async def test_readyz_is_503_while_migrations_are_pending(tmp_path):
    response = await _probe(
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", jwt_secret=TEST_JWT_SECRET)
    )
    assert response.status_code == 503
    assert response.json()["status"] == "migrations_pending"


async def test_readyz_is_503_when_the_database_is_unreachable():
    response = await _probe(
        Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none", jwt_secret=TEST_JWT_SECRET)
    )
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
