"""Use cases for match runs (匹配): load, solve off the event loop, store proposals atomically.

A run owns its transactions (it is a job, not a request): one short transaction loads the input, the solver
runs in a worker thread with no transaction open, and one transaction writes every proposal of the run together
with the run's outcome — so a run's proposals appear all at once or not at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import asdict
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models.common import Page
from service.db.models.proposals import Proposal, ProposalStatus
from service.db.models.runs import MatchRun, ProposalView, RunCreate, RunRead, RunStatus, RunTrigger
from service.db.session import Database
from service.errors import NotFound
from service.matching import (
    Allocation,
    MatchResult,
    Solution,
    Weights,
    component_state,
    match,
    solution_from_state,
)
from service.observability import observe_run
from service.services import audit, policy
from service.services import matching_input as inputs
from service.services import webhooks as webhook_service
from service.services.common import fetch_page
from service.services.principals import Principal
from service.settings import Settings

log = logging.getLogger(__name__)
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


def _weights(data: dict[str, Any]) -> Weights:
    return Weights(**{k: v for k, v in data.items() if v is not None})


def solve(
    data: inputs.RunInput,
    *,
    weights: Weights,
    coverage_first: bool,
    time_limit_s: float,
    change_penalty: int,
    processes: int = 1,
) -> MatchResult:
    """The engine call (blocking; run it in a thread)."""
    return match(
        data.needs,
        data.offers,
        data.organizations,
        data.stations,
        pairings=data.pairings,
        rejected=data.rejected,
        accepted=data.half_accepted,
        weights=weights,
        previous=data.previous or None,
        previous_solution=_previous_solution(data.previous_state),
        change_penalty=change_penalty,
        coverage_first=coverage_first,
        time_limit_s=time_limit_s,
        processes=processes,
    )


def _previous_solution(state: dict[str, Any] | None) -> Solution | None:
    """The stored engine state of the scope's last run; an unreadable one only costs the reuse, never the run."""
    if not state:
        return None
    try:
        return solution_from_state(state)
    except (KeyError, TypeError, ValueError):
        log.warning("ignoring an unreadable engine state of an earlier run")
        return None


def explanation(a: Allocation) -> dict[str, Any]:
    """Why this pairing: the score, its components, the distance and the value it earns."""
    return {
        "score": round(a.score, 4),
        "value": a.value,
        "distance_km": None if a.distance_km is None else round(a.distance_km, 2),
        "components": {k: round(v, 4) for k, v in asdict(a.components).items()},
    }


def _unmatched(result: MatchResult) -> list[dict[str, Any]]:
    return [
        {
            "need_id": u.need_id,
            "station_id": u.station_id,
            "reason": u.reason,
            "units_missing": u.units_missing,
            "candidates": u.candidates,
            "filter": u.filter,
            "taken_by": list(u.taken_by),
        }
        for u in result.unmatched
    ]


def _outcome(run: MatchRun, result: MatchResult, counts: dict[str, int]) -> None:
    run.solver_status, run.objective, run.bound = result.status, int(result.objective), int(result.bound)
    run.timings = {k: round(v, 4) for k, v in result.timings.items()}
    run.churn = {
        "added": len(result.churn.added),
        "removed": len(result.churn.removed),
        "changed": len(result.churn.changed),
    }
    run.unmatched = _unmatched(result)
    used = sum(u.used for u in result.utilisation)
    capacity = sum(u.capacity for u in result.utilisation)
    run.counts = counts | {
        "allocations": len(result.allocations),
        "unmatched": len(result.unmatched),
        "units_allocated": used,
        "capacity": capacity,
        "components": result.stats.get("components", 0),
        "components_reused": result.stats.get("components_reused", 0),
        # A local re-solve (large touched components): the needs that changed and those freed around them.
        "needs_changed_locally": result.stats.get("local_changed_needs", 0),
        "needs_re_solved_locally": result.stats.get("local_free_needs", 0),
    }


def to_read(run: MatchRun, proposals: list[ProposalView] | None = None, *, dry_run: bool = False) -> RunRead:
    return RunRead.model_validate({**run.model_dump(), "dry_run": dry_run, "proposals": proposals})


