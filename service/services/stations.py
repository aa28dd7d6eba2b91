"""Use cases for stations (社工站): register, read, list, edit, archive."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models.common import Page
from service.db.models.needs import LIVE_NEED_STATUSES, Need
from service.db.models.stations import Station, StationCreate, StationRead, StationUpdate
from service.errors import Conflict, ErrorCollector
from service.reference import regions
from service.services import audit, policy
from service.services.common import check_version, fetch_page, get_or_404, get_row_or_404, region_prefix_filter
from service.services.principals import Principal


def to_read(station: Station) -> StationRead:
    """The API view of a station, with coordinates filled from its county when it gave none."""
    read = StationRead.model_validate(station)
    read.county_name = regions.name_of(station.region_code[:6])
    if station.latitude is None:
        point = regions.coordinates(station.region_code)
        if point:
            read.latitude, read.longitude = point
            read.coordinates_source = "region"
    return read


def ownership(station: Station | sa.Row[Any]) -> policy.Ownership:
    return policy.Ownership(region_code=station.region_code, station_id=station.id)


async def load(session: AsyncSession, *, actor: Principal, station_id: int, write: bool = False) -> Station:
    """A station the actor may see (404 otherwise) and, for writes, change (403 otherwise)."""
    station = await get_or_404(session, Station, station_id, what_en="station", what_zh="社工站", for_update=write)
    policy.authorize(actor, ownership(station), write=write, what_en="station", what_zh="社工站", object_id=station_id)
    return station


async def load_row(session: AsyncSession, *, actor: Principal, station_id: int, write: bool = False) -> sa.Row[Any]:
    """`load` for use cases that change what hangs off a station but not the station: a Core row, no ORM instance
    (locked all the same for writes)."""
    station = await get_row_or_404(session, Station, station_id, what_en="station", what_zh="社工站", for_update=write)
    policy.authorize(actor, ownership(station), write=write, what_en="station", what_zh="社工站", object_id=station_id)
    return station


async def _ensure_region_free(session: AsyncSession, region_code: str) -> None:
    taken = await session.scalar(
        sa.select(Station.id).where(Station.region_code == region_code, Station.archived_at.is_(None))
    )
    if taken is not None:
        raise Conflict(
            f"Township {region_code} already has station {taken}",
            f"乡镇街道 {region_code} 已有社工站（编号 {taken}）",
            code="station_exists",
            extra={"station_id": taken},
        )


async def create(session: AsyncSession, *, actor: Principal, data: StationCreate) -> StationRead:
    """Register a station for a township."""
    errors = ErrorCollector()
    try:
        region_code = regions.normalise_township(data.region_code)
    except regions.RegionCodeError as exc:
        errors.add("/region_code", exc.reason, exc.message_en, exc.message_zh)
    errors.raise_if_any()
    policy.authorize_new(actor, policy.Ownership(region_code=region_code), what_en="station", what_zh="社工站")
    await _ensure_region_free(session, region_code)
    station = Station(**data.model_dump(exclude={"region_code"}), region_code=region_code)
    session.add(station)
    await session.flush()
    read = to_read(station)
    await audit.record(
        session,
        actor=actor,
        action="create",
        object_type="station",
        object_id=station.id,
        region_code=region_code,
        after=read,
    )
    return read


async def get(session: AsyncSession, *, actor: Principal, station_id: int) -> StationRead:
    """One station."""
    return to_read(await load(session, actor=actor, station_id=station_id))


async def list_(
    session: AsyncSession, *, actor: Principal, region: str | None, limit: int, cursor: str | None
) -> Page[StationRead]:
    """Stations under a region that the actor may see, in id order."""
    stmt = sa.select(Station).where(
        Station.archived_at.is_(None),
        region_prefix_filter(Station.region_code, region),
        policy.visible(actor, region_column=Station.region_code, station_column=Station.id),
    )
    rows, next_cursor = await fetch_page(session, stmt, Station.id, limit=limit, cursor=cursor)
    return Page[StationRead](items=[to_read(s) for s in rows], next_cursor=next_cursor, limit=limit)


async def update(
    session: AsyncSession, *, actor: Principal, station_id: int, data: StationUpdate, expected_version: int
) -> StationRead:
    """Edit a station, refusing writes based on a stale read."""
    station = await load(session, actor=actor, station_id=station_id, write=True)
    check_version(station.version, expected_version, what="station")
    before = to_read(station)
    for key, value in data.model_dump(exclude_unset=True).items():
        setattr(station, key, value)
    station.version += 1
    station.updated_at = utcnow()
    await session.flush()
    after = to_read(station)
    await audit.record(
        session,
        actor=actor,
        action="update",
        object_type="station",
        object_id=station_id,
        region_code=station.region_code,
        before=before,
        after=after,
    )
    return after


async def archive(session: AsyncSession, *, actor: Principal, station_id: int) -> None:
    """Retire a station; refused while it has live needs (they must be cancelled or met first)."""
    station = await load(session, actor=actor, station_id=station_id, write=True)
    live = await session.scalar(
        sa.select(sa.func.count())
        .select_from(Need)
        .where(Need.station_id == station_id, Need.status.in_(LIVE_NEED_STATUSES))
    )
    if live:
        raise Conflict(
            f"Station {station_id} still has {live} live need(s); cancel them first",
            f"社工站 {station_id} 仍有 {live} 项进行中的需求，请先取消",
            code="station_has_live_needs",
            extra={"live_needs": live},
        )
    before = to_read(station)
    station.archived_at = utcnow()
    station.version += 1
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="delete",
        object_type="station",
        object_id=station_id,
        region_code=station.region_code,
        before=before,
    )
