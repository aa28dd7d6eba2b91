"""Use cases for needs (需求, 点单): a station's need list, submitted item by item or whole."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models.catalog import ServiceType
from service.db.models.common import Page, check_window
from service.db.models.needs import EDITABLE_NEED_STATUSES, Need, NeedCreate, NeedItem, NeedRead, NeedStatus, NeedUpdate
from service.db.models.stations import Station
from service.errors import Conflict, ErrorCollector, InvalidInput
from service.services import catalog as catalog_service
from service.services.common import check_version, fetch_page, get_or_404, region_prefix_filter


def to_read(need: Need, catalog: catalog_service.Catalog) -> NeedRead:
    """The API view of a need, with its domain and unit from the catalog."""
    return NeedRead.model_validate(
        {
            **need.model_dump(exclude={"service_type_code"}),
            "service_type": need.service_type_code,
            "domain": catalog.domain_of(need.service_type_code),
            "unit": catalog.unit_of(need.service_type_code),
        }
    )


async def _station(session: AsyncSession, station_id: int) -> Station:
    return await get_or_404(session, Station, station_id, what_en="station", what_zh="社工站")


def _check_types(errors: ErrorCollector, catalog: catalog_service.Catalog, items: list[NeedItem], batch: bool) -> None:
    for i, item in enumerate(items):
        if item.service_type not in catalog.types:
            errors.add(
                f"/items/{i}/service_type" if batch else "/service_type",
                "unknown_service_type",
                f"unknown service type {item.service_type!r}",
                f"未知的服务类型 {item.service_type}",
            )


def _new_need(station_id: int, item: NeedItem) -> Need:
    return Need(
        station_id=station_id,
        service_type_code=item.service_type,
        **item.model_dump(exclude={"service_type", "station_id"}),
    )


async def _insert(session: AsyncSession, station_id: int, items: list[NeedItem], *, batch: bool) -> list[NeedRead]:
    await _station(session, station_id)
    catalog = await catalog_service.load(session)
    errors = ErrorCollector()
    _check_types(errors, catalog, items, batch)
    errors.raise_if_any(
        f"{len(errors.errors)} item(s) invalid; nothing was stored", f"{len(errors.errors)} 处有误，未保存任何数据"
    )
    needs = [_new_need(station_id, item) for item in items]
    session.add_all(needs)
    await session.flush()
    return [to_read(n, catalog) for n in needs]


async def create(session: AsyncSession, *, data: NeedCreate) -> NeedRead:
    """Add one need to a station's list."""
    (read,) = await _insert(session, data.station_id, [data], batch=False)
    return read


async def submit_list(
    session: AsyncSession, *, station_id: int, items: list[NeedItem], max_items: int
) -> list[NeedRead]:
    """Add a whole need list: every item valid → all stored; any invalid → none, each bad item reported."""
    if len(items) > max_items:
        raise InvalidInput(f"At most {max_items} items per list", f"每次最多提交 {max_items} 项", code="too_many_items")
    return await _insert(session, station_id, items, batch=True)


async def get(session: AsyncSession, *, need_id: int) -> NeedRead:
    """One need."""
    need = await get_or_404(session, Need, need_id, what_en="need", what_zh="需求")
    return to_read(need, await catalog_service.load(session))


async def list_(
    session: AsyncSession,
    *,
    region: str | None,
    station_id: int | None,
    domain: str | None,
    service_type: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[NeedRead]:
    """Needs filtered by the station's region, station, domain, service type and status."""
    stmt = sa.select(Need).join(Station, Station.id == Need.station_id)
    stmt = stmt.where(region_prefix_filter(Station.region_code, region))
    if station_id is not None:
        stmt = stmt.where(Need.station_id == station_id)
    if service_type:
        stmt = stmt.where(Need.service_type_code == service_type)
    if domain:
        stmt = stmt.join(ServiceType, ServiceType.code == Need.service_type_code).where(
            ServiceType.domain_code == domain
        )
    if status:
        stmt = stmt.where(Need.status == status)
    rows, next_cursor = await fetch_page(session, stmt, Need.id, limit=limit, cursor=cursor)
    catalog = await catalog_service.load(session)
    return Page[NeedRead](items=[to_read(n, catalog) for n in rows], next_cursor=next_cursor, limit=limit)


async def update(session: AsyncSession, *, need_id: int, data: NeedUpdate, expected_version: int) -> NeedRead:
    """Change an open need, refusing writes based on a stale read."""
    need = await get_or_404(session, Need, need_id, what_en="need", what_zh="需求", for_update=True)
    check_version(need.version, expected_version, what="need")
    if need.status not in EDITABLE_NEED_STATUSES:
        raise Conflict(
            f"A {need.status} need cannot be changed",
            f"状态为 {need.status} 的需求不能修改",
            code="need_not_editable",
            extra={"current_status": need.status},
        )
    changes = data.model_dump(exclude_unset=True)
    try:
        check_window(changes.get("window_start", need.window_start), changes.get("window_end", need.window_end))
    except ValueError as exc:
        en, _, zh = str(exc).partition(" / ")
        errors = ErrorCollector()
        errors.add("/window_end", "window_order", en, zh)
        errors.raise_if_any()
    for key, value in changes.items():
        setattr(need, key, value)
    need.version += 1
    need.updated_at = utcnow()
    await session.flush()
    return to_read(need, await catalog_service.load(session))


async def cancel(session: AsyncSession, *, need_id: int) -> NeedRead:
    """Cancel a need; it stays on record. Cancelling a cancelled need is a no-op."""
    need = await get_or_404(session, Need, need_id, what_en="need", what_zh="需求", for_update=True)
    if need.status in (NeedStatus.fulfilled, NeedStatus.expired):
        raise Conflict(
            f"A {need.status} need cannot be cancelled",
            f"状态为 {need.status} 的需求不能取消",
            code="need_not_cancellable",
            extra={"current_status": need.status},
        )
    if need.status != NeedStatus.cancelled:
        need.status = NeedStatus.cancelled
        need.version += 1
        need.updated_at = utcnow()
        await session.flush()
    return to_read(need, await catalog_service.load(session))
