"""Proposals (匹配建议): read by the parties and the bureau; accepted or rejected by each side."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import exports
from service.api.deps import Actor, BureauStaff, IdFilter, ObjectId, Paging, ReadSession, ReadSessions, Session, allow
from service.api.problems import problem_responses
from service.db.models.common import Page
from service.db.models.proposals import ProposalAnswer, ProposalRead, ProposalRejection, ProposalStatus
from service.services import proposals as proposal_service
from service.services.principals import Role

router = APIRouter(prefix="/api/v1/proposals", tags=["proposals"], responses=problem_responses(401, 403, 429))
Party = allow(Role.admin, Role.station, Role.organization)


@router.get(
    "",
    response_model=Page[ProposalRead],
    responses=problem_responses(422),
    summary="Proposals you may see (your station's, your organization's, or your region's)",
)
async def list_proposals(
    session: ReadSession,
    actor: Actor,
    paging: Paging,
    run_id: IdFilter = None,
    need_id: IdFilter = None,
    status: ProposalStatus | None = None,
) -> Page[ProposalRead]:
    page = await proposal_service.list_(
        session, actor=actor, run_id=run_id, need_id=need_id, status=status, limit=paging.limit, cursor=paging.cursor
    )
    return exports.respond(page, paging, ProposalRead, "proposals")


@router.get("/{proposal_id}", response_model=ProposalRead, responses=problem_responses(404))
async def get_proposal(proposal_id: ObjectId, sessions: ReadSessions, actor: Actor) -> ProposalRead:
    async with sessions() as session:
        return await proposal_service.get(session, actor=actor, proposal_id=proposal_id)


@router.post(
    "/{proposal_id}/accept",
    response_model=ProposalRead,
    responses=problem_responses(404, 409),
    summary="Accept for your side; accepted once both sides have (capacity permitting)",
)
async def accept_proposal(
    proposal_id: ObjectId, session: Session, actor: Party, body: ProposalAnswer | None = None
) -> ProposalRead:
    return await proposal_service.accept(
        session, actor=actor, proposal_id=proposal_id, side=body.side if body else None
    )


@router.post(
    "/{proposal_id}/reject",
    response_model=ProposalRead,
    responses=problem_responses(404, 409, 422),
    summary="Decline for your side, with a reason; that organization is not proposed for the need again",
)
async def reject_proposal(
    proposal_id: ObjectId, body: ProposalRejection, session: Session, actor: Party
) -> ProposalRead:
    return await proposal_service.reject(
        session, actor=actor, proposal_id=proposal_id, side=body.side, reason=body.reason
    )


@router.post(
    "/{proposal_id}/withdraw",
    response_model=ProposalRead,
    responses=problem_responses(404, 409),
    summary="The bureau takes an open proposal back",
)
async def withdraw_proposal(proposal_id: ObjectId, session: Session, actor: BureauStaff) -> ProposalRead:
    return await proposal_service.withdraw(session, actor=actor, proposal_id=proposal_id)
