"""Match runs as jobs on PostgreSQL: queued by the API, run by separate worker processes, surviving a SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager

import pytest
import sqlalchemy as sa

from service.db.session import Database
from tests import factories as f
from tests.apps import with_client

pytestmark = pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_worker(url: str, name: str) -> subprocess.Popen:
    env = {**os.environ, "MATCH_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker", "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@asynccontextmanager
async def database(url: str):
    db = Database.from_settings(f.settings_for(url))
    try:
        yield db
    finally:
        await db.dispose()


async def wait_for(db: Database, sql: str, params: dict, want, timeout_s: float) -> object:
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        async with db.engine.connect() as conn:
            value = (await conn.execute(sa.text(sql), params)).scalar()
        if value == want:
            return value
        await asyncio.sleep(0.2)
    return value


async def city_with_a_queued_run(backend, **run_options) -> int:
    settings = backend.settings(inline_runs=False)

    async def act(http) -> int:
        station = await f.create_station(http)
        org = await f.create_organization(
            http,
            name="宜昌市志愿者协会",
            kind="social_group",
            credit_code=f.credit_code("1", "420500"),
            home_region_code="420500",
            service_area=["420500"],
        )
        await f.create_offer(http, org["id"], service_types=["elderly_care.home_visit"], title="入户探访", capacity=30)
        await f.create_need(http, station["id"])
        response = await http.post(
            "/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12", **run_options}
        )
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued"
        return response.json()["id"]

    return await with_client(settings, act)


async def test_a_queued_run_is_done_by_a_worker_process(app, backend):
    run_id = await city_with_a_queued_run(backend)
    worker = start_worker(backend.url, "a")
    try:
        async with database(backend.url) as db:
            status = await wait_for(db, "SELECT status FROM match_runs WHERE id = :id", {"id": run_id}, "succeeded", 60)
            assert status == "succeeded"
            async with db.engine.connect() as conn:
                n = (
                    await conn.execute(sa.text("SELECT count(*) FROM proposals WHERE run_id = :id"), {"id": run_id})
                ).scalar_one()
            assert n == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


async def test_a_run_whose_worker_is_killed_is_finished_by_another_and_nothing_half_written(app, backend):
    run_id = await city_with_a_queued_run(backend)
    async with database(backend.url) as db:
        # hold the run's row so the first worker is stuck inside the job when we kill it
        async with db.engine.connect() as holder:
            await holder.execute(sa.text("BEGIN"))
            await holder.execute(sa.text("SELECT id FROM match_runs WHERE id = :id FOR UPDATE"), {"id": run_id})
            first = start_worker(backend.url, "first")
            doing = await wait_for(
                db,
                "SELECT status::text FROM procrastinate_jobs WHERE task_name = 'run_match' "
                "AND (args->>'run_id')::int = :id",
                {"id": run_id},
                "doing",
                60,
            )
            assert doing == "doing"
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            await holder.execute(sa.text("ROLLBACK"))
        async with db.engine.connect() as conn:
            partial = (
                await conn.execute(sa.text("SELECT count(*) FROM proposals WHERE run_id = :id"), {"id": run_id})
            ).scalar_one()
        assert partial == 0
        second = start_worker(backend.url, "second")
        try:
            status = await wait_for(
                db, "SELECT status FROM match_runs WHERE id = :id", {"id": run_id}, "succeeded", 120
            )
            assert status == "succeeded"
            async with db.engine.connect() as conn:
                n = (
                    await conn.execute(sa.text("SELECT count(*) FROM proposals WHERE run_id = :id"), {"id": run_id})
                ).scalar_one()
            assert n == 1
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
