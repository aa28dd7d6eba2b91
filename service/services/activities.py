"""Use cases for activities (帮扶活动): recorded by either side of a pairing, rated by the station.

Delivered units count against the accepted proposal they name; a need whose accepted allocations are all
delivered becomes fulfilled. An organization's record feeds the engine's `feedback` score component (0..1):

    feedback = weighted mean of the known parts, weights 0.5 rating, 0.3 delivery, 0.2 answer speed
    rating   = (average activity rating − 1) / 4
    delivery = min(units delivered on accepted proposals / units accepted, 1)
    speed    = max(0, 1 − average days from proposal to the organization's answer / 14)

Parts with no data yet are left out of the mean; with no data at all the feedback is unknown (scored neutrally).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models.activities import Activity, ActivityCreate, ActivityRating, ActivityRead
from service.db.models.common import Page
from service.db.models.needs import Need, NeedStatus
from service.db.models.pairings import Pairing
from service.db.models.proposals import Proposal, ProposalStatus
from service.errors import Conflict, ErrorCollector
from service.services import audit, policy
from service.services import catalog as catalog_service
from service.services import pairings as pairing_service
from service.services.common import fetch_page, get_or_404
from service.services.principals import Principal, Role


async def _delivered(session: AsyncSession, proposal_id: int) -> int:
    total = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Activity.units_delivered), 0)).where(Activity.proposal_id == proposal_id)
    )
    return int(total or 0)


async def _check_proposal(
    session: AsyncSession, errors: ErrorCollector, pairing: Pairing, data: ActivityCreate
) -> Proposal | None:
    if data.proposal_id is None:
        return None
    p = await session.get(Proposal, data.proposal_id)
    if (
        p is None
        or p.status != ProposalStatus.accepted
        or (p.organization_id, p.station_id) != (pairing.organization_id, pairing.station_id)
    ):
        errors.add(
            "/proposal_id",
            "not_an_accepted_allocation",
            "not an accepted proposal of this pairing",
            "不是该结对下已接受的匹配",
        )
        return None
    return p


async def _fulfil(session: AsyncSession, need_id: int) -> None:
    """A matched need all of whose accepted allocations are delivered is fulfilled."""
    need = await session.get_one(Need, need_id, with_for_update=True)
    accepted = (
        await session.scalars(
            sa.select(Proposal).where(Proposal.need_id == need_id, Proposal.status == ProposalStatus.accepted)
        )
    ).all()
    if need.status == NeedStatus.matched and all([await _delivered(session, p.id) >= p.quantity for p in accepted]):
        need.status, need.version, need.updated_at = NeedStatus.fulfilled, need.version + 1, utcnow()


async def record(session: AsyncSession, *, actor: Principal, pairing_id: int, data: ActivityCreate) -> ActivityRead:
    """Record an activity under a pairing the actor belongs to (or coordinates)."""
    pairing = await get_or_404(session, Pairing, pairing_id, what_en="pairing", what_zh="结对")
    policy.authorize(
        actor, pairing_service.ownership(pairing), write=True, what_en="pairing", what_zh="结对", object_id=pairing_id
    )
    errors = ErrorCollector()
    catalog = await catalog_service.load(session)
    if data.service_type not in catalog.types:
        errors.add(
            "/service_type",
            "unknown_service_type",
            f"unknown service type {data.service_type!r}",
            f"未知的服务类型 {data.service_type}",
        )
    proposal = await _check_proposal(session, errors, pairing, data)
    errors.raise_if_any()
    activity = Activity(
        pairing_id=pairing_id,
        proposal_id=data.proposal_id,
        station_id=pairing.station_id,
        organization_id=pairing.organization_id,
        region_code=pairing.region_code,
        service_type_code=data.service_type,
        recorded_by=actor.subject,
        **data.model_dump(exclude={"proposal_id", "service_type"}),
    )
    session.add(activity)
    await session.flush()
    if proposal is not None:
        await _fulfil(session, proposal.need_id)
    read = ActivityRead.model_validate(activity)
    await audit.record(
        session,
        actor=actor,
        action="create",
        object_type="activity",
        object_id=activity.id,
        region_code=pairing.region_code,
        after=read,
    )
    return read


async def rate(session: AsyncSession, *, actor: Principal, activity_id: int, data: ActivityRating) -> ActivityRead:
    """The station rates an activity once (1–5, optional comment)."""
    activity = await get_or_404(session, Activity, activity_id, what_en="activity", what_zh="活动", for_update=True)
    own = policy.Ownership(activity.region_code, activity.station_id, activity.organization_id)
    policy.authorize(actor, own, write=True, what_en="activity", what_zh="活动", object_id=activity_id)
    if actor.role not in (Role.station, Role.admin):
        raise policy.Forbidden("Only the station rates activities", "活动由社工站评价")
    if activity.rating is not None:
        raise Conflict(
            "This activity is rated already", "该活动已评价", code="already_rated", extra={"rating": activity.rating}
        )
    before = ActivityRead.model_validate(activity)
    activity.rating, activity.rating_comment, activity.rated_at = data.rating, data.comment, utcnow()
    await session.flush()
    after = ActivityRead.model_validate(activity)
    await audit.record(
        session,
        actor=actor,
        action="rate",
        object_type="activity",
        object_id=activity.id,
        region_code=activity.region_code,
        before=before,
        after=after,
    )
    return after


async def list_(
    session: AsyncSession, *, actor: Principal, pairing_id: int | None, limit: int, cursor: str | None
) -> Page[ActivityRead]:
    stmt = sa.select(Activity).where(
        policy.visible(
            actor,
            region_column=Activity.region_code,
            station_column=Activity.station_id,
            organization_column=Activity.organization_id,
        )
    )
    if pairing_id is not None:
        stmt = stmt.where(Activity.pairing_id == pairing_id)
    rows, next_cursor = await fetch_page(session, stmt, Activity.id, limit=limit, cursor=cursor)
    return Page[ActivityRead](
        items=[ActivityRead.model_validate(a) for a in rows], next_cursor=next_cursor, limit=limit
    )


FEEDBACK_WEIGHTS = {"rating": 0.5, "delivery": 0.3, "speed": 0.2}
ANSWER_HORIZON_DAYS = 14


def _mean(parts: dict[str, float | None]) -> float | None:
    known = {k: v for k, v in parts.items() if v is not None}
    if not known:
        return None
    return sum(FEEDBACK_WEIGHTS[k] * v for k, v in known.items()) / sum(FEEDBACK_WEIGHTS[k] for k in known)


async def feedback_scores(session: AsyncSession, organization_ids: list[int]) -> dict[int, float]:
    """The documented feedback score per organization with any record."""
    if not organization_ids:
        return {}
    ratings = dict(
        (
            await session.execute(
                sa.select(Activity.organization_id, sa.func.avg(Activity.rating))
                .where(Activity.organization_id.in_(organization_ids), Activity.rating.is_not(None))
                .group_by(Activity.organization_id)
            )
        ).all()
    )
    accepted = dict(
        (
            await session.execute(
                sa.select(Proposal.organization_id, sa.func.sum(Proposal.quantity))
                .where(Proposal.organization_id.in_(organization_ids), Proposal.status == ProposalStatus.accepted)
                .group_by(Proposal.organization_id)
            )
        ).all()
    )
    delivered = dict(
        (
            await session.execute(
                sa.select(Activity.organization_id, sa.func.sum(Activity.units_delivered))
                .where(Activity.organization_id.in_(organization_ids), Activity.proposal_id.is_not(None))
                .group_by(Activity.organization_id)
            )
        ).all()
    )
    answered = (
        await session.execute(
            sa.select(Proposal.organization_id, Proposal.created_at, Proposal.answered_at).where(
                Proposal.organization_id.in_(organization_ids),
                Proposal.organization_answer.is_not(None),
                Proposal.answered_at.is_not(None),
            )
        )
    ).all()
    days: dict[int, list[float]] = {}
    for org, created, answered_at in answered:
        days.setdefault(org, []).append(max((answered_at - created).total_seconds(), 0) / 86400)
    scores = {}
    for org in organization_ids:
        rating = ratings.get(org)
        parts = {
            "rating": None if rating is None else (float(rating) - 1) / 4,
            "delivery": min(float(delivered.get(org) or 0) / accepted[org], 1.0) if accepted.get(org) else None,
            "speed": max(0.0, 1 - (sum(days[org]) / len(days[org])) / ANSWER_HORIZON_DAYS) if org in days else None,
        }
        score = _mean(parts)
        if score is not None:
            scores[org] = score
    return scores
