"""From tables to the engine's plain records (and back): the only place that knows both shapes."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models.catalog import ServiceType
from service.db.models.needs import Need, NeedStatus
from service.db.models.offers import Offer, OfferServiceType, OfferStatus
from service.db.models.organizations import Organization
from service.db.models.pairings import Pairing
from service.db.models.proposals import Answer, Proposal, ProposalStatus
from service.db.models.runs import MatchRun, RunStatus
from service.db.models.stations import Station
from service.matching import NeedRecord, OfferRecord, OrganizationRecord, StationRecord
from service.reference import regions
from service.services import activities as activity_service
from service.services.policy import region_prefix

# Our priorities are 1 low … 4 urgent; the engine's run 1 … 5.
ENGINE_PRIORITY = {1: 1, 2: 3, 3: 4, 4: 5}
RATING_SCORE = {"1A": 1.0, "2A": 2.0, "3A": 3.0, "4A": 4.0, "5A": 5.0}


@dataclass(frozen=True, slots=True)
class PreviousUnits:
    """A standing proposal, as the engine's `previous` needs it."""

    need_id: int
    offer_id: int
    units: int


@dataclass
class RunInput:
    """Everything one solve needs, loaded in one short transaction."""

    needs: list[NeedRecord] = field(default_factory=list)
    offers: list[OfferRecord] = field(default_factory=list)
    organizations: list[OrganizationRecord] = field(default_factory=list)
    stations: list[StationRecord] = field(default_factory=list)
    pairings: list[tuple[int, int]] = field(default_factory=list)
    rejected: list[tuple[int, int]] = field(default_factory=list)
    half_accepted: list[tuple[int, int, int]] = field(default_factory=list)  # (need, offer, units): one side said yes
    previous: list[PreviousUnits] = field(default_factory=list)
    station_regions: dict[int, str] = field(default_factory=dict)
    previous_state: dict | None = None  # engine state of the last successful run of this region and month


