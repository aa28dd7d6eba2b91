"""The ASGI application: routers, problem handlers, middleware and the database lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from service import jobs
from service.api import (
    activities,
    audit,
    catalog,
    health,
    metrics,
    needs,
    offers,
    organizations,
    pairings,
    problems,
    proposals,
    reports,
    runs,
    stations,
    webhooks,
)
from service.api.deps import RateLimit
from service.api.hot import HotRoutes
from service.api.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from service.db.session import Database
from service.observability import MetricsMiddleware
from service.services.tokens import Verifier
from service.settings import Settings, get_settings

DESCRIPTION = """
Matching service for 结对帮扶: township and street social-work stations (乡镇街道社工站) post need lists
(需求清单, 点单); social organizations (社会组织) post supply lists (供给清单, 接单); the bureau (民政局)
matches them into pairings (结对).

Errors are RFC 9457 `application/problem+json` with a stable `code` and per-field `errors`;
send `Accept-Language: zh-CN` for Chinese messages. Updates need `If-Match` with the ETag you read.

Every `/api/v1` call needs `Authorization: Bearer <JWT>` (roles: admin, coordinator and auditor scoped to a
region code, station and organization scoped to one id). Locally: `python -m service.cli token --role coordinator
--scope 420500`.
"""


# The routers in the order the OpenAPI document (and /docs) presents them.
DOCUMENTED_ORDER = tuple(
    module.router
    for module in (
        health,
        metrics,
        catalog,
        stations,
        organizations,
        needs,
        offers,
        runs,
        proposals,
        pairings,
        activities,
        reports,
        webhooks,
        audit,
    )
)
# The order requests are matched in. FastAPI tries the included routers one after another and every route of each
# (a regular expression per route), so the routers of the busiest requests (need lists, proposals: 80 % of the load
# benchmark's mix) go first: 8 % of the API's CPU per request of that mix (bench/LOAD.md). No two routers share a
# path prefix, so which router answers a request does not depend on the order.
DISPATCH_ORDER = (
    needs.router,
    proposals.router,
    *(r for r in DOCUMENTED_ORDER if r not in (needs.router, proposals.router)),
)


def documented_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """`app.openapi` with the paths in DOCUMENTED_ORDER whatever the dispatch order (FastAPI's "Extending OpenAPI")."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            twin = FastAPI(title=app.title, version=app.version, description=app.description)
            for router in DOCUMENTED_ORDER:
                twin.include_router(router)
            app.openapi_schema = twin.openapi()
        return app.openapi_schema

    return openapi


def freeze_startup_heap() -> None:
    """Move everything alive after startup (modules, OR-Tools, SQLAlchemy and pydantic schemas) out of the
    collector's reach, so that a full collection scans only what requests allocate.

    Measured under bench.load: without it, the API process ran a full (generation 2) collection every 3–4 s, each
    pausing the event loop for 130–145 ms: the p99 of every request caught behind it. Frozen objects sit in a
    permanent generation that collections ignore (Python docs, gc.freeze); requests' garbage is still collected.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for the given settings (the environment's by default)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = Database.from_settings(settings)
        app.state.jobs = jobs.build_app(settings)
        worker = None
        async with app.state.jobs.open_async():
            if settings.in_process_worker:
                worker = asyncio.create_task(
                    jobs.run_worker(app.state.jobs, app.state.db, settings, install_signal_handlers=False)
                )
            if settings.gc_freeze:
                freeze_startup_heap()
            try:
                yield
            finally:
                if worker is not None:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                await app.state.db.dispose()

    app = FastAPI(title="结对帮扶 Matching Service", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.verifier = Verifier(settings)
    app.state.rate_limit = RateLimit(settings)
    problems.install(app)
    for router in DISPATCH_ORDER:
        app.include_router(router)
    app.openapi = documented_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(HotRoutes)  # inside the body limit, metrics and request id, like the routes it answers
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app
