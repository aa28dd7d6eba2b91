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


def stop(worker: subprocess.Popen) -> None:
    """SIGTERM (jobs in hand finish), then SIGKILL if it lingers."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)


@asynccontextmanager
async def database(url: str):
    db = Database.from_settings(f.settings_for(url))
    try:
        yield db
    finally:
        await db.dispose()


async def scalar(db: Database, sql: str, params: dict | None = None) -> object:
    """One value from a query, on a connection of its own."""
    async with db.engine.connect() as conn:
        return (await conn.execute(sa.text(sql), params or {})).scalar()


async def run_status(db: Database, run_id: int, want: str, timeout_s: float) -> object:
    """The run's status once it is `want`, or whatever it is at the timeout."""
    return await wait_for(db, "SELECT status FROM match_runs WHERE id = :id", {"id": run_id}, want, timeout_s)


PROPOSALS_OF_RUN = "SELECT count(*) FROM proposals WHERE run_id = :id"


async def wait_for(db: Database, sql: str, params: dict, want, timeout_s: float) -> object:
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = await scalar(db, sql, params)
        if value == want:
            return value
        await asyncio.sleep(0.2)
    return value


@asynccontextmanager
async def worker_inside_the_run(db: Database, url: str, name: str, run_id: int):
    """A worker process that has taken the run's job and is stuck inside it: the run's row stays locked until the
    block ends (so a signal sent inside the block surely lands mid-job)."""
    async with db.engine.connect() as holder:
        await holder.execute(sa.text("BEGIN"))
        await holder.execute(sa.text("SELECT id FROM match_runs WHERE id = :id FOR UPDATE"), {"id": run_id})
        worker = start_worker(url, name)
        doing = await wait_for(
            db,
            "SELECT status::text FROM procrastinate_jobs WHERE task_name = 'run_match' "
            "AND (args->>'run_id')::int = :id",
            {"id": run_id},
            "doing",
            60,
        )
        assert doing == "doing"
        yield worker
        await holder.execute(sa.text("ROLLBACK"))


async def city_with_a_queued_run(backend, **run_options) -> int:
    settings = backend.settings(inline_runs=False)

    async def act(http) -> int:
        station = await f.create_station(http)
        _org, _offer = await f.create_volunteers(http, capacity=30)
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
            assert await run_status(db, run_id, "succeeded", 60) == "succeeded"
            assert await scalar(db, PROPOSALS_OF_RUN, {"id": run_id}) == 1
    finally:
        stop(worker)


async def test_a_run_whose_worker_is_killed_is_finished_by_another_and_nothing_half_written(app, backend):
    run_id = await city_with_a_queued_run(backend)
    async with database(backend.url) as db:
        async with worker_inside_the_run(db, backend.url, "first", run_id) as first:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        assert await scalar(db, PROPOSALS_OF_RUN, {"id": run_id}) == 0  # nothing half-written
        second = start_worker(backend.url, "second")
        try:
            assert await run_status(db, run_id, "succeeded", 120) == "succeeded"
            assert await scalar(db, PROPOSALS_OF_RUN, {"id": run_id}) == 1
        finally:
            stop(second)


async def test_two_workers_share_the_runs_and_one_dying_loses_nothing(app, backend):
    settings = backend.settings(inline_runs=False)
    counties = ["420502", "420503", "420504", "420505", "420506", "420525", "420526", "420527"]

    async def queue_runs(http) -> list[int]:
        _org, _offer = await f.create_volunteers(http, capacity=500)
        ids = []
        for county in counties:
            station = await f.create_station(
                http, name=f"{county} 社工站", region_code=f"{county}001", latitude=None, longitude=None
            )
            await f.create_need(http, station["id"])
            ids.append(
                (await http.post("/api/v1/match-runs", json={"region_code": county, "period": "2026-12"})).json()["id"]
            )
        return ids

    run_ids = await with_client(settings, queue_runs)
    workers = [start_worker(backend.url, "a"), start_worker(backend.url, "b")]
    try:
        async with database(backend.url) as db:
            # as soon as both have done some of the work, one of them dies
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                executors = await scalar(
                    db, "SELECT count(DISTINCT executed_by) FROM match_runs WHERE status = 'succeeded'"
                )
                if executors >= 2:
                    break
                await asyncio.sleep(0.1)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(10)
            # (the workers also re-match on their own, as the lists changed: count only the runs we asked for)
            done = await wait_for(
                db,
                "SELECT count(*) FROM match_runs WHERE status = 'succeeded' AND trigger = 'manual'",
                {},
                len(run_ids),
                120,
            )
            assert done == len(run_ids)
            executors = await scalar(db, "SELECT count(DISTINCT executed_by) FROM match_runs WHERE trigger = 'manual'")
            standing = await scalar(db, "SELECT count(*) FROM proposals WHERE status = 'proposed'")
            assert executors == 2  # the work was spread over both processes
            assert standing == len(run_ids)  # one per county's need: nothing lost, nothing doubled
    finally:
        for worker in workers:
            stop(worker)
