"""Audit trail (审计日志): every state change, appended in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlmodel import Field, SQLModel

from service.db.base import timestamp_column
from service.db.models.organizations import JSON


class AuditEvent(SQLModel, table=True):
    """Who did what to which object, with the object before and after. Rows are never updated or deleted."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_object", "object_type", "object_id"),)

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(sa_column=timestamp_column())
    actor_subject: str = Field(max_length=200)
    actor_role: str = Field(max_length=20)
    action: str = Field(max_length=20)
    object_type: str = Field(max_length=40)
    object_id: str = Field(max_length=40)
    region_code: str = Field(max_length=12, index=True)
    before: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSON, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSON, nullable=True))
    request_id: str | None = Field(default=None, max_length=128)


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    actor_subject: str
    actor_role: str
    action: str
    object_type: str
    object_id: str
    region_code: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
