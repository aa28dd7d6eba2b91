"""Use cases for needs (需求, 点单): a station's need list, submitted item by item or whole."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models.catalog import ServiceType
from service.db.models.common import Page
from service.db.models.needs import EDITABLE_NEED_STATUSES, Need, NeedCreate, NeedItem, NeedRead, NeedStatus, NeedUpdate
from service.db.models.stations import Station
from service.db.reads import insert_returning
from service.errors import Conflict, ErrorCollector, InvalidInput
from service.services import audit, policy
from service.services import catalog as catalog_service
from service.services import proposals as proposal_service
from service.services import rematch as rematch_service
from service.services import stations as station_service
from service.services.common import (
    Reads,
    check_version,
    check_window_change,
    decode_cursor,
    fetch_prebuilt_rows,
    get_or_404,
    paged,
    refuse_below_committed,
    region_like,
)
from service.services.principals import Principal


def to_read(need: Need, catalog: catalog_service.Catalog) -> NeedRead:
    """The API view of a need, with its domain and unit from the catalog."""
    return _view(need.model_dump(), catalog)


def row_to_read(row: sa.Row[Any], catalog: catalog_service.Catalog) -> NeedRead:
    """The API view of a need read as a Core row (one validation, no ORM instance)."""
    return _view(dict(row._mapping), catalog)


def rows_to_reads(rows: list[dict[str, Any]], catalog: catalog_service.Catalog) -> list[NeedRead]:
    """The API views of a page of needs read as dicts (which this changes in place), validated in one call: a
    validation call per row, with a copy of each dict, was a tenth of a need list's CPU."""
    for data in rows:
        code = data.pop("service_type_code")
        kind = catalog.types[code]
        data["service_type"], data["domain"], data["unit"] = code, kind.domain_code, kind.unit
    return _NEED_READS.validate_python(rows)


_NEED_READS = TypeAdapter(list[NeedRead])


def _view(data: dict[str, Any], catalog: catalog_service.Catalog) -> NeedRead:
    code = data.pop("service_type_code")
    return NeedRead.model_validate(
        data | {"service_type": code, "domain": catalog.domain_of(code), "unit": catalog.unit_of(code)}
    )


async def load(session: AsyncSession, *, actor: Principal, need_id: int, write: bool = False) -> tuple[Need, Station]:
    """A need and its station, if the actor may see it (404) and, for writes, change it (403)."""
    need = await get_or_404(session, Need, need_id, what_en="need", what_zh="需求", for_update=write)
    station = await session.get_one(Station, need.station_id)
    policy.authorize(
        actor, station_service.ownership(station), write=write, what_en="need", what_zh="需求", object_id=need_id
    )
    return need, station


async def _record(
    session: AsyncSession,
    actor: Principal,
    action: str,
    station: Station | sa.Row[Any],
    *,
    before: NeedRead | None,
    after: NeedRead,
) -> None:
    """Every change to a need is audited and asks for a re-match of its station's region, in the same transaction."""
    await audit.record(
        session,
        actor=actor,
        action=action,
        object_type="need",
        object_id=after.id,
        region_code=station.region_code,
        before=before,
        after=after,
    )
    await rematch_service.mark(
        session, region_code=station.region_code, reason=f"need_{action}", object_type="need", object_id=after.id
    )


def _check_types(errors: ErrorCollector, catalog: catalog_service.Catalog, items: list[NeedItem], batch: bool) -> None:
    for i, item in enumerate(items):
        if item.service_type not in catalog.types:
            errors.add(
                f"/items/{i}/service_type" if batch else "/service_type",
                "unknown_service_type",
                f"unknown service type {item.service_type!r}",
                f"未知的服务类型 {item.service_type}",
            )


def _new_need(station_id: int, item: NeedItem) -> dict[str, Any]:
    """The column values of a new need, the model's defaults included (the timestamps: the columns' own defaults in a
    batch, given by the caller for one need, which goes straight to the driver)."""
    values = item.model_dump(exclude={"service_type", "station_id"})
    return {"station_id": station_id, "service_type_code": item.service_type, **values, **_need_defaults()}


@functools.cache
def _need_defaults() -> dict[str, Any]:
    """The model's defaults of the columns a need item does not carry (committed, status, version): what building a
    `Need` instance to dump it again gave, at a tenth of a posted need's CPU."""
    given = set(NeedItem.model_fields) | {"id", "created_at", "updated_at", "station_id", "service_type_code"}
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in Need.model_fields.items()
        if name not in given
    }


# New needs go in as one Core INSERT … RETURNING (rows back in the order given): the unit of work's flush of ORM
# instances cost several times the statement on every need posted, and nothing here needs the instances.
_INSERT = sa.insert(Need.__table__).returning(*Need.__table__.c, sort_by_parameter_order=True)


async def _insert(
    session: AsyncSession, actor: Principal, station_id: int, items: list[NeedItem], *, batch: bool
) -> list[NeedRead]:
    station = await station_service.load_row(session, actor=actor, station_id=station_id, write=True)
    catalog = await catalog_service.load(session)
    errors = ErrorCollector()
    _check_types(errors, catalog, items, batch)
    errors.raise_if_any(
        f"{len(errors.errors)} item(s) invalid; nothing was stored", f"{len(errors.errors)} 处有误，未保存任何数据"
    )
    if len(items) == 1:  # one need (the API's busiest write): one row back, straight from the driver (db.reads)
        now = utcnow()
        values = _new_need(station_id, items[0]) | {"created_at": now, "updated_at": now}
        reads = [_view(await insert_returning(session, _INSERT, values), catalog)]
    else:
        rows = await session.execute(_INSERT, [_new_need(station_id, item) for item in items])
        reads = [row_to_read(row, catalog) for row in rows]
    for read in reads:
        await _record(session, actor, "create", station, before=None, after=read)
    return reads


