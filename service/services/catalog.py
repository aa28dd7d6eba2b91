"""The service catalog (服务目录) as use cases read it."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models.catalog import (
    UNIT_LABELS,
    ServiceDomain,
    ServiceDomainRead,
    ServiceType,
    ServiceTypeRead,
    UnitRead,
)
from service.errors import NotFound


@dataclass(frozen=True)
class Catalog:
    """Service types by code, loaded once per use case that needs to validate codes."""

    types: dict[str, ServiceType]

    def unit_of(self, code: str) -> str:
        return self.types[code].unit

    def domain_of(self, code: str) -> str:
        return self.types[code].domain_code


async def load(session: AsyncSession) -> Catalog:
    """All service types."""
    rows = (await session.scalars(sa.select(ServiceType))).all()
    return Catalog({t.code: t for t in rows})


def unit_read(unit: str) -> UnitRead:
    zh, en = UNIT_LABELS.get(unit, (unit, unit))
    return UnitRead(code=unit, name_zh=zh, name_en=en)


def type_read(t: ServiceType) -> ServiceTypeRead:
    return ServiceTypeRead(
        code=t.code, domain_code=t.domain_code, name_zh=t.name_zh, name_en=t.name_en, unit=unit_read(t.unit)
    )


async def list_domains(session: AsyncSession) -> list[ServiceDomainRead]:
    """Every domain with its service types, in catalog order."""
    domains = (await session.scalars(sa.select(ServiceDomain).order_by(ServiceDomain.sort_order))).all()
    types = (await session.scalars(sa.select(ServiceType).order_by(ServiceType.sort_order))).all()
    by_domain: dict[str, list[ServiceTypeRead]] = {d.code: [] for d in domains}
    for t in types:
        by_domain.setdefault(t.domain_code, []).append(type_read(t))
    return [
        ServiceDomainRead(code=d.code, name_zh=d.name_zh, name_en=d.name_en, service_types=by_domain[d.code])
        for d in domains
    ]


async def list_types(session: AsyncSession, *, domain: str | None = None) -> list[ServiceTypeRead]:
    """Service types, optionally of one domain."""
    stmt = sa.select(ServiceType).order_by(ServiceType.sort_order)
    if domain:
        stmt = stmt.where(ServiceType.domain_code == domain)
    return [type_read(t) for t in (await session.scalars(stmt)).all()]


async def get_type(session: AsyncSession, code: str) -> ServiceTypeRead:
    """One service type by code."""
    t = await session.get(ServiceType, code)
    if t is None:
        raise NotFound(f"No service type {code!r}", f"服务类型 {code} 不存在")
    return type_read(t)
