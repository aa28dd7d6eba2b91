"""Pairings (结对): listed by region, organization or station; ended by the bureau."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from pydantic import Field

from service.api import exports
from service.api.deps import Actor, BureauStaff, IdFilter, ObjectId, Paging, ReadSession, RegionQuery, Session
from service.api.problems import problem_responses
from service.db.models.common import Page, Strict
from service.db.models.pairings import PairingRead
from service.services import pairings as pairing_service

router = APIRouter(prefix="/api/v1/pairings", tags=["pairings"], responses=problem_responses(401, 403, 429))


class PairingEnd(Strict):
    ended_on: date = Field(default_factory=date.today)


@router.get("", response_model=Page[PairingRead], responses=problem_responses(422), summary="List pairings")
async def list_pairings(
    session: ReadSession,
    actor: Actor,
    paging: Paging,
    region: RegionQuery = None,
    organization_id: IdFilter = None,
    station_id: IdFilter = None,
    active: bool | None = None,
) -> Page[PairingRead]:
    page = await pairing_service.list_(
        session,
        actor=actor,
        region=region,
        organization_id=organization_id,
        station_id=station_id,
        active=active,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return exports.respond(page, paging, PairingRead, "pairings")


@router.post(
    "/{pairing_id}/end", response_model=PairingRead, responses=problem_responses(404, 409), summary="End a pairing"
)
async def end_pairing(
    pairing_id: ObjectId, session: Session, actor: BureauStaff, body: PairingEnd | None = None
) -> PairingRead:
    return await pairing_service.end(session, actor=actor, pairing_id=pairing_id, on=(body or PairingEnd()).ended_on)
