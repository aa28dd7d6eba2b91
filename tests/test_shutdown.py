"""SIGTERM is graceful: the API finishes the request in hand, a worker finishes the job in hand, then they exit."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
import sqlalchemy as sa

from service.services import tokens
from service.services.principals import Role
from tests import factories as f
from tests.apps import with_client
from tests.conftest import TEST_JWT_SECRET
from tests.test_worker import ROOT, city_with_a_queued_run, database, run_status, worker_inside_the_run

pytestmark = pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


def start_server(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--no-migrate"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_api_finishes_the_request_in_hand_on_sigterm(app, backend):
    station = await with_client(backend.settings(), lambda http: f.create_station(http))
    port = free_port()
    env = {
        **os.environ,
        "MATCH_DATABASE_URL": backend.url,
        "MATCH_JWT_SECRET": TEST_JWT_SECRET,
        "MATCH_PORT": str(port),
        "MATCH_IN_PROCESS_WORKER": "false",
        "MATCH_SHUTDOWN_GRACE_S": "30",
    }
    server = start_server(env)
    admin = tokens.issue(backend.settings(), subject="t", role=Role.admin, scope=None, lifetime_s=60)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Authorization": f"Bearer {admin}"}
        ) as http:
            for _ in range(100):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            async with database(backend.url) as db, db.engine.connect() as holder:
                # hold the station's row: the edit below waits for it inside its request
                await holder.execute(sa.text("BEGIN"))
                await holder.execute(
                    sa.text("SELECT id FROM stations WHERE id = :id FOR UPDATE"), {"id": station["id"]}
                )
                edit = asyncio.create_task(
                    http.patch(
                        f"/api/v1/stations/{station['id']}", json={"name": "改名社工站"}, headers={"If-Match": '"1"'}
                    )
                )
                await asyncio.sleep(1.0)
                server.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
                assert server.poll() is None  # still finishing the request in hand
                await holder.execute(sa.text("ROLLBACK"))
            response = await edit
        assert response.status_code == 200 and response.json()["name"] == "改名社工站"
        # uvicorn re-raises the signal after its graceful shutdown, so the exit status reports SIGTERM
        assert server.wait(30) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()


async def test_a_worker_finishes_the_job_in_hand_on_sigterm(app, backend):
    run_id = await city_with_a_queued_run(backend)
    async with database(backend.url) as db:
        async with worker_inside_the_run(db, backend.url, "graceful", run_id) as worker:
            worker.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert worker.poll() is None
        assert worker.wait(60) in (0, -signal.SIGTERM)
        assert await run_status(db, run_id, "succeeded", 5) == "succeeded"
