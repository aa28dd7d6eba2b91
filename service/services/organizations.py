"""Use cases for social organizations (社会组织): register, read, list, edit, archive."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models.catalog import ServiceDomain
from service.db.models.common import Page
from service.db.models.offers import LIVE_OFFER_STATUSES, Offer
from service.db.models.organizations import Organization, OrganizationCreate, OrganizationRead, OrganizationUpdate
from service.errors import Conflict, ErrorCollector
from service.reference import regions, uscc
from service.services import audit, policy
from service.services.common import check_version, fetch_page, get_or_404, region_prefix_filter
from service.services.principals import Principal

_USCC_MESSAGES = {
    "length": ("a unified social credit code has 18 characters", "统一社会信用代码应为 18 位"),
    "alphabet": ("only digits and capital letters except I, O, S, V, Z", "只能包含数字和除 I、O、S、V、Z 外的大写字母"),
    "check_digit": ("the check character does not match (GB 32100-2015)", "校验码不正确（GB 32100-2015）"),
}


def check_area_codes(errors: ErrorCollector, pointer: str, codes: list[str] | None) -> list[str] | None:
    """Canonical service-area codes, with every bad one reported at its index."""
    if codes is None:
        return None
    result: list[str] = []
    for i, code in enumerate(codes):
        try:
            result.append(regions.normalise_area(code))
        except regions.RegionCodeError as exc:
            errors.add(f"{pointer}/{i}", exc.reason, exc.message_en, exc.message_zh)
    return sorted(set(result))


async def _check_fields(
    session: AsyncSession, errors: ErrorCollector, data: OrganizationCreate | OrganizationUpdate, values: dict
) -> None:
    if "home_region_code" in values and values["home_region_code"] is not None:
        try:
            values["home_region_code"] = regions.normalise_area(values["home_region_code"])
        except regions.RegionCodeError as exc:
            errors.add("/home_region_code", exc.reason, exc.message_en, exc.message_zh)
    if "service_area" in values:
        values["service_area"] = check_area_codes(errors, "/service_area", values["service_area"])
    if values.get("expertise"):
        known = set((await session.scalars(sa.select(ServiceDomain.code))).all())
        for i, code in enumerate(values["expertise"]):
            if code not in known:
                errors.add(
                    f"/expertise/{i}", "unknown_domain", f"unknown service domain {code!r}", f"未知的服务领域 {code}"
                )
        values["expertise"] = sorted(set(values["expertise"]))


async def create(session: AsyncSession, *, actor: Principal, data: OrganizationCreate) -> OrganizationRead:
    """Register an organization; its service area defaults to its home region."""
    errors = ErrorCollector()
    if (why := uscc.problem(data.credit_code)) is not None:
        errors.add("/credit_code", f"credit_code_{why}", *_USCC_MESSAGES[why])
    values = data.model_dump()
    await _check_fields(session, errors, data, values)
    errors.raise_if_any()
    policy.authorize_new(
        actor, policy.Ownership(region_code=values["home_region_code"]), what_en="organization", what_zh="社会组织"
    )
    values["service_area"] = values["service_area"] or [values["home_region_code"]]
    values["expertise"] = values["expertise"] or []
    taken = await session.scalar(sa.select(Organization.id).where(Organization.credit_code == data.credit_code))
    if taken is not None:
        raise Conflict(
            f"An organization with credit code {data.credit_code} exists (id {taken})",
            f"统一社会信用代码 {data.credit_code} 已登记（编号 {taken}）",
            code="organization_exists",
            extra={"organization_id": taken},
        )
    org = Organization(**values)
    session.add(org)
    await session.flush()
    read = OrganizationRead.model_validate(org)
    await audit.record(
        session,
        actor=actor,
        action="create",
        object_type="organization",
        object_id=org.id,
        region_code=org.home_region_code,
        after=read,
    )
    return read


def ownership(org: Organization) -> policy.Ownership:
    return policy.Ownership(region_code=org.home_region_code, organization_id=org.id)


async def load(session: AsyncSession, *, actor: Principal, organization_id: int, write: bool = False) -> Organization:
    """An organization the actor may see (404 otherwise) and, for writes, change (403 otherwise)."""
    org = await get_or_404(
        session, Organization, organization_id, what_en="organization", what_zh="社会组织", for_update=write
    )
    policy.authorize(
        actor, ownership(org), write=write, what_en="organization", what_zh="社会组织", object_id=organization_id
    )
    return org


async def get(session: AsyncSession, *, actor: Principal, organization_id: int) -> OrganizationRead:
    """One organization."""
    return OrganizationRead.model_validate(await load(session, actor=actor, organization_id=organization_id))


async def list_(
    session: AsyncSession, *, actor: Principal, region: str | None, kind: str | None, limit: int, cursor: str | None
) -> Page[OrganizationRead]:
    """Organizations based under a region that the actor may see, optionally of one kind."""
    stmt = sa.select(Organization).where(
        Organization.archived_at.is_(None),
        region_prefix_filter(Organization.home_region_code, region),
        policy.visible(actor, region_column=Organization.home_region_code, organization_column=Organization.id),
    )
    if kind:
        stmt = stmt.where(Organization.kind == kind)
    rows, next_cursor = await fetch_page(session, stmt, Organization.id, limit=limit, cursor=cursor)
    return Page[OrganizationRead](
        items=[OrganizationRead.model_validate(o) for o in rows], next_cursor=next_cursor, limit=limit
    )


async def update(
    session: AsyncSession, *, actor: Principal, organization_id: int, data: OrganizationUpdate, expected_version: int
) -> OrganizationRead:
    """Edit an organization, refusing writes based on a stale read and fields the actor's role may not set."""
    org = await load(session, actor=actor, organization_id=organization_id, write=True)
    policy.check_fields(actor, "organization", data.model_fields_set)
    check_version(org.version, expected_version, what="organization")
    before = OrganizationRead.model_validate(org)
    errors = ErrorCollector()
    values = data.model_dump(exclude_unset=True)
    await _check_fields(session, errors, data, values)
    errors.raise_if_any()
    if values.get("service_area") == []:
        values["service_area"] = [values.get("home_region_code") or org.home_region_code]
    for key, value in values.items():
        setattr(org, key, value)
    org.version += 1
    org.updated_at = utcnow()
    await session.flush()
    after = OrganizationRead.model_validate(org)
    await audit.record(
        session,
        actor=actor,
        action="update",
        object_type="organization",
        object_id=org.id,
        region_code=org.home_region_code,
        before=before,
        after=after,
    )
    return after


async def archive(session: AsyncSession, *, actor: Principal, organization_id: int) -> None:
    """Retire an organization; refused while it has live offers."""
    org = await load(session, actor=actor, organization_id=organization_id, write=True)
    live = await session.scalar(
        sa.select(sa.func.count())
        .select_from(Offer)
        .where(Offer.organization_id == organization_id, Offer.status.in_(LIVE_OFFER_STATUSES))
    )
    if live:
        raise Conflict(
            f"Organization {organization_id} still has {live} live offer(s); withdraw them first",
            f"社会组织 {organization_id} 仍有 {live} 项有效供给，请先撤回",
            code="organization_has_live_offers",
            extra={"live_offers": live},
        )
    before = OrganizationRead.model_validate(org)
    org.archived_at = utcnow()
    org.version += 1
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="delete",
        object_type="organization",
        object_id=org.id,
        region_code=org.home_region_code,
        before=before,
    )