def month_window(period: str) -> tuple[date, date]:
    """First and last day of a YYYY-MM month."""
    year, month = (int(p) for p in period.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def overlaps(area_codes: Iterable[str], region: str) -> bool:
    """Whether any service-area code and the region share ground."""
    scope = region_prefix(region)
    return any(p.startswith(scope) or scope.startswith(p) for p in (region_prefix(a) for a in area_codes))


def _station_record(s: sa.Row[Any]) -> StationRecord:
    lat, lon = (
        (s.latitude, s.longitude) if s.latitude is not None else (regions.coordinates(s.region_code) or (None, None))
    )
    return StationRecord(id=s.id, region_code=s.region_code, lat=lat, lon=lon)


def _organization_record(o: sa.Row[Any], feedback: float | None) -> OrganizationRecord:
    lat, lon = (
        (o.latitude, o.longitude)
        if o.latitude is not None
        else (regions.coordinates(o.home_region_code) or (None, None))
    )
    return OrganizationRecord(
        id=o.id,
        rating=RATING_SCORE.get(o.rating or ""),
        feedback=feedback,
        max_stations=o.max_stations,
        lat=lat,
        lon=lon,
        domains=tuple(o.expertise),
    )


def _offer_record(offer: sa.Row[Any], org: sa.Row[Any], types: tuple[str, ...], capacity: int) -> OfferRecord:
    area = offer.service_area or org.service_area
    return OfferRecord(
        id=offer.id,
        organization_id=org.id,
        service_types=types,
        capacity=capacity,
        window=(offer.window_start, offer.window_end),
        area=tuple(region_prefix(a) for a in area),
        max_distance_km=org.max_distance_km,
    )


async def load(session: AsyncSession, *, region: str, period: str) -> RunInput:
    """Needs of the stations under `region` open in the month, and the live offers that may reach them."""
    start, end = month_window(period)
    data = RunInput()
    # Core rows throughout (a province: ~15k rows, which as ORM instances cost more than the engine's solve).
    stations = (
        await session.execute(
            sa.select(Station.id, Station.region_code, Station.latitude, Station.longitude)
            .where(Station.archived_at.is_(None), Station.region_code.like(region_prefix(region) + "%"))
            .order_by(Station.id)  # the engine numbers stations in this order (its fingerprints use the numbers)
        )
    ).all()
    data.stations = [_station_record(s) for s in stations]
    data.station_regions = {s.id: s.region_code for s in stations}
    domains = dict((await session.execute(sa.select(ServiceType.code, ServiceType.domain_code))).all())
    needs = (
        await session.execute(
            sa.select(
                Need.id,
                Need.station_id,
                Need.service_type_code,
                Need.quantity,
                Need.committed,
                Need.window_start,
                Need.window_end,
                Need.priority,
                Need.splittable,
            )
            .where(
                Need.station_id.in_(list(data.station_regions)),
                Need.status.in_((NeedStatus.open, NeedStatus.partially_matched)),
                Need.window_start <= end,
                Need.window_end >= start,
            )
            .order_by(Need.id)
        )
    ).all()
    data.needs = [
        NeedRecord(
            id=n.id,
            station_id=n.station_id,
            service_type=n.service_type_code,
            quantity=n.quantity - n.committed,
            window=(n.window_start, n.window_end),
            priority=ENGINE_PRIORITY.get(n.priority, 3),
            splittable=n.splittable,
            domain=domains.get(n.service_type_code),
        )
        for n in needs
        if n.quantity > n.committed
    ]
    await _load_offers(session, data, region, (start, end))
    await _load_history(session, data, region)
    _drop_dangling(data)
    data.previous_state = await session.scalar(
        sa.select(MatchRun.engine_state)
        .where(MatchRun.region_code == region, MatchRun.period == period, MatchRun.status == RunStatus.succeeded)
        .order_by(MatchRun.id.desc())
        .limit(1)
    )
    return data


def _drop_dangling(data: RunInput) -> None:
    """History may name organizations, needs or offers this run does not load; the engine wants none of those."""
    orgs = {o.id for o in data.organizations}
    needs = {n.id for n in data.needs}
    offers = {o.id for o in data.offers}
    data.pairings = [(o, s) for o, s in data.pairings if o in orgs and s in data.station_regions]
    data.rejected = [(n, o) for n, o in data.rejected if n in needs and o in orgs]
    data.half_accepted = [(n, o, u) for n, o, u in data.half_accepted if n in needs and o in offers]


async def _load_offers(session: AsyncSession, data: RunInput, region: str, window: tuple[date, date]) -> None:
    orgs = {
        o.id: o
        for o in (
            await session.execute(
                sa.select(
                    Organization.id,
                    Organization.rating,
                    Organization.max_stations,
                    Organization.latitude,
                    Organization.longitude,
                    Organization.home_region_code,
                    Organization.expertise,
                    Organization.service_area,
                    Organization.max_distance_km,
                )
                .where(Organization.archived_at.is_(None))
                .order_by(Organization.id)
            )
        ).all()
    }
    live = sa.and_(
        Offer.status == OfferStatus.active,
        Offer.capacity > Offer.committed,
        Offer.window_start <= window[1],
        Offer.window_end >= window[0],
    )
    offers = (
        await session.execute(
            sa.select(
                Offer.id,
                Offer.organization_id,
                Offer.service_area,
                Offer.capacity,
                Offer.committed,
                Offer.window_start,
                Offer.window_end,
            )
            .where(live)
            .order_by(Offer.id)
        )
    ).all()
    types: dict[int, list[str]] = {}
    for offer_id, code in (
        await session.execute(
            sa.select(OfferServiceType.offer_id, OfferServiceType.service_type_code)
            .join(Offer, Offer.id == OfferServiceType.offer_id)
            .where(live)
            .order_by(OfferServiceType.offer_id, OfferServiceType.position)
        )
    ).all():
        types.setdefault(offer_id, []).append(code)
    used_orgs: set[int] = set()
    for offer in offers:
        org = orgs.get(offer.organization_id)
        if org is None or not (org.max_distance_km or overlaps(offer.service_area or org.service_area, region)):
            continue
        data.offers.append(_offer_record(offer, org, tuple(types.get(offer.id, ())), offer.capacity - offer.committed))
        used_orgs.add(org.id)
    feedback = await activity_service.feedback_scores(session, sorted(used_orgs))
    data.organizations = [_organization_record(orgs[i], feedback.get(i)) for i in sorted(used_orgs)]


async def _load_history(session: AsyncSession, data: RunInput, region: str) -> None:
    prefix = region_prefix(region) + "%"
    data.pairings = [
        (o, s)
        for o, s in (
            await session.execute(
                sa.select(Pairing.organization_id, Pairing.station_id).where(Pairing.ended_on.is_(None))
            )
        ).all()
    ]
    data.rejected = [
        (n, o)
        for n, o in (
            await session.execute(
                sa.select(Proposal.need_id, Proposal.organization_id).where(
                    Proposal.status == ProposalStatus.rejected, Proposal.region_code.like(prefix)
                )
            )
        ).all()
    ]
    live = (
        await session.execute(
            sa.select(
                Proposal.need_id,
                Proposal.offer_id,
                Proposal.quantity,
                Proposal.station_answer,
                Proposal.organization_answer,
            ).where(Proposal.status == ProposalStatus.proposed, Proposal.region_code.like(prefix))
        )
    ).all()
    for p in live:
        if Answer.accepted in (p.station_answer, p.organization_answer):
            data.half_accepted.append((p.need_id, p.offer_id, p.quantity))
        else:
            data.previous.append(PreviousUnits(p.need_id, p.offer_id, p.quantity))
