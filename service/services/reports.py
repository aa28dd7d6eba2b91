"""The bureau's monthly dispatch (月调度): a region's figures for a month as of the 25th.

Counts come from the current lists (statuses as they stand) and from activities dated between the 1st and the
25th inclusive; a pairing counts as active if it started by the 25th and had not ended by then.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from openpyxl import Workbook
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models.activities import Activity
from service.db.models.catalog import ServiceType
from service.db.models.needs import Need
from service.db.models.organizations import Organization
from service.db.models.pairings import Pairing
from service.db.models.proposals import Proposal, ProposalStatus
from service.db.models.stations import Station
from service.errors import NotFound
from service.services import policy
from service.services.principals import Principal

CUTOFF_DAY = 25


class DomainNeeds(BaseModel):
    domain: str
    open: int = 0
    partially_matched: int = 0
    matched: int = 0
    fulfilled: int = 0


class MonthlyDispatch(BaseModel):
    region_code: str
    month: str
    cutoff: date
    active_pairings: int
    needs_by_domain: list[DomainNeeds]
    activities: int
    units_delivered: int
    people_served: int
    organizations_without_activity: list[dict[str, Any]]
    stations_without_pairing: list[dict[str, Any]]
    proposals_unanswered: list[dict[str, Any]]


def _window(month: str) -> tuple[date, date]:
    year, mon = (int(p) for p in month.split("-"))
    return date(year, mon, 1), date(year, mon, CUTOFF_DAY)


async def monthly_dispatch(
    session: AsyncSession, *, actor: Principal, region: str, month: str, unanswered_days: int
) -> MonthlyDispatch:
    """The 月调度 figures for a region the actor oversees."""
    if not policy.can_see(actor, policy.Ownership(region_code=region)):
        raise NotFound(f"No region {region} in your scope", f"区域 {region} 不在您的范围内")
    start, cutoff = _window(month)
    under = policy.region_prefix(region) + "%"
    active = sa.and_(
        Pairing.region_code.like(under),
        Pairing.started_on <= cutoff,
        sa.or_(Pairing.ended_on.is_(None), Pairing.ended_on > cutoff),
    )
    pairings = (await session.execute(sa.select(Pairing.organization_id, Pairing.station_id).where(active))).all()
    in_month = sa.and_(Activity.region_code.like(under), Activity.occurred_on.between(start, cutoff))
    totals = (
        await session.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(Activity.units_delivered), 0),
                sa.func.coalesce(sa.func.sum(Activity.people_served), 0),
            ).where(in_month)
        )
    ).one()
    busy = set((await session.scalars(sa.select(Activity.organization_id).where(in_month).distinct())).all())
    idle_ids = sorted({o for o, _ in pairings} - busy)
    idle = (
        await session.execute(
            sa.select(Organization.id, Organization.name).where(Organization.id.in_(idle_ids)).order_by(Organization.id)
        )
    ).all()
    paired = {s for _, s in pairings}
    stations = (
        await session.execute(
            sa.select(Station.id, Station.name, Station.region_code)
            .where(Station.region_code.like(under), Station.archived_at.is_(None))
            .order_by(Station.id)
        )
    ).all()
    late = cutoff - timedelta(days=unanswered_days)
    unanswered = (
        await session.execute(
            sa.select(Proposal.id, Proposal.need_id, Proposal.organization_id, Proposal.station_id, Proposal.created_at)
            .where(
                Proposal.region_code.like(under),
                Proposal.status == ProposalStatus.proposed,
                sa.func.date(Proposal.created_at) <= late,
            )
            .order_by(Proposal.id)
        )
    ).all()
    return MonthlyDispatch(
        region_code=region,
        month=month,
        cutoff=cutoff,
        active_pairings=len(pairings),
        needs_by_domain=await _needs_by_domain(session, under),
        activities=int(totals[0]),
        units_delivered=int(totals[1]),
        people_served=int(totals[2]),
        organizations_without_activity=[{"organization_id": i, "name": n} for i, n in idle],
        stations_without_pairing=[
            {"station_id": i, "name": n, "region_code": r} for i, n, r in stations if i not in paired
        ],
        proposals_unanswered=[
            {
                "proposal_id": i,
                "need_id": n,
                "organization_id": o,
                "station_id": s,
                "created_at": c.isoformat() if hasattr(c, "isoformat") else str(c),
            }
            for i, n, o, s, c in unanswered
        ],
    )


async def _needs_by_domain(session: AsyncSession, under: str) -> list[DomainNeeds]:
    rows = (
        await session.execute(
            sa.select(ServiceType.domain_code, Need.status, sa.func.count())
            .join(ServiceType, ServiceType.code == Need.service_type_code)
            .join(Station, Station.id == Need.station_id)
            .where(Station.region_code.like(under))
            .group_by(ServiceType.domain_code, Need.status)
        )
    ).all()
    by_domain: dict[str, DomainNeeds] = {}
    for domain, status, count in rows:
        entry = by_domain.setdefault(domain, DomainNeeds(domain=domain))
        if status in DomainNeeds.model_fields:
            setattr(entry, status, count)
    return [by_domain[d] for d in sorted(by_domain)]


def to_rows(report: MonthlyDispatch) -> list[list[Any]]:
    """The report as rows with Chinese headers, one section after another (for CSV and XLSX)."""
    rows: list[list[Any]] = [
        ["区域", "月份", "截止日期", "在册结对数", "活动次数", "服务量", "服务人数"],
        [
            report.region_code,
            report.month,
            report.cutoff.isoformat(),
            report.active_pairings,
            report.activities,
            report.units_delivered,
            report.people_served,
        ],
        [],
        ["服务领域", "待匹配", "部分匹配", "已匹配", "已完成"],
        *[[d.domain, d.open, d.partially_matched, d.matched, d.fulfilled] for d in report.needs_by_domain],
        [],
        ["本月无活动的社会组织编号", "名称"],
        *[[o["organization_id"], o["name"]] for o in report.organizations_without_activity],
        [],
        ["未结对社工站编号", "名称", "区划代码"],
        *[[s["station_id"], s["name"], s["region_code"]] for s in report.stations_without_pairing],
        [],
        ["逾期未答复建议编号", "需求编号", "社会组织编号", "社工站编号", "提出时间"],
        *[
            [p["proposal_id"], p["need_id"], p["organization_id"], p["station_id"], p["created_at"]]
            for p in report.proposals_unanswered
        ],
    ]
    return rows


def to_csv(report: MonthlyDispatch) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(to_rows(report))
    return out.getvalue()


def to_xlsx(report: MonthlyDispatch) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = f"月调度{report.month}"
    for row in to_rows(report):
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ---- 季督导: quarterly supervision -------------------------------------------------------------------------

NO_ACTIVITY_DAYS = 30
LOW_DELIVERY = 0.5
LOW_RATING = 3.0


class PairingSupervision(BaseModel):
    pairing_id: int
    organization_id: int
    organization_name: str
    station_id: int
    station_name: str
    agreed_units: int
    delivered_units: int
    delivery_rate: float | None
    last_activity_on: date | None
    average_rating: float | None
    flags: list[str]


class QuarterlySupervision(BaseModel):
    region_code: str
    quarter: str
    period_end: date
    pairings: list[PairingSupervision]


def quarter_window(quarter: str) -> tuple[date, date]:
    """First and last day of 'YYYY-Qn'."""
    year, q = int(quarter[:4]), int(quarter[-1])
    start = date(year, 3 * q - 2, 1)
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return start, end - timedelta(days=1)


def _flags(row: PairingSupervision, period_end: date) -> list[str]:
    flags = []
    if row.last_activity_on is None or (period_end - row.last_activity_on).days > NO_ACTIVITY_DAYS:
        flags.append("no_activity_30_days")
    if row.delivery_rate is not None and row.delivery_rate < LOW_DELIVERY:
        flags.append("delivery_under_50_percent")
    if row.average_rating is not None and row.average_rating < LOW_RATING:
        flags.append("low_rating")
    return flags


async def _pair_figures(
    session: AsyncSession, pairing: Pairing, until: date
) -> tuple[int, int, date | None, float | None]:
    agreed = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Proposal.quantity), 0)).where(
            Proposal.organization_id == pairing.organization_id,
            Proposal.station_id == pairing.station_id,
            Proposal.status == ProposalStatus.accepted,
        )
    )
    delivered, last, rating = (
        await session.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(Activity.units_delivered), 0),
                sa.func.max(Activity.occurred_on),
                sa.func.avg(Activity.rating),
            ).where(Activity.pairing_id == pairing.id, Activity.occurred_on <= until)
        )
    ).one()
    return int(agreed or 0), int(delivered or 0), last, None if rating is None else round(float(rating), 2)


async def quarterly_supervision(
    session: AsyncSession, *, actor: Principal, region: str, quarter: str
) -> QuarterlySupervision:
    """Per pairing active in the quarter: agreed vs delivered, last activity, rating and flags."""
    if not policy.can_see(actor, policy.Ownership(region_code=region)):
        raise NotFound(f"No region {region} in your scope", f"区域 {region} 不在您的范围内")
    start, end = quarter_window(quarter)
    rows = (
        await session.execute(
            sa.select(Pairing, Organization.name, Station.name)
            .join(Organization, Organization.id == Pairing.organization_id)
            .join(Station, Station.id == Pairing.station_id)
            .where(
                Pairing.region_code.like(policy.region_prefix(region) + "%"),
                Pairing.started_on <= end,
                sa.or_(Pairing.ended_on.is_(None), Pairing.ended_on >= start),
            )
            .order_by(Pairing.id)
        )
    ).all()
    out = []
    for pairing, org_name, station_name in rows:
        agreed, delivered, last, rating = await _pair_figures(session, pairing, end)
        row = PairingSupervision(
            pairing_id=pairing.id,
            organization_id=pairing.organization_id,
            organization_name=org_name,
            station_id=pairing.station_id,
            station_name=station_name,
            agreed_units=agreed,
            delivered_units=delivered,
            delivery_rate=round(delivered / agreed, 4) if agreed else None,
            last_activity_on=last,
            average_rating=rating,
            flags=[],
        )
        row.flags = _flags(row, end)
        out.append(row)
    return QuarterlySupervision(region_code=region, quarter=quarter, period_end=end, pairings=out)


# ---- 年底通报表扬: year-end ranking --------------------------------------------------------------------------

RANKING_WEIGHTS = {"delivered_units": 0.4, "people_served": 0.2, "delivery_rate": 0.2, "rating": 0.2}


class RankedOrganization(BaseModel):
    rank: int
    organization_id: int
    name: str
    delivered_units: int
    people_served: int
    delivery_rate: float
    average_rating: float | None
    components: dict[str, float]
    score: float


class YearRanking(BaseModel):
    region_code: str
    year: int
    formula: str
    organizations: list[RankedOrganization]


FORMULA = (
    "score = 0.4 × delivered_units / max delivered_units + 0.2 × people_served / max people_served"
    " + 0.2 × min(delivered / agreed, 1) + 0.2 × (average rating − 1) / 4 (no rating: 0)"
)


async def year_ranking(session: AsyncSession, *, actor: Principal, region: str, year: int) -> YearRanking:
    """Organizations with a pairing in the region, ranked by a transparent score with its components."""
    if not policy.can_see(actor, policy.Ownership(region_code=region)):
        raise NotFound(f"No region {region} in your scope", f"区域 {region} 不在您的范围内")
    under = policy.region_prefix(region) + "%"
    start, end = date(year, 1, 1), date(year, 12, 31)
    activity = (
        await session.execute(
            sa.select(
                Activity.organization_id,
                sa.func.sum(Activity.units_delivered),
                sa.func.sum(Activity.people_served),
                sa.func.avg(Activity.rating),
            )
            .where(Activity.region_code.like(under), Activity.occurred_on.between(start, end))
            .group_by(Activity.organization_id)
        )
    ).all()
    agreed = dict(
        (
            await session.execute(
                sa.select(Proposal.organization_id, sa.func.sum(Proposal.quantity))
                .where(Proposal.region_code.like(under), Proposal.status == ProposalStatus.accepted)
                .group_by(Proposal.organization_id)
            )
        ).all()
    )
    names = dict((await session.execute(sa.select(Organization.id, Organization.name))).all())
    figures = {
        org: (int(units or 0), int(people or 0), None if rating is None else float(rating))
        for org, units, people, rating in activity
    }
    for org in agreed:
        figures.setdefault(org, (0, 0, None))
    top_units = max((u for u, _, _ in figures.values()), default=0) or 1
    top_people = max((p for _, p, _ in figures.values()), default=0) or 1
    ranked = []
    for org, (units, people, rating) in figures.items():
        rate = min(units / agreed[org], 1.0) if agreed.get(org) else 0.0
        components = {
            "delivered_units": units / top_units,
            "people_served": people / top_people,
            "delivery_rate": rate,
            "rating": 0.0 if rating is None else (rating - 1) / 4,
        }
        score = sum(RANKING_WEIGHTS[k] * v for k, v in components.items())
        ranked.append(
            RankedOrganization(
                rank=0,
                organization_id=org,
                name=names.get(org, ""),
                delivered_units=units,
                people_served=people,
                delivery_rate=round(rate, 4),
                average_rating=None if rating is None else round(rating, 2),
                components={k: round(v, 4) for k, v in components.items()},
                score=round(score, 4),
            )
        )
    ranked.sort(key=lambda r: (-r.score, r.organization_id))
    for i, r in enumerate(ranked, start=1):
        r.rank = i
    return YearRanking(region_code=region, year=year, formula=FORMULA, organizations=ranked)
