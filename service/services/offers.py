"""Use cases for offers (供给, 接单): an organization's supply list, submitted item by item or whole."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.db.base import utcnow
from service.db.models.catalog import ServiceType
from service.db.models.common import Page
from service.db.models.offers import (
    LIVE_OFFER_STATUSES,
    Offer,
    OfferCreate,
    OfferItem,
    OfferRead,
    OfferServiceType,
    OfferStatus,
    OfferUpdate,
)
from service.db.models.organizations import Organization
from service.errors import Conflict, ErrorCollector, InvalidInput
from service.services import audit, policy
from service.services import catalog as catalog_service
from service.services import organizations as organization_service
from service.services import proposals as proposal_service
from service.services import rematch as rematch_service
from service.services.common import (
    check_version,
    check_window_change,
    fetch_page,
    get_or_404,
    refuse_below_committed,
    region_prefix_filter,
)
from service.services.organizations import check_area_codes
from service.services.principals import Principal

_LOAD_TYPES = (selectinload(Offer.service_types),)  # type: ignore[arg-type]


async def _record(
    session: AsyncSession,
    actor: Principal,
    action: str,
    offer: Offer,
    org: Organization,
    *,
    before: OfferRead | None,
    after: OfferRead,
) -> None:
    """Every change to an offer is audited and asks for a re-match wherever the offer can serve."""
    await audit.record(
        session,
        actor=actor,
        action=action,
        object_type="offer",
        object_id=offer.id,
        region_code=org.home_region_code,
        before=before,
        after=after,
    )
    for code in offer.service_area or org.service_area:
        await rematch_service.mark(
            session, region_code=code, reason=f"offer_{action}", object_type="offer", object_id=offer.id
        )


def _position(link: OfferServiceType) -> int:
    return link.position


def to_read(offer: Offer) -> OfferRead:
    """The API view of an offer."""
    return OfferRead.model_validate(
        {
            **offer.model_dump(),
            "service_types": [t.service_type_code for t in sorted(offer.service_types, key=_position)],
        }
    )


def _common_unit(
    errors: ErrorCollector, catalog: catalog_service.Catalog, codes: list[str], pointer: str
) -> str | None:
    """The one unit an offer's service types share; capacity means nothing across units."""
    units: set[str] = set()
    for i, code in enumerate(codes):
        if code not in catalog.types:
            errors.add(
                f"{pointer}/{i}", "unknown_service_type", f"unknown service type {code!r}", f"未知的服务类型 {code}"
            )
        else:
            units.add(catalog.unit_of(code))
    if len(units) > 1:
        errors.add(
            pointer,
            "mixed_units",
            f"service types counted in different units ({', '.join(sorted(units))})"
            " cannot share one capacity; post them as separate offers",
            "计量单位不同的服务类型不能共用一个服务量，请分别发布",
        )
    return units.pop() if len(units) == 1 else None


def _link_types(codes: list[str]) -> list[OfferServiceType]:
    return [OfferServiceType(service_type_code=code, position=i) for i, code in enumerate(codes)]


def _relink_types(offer: Offer, codes: list[str]) -> None:
    """Edit the join rows in place: dropping and re-adding the same key in one flush would collide."""
    existing = {link.service_type_code: link for link in offer.service_types}
    for position, code in enumerate(codes):
        if code in existing:
            existing.pop(code).position = position
        else:
            offer.service_types.append(OfferServiceType(service_type_code=code, position=position))
    for link in existing.values():
        offer.service_types.remove(link)


async def _insert(
    session: AsyncSession, actor: Principal, organization_id: int, items: list[OfferItem], prefix: str
) -> list[OfferRead]:
    org = await organization_service.load(session, actor=actor, organization_id=organization_id, write=True)
    catalog = await catalog_service.load(session)
    errors = ErrorCollector()
    offers: list[Offer] = []
    for i, item in enumerate(items):
        base = f"{prefix}{i}" if prefix else ""
        unit = _common_unit(errors, catalog, item.service_types, f"{base}/service_types")
        area = check_area_codes(errors, f"{base}/service_area", item.service_area)
        values = item.model_dump(exclude={"service_types", "service_area", "organization_id"})
        offers.append(
            Offer(
                organization_id=organization_id,
                unit=unit or "",
                service_area=area,
                **values,
                service_types=_link_types(item.service_types),
            )
        )
    errors.raise_if_any(
        f"{len(errors.errors)} problem(s) found; nothing was stored", f"{len(errors.errors)} 处有误，未保存任何数据"
    )
    session.add_all(offers)
    await session.flush()
    reads = [to_read(o) for o in offers]
    for offer, read in zip(offers, reads, strict=True):
        await _record(session, actor, "create", offer, org, before=None, after=read)
    return reads


async def create(session: AsyncSession, *, actor: Principal, data: OfferCreate) -> OfferRead:
    """Add one offer to an organization's supply list."""
    (read,) = await _insert(session, actor, data.organization_id, [data], "")
    return read


