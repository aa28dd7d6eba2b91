"""Expiry (过期): needs and offers whose window has passed, and proposals nobody answered in time."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models.needs import Need, NeedStatus
from service.db.models.offers import Offer, OfferStatus
from service.db.models.organizations import Organization
from service.db.models.stations import Station
from service.services import proposals as proposal_service
from service.services import rematch as rematch_service


async def expire_lists(session: AsyncSession, *, now: datetime) -> tuple[int, int]:
    """Open needs and live offers past their window end become `expired` and leave the next re-match."""
    today = now.date()
    needs = (
        await session.execute(
            sa.select(Need, Station.region_code)
            .join(Station, Station.id == Need.station_id)
            .where(Need.status.in_((NeedStatus.open, NeedStatus.partially_matched)), Need.window_end < today)
            .with_for_update(of=Need)
        )
    ).all()
    for need, region in needs:
        need.status, need.version, need.updated_at = NeedStatus.expired, need.version + 1, now
        await proposal_service.close_open(session, need_id=need.id)
        await rematch_service.mark(
            session, region_code=region, reason="need_expired", object_type="need", object_id=need.id
        )
    offers = (
        await session.execute(
            sa.select(Offer, Organization)
            .join(Organization)
            .where(Offer.status.in_((OfferStatus.active, OfferStatus.paused)), Offer.window_end < today)
            .with_for_update(of=Offer)
        )
    ).all()
    for offer, org in offers:
        offer.status, offer.version, offer.updated_at = OfferStatus.expired, offer.version + 1, now
        await proposal_service.close_open(session, offer_id=offer.id)
        for code in offer.service_area or org.service_area:
            await rematch_service.mark(
                session, region_code=code, reason="offer_expired", object_type="offer", object_id=offer.id
            )
    await session.flush()
    return len(needs), len(offers)


async def run(session: AsyncSession, *, now: datetime) -> dict[str, int]:
    """Everything that expires now."""
    needs, offers = await expire_lists(session, now=now)
    proposals = await proposal_service.expire_unanswered(session, now=now)
    return {"needs": needs, "offers": offers, "proposals": proposals}
