"""Dynamic re-matching (动态管理): changes mark their region in the same transaction; a job re-solves later.

Marks are rows, so no change is lost when the process dies right after a commit. The job takes marks older
than the debounce delay, re-runs every scope whose latest run covers a marked region (standing proposals act
as the incumbent, so untouched parts keep their proposals), and marks them processed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models.rematch import RematchRequest
from service.db.models.runs import MatchRun, RunCreate, RunStatus, RunTrigger
from service.db.reads import insert_in_transaction
from service.db.session import Database
from service.observability import REMATCH_LAG
from service.services import policy
from service.services.principals import Principal
from service.settings import Settings

log = logging.getLogger(__name__)


async def mark(session: AsyncSession, *, region_code: str, reason: str, object_type: str, object_id: int) -> None:
    """Ask for a re-match of whatever covers `region_code`, as part of the caller's transaction."""
    values = {"region_code": region_code, "reason": reason, "object_type": object_type, "object_id": object_id}
    await insert_in_transaction(session, _INSERT, values | {"created_at": utcnow()})


# Prebuilt, values as parameters: no expression to build and hash on every change (see audit.record).
_INSERT = sa.insert(RematchRequest.__table__).inline()  # no id read back (see audit._INSERT)


def _covers(run_region: str, changed: str) -> bool:
    scope, code = policy.region_prefix(run_region), policy.region_prefix(changed)
    return code.startswith(scope) or scope.startswith(code)


async def _due(session: AsyncSession, before: datetime) -> list[RematchRequest]:
    return list(
        (
            await session.scalars(
                sa.select(RematchRequest)
                .where(RematchRequest.processed_at.is_(None), RematchRequest.created_at <= before)
                .order_by(RematchRequest.id)
            )
        ).all()
    )


async def _scopes(session: AsyncSession, regions: set[str]) -> list[tuple[str, str]]:
    """(region, period) of the latest successful run of each scope that covers a changed region."""
    latest = (
        await session.execute(
            sa.select(MatchRun.region_code, MatchRun.period)
            .where(MatchRun.status == RunStatus.succeeded)
            .group_by(MatchRun.region_code, MatchRun.period)
        )
    ).all()
    return sorted({(r, p) for r, p in latest if any(_covers(r, changed) for changed in regions)})


async def process(db: Database, settings: Settings, *, now: datetime | None = None) -> list[int]:
    """Re-run the scopes touched by settled changes; returns the new run ids."""
    from service.services import runs as run_service  # runs import this module's callers; keep the graph acyclic

    cutoff = (now or utcnow()) - timedelta(seconds=settings.rematch_debounce_s)
    async with db.sessionmaker() as session:
        due = await _due(session, cutoff)
        scopes = await _scopes(session, {r.region_code for r in due}) if due else []
    run_ids = []
    actor = Principal.system("rematch")
    for region, period in scopes:
        run = await run_service.create(
            db, settings, actor=actor, data=RunCreate(region_code=region, period=period), trigger=RunTrigger.rematch
        )
        await run_service.execute(db, settings, run_id=run.id)
        run_ids.append(run.id)
    if due:
        finished = utcnow()
        for request in due:
            REMATCH_LAG.observe((finished - request.created_at).total_seconds())
        async with db.sessionmaker() as session, session.begin():
            await session.execute(
                sa.update(RematchRequest)
                .where(RematchRequest.id.in_([r.id for r in due]))
                .values(processed_at=utcnow())
            )
    if run_ids:
        log.info("re-matched %d scope(s) for %d change(s): runs %s", len(scopes), len(due), run_ids)
    return run_ids
