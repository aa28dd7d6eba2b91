"""The service catalog (服务目录) as use cases read it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models.catalog import (
    UNIT_LABELS,
    ServiceDomain,
    ServiceDomainRead,
    ServiceType,
    ServiceTypeRead,
    UnitRead,
)
from service.db.session import Database
from service.errors import NotFound


@dataclass(frozen=True)
class Catalog:
    """Service types by code, loaded once per use case that needs to validate codes."""

    types: dict[str, ServiceType]

    def unit_of(self, code: str) -> str:
        return self.types[code].unit

    def domain_of(self, code: str) -> str:
        return self.types[code].domain_code


CACHE_TTL_S = 60.0
# The catalog is reference data that only migrations change; reading it once a minute per database (not once per
# request) takes a query off every list and write. Keyed by database URL, so tests' databases never mix (the URL
# object itself: rendering it as a string on every request cost more than the lookup).
_cache: dict[URL, tuple[float, Catalog]] = {}


async def load(source: AsyncSession | Database) -> Catalog:
    """All service types (cached per database for a minute); from a session, or from the database (hot routes)."""
    key = source.engine.url if isinstance(source, Database) else source.get_bind().url
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_TTL_S:
        return hit[1]
    if isinstance(source, Database):
        async with source.read_sessionmaker() as session:
            rows = (await session.scalars(sa.select(ServiceType))).all()
    else:
        rows = (await source.scalars(sa.select(ServiceType))).all()
    catalog = Catalog({t.code: _detached(t) for t in rows})
    _cache[key] = (time.monotonic(), catalog)
    return catalog


def _detached(t: ServiceType) -> ServiceType:
    """A plain copy, so the cached catalog never refers to a session's identity map."""
    return ServiceType(
        code=t.code,
        domain_code=t.domain_code,
        name_zh=t.name_zh,
        name_en=t.name_en,
        unit=t.unit,
        sort_order=t.sort_order,
    )


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
