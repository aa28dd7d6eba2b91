"""Structured JSON logs with request ids (structlog) and Prometheus metrics (prometheus-client)."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.settings import Settings

REQUEST_SECONDS = Histogram(
    "jiedui_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RUN_SECONDS = Histogram(
    "jiedui_match_run_duration_seconds",
    "Match run wall time, load to stored proposals",
    ["trigger", "status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
RUNS = Counter(
    "jiedui_match_runs_total", "Match runs by outcome and solver status", ["trigger", "status", "solver_status"]
)
REMATCH_LAG = Histogram(
    "jiedui_rematch_lag_seconds",
    "From a change to the re-matched proposals",
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
access_log = structlog.get_logger("jiedui.access")
_ACCESS = logging.getLogger("jiedui.access")
_json_handler: logging.StreamHandler | None = None  # the handler configure_logging installed, when it renders JSON
QUEUE_DEPTH = Gauge("jiedui_queue_depth", "Work waiting, by kind", ["kind"])


def configure_logging(settings: Settings) -> None:
    """Every log line (ours, uvicorn's, SQLAlchemy's, procrastinate's) as one JSON object with the request id."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    global _json_handler
    _json_handler = handler if settings.log_format == "json" else None
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


class MetricsMiddleware:
    """Request latency by route template (not raw path, so ids do not explode the label space)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - started
            REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(seconds)
            # the access log: path and status only, never headers (tokens) or bodies (people's needs)
            fields = {
                "method": scope["method"],
                "route": route,
                "path": scope["path"],
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            }
            if not write_access_line(fields):
                access_log.info("request", **fields)


def write_access_line(fields: dict[str, Any]) -> bool:
    """Write the access log line straight to the JSON handler, exactly as structlog and the ProcessorFormatter render
    it (same keys, order, timestamp and JSON), when logging is as `configure_logging` left it; False otherwise (the
    caller then logs through structlog). The stdlib record, structlog's processor chain and the formatter were an
    eighth of a need list's CPU (py-spy over bench.request_cost)."""
    handler, root = _json_handler, logging.root
    if (
        handler is None
        or len(root.handlers) != 1
        or root.handlers[0] is not handler
        or not _ACCESS.isEnabledFor(logging.INFO)
        or handler.level > logging.INFO
        or _ACCESS.handlers
        or _ACCESS.filters
        or root.filters
        or handler.filters
        or not _ACCESS.propagate
    ):
        return False
    event = dict(fields, event="request")
    for key, value in structlog.contextvars.get_contextvars().items():  # merge_contextvars: never over an event key
        event.setdefault(key, value)
    event["level"], event["logger"] = "info", "jiedui.access"
    event["timestamp"] = datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")  # TimeStamper(fmt="iso", utc=True)
    line = json.dumps(event, ensure_ascii=False) + handler.terminator
    try:
        with handler.lock:  # as StreamHandler.emit
            handler.stream.write(line)
            handler.stream.flush()
    except Exception:
        return False  # logging's own path reports the failure
    return True


def observe_run(trigger: str, status: str, solver_status: str | None, seconds: float) -> None:
    RUN_SECONDS.labels(trigger, status).observe(seconds)
    RUNS.labels(trigger, status, solver_status or "none").inc()


def exposition(depths: dict[str, int]) -> tuple[bytes, str]:
    """The metrics page, with queue depths read at scrape time."""
    for kind, value in depths.items():
        QUEUE_DEPTH.labels(kind).set(value)
    return generate_latest(), CONTENT_TYPE_LATEST