async def create(session: AsyncSession, *, actor: Principal, data: NeedCreate) -> NeedRead:
    """Add one need to a station's list."""
    (read,) = await _insert(session, actor, data.station_id, [data], batch=False)
    return read


async def submit_list(
    session: AsyncSession, *, actor: Principal, station_id: int, items: list[NeedItem], max_items: int
) -> list[NeedRead]:
    """Add a whole need list: every item valid → all stored; any invalid → none, each bad item reported."""
    if len(items) > max_items:
        raise InvalidInput(f"At most {max_items} items per list", f"每次最多提交 {max_items} 项", code="too_many_items")
    return await _insert(session, actor, station_id, items, batch=True)


async def get(session: AsyncSession, *, actor: Principal, need_id: int) -> NeedRead:
    """One need."""
    need, _ = await load(session, actor=actor, need_id=need_id)
    return to_read(need, await catalog_service.load(session))


async def list_(
    session: Reads,
    *,
    actor: Principal,
    region: str | None,
    station_id: int | None,
    domain: str | None,
    service_type: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[NeedRead]:
    """Needs the actor may see, filtered by the station's region, station, domain, service type and status."""
    kind, visible_to = policy.visibility(actor)
    given = {
        "region": region_like(region) if region else None,
        "visible": visible_to,
        "station_id": station_id,
        "service_type": service_type or None,
        "domain": domain or None,
        "status": status or None,
    }
    params = {name: value for name, value in given.items() if value is not None}
    after = decode_cursor(cursor)
    stmt = _list_statement(kind, frozenset(params), after is not None)
    rows, next_cursor = await fetch_prebuilt_rows(session, stmt, params, limit=limit, after=after)
    catalog = await catalog_service.load(session)
    return Page[NeedRead](items=rows_to_reads(rows, catalog), next_cursor=next_cursor, limit=limit)


@functools.cache
def _list_statement(kind: str, filters: frozenset[str], after: bool) -> sa.Select[Any]:
    """The need list's statement for one visibility kind and set of filters, every value a bound parameter.

    Built once per combination and reused: building the expression and computing its cache key on every request
    cost more CPU than the query itself (this is the API's busiest read). Core rows, not ORM instances.
    """
    stmt = sa.select(Need.__table__).join(Station, Station.id == Need.station_id)
    if "region" in filters:
        stmt = stmt.where(Station.region_code.like(sa.bindparam("region")))
    visible = policy.visible_where(
        kind, sa.bindparam("visible"), region_column=Station.region_code, station_column=Station.id
    )
    stmt = stmt.where(visible)
    if "station_id" in filters:
        stmt = stmt.where(Need.station_id == sa.bindparam("station_id"))
    if "service_type" in filters:
        stmt = stmt.where(Need.service_type_code == sa.bindparam("service_type"))
    if "domain" in filters:
        stmt = stmt.join(ServiceType, ServiceType.code == Need.service_type_code)
        stmt = stmt.where(ServiceType.domain_code == sa.bindparam("domain"))
    if "status" in filters:
        stmt = stmt.where(Need.status == sa.bindparam("status"))
    return paged(stmt, Need.id, after=after)


async def update(
    session: AsyncSession, *, actor: Principal, need_id: int, data: NeedUpdate, expected_version: int
) -> NeedRead:
    """Change an open need, refusing writes based on a stale read."""
    need, station = await load(session, actor=actor, need_id=need_id, write=True)
    check_version(need.version, expected_version, what="need")
    if need.status not in EDITABLE_NEED_STATUSES:
        raise Conflict(
            f"A {need.status} need cannot be changed",
            f"状态为 {need.status} 的需求不能修改",
            code="need_not_editable",
            extra={"current_status": need.status},
        )
    changes = data.model_dump(exclude_unset=True)
    errors = ErrorCollector()
    check_window_change(errors, need, changes)
    errors.raise_if_any()
    refuse_below_committed(changes.get("quantity", need.quantity), need.committed)
    catalog = await catalog_service.load(session)
    before = to_read(need, catalog)
    for key, value in changes.items():
        setattr(need, key, value)
    need.version += 1
    need.updated_at = utcnow()
    await session.flush()
    after = to_read(need, catalog)
    await _record(session, actor, "update", station, before=before, after=after)
    return after


async def cancel(session: AsyncSession, *, actor: Principal, need_id: int) -> NeedRead:
    """Cancel a need; it stays on record. Cancelling a cancelled need is a no-op."""
    need, station = await load(session, actor=actor, need_id=need_id, write=True)
    if need.status in (NeedStatus.fulfilled, NeedStatus.expired):
        raise Conflict(
            f"A {need.status} need cannot be cancelled",
            f"状态为 {need.status} 的需求不能取消",
            code="need_not_cancellable",
            extra={"current_status": need.status},
        )
    catalog = await catalog_service.load(session)
    if need.status == NeedStatus.cancelled:
        return to_read(need, catalog)
    before = to_read(need, catalog)
    need.status = NeedStatus.cancelled
    need.version += 1
    need.updated_at = utcnow()
    await session.flush()
    after = to_read(need, catalog)
    await proposal_service.close_open(session, need_id=need_id)
    await _record(session, actor, "cancel", station, before=before, after=after)
    return after
