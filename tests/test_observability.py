"""Operators see JSON logs with request ids (never tokens) and Prometheus metrics for requests, runs and queues."""

from __future__ import annotations

import gc
import io
import json
import logging
import re

import pytest
import structlog

from service.app import create_app
from service.observability import access_log, configure_logging, write_access_line
from tests import factories as f


@pytest.fixture
def json_logs(backend):
    """Configure logging as `serve` does, into a buffer; restore pytest's handlers afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(backend.settings(log_format="json"))
    buffer = io.StringIO()
    root.handlers[0].stream = buffer
    yield buffer
    root.handlers, root.level = saved[0], saved[1]


async def test_each_request_is_logged_as_json_with_its_request_id_and_no_token(client, json_logs):
    token = client.headers["Authorization"].split()[1]
    await client.get("/api/v1/needs", params={"region": "420502"}, headers={"X-Request-ID": "bureau-7"})
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines() if line.strip()]
    access = [entry for entry in lines if entry.get("event") == "request"]
    assert access[-1]["request_id"] == "bureau-7"
    assert (access[-1]["route"], access[-1]["status"]) == ("/api/v1/needs", 200)
    assert token not in json_logs.getvalue()


def test_the_access_line_written_directly_is_the_line_structlog_renders(json_logs):
    """observability.write_access_line skips structlog and the stdlib record; the line must not change."""
    ours = logging.getLogger().handlers[0]
    logging.getLogger().handlers = [ours]  # without pytest's capturing handler, as in a serving process
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id="bureau-8", route="not over the event's own")
    fields = {"method": "GET", "route": "/api/v1/needs", "path": "/api/v1/needs", "status": 200, "duration_ms": 0.5}
    try:
        access_log.info("request", **fields)
        assert write_access_line(fields)
    finally:
        structlog.contextvars.clear_contextvars()
    through, direct = json_logs.getvalue().splitlines()
    assert re.fullmatch(r'.*"timestamp": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"}', direct)
    stamp = re.compile(r'"timestamp": "[^"]*"')
    assert stamp.sub("", direct) == stamp.sub("", through)
    assert json.loads(direct)["route"] == "/api/v1/needs" and json.loads(direct)["request_id"] == "bureau-8"


def test_the_access_line_goes_through_logging_when_logging_is_not_as_configured(json_logs):
    logging.getLogger("jiedui.access").addFilter(lambda record: False)  # someone filtering access lines out
    try:
        assert not write_access_line({"method": "GET", "route": "/", "path": "/", "status": 200, "duration_ms": 1})
    finally:
        logging.getLogger("jiedui.access").filters.clear()
    assert json_logs.getvalue() == ""


async def test_metrics_show_latency_by_route_runs_and_queue_depths(app, client, anonymous):
    station = await f.create_station(client)
    _org, _offer = await f.create_volunteers(client, capacity=60)
    need = await f.create_need(client, station["id"])
    await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})
    await client.get(f"/api/v1/needs/{need['id']}")
    page = (await anonymous.get("/metrics")).text
    assert (
        'jiedui_http_request_duration_seconds_count{method="GET",route="/api/v1/needs/{need_id}",status="200"}' in page
    )
    assert 'jiedui_match_runs_total{solver_status="optimal",status="succeeded",trigger="manual"}' in page
    assert 'jiedui_queue_depth{kind="rematch_requests"}' in page
    rematch_depth = next(line for line in page.splitlines() if line.startswith('jiedui_queue_depth{kind="rematch'))
    assert float(rematch_depth.split()[-1]) == 2  # the new offer and the new need wait for the re-match job


async def test_a_serving_process_freezes_its_startup_heap_so_full_collections_stay_short(backend):
    """The startup heap (OR-Tools, SQLAlchemy, pydantic schemas) is exempt from collection; without it, a full
    collection paused the API for 130-145 ms every few seconds under load."""
    gc.unfreeze()
    app = create_app(backend.settings(gc_freeze=True))
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
