"""Activities (帮扶活动) under pairings, and the station's rating of each."""

from __future__ import annotations

from fastapi import APIRouter, status

from service.api import exports
from service.api.deps import Actor, IdFilter, ObjectId, Paging, Session, allow
from service.api.problems import problem_responses
from service.db.models.activities import ActivityCreate, ActivityRating, ActivityRead
from service.db.models.common import Page
from service.services import activities as activity_service
from service.services.principals import Role

router = APIRouter(prefix="/api/v1", tags=["activities"], responses=problem_responses(401, 403, 429))
Recorder = allow(Role.admin, Role.coordinator, Role.station, Role.organization)


@router.post(
    "/pairings/{pairing_id}/activities",
    status_code=status.HTTP_201_CREATED,
    response_model=ActivityRead,
    responses=problem_responses(404, 422),
    summary="Record an activity delivered under a pairing",
)
async def record_activity(
    pairing_id: ObjectId, body: ActivityCreate, session: Session, actor: Recorder
) -> ActivityRead:
    return await activity_service.record(session, actor=actor, pairing_id=pairing_id, data=body)


@router.get("/activities", response_model=Page[ActivityRead], summary="Activities you may see")
async def list_activities(
    session: Session, actor: Actor, paging: Paging, pairing_id: IdFilter = None
) -> Page[ActivityRead]:
    page = await activity_service.list_(
        session, actor=actor, pairing_id=pairing_id, limit=paging.limit, cursor=paging.cursor
    )
    return exports.respond(page, paging, ActivityRead, "activities")


@router.post(
    "/activities/{activity_id}/rating",
    response_model=ActivityRead,
    responses=problem_responses(404, 409),
    summary="The station rates an activity (1–5)",
)
async def rate_activity(
    activity_id: ObjectId, body: ActivityRating, session: Session, actor: allow(Role.admin, Role.station)
) -> ActivityRead:  # type: ignore[valid-type]
    return await activity_service.rate(session, actor=actor, activity_id=activity_id, data=body)
