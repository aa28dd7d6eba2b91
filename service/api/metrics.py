"""Prometheus metrics: request latency, match runs, queue depths and re-match lag."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response

from service.db.models.rematch import RematchRequest
from service.db.models.runs import MatchRun, RunStatus
from service.db.models.webhooks import DeliveryStatus, WebhookDelivery
from service.observability import exposition

router = APIRouter(tags=["health"])


async def _depths(request: Request) -> dict[str, int]:
    db = request.app.state.db
    async with db.sessionmaker() as session:
        count = sa.func.count()
        depths = {
            "runs_queued": await session.scalar(sa.select(count).where(MatchRun.status == RunStatus.queued)),
            "rematch_requests": await session.scalar(
                sa.select(count).select_from(RematchRequest).where(RematchRequest.processed_at.is_(None))
            ),
            "webhook_deliveries": await session.scalar(
                sa.select(count).select_from(WebhookDelivery).where(WebhookDelivery.status == DeliveryStatus.pending)
            ),
        }
        if not request.app.state.settings.is_sqlite:
            depths["jobs_todo"] = await session.scalar(
                sa.text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
            )
    return {k: int(v or 0) for k, v in depths.items()}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    try:
        depths = await _depths(request)
    except Exception:  # a down database must not take the metrics page (and its latency figures) with it
        depths = {}
    body, content_type = exposition(depths)
    return Response(body, media_type=content_type)
