"""Offers (供给): one at a time, searched across organizations, edited with If-Match, withdrawn."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from service.api import exports
from service.api.deps import (
    ExpectedVersion,
    IdFilter,
    ObjectId,
    OrganizationSideEditor,
    OrganizationSideReader,
    Paging,
    ReadSession,
    RegionQuery,
    Session,
    set_etag,
)
from service.api.problems import problem_responses
from service.db.models.common import Page
from service.db.models.offers import OfferCreate, OfferRead, OfferStatus, OfferUpdate
from service.services import offers as offer_service

router = APIRouter(prefix="/api/v1/offers", tags=["offers"], responses=problem_responses(401, 403, 429))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OfferRead,
    responses=problem_responses(404, 422),
    summary="Add one offer to an organization's supply list",
)
async def create_offer(
    body: OfferCreate, session: Session, actor: OrganizationSideEditor, response: Response
) -> OfferRead:
    offer = await offer_service.create(session, actor=actor, data=body)
    set_etag(response, offer.version)
    response.headers["Location"] = f"/api/v1/offers/{offer.id}"
    return offer


@router.get("", response_model=Page[OfferRead], responses=problem_responses(422), summary="Search offers")
async def list_offers(
    session: ReadSession,
    actor: OrganizationSideReader,
    paging: Paging,
    region: RegionQuery = None,
    organization_id: IdFilter = None,
    domain: str | None = None,
    service_type: str | None = None,
    status: OfferStatus | None = None,
) -> Page[OfferRead]:
    page = await offer_service.list_(
        session,
        actor=actor,
        region=region,
        organization_id=organization_id,
        domain=domain,
        service_type=service_type,
        status=status,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return exports.respond(page, paging, OfferRead, "offers")


@router.get("/{offer_id}", response_model=OfferRead, responses=problem_responses(404))
async def get_offer(
    offer_id: ObjectId, session: ReadSession, actor: OrganizationSideReader, response: Response
) -> OfferRead:
    offer = await offer_service.get(session, actor=actor, offer_id=offer_id)
    set_etag(response, offer.version)
    return offer


@router.patch("/{offer_id}", response_model=OfferRead, responses=problem_responses(404, 409, 412, 422, 428))
async def update_offer(
    offer_id: ObjectId,
    body: OfferUpdate,
    version: ExpectedVersion,
    session: Session,
    actor: OrganizationSideEditor,
    response: Response,
) -> OfferRead:
    offer = await offer_service.update(session, actor=actor, offer_id=offer_id, data=body, expected_version=version)
    set_etag(response, offer.version)
    return offer


@router.delete(
    "/{offer_id}",
    response_model=OfferRead,
    responses=problem_responses(404, 409),
    summary="Withdraw an offer (it stays on record as withdrawn)",
)
async def withdraw_offer(
    offer_id: ObjectId, session: Session, actor: OrganizationSideEditor, response: Response
) -> OfferRead:
    offer = await offer_service.withdraw(session, actor=actor, offer_id=offer_id)
    set_etag(response, offer.version)
    return offer