async def create(
    db: Database, settings: Settings, *, actor: Principal, data: RunCreate, trigger: RunTrigger = RunTrigger.manual
) -> MatchRun:
    """Record a queued run for a region the actor coordinates."""
    policy.authorize_new(actor, policy.Ownership(region_code=data.region_code), what_en="region", what_zh="区域")
    async with db.sessionmaker() as session, session.begin():
        run = MatchRun(
            region_code=data.region_code,
            period=data.period,
            trigger=trigger,
            weights=(data.weights.model_dump(exclude_none=True) if data.weights else {}),
            coverage_first=data.coverage_first,
            time_limit_s=data.time_limit_s,
            created_by=actor.subject,
        )
        session.add(run)
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            action="run",
            object_type="match_run",
            object_id=run.id,
            region_code=data.region_code,
            after=to_read(run),
        )
    return run


async def preview(db: Database, settings: Settings, *, actor: Principal, data: RunCreate) -> RunRead:
    """A what-if: compute proposals and return them; nothing is stored."""
    policy.authorize_new(actor, policy.Ownership(region_code=data.region_code), what_en="region", what_zh="区域")
    async with db.sessionmaker() as session:
        run_input = await inputs.load(session, region=data.region_code, period=data.period)
    weights = data.weights.model_dump(exclude_none=True) if data.weights else {}
    result = await asyncio.to_thread(
        solve,
        run_input,
        weights=_weights(weights),
        coverage_first=data.coverage_first,
        time_limit_s=data.time_limit_s,
        change_penalty=settings.change_penalty,
        processes=settings.engine_processes,
    )
    run = MatchRun(
        region_code=data.region_code,
        period=data.period,
        weights=weights,
        status=RunStatus.succeeded,
        coverage_first=data.coverage_first,
        time_limit_s=data.time_limit_s,
        created_by=actor.subject,
        created_at=utcnow(),
    )
    _outcome(run, result, {"needs": len(run_input.needs), "offers": len(run_input.offers)})
    views = [
        ProposalView(
            need_id=a.need_id,
            offer_id=a.offer_id,
            organization_id=a.organization_id,
            station_id=a.station_id,
            quantity=a.units,
            explanation=explanation(a),
        )
        for a in result.allocations
        if not a.fixed
    ]
    return to_read(run, views, dry_run=True)


async def execute(db: Database, settings: Settings, *, run_id: int) -> None:
    """Run a queued run to completion; a failure is recorded on the run, never half-written proposals."""
    async with db.sessionmaker() as session, session.begin():
        run = await session.get_one(MatchRun, run_id, with_for_update=True)
        if run.status not in (RunStatus.queued, RunStatus.running):
            return
        run.status, run.started_at, run.executed_by = RunStatus.running, utcnow(), WORKER_NAME
        trigger, started = run.trigger, time.perf_counter()
        run_input = await inputs.load(session, region=run.region_code, period=run.period)
        params = {
            "weights": _weights(run.weights),
            "coverage_first": run.coverage_first,
            "time_limit_s": run.time_limit_s,
            "change_penalty": settings.change_penalty,
            "processes": settings.engine_processes,
        }
    try:
        result = await asyncio.to_thread(solve, run_input, **params)
        async with db.sessionmaker() as session, session.begin():
            await _store(session, settings, run_id=run_id, data=run_input, result=result)
        observe_run(trigger, RunStatus.succeeded, result.status, time.perf_counter() - started)
    except Exception as exc:
        log.exception("match run %s failed", run_id)
        async with db.sessionmaker() as session, session.begin():
            run = await session.get_one(MatchRun, run_id, with_for_update=True)
            run.status, run.error, run.finished_at = RunStatus.failed, f"{type(exc).__name__}: {exc}"[:2000], utcnow()
        observe_run(trigger, RunStatus.failed, None, time.perf_counter() - started)


async def _insert_proposals(
    session: AsyncSession, run_id: int, data: inputs.RunInput, allocations: list[Allocation], expires: datetime
) -> list[SimpleNamespace]:
    """Insert the new proposals in one batch (ids back in order); returns them as plain records for the webhooks."""
    if not allocations:
        return []
    now = utcnow()
    rows = [
        {
            "run_id": run_id,
            "need_id": a.need_id,
            "offer_id": a.offer_id,
            "organization_id": a.organization_id,
            "station_id": a.station_id,
            "region_code": data.station_regions[a.station_id],
            "quantity": a.units,
            "status": ProposalStatus.proposed,
            "explanation": explanation(a),
            "created_at": now,
            "expires_at": expires,
            "version": 1,
        }
        for a in allocations
    ]
    inserted = await session.execute(sa.insert(Proposal).returning(Proposal.id, sort_by_parameter_order=True), rows)
    return [
        SimpleNamespace(id=pid, station_answer=None, organization_answer=None, **row)
        for pid, row in zip(inserted.scalars().all(), rows, strict=True)
    ]


