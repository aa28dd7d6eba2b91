"""Needs (需求): one at a time, searched across stations, edited with If-Match, cancelled."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from service.api import exports
from service.api.deps import (
    ExpectedVersion,
    IdFilter,
    ObjectId,
    Paging,
    ReadSession,
    ReadSessions,
    RegionQuery,
    Session,
    StationSideEditor,
    StationSideReader,
    set_etag,
)
from service.api.problems import problem_responses
from service.db.models.common import Page
from service.db.models.needs import NeedCreate, NeedRead, NeedStatus, NeedUpdate
from service.services import needs as need_service

router = APIRouter(prefix="/api/v1/needs", tags=["needs"], responses=problem_responses(401, 403, 429))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NeedRead,
    responses=problem_responses(404, 422),
    summary="Add one need to a station's list",
)
async def create_need(body: NeedCreate, session: Session, actor: StationSideEditor, response: Response) -> NeedRead:
    need = await need_service.create(session, actor=actor, data=body)
    set_etag(response, need.version)
    response.headers["Location"] = f"/api/v1/needs/{need.id}"
    return need


@router.get("", response_model=Page[NeedRead], responses=problem_responses(422), summary="Search needs")
async def list_needs(
    sessions: ReadSessions,
    actor: StationSideReader,
    paging: Paging,
    region: RegionQuery = None,
    station_id: IdFilter = None,
    domain: str | None = None,
    service_type: str | None = None,
    status: NeedStatus | None = None,
) -> Page[NeedRead]:
    async with sessions() as session:
        page = await need_service.list_(
            session,
            actor=actor,
            region=region,
            station_id=station_id,
            domain=domain,
            service_type=service_type,
            status=status,
            limit=paging.limit,
            cursor=paging.cursor,
        )
    return exports.respond(page, paging, NeedRead, "needs")


@router.get("/{need_id}", response_model=NeedRead, responses=problem_responses(404))
async def get_need(need_id: ObjectId, session: ReadSession, actor: StationSideReader, response: Response) -> NeedRead:
    need = await need_service.get(session, actor=actor, need_id=need_id)
    set_etag(response, need.version)
    return need


@router.patch("/{need_id}", response_model=NeedRead, responses=problem_responses(404, 409, 412, 422, 428))
async def update_need(
    need_id: ObjectId,
    body: NeedUpdate,
    version: ExpectedVersion,
    session: Session,
    actor: StationSideEditor,
    response: Response,
) -> NeedRead:
    need = await need_service.update(session, actor=actor, need_id=need_id, data=body, expected_version=version)
    set_etag(response, need.version)
    return need


@router.delete(
    "/{need_id}",
    response_model=NeedRead,
    responses=problem_responses(404, 409),
    summary="Cancel a need (it stays on record as cancelled)",
)
async def cancel_need(need_id: ObjectId, session: Session, actor: StationSideEditor, response: Response) -> NeedRead:
    need = await need_service.cancel(session, actor=actor, need_id=need_id)
    set_etag(response, need.version)
    return need
