"""Stations (社工站) and their need lists."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from service.api import exports
from service.api.deps import (
    BureauStaff,
    ExpectedVersion,
    ObjectId,
    Paging,
    ReadSession,
    RegionQuery,
    Session,
    SettingsDep,
    StationSideEditor,
    StationSideReader,
    set_etag,
)
from service.api.problems import problem_responses
from service.db.models.common import Page
from service.db.models.needs import NeedList, NeedRead, NeedStatus
from service.db.models.stations import StationCreate, StationRead, StationUpdate
from service.services import catalog as catalog_service
from service.services import needs as need_service
from service.services import spreadsheets
from service.services import stations as station_service

router = APIRouter(prefix="/api/v1/stations", tags=["stations"], responses=problem_responses(401, 403, 429))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=StationRead,
    responses=problem_responses(409, 422),
    summary="Register a station (bureau staff)",
)
async def create_station(body: StationCreate, session: Session, actor: BureauStaff, response: Response) -> StationRead:
    station = await station_service.create(session, actor=actor, data=body)
    set_etag(response, station.version)
    response.headers["Location"] = f"/api/v1/stations/{station.id}"
    return station


@router.get("", response_model=Page[StationRead], responses=problem_responses(422), summary="List stations")
async def list_stations(
    session: ReadSession, actor: StationSideReader, paging: Paging, region: RegionQuery = None
) -> Page[StationRead]:
    page = await station_service.list_(session, actor=actor, region=region, limit=paging.limit, cursor=paging.cursor)
    return exports.respond(page, paging, StationRead, "stations")


@router.get("/{station_id}", response_model=StationRead, responses=problem_responses(404))
async def get_station(
    station_id: ObjectId, session: ReadSession, actor: StationSideReader, response: Response
) -> StationRead:
    station = await station_service.get(session, actor=actor, station_id=station_id)
    set_etag(response, station.version)
    return station


@router.patch("/{station_id}", response_model=StationRead, responses=problem_responses(404, 412, 422, 428))
async def update_station(
    station_id: ObjectId,
    body: StationUpdate,
    version: ExpectedVersion,
    session: Session,
    actor: StationSideEditor,
    response: Response,
) -> StationRead:
    station = await station_service.update(
        session, actor=actor, station_id=station_id, data=body, expected_version=version
    )
    set_etag(response, station.version)
    return station


@router.delete(
    "/{station_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409),
    summary="Archive a station (refused while it has live needs)",
)
async def archive_station(station_id: ObjectId, session: Session, actor: BureauStaff) -> None:
    await station_service.archive(session, actor=actor, station_id=station_id)


@router.post(
    "/{station_id}/needs",
    status_code=status.HTTP_201_CREATED,
    response_model=list[NeedRead],
    responses=problem_responses(404, 413, 422),
    summary="Submit a need list (点单): all items or none",
)
async def submit_need_list(
    station_id: ObjectId, body: NeedList, session: Session, settings: SettingsDep, actor: StationSideEditor
) -> list[NeedRead]:
    return await need_service.submit_list(
        session, actor=actor, station_id=station_id, items=body.items, max_items=settings.batch_max_items
    )


@router.post(
    "/{station_id}/needs/import",
    status_code=status.HTTP_201_CREATED,
    response_model=list[NeedRead],
    responses=problem_responses(404, 413, 422),
    openapi_extra={"requestBody": {"content": {spreadsheets.XLSX: {"schema": {"type": "string", "format": "binary"}}}}},
    summary="Upload a filled need-list template (.xlsx body): all rows or none",
)
async def import_need_list(
    station_id: ObjectId, request: Request, session: Session, actor: StationSideEditor
) -> list[NeedRead]:
    catalog = await catalog_service.load(session)
    items = spreadsheets.parse_needs(await request.body(), set(catalog.types))
    return await need_service.submit_list(
        session, actor=actor, station_id=station_id, items=items, max_items=spreadsheets.MAX_ROWS
    )


@router.get(
    "/{station_id}/needs/export.xlsx",
    response_class=Response,
    responses=problem_responses(404),
    summary="A station's live needs in the template's layout (re-importable)",
)
async def export_need_list(station_id: ObjectId, session: Session, actor: StationSideReader) -> Response:
    await station_service.get(session, actor=actor, station_id=station_id)
    page = await need_service.list_(
        session,
        actor=actor,
        region=None,
        station_id=station_id,
        domain=None,
        service_type=None,
        status=None,
        limit=spreadsheets.MAX_ROWS,
        cursor=None,
    )
    live = [n for n in page.items if n.status in ("open", "partially_matched", "matched")]
    body = spreadsheets.need_template(await catalog_service.load(session), live)
    return exports.attachment(body, f"needs-station-{station_id}.xlsx")


@router.get(
    "/{station_id}/needs",
    response_model=Page[NeedRead],
    responses=problem_responses(404, 422),
    summary="A station's need list",
)
async def list_station_needs(
    station_id: ObjectId,
    session: ReadSession,
    actor: StationSideReader,
    paging: Paging,
    status: NeedStatus | None = None,
) -> Page[NeedRead]:
    await station_service.get(session, actor=actor, station_id=station_id)
    return await need_service.list_(
        session,
        actor=actor,
        region=None,
        station_id=station_id,
        domain=None,
        service_type=None,
        status=status,
        limit=paging.limit,
        cursor=paging.cursor,
    )