async def _store(
    session: AsyncSession, settings: Settings, *, run_id: int, data: inputs.RunInput, result: MatchResult
) -> None:
    """Write the run's proposals: unchanged standing proposals keep their rows; the rest are superseded or added."""
    run = await session.get_one(MatchRun, run_id, with_for_update=True)
    prefix = policy.region_prefix(run.region_code) + "%"
    # Core rows, not ORM instances: a province run keeps or supersedes thousands of proposals.
    standing = (
        await session.execute(
            sa.select(Proposal.id, Proposal.need_id, Proposal.offer_id, Proposal.quantity)
            .where(
                Proposal.status == ProposalStatus.proposed,
                Proposal.region_code.like(prefix),
                Proposal.station_answer.is_(None),
                Proposal.organization_answer.is_(None),
            )
            .with_for_update()
        )
    ).all()
    wanted = {(a.need_id, a.offer_id): a for a in result.allocations if not a.fixed}
    kept, gone = 0, []
    for pid, need_id, offer_id, quantity in standing:
        a = wanted.get((need_id, offer_id))
        if a is not None and a.units == quantity:
            del wanted[(need_id, offer_id)]
            kept += 1
        else:
            gone.append(pid)
    superseded = len(gone)
    for chunk in (gone[i : i + 5000] for i in range(0, len(gone), 5000)):  # bounded IN lists
        await session.execute(
            sa.update(Proposal)
            .where(Proposal.id.in_(chunk))
            .values(status=ProposalStatus.superseded, version=Proposal.version + 1)
            .execution_options(synchronize_session=False)
        )
    added = await _insert_proposals(session, run_id, data, list(wanted.values()), utcnow() + settings.proposal_ttl)
    # The parties hear about it when (and only if) the run's proposals commit.
    await webhook_service.emit_many(session, "proposal.created", added, to=("station", "organization", "region"))
    _outcome(
        run,
        result,
        {
            "needs": len(data.needs),
            "offers": len(data.offers),
            "proposals_added": len(wanted),
            "proposals_kept": kept,
            "proposals_superseded": superseded,
        },
    )
    run.status, run.finished_at = RunStatus.succeeded, utcnow()
    run.engine_state = component_state(result.solution) if result.solution is not None else None
    # Only the latest state of a scope is ever read: older runs drop theirs, so re-matching every few minutes for a
    # month keeps one state per region and month, not thousands.
    await session.execute(
        sa.update(MatchRun)
        .where(
            MatchRun.region_code == run.region_code,
            MatchRun.period == run.period,
            MatchRun.id != run.id,
            MatchRun.engine_state.is_not(None),
        )
        .values(engine_state=None)
    )
    await session.flush()


async def get(session: AsyncSession, *, actor: Principal, run_id: int, with_proposals: bool = True) -> RunRead:
    """One run, with the proposals it made."""
    run = await session.get(MatchRun, run_id)
    if run is None or not policy.can_see(actor, policy.Ownership(region_code=run.region_code)):
        raise NotFound(f"No run with id {run_id}", f"匹配批次 {run_id} 不存在")
    views = None
    if with_proposals:
        rows = (await session.scalars(sa.select(Proposal).where(Proposal.run_id == run_id).order_by(Proposal.id))).all()
        views = [ProposalView.model_validate(p) for p in rows]
    return to_read(run, views)


async def list_(
    session: AsyncSession, *, actor: Principal, region: str | None, status: str | None, limit: int, cursor: str | None
) -> Page[RunRead]:
    """Runs in the actor's region, oldest first."""
    stmt = sa.select(MatchRun).where(policy.visible(actor, region_column=MatchRun.region_code))
    if region:
        stmt = stmt.where(MatchRun.region_code.like(policy.region_prefix(region) + "%"))
    if status:
        stmt = stmt.where(MatchRun.status == status)
    rows, next_cursor = await fetch_page(session, stmt, MatchRun.id, limit=limit, cursor=cursor)
    return Page[RunRead](items=[to_read(r) for r in rows], next_cursor=next_cursor, limit=limit)


__all__ = ["create", "execute", "get", "list_", "preview", "solve"]
