"""Appending to the audit trail, and reading it back within a region."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models.audit import AuditEvent, AuditEventRead
from service.db.models.common import Page
from service.db.reads import insert_in_transaction
from service.services import policy
from service.services.common import fetch_page
from service.services.principals import Principal


def snapshot(view: BaseModel | None) -> dict[str, Any] | None:
    """A JSON-safe copy of an object's API view."""
    return None if view is None else view.model_dump(mode="json")


async def record(
    session: AsyncSession,
    *,
    actor: Principal,
    action: str,
    object_type: str,
    object_id: Any,
    region_code: str,
    before: BaseModel | None = None,
    after: BaseModel | None = None,
) -> None:
    """Append one event; it commits or rolls back with the change it describes.

    A Core INSERT, not an ORM object: nothing reads the event back in this transaction, and the unit of work's
    flush costs several times the statement itself on every write request.
    """
    await insert_in_transaction(
        session,
        _INSERT,
        {
            "occurred_at": utcnow(),
            "actor_subject": actor.subject,
            "actor_role": str(actor.role),
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id),
            "region_code": region_code,
            "before": snapshot(before),
            "after": snapshot(after),
            "request_id": actor.request_id,
        },
    )


# One statement object for every event, the values passed as parameters: an INSERT built per call with .values()
# is a new expression whose cache key SQLAlchemy computes again each time (CPU on every write request).
# inline(): nothing is read back (no implicit RETURNING of the id), so the row can also go straight to the driver.
_INSERT = sa.insert(AuditEvent.__table__).inline()


async def list_(
    session: AsyncSession,
    *,
    actor: Principal,
    object_type: str | None,
    object_id: str | None,
    action: str | None,
    limit: int,
    cursor: str | None,
) -> Page[AuditEventRead]:
    """Events in the caller's region, oldest first."""
    stmt = sa.select(AuditEvent).where(policy.visible(actor, region_column=AuditEvent.region_code))
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    rows, next_cursor = await fetch_page(session, stmt, AuditEvent.id, limit=limit, cursor=cursor)
    return Page[AuditEventRead](
        items=[AuditEventRead.model_validate(r) for r in rows], next_cursor=next_cursor, limit=limit
    )
