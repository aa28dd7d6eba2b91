"""Use cases for proposals (匹配建议): each side answers; both yes → accepted allocation and a pairing (结对).

Capacity is enforced by the database, not in Python: accepting adds the units to the offer's and the need's
`committed` with a conditional UPDATE (and CHECK constraints behind it), so concurrent accepts can never
over-commit; the loser gets 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models.common import Page
from service.db.models.needs import Need, NeedStatus
from service.db.models.offers import Offer
from service.db.models.pairings import Pairing
from service.db.models.proposals import Answer, Proposal, ProposalRead, ProposalStatus, Side
from service.db.reads import insert_in_transaction
from service.errors import Conflict
from service.services import audit, policy
from service.services import rematch as rematch_service
from service.services import webhooks as webhook_service
from service.services.common import Reads, fetch_page, get_mapping_or_404, get_or_404, get_row_or_404
from service.services.principals import Principal, Role


def ownership(p: Proposal | sa.Row[Any]) -> policy.Ownership:
    return policy.Ownership(region_code=p.region_code, station_id=p.station_id, organization_id=p.organization_id)


def _ownership_of(p: dict[str, Any]) -> policy.Ownership:
    return policy.Ownership(
        region_code=p["region_code"], station_id=p["station_id"], organization_id=p["organization_id"]
    )


async def load(session: AsyncSession, *, actor: Principal, proposal_id: int, write: bool = False) -> Proposal:
    """A proposal the actor may see (404) and, for writes, act on (403)."""
    p = await get_or_404(session, Proposal, proposal_id, what_en="proposal", what_zh="匹配建议", for_update=write)
    policy.authorize(actor, ownership(p), write=write, what_en="proposal", what_zh="匹配建议", object_id=proposal_id)
    return p


async def get(session: Reads, *, actor: Principal, proposal_id: int) -> ProposalRead:
    row = await get_mapping_or_404(session, Proposal, proposal_id, what_en="proposal", what_zh="匹配建议")
    policy.authorize(
        actor, _ownership_of(row), write=False, what_en="proposal", what_zh="匹配建议", object_id=proposal_id
    )
    return ProposalRead.model_validate(row)


async def list_(
    session: AsyncSession,
    *,
    actor: Principal,
    run_id: int | None,
    need_id: int | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[ProposalRead]:
    """Proposals the actor may see."""
    stmt = sa.select(Proposal).where(
        policy.visible(
            actor,
            region_column=Proposal.region_code,
            station_column=Proposal.station_id,
            organization_column=Proposal.organization_id,
        )
    )
    for column, value in ((Proposal.run_id, run_id), (Proposal.need_id, need_id), (Proposal.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    rows, next_cursor = await fetch_page(session, stmt, Proposal.id, limit=limit, cursor=cursor)
    return Page[ProposalRead](
        items=[ProposalRead.model_validate(p) for p in rows], next_cursor=next_cursor, limit=limit
    )


def _side(actor: Principal, requested: Side | None) -> Side:
    """Stations and organizations answer for themselves; an admin must say for whom."""
    if actor.role == Role.station:
        return Side.station
    if actor.role == Role.organization:
        return Side.organization
    if actor.role == Role.admin and requested is not None:
        return requested
    raise policy.Forbidden(
        "Answers come from the station or the organization concerned",
        "匹配建议须由社工站或社会组织本方答复",
        code="not_a_party",
    )


EVERYONE = ("station", "organization", "region")


def _other(side: Side) -> str:
    return "organization" if side == Side.station else "station"


def _must_be_open(p: Proposal | sa.Row[Any]) -> None:
    if p.status != ProposalStatus.proposed:
        raise Conflict(
            f"The proposal is {p.status}",
            f"该匹配建议当前状态为 {p.status}，不能再答复",
            code="proposal_not_open",
            extra={"current_status": p.status},
        )


async def _commit_units(session: AsyncSession, p: Proposal | sa.Row[Any]) -> None:
    """Consume the need's and the offer's units atomically, or refuse."""
    took_offer = await session.execute(
        sa.update(Offer)
        .where(Offer.id == p.offer_id, Offer.committed + p.quantity <= Offer.capacity)
        .values(committed=Offer.committed + p.quantity, version=Offer.version + 1)
    )
    if took_offer.rowcount != 1:
        raise Conflict(
            "The offer has no capacity left for this proposal",
            "该供给剩余服务量不足，无法接受",
            code="capacity_exhausted",
        )
    took_need = await session.execute(
        sa.update(Need)
        .where(Need.id == p.need_id, Need.committed + p.quantity <= Need.quantity)
        .values(committed=Need.committed + p.quantity, version=Need.version + 1)
    )
    if took_need.rowcount != 1:
        raise Conflict("The need is already covered", "该需求已被满足", code="need_already_covered")
    need = await session.get_one(Need, p.need_id, populate_existing=True)
    need.status = NeedStatus.matched if need.committed >= need.quantity else NeedStatus.partially_matched


async def _ensure_pairing(session: AsyncSession, p: Proposal | sa.Row[Any], today: datetime) -> None:
    exists = await session.scalar(
        sa.select(Pairing.id).where(
            Pairing.organization_id == p.organization_id, Pairing.station_id == p.station_id, Pairing.ended_on.is_(None)
        )
    )
    if exists is None:
        session.add(
            Pairing(
                organization_id=p.organization_id,
                station_id=p.station_id,
                region_code=p.region_code,
                started_on=today.date(),
                first_proposal_id=p.id,
            )
        )


async def _announce(
    session: AsyncSession,
    actor: Principal,
    action: str,
    p: Proposal,
    before: ProposalRead,
    event: str,
    to: tuple[str, ...],
) -> ProposalRead:
    """After a transition: bump the version, tell the subscribers and append to the audit trail, all in this
    transaction."""
    p.version += 1
    await session.flush()
    after = ProposalRead.model_validate(p)
    await _tell(session, actor, action, after, before, event, to)
    return after


async def _tell(
    session: AsyncSession,
    actor: Principal,
    action: str,
    after: ProposalRead,
    before: ProposalRead,
    event: str,
    to: tuple[str, ...],
) -> None:
    """The subscribers' event and the audit record of a proposal's transition, in this transaction."""
    await webhook_service.emit(session, event, after, to=to)
    await audit.record(
        session,
        actor=actor,
        action=action,
        object_type="proposal",
        object_id=after.id,
        region_code=after.region_code,
        before=before,
        after=after,
    )


async def accept(session: AsyncSession, *, actor: Principal, proposal_id: int, side: Side | None) -> ProposalRead:
    """One side says yes; when both have, the units are committed and the pair becomes (or stays) a pairing.

    The proposal is read and changed as a Core row, not an ORM instance (loading it through the ORM and flushing
    it was about a quarter of an accept's CPU): locked with the first statement, then one UPDATE of the columns
    that change, straight to the driver where db.reads can (the transaction is open by then).
    """
    p = await get_row_or_404(session, Proposal, proposal_id, what_en="proposal", what_zh="匹配建议", for_update=True)
    policy.authorize(actor, ownership(p), write=True, what_en="proposal", what_zh="匹配建议", object_id=proposal_id)
    who = _side(actor, side)
    _must_be_open(p)
    before = ProposalRead.model_validate(p)
    now = utcnow()
    changes: dict[str, Any] = {f"{who}_answer": Answer.accepted}
    both = getattr(p, f"{_other(who)}_answer") == Answer.accepted  # the other side said yes before
    if both:
        await _commit_units(session, p)
        changes["status"] = ProposalStatus.accepted
        await _ensure_pairing(session, p, now)
        await session.flush()  # the need's status and the new pairing, before the events that announce them
    changes |= {"answered_at": now, "version": p.version + 1}
    await insert_in_transaction(session, _UPDATE, changes | {"proposal_id": p.id})
    after = ProposalRead.model_validate(dict(p._mapping) | changes)
    event, to = ("proposal.accepted", EVERYONE) if both else ("proposal.answered", (_other(who),))
    await _tell(session, actor, "accept", after, before, event, to)
    return after


# One prebuilt UPDATE of a proposal by id; SET takes the columns given at execution (see audit._INSERT).
_UPDATE = sa.update(Proposal.__table__).where(Proposal.__table__.c.id == sa.bindparam("proposal_id"))


async def reject(
    session: AsyncSession, *, actor: Principal, proposal_id: int, side: Side | None, reason: str
) -> ProposalRead:
    """One side says no: the proposal is rejected and that organization is never proposed for that need again."""
    p = await load(session, actor=actor, proposal_id=proposal_id, write=True)
    who = _side(actor, side)
    _must_be_open(p)
    before = ProposalRead.model_validate(p)
    setattr(p, f"{who}_answer", Answer.rejected)
    p.status, p.reject_reason, p.answered_at = ProposalStatus.rejected, reason, utcnow()
    after = await _announce(session, actor, "reject", p, before, "proposal.rejected", (_other(who), "region"))
    await rematch_service.mark(
        session, region_code=p.region_code, reason="proposal_rejected", object_type="proposal", object_id=p.id
    )
    return after


async def withdraw(session: AsyncSession, *, actor: Principal, proposal_id: int) -> ProposalRead:
    """The bureau takes an unanswered (or half-answered) proposal back."""
    p = await load(session, actor=actor, proposal_id=proposal_id, write=True)
    if actor.role not in (Role.admin, Role.coordinator):
        raise policy.Forbidden("Only the bureau withdraws proposals", "只有民政部门可以撤回匹配建议")
    _must_be_open(p)
    before = ProposalRead.model_validate(p)
    p.status = ProposalStatus.withdrawn
    return await _announce(session, actor, "withdraw", p, before, "proposal.withdrawn", ("station", "organization"))


async def close_open(session: AsyncSession, *, need_id: int | None = None, offer_id: int | None = None) -> int:
    """A cancelled need or withdrawn offer takes its open proposals with it (they become `withdrawn`)."""
    stmt = sa.update(Proposal).where(Proposal.status == ProposalStatus.proposed)
    stmt = stmt.where(Proposal.need_id == need_id) if need_id is not None else stmt.where(Proposal.offer_id == offer_id)
    result = await session.execute(stmt.values(status=ProposalStatus.withdrawn, version=Proposal.version + 1))
    return result.rowcount


async def expire_unanswered(session: AsyncSession, *, now: datetime) -> int:
    """Expire proposals past their answer deadline; each expiry asks for a re-match of its region."""
    due = (
        await session.scalars(
            sa.select(Proposal)
            .where(Proposal.status == ProposalStatus.proposed, Proposal.expires_at <= now)
            .with_for_update()
        )
    ).all()
    system = Principal.system("expiry")
    for p in due:
        before = ProposalRead.model_validate(p)
        p.status = ProposalStatus.expired
        await _announce(session, system, "expire", p, before, "proposal.expired", EVERYONE)
        await rematch_service.mark(
            session, region_code=p.region_code, reason="proposal_expired", object_type="proposal", object_id=p.id
        )
    return len(due)
