"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.db.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrated to head",
    responses={503: {"description": "Not ready: database unreachable or migrations pending"}},
)
async def readyz(request: Request) -> JSONResponse:
    head = head_revision()
    try:
        current = await current_revision(request.app.state.db.engine)
    except Exception as exc:  # any driver error means "not ready", never a 500
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "error": type(exc).__name__}, status_code=503
        )
    ready = current == head
    return JSONResponse(
        {"status": "ok" if ready else "migrations_pending", "database": "ok", "revision": current, "head": head},
        status_code=200 if ready else 503,
    )
