"""Use cases for pairings (结对): listed by region, organization or station; ended by the bureau."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models.common import Page
from service.db.models.pairings import Pairing, PairingRead
from service.errors import Conflict
from service.services import audit, policy
from service.services.common import fetch_page, get_or_404
from service.services.principals import Principal


def ownership(p: Pairing) -> policy.Ownership:
    return policy.Ownership(region_code=p.region_code, station_id=p.station_id, organization_id=p.organization_id)


async def list_(
    session: AsyncSession,
    *,
    actor: Principal,
    region: str | None,
    organization_id: int | None,
    station_id: int | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
) -> Page[PairingRead]:
    """Pairings the actor may see."""
    stmt = sa.select(Pairing).where(
        policy.visible(
            actor,
            region_column=Pairing.region_code,
            station_column=Pairing.station_id,
            organization_column=Pairing.organization_id,
        )
    )
    if region:
        stmt = stmt.where(Pairing.region_code.like(policy.region_prefix(region) + "%"))
    if organization_id is not None:
        stmt = stmt.where(Pairing.organization_id == organization_id)
    if station_id is not None:
        stmt = stmt.where(Pairing.station_id == station_id)
    if active is not None:
        stmt = stmt.where(Pairing.ended_on.is_(None) if active else Pairing.ended_on.is_not(None))
    rows, next_cursor = await fetch_page(session, stmt, Pairing.id, limit=limit, cursor=cursor)
    return Page[PairingRead](items=[PairingRead.model_validate(p) for p in rows], next_cursor=next_cursor, limit=limit)


async def end(session: AsyncSession, *, actor: Principal, pairing_id: int, on: date) -> PairingRead:
    """End an active pairing on a date."""
    p = await get_or_404(session, Pairing, pairing_id, what_en="pairing", what_zh="结对", for_update=True)
    policy.authorize(actor, ownership(p), write=True, what_en="pairing", what_zh="结对", object_id=pairing_id)
    if p.ended_on is not None:
        raise Conflict(
            "The pairing has ended already",
            "该结对已结束",
            code="pairing_ended",
            extra={"ended_on": p.ended_on.isoformat()},
        )
    before = PairingRead.model_validate(p)
    p.ended_on = max(on, p.started_on)
    await session.flush()
    after = PairingRead.model_validate(p)
    await audit.record(
        session,
        actor=actor,
        action="end",
        object_type="pairing",
        object_id=p.id,
        region_code=p.region_code,
        before=before,
        after=after,
    )
    return after