async def submit_list(
    session: AsyncSession, *, actor: Principal, organization_id: int, items: list[OfferItem], max_items: int
) -> list[OfferRead]:
    """Add a whole supply list: every item valid → all stored; any invalid → none, each bad item reported."""
    if len(items) > max_items:
        raise InvalidInput(f"At most {max_items} items per list", f"每次最多提交 {max_items} 项", code="too_many_items")
    return await _insert(session, actor, organization_id, items, "/items/")


async def load(
    session: AsyncSession, *, actor: Principal, offer_id: int, write: bool = False
) -> tuple[Offer, Organization]:
    """An offer and its organization, if the actor may see it (404) and, for writes, change it (403)."""
    offer = await get_or_404(
        session, Offer, offer_id, what_en="offer", what_zh="供给", for_update=write, options=_LOAD_TYPES
    )
    org = await session.get_one(Organization, offer.organization_id)
    policy.authorize(
        actor, organization_service.ownership(org), write=write, what_en="offer", what_zh="供给", object_id=offer_id
    )
    return offer, org


async def get(session: AsyncSession, *, actor: Principal, offer_id: int) -> OfferRead:
    """One offer."""
    offer, _ = await load(session, actor=actor, offer_id=offer_id)
    return to_read(offer)


async def list_(
    session: AsyncSession,
    *,
    actor: Principal,
    region: str | None,
    organization_id: int | None,
    domain: str | None,
    service_type: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[OfferRead]:
    """Offers the actor may see, by the organization's home region, organization, domain, type and status."""
    stmt = sa.select(Offer).join(Organization, Organization.id == Offer.organization_id).options(*_LOAD_TYPES)
    stmt = stmt.where(
        region_prefix_filter(Organization.home_region_code, region),
        policy.visible(actor, region_column=Organization.home_region_code, organization_column=Organization.id),
    )
    if organization_id is not None:
        stmt = stmt.where(Offer.organization_id == organization_id)
    if service_type or domain:
        types = sa.select(OfferServiceType.offer_id).join(
            ServiceType, ServiceType.code == OfferServiceType.service_type_code
        )
        if service_type:
            types = types.where(OfferServiceType.service_type_code == service_type)
        if domain:
            types = types.where(ServiceType.domain_code == domain)
        stmt = stmt.where(Offer.id.in_(types))
    if status:
        stmt = stmt.where(Offer.status == status)
    rows, next_cursor = await fetch_page(session, stmt, Offer.id, limit=limit, cursor=cursor)
    return Page[OfferRead](items=[to_read(o) for o in rows], next_cursor=next_cursor, limit=limit)


async def update(
    session: AsyncSession, *, actor: Principal, offer_id: int, data: OfferUpdate, expected_version: int
) -> OfferRead:
    """Change a live offer (including pause/resume), refusing writes based on a stale read."""
    offer, org = await load(session, actor=actor, offer_id=offer_id, write=True)
    check_version(offer.version, expected_version, what="offer")
    if offer.status not in LIVE_OFFER_STATUSES:
        raise Conflict(
            f"A {offer.status} offer cannot be changed",
            f"状态为 {offer.status} 的供给不能修改",
            code="offer_not_editable",
            extra={"current_status": offer.status},
        )
    before = to_read(offer)
    changes = data.model_dump(exclude_unset=True)
    errors = ErrorCollector()
    if "service_types" in changes:
        catalog = await catalog_service.load(session)
        offer.unit = _common_unit(errors, catalog, changes.pop("service_types"), "/service_types") or offer.unit
        _relink_types(offer, data.service_types or [])
    if "service_area" in changes:
        changes["service_area"] = check_area_codes(errors, "/service_area", changes["service_area"])
    check_window_change(errors, offer, changes)
    errors.raise_if_any()
    refuse_below_committed(changes.get("capacity", offer.capacity), offer.committed)
    for key, value in changes.items():
        setattr(offer, key, value)
    offer.version += 1
    offer.updated_at = utcnow()
    await session.flush()
    after = to_read(offer)
    await _record(session, actor, "update", offer, org, before=before, after=after)
    return after


async def withdraw(session: AsyncSession, *, actor: Principal, offer_id: int) -> OfferRead:
    """Withdraw an offer; it stays on record. Withdrawing a withdrawn offer is a no-op."""
    offer, org = await load(session, actor=actor, offer_id=offer_id, write=True)
    if offer.status == OfferStatus.expired:
        raise Conflict(
            "An expired offer cannot be withdrawn",
            "已过期的供给不能撤回",
            code="offer_not_withdrawable",
            extra={"current_status": offer.status},
        )
    if offer.status == OfferStatus.withdrawn:
        return to_read(offer)
    before = to_read(offer)
    offer.status = OfferStatus.withdrawn
    offer.version += 1
    offer.updated_at = utcnow()
    await session.flush()
    after = to_read(offer)
    await proposal_service.close_open(session, offer_id=offer_id)
    await _record(session, actor, "withdraw", offer, org, before=before, after=after)
    return after
