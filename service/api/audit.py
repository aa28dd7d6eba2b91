"""The audit trail (审计日志), read-only: coordinators and auditors see their region's events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import AuditReader, Paging, Session
from service.api.problems import problem_responses
from service.db.models.audit import AuditEventRead
from service.db.models.common import Page
from service.services import audit as audit_service

router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"], responses=problem_responses(401, 403, 429))


@router.get(
    "",
    response_model=Page[AuditEventRead],
    responses=problem_responses(422),
    summary="State changes in your region, oldest first (append-only: no update or delete)",
)
async def list_audit_events(
    session: Session,
    actor: AuditReader,
    paging: Paging,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: Annotated[str | None, Query(max_length=40)] = None,
    action: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[AuditEventRead]:
    return await audit_service.list_(
        session,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        action=action,
        limit=paging.limit,
        cursor=paging.cursor,
    )
