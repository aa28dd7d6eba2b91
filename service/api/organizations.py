"""Social organizations (社会组织) and their supply lists."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from service.api import exports
from service.api.deps import (
    BureauStaff,
    ExpectedVersion,
    ObjectId,
    OrganizationSideEditor,
    OrganizationSideReader,
    Paging,
    ReadSession,
    RegionQuery,
    Session,
    SettingsDep,
    set_etag,
)
from service.api.problems import problem_responses
from service.db.models.common import Page
from service.db.models.offers import OfferList, OfferRead, OfferStatus
from service.db.models.organizations import (
    OrganizationCreate,
    OrganizationKind,
    OrganizationRead,
    OrganizationUpdate,
)
from service.services import catalog as catalog_service
from service.services import offers as offer_service
from service.services import organizations as organization_service
from service.services import spreadsheets

router = APIRouter(prefix="/api/v1/organizations", tags=["organizations"], responses=problem_responses(401, 403, 429))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationRead,
    responses=problem_responses(409, 422),
    summary="Register an organization (bureau staff)",
)
async def create_organization(
    body: OrganizationCreate, session: Session, actor: BureauStaff, response: Response
) -> OrganizationRead:
    org = await organization_service.create(session, actor=actor, data=body)
    set_etag(response, org.version)
    response.headers["Location"] = f"/api/v1/organizations/{org.id}"
    return org


@router.get("", response_model=Page[OrganizationRead], responses=problem_responses(422), summary="List organizations")
async def list_organizations(
    session: ReadSession,
    actor: OrganizationSideReader,
    paging: Paging,
    region: RegionQuery = None,
    kind: OrganizationKind | None = None,
) -> Page[OrganizationRead]:
    page = await organization_service.list_(
        session, actor=actor, region=region, kind=kind, limit=paging.limit, cursor=paging.cursor
    )
    return exports.respond(page, paging, OrganizationRead, "organizations")


@router.get("/{organization_id}", response_model=OrganizationRead, responses=problem_responses(404))
async def get_organization(
    organization_id: ObjectId, session: ReadSession, actor: OrganizationSideReader, response: Response
) -> OrganizationRead:
    org = await organization_service.get(session, actor=actor, organization_id=organization_id)
    set_etag(response, org.version)
    return org


@router.patch(
    "/{organization_id}",
    response_model=OrganizationRead,
    responses=problem_responses(404, 412, 422, 428),
    summary="Edit an organization (rating and home region: bureau staff only)",
)
async def update_organization(
    organization_id: ObjectId,
    body: OrganizationUpdate,
    version: ExpectedVersion,
    session: Session,
    actor: OrganizationSideEditor,
    response: Response,
) -> OrganizationRead:
    org = await organization_service.update(
        session, actor=actor, organization_id=organization_id, data=body, expected_version=version
    )
    set_etag(response, org.version)
    return org


@router.delete(
    "/{organization_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409),
    summary="Archive an organization (refused while it has live offers)",
)
async def archive_organization(organization_id: ObjectId, session: Session, actor: BureauStaff) -> None:
    await organization_service.archive(session, actor=actor, organization_id=organization_id)


@router.post(
    "/{organization_id}/offers",
    status_code=status.HTTP_201_CREATED,
    response_model=list[OfferRead],
    responses=problem_responses(404, 413, 422),
    summary="Submit a supply list (接单): all items or none",
)
async def submit_offer_list(
    organization_id: ObjectId, body: OfferList, session: Session, settings: SettingsDep, actor: OrganizationSideEditor
) -> list[OfferRead]:
    return await offer_service.submit_list(
        session, actor=actor, organization_id=organization_id, items=body.items, max_items=settings.batch_max_items
    )


@router.post(
    "/{organization_id}/offers/import",
    status_code=status.HTTP_201_CREATED,
    response_model=list[OfferRead],
    responses=problem_responses(404, 413, 422),
    openapi_extra={"requestBody": {"content": {spreadsheets.XLSX: {"schema": {"type": "string", "format": "binary"}}}}},
    summary="Upload a filled supply-list template (.xlsx body): all rows or none",
)
async def import_offer_list(
    organization_id: ObjectId, request: Request, session: Session, actor: OrganizationSideEditor
) -> list[OfferRead]:
    catalog = await catalog_service.load(session)
    items = spreadsheets.parse_offers(await request.body(), set(catalog.types))
    return await offer_service.submit_list(
        session, actor=actor, organization_id=organization_id, items=items, max_items=spreadsheets.MAX_ROWS
    )


@router.get(
    "/{organization_id}/offers/export.xlsx",
    response_class=Response,
    responses=problem_responses(404),
    summary="An organization's live offers in the template's layout (re-importable)",
)
async def export_offer_list(organization_id: ObjectId, session: Session, actor: OrganizationSideReader) -> Response:
    await organization_service.get(session, actor=actor, organization_id=organization_id)
    page = await offer_service.list_(
        session,
        actor=actor,
        region=None,
        organization_id=organization_id,
        domain=None,
        service_type=None,
        status=None,
        limit=spreadsheets.MAX_ROWS,
        cursor=None,
    )
    live = [o for o in page.items if o.status in ("active", "paused")]
    body = spreadsheets.offer_template(await catalog_service.load(session), live)
    return exports.attachment(body, f"offers-organization-{organization_id}.xlsx")


@router.get(
    "/{organization_id}/offers",
    response_model=Page[OfferRead],
    responses=problem_responses(404, 422),
    summary="An organization's supply list",
)
async def list_organization_offers(
    organization_id: ObjectId,
    session: ReadSession,
    actor: OrganizationSideReader,
    paging: Paging,
    status: OfferStatus | None = None,
) -> Page[OfferRead]:
    await organization_service.get(session, actor=actor, organization_id=organization_id)
    return await offer_service.list_(
        session,
        actor=actor,
        region=None,
        organization_id=organization_id,
        domain=None,
        service_type=None,
        status=status,
        limit=paging.limit,
        cursor=paging.cursor,
    )
