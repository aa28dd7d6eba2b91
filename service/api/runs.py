"""Match runs (匹配批次): a coordinator asks for proposals for a region and month."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from service import jobs
from service.api.deps import AuditReader, BureauStaff, DatabaseDep, ObjectId, Paging, RegionQuery, Session, SettingsDep
from service.api.problems import problem_responses
from service.db.models.common import Page
from service.db.models.runs import RunCreate, RunRead, RunStatus
from service.services import runs as run_service

router = APIRouter(prefix="/api/v1/match-runs", tags=["match runs"], responses=problem_responses(401, 403, 429))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RunRead,
    responses={
        **problem_responses(422),
        200: {"description": "dry run: proposals computed and returned, nothing stored"},
        202: {"description": "queued: poll the run"},
    },
    summary="Run the matching for a region and month",
)
async def create_run(
    request: Request,
    body: RunCreate,
    db: DatabaseDep,
    settings: SettingsDep,
    actor: BureauStaff,
    response: Response,
    session: Session,
) -> RunRead:
    if body.dry_run:
        response.status_code = status.HTTP_200_OK
        return await run_service.preview(db, settings, actor=actor, data=body)
    run = await run_service.create(db, settings, actor=actor, data=body)
    response.headers["Location"] = f"/api/v1/match-runs/{run.id}"
    if settings.inline_runs:
        await run_service.execute(db, settings, run_id=run.id)
    else:
        await jobs.defer_run(request.app.state.jobs, run.id)
        response.status_code = status.HTTP_202_ACCEPTED
    return await run_service.get(session, actor=actor, run_id=run.id)


@router.get("", response_model=Page[RunRead], responses=problem_responses(422), summary="List runs")
async def list_runs(
    session: Session, actor: AuditReader, paging: Paging, region: RegionQuery = None, status: RunStatus | None = None
) -> Page[RunRead]:
    return await run_service.list_(
        session, actor=actor, region=region, status=status, limit=paging.limit, cursor=paging.cursor
    )


@router.get(
    "/{run_id}",
    response_model=RunRead,
    responses=problem_responses(404),
    summary="A run: status, solver figures, timings, counts, churn, unmatched needs and its proposals",
)
async def get_run(run_id: ObjectId, session: Session, actor: AuditReader) -> RunRead:
    return await run_service.get(session, actor=actor, run_id=run_id)
