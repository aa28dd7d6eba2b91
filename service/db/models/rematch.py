"""Re-match requests (动态管理): changes that call for a new solve, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from service.db.base import timestamp_column


class RematchRequest(SQLModel, table=True):
    """A change under a region; processed (debounced) by the re-match job, never lost if the process dies."""

    __tablename__ = "rematch_requests"

    id: int | None = Field(default=None, primary_key=True)
    region_code: str = Field(max_length=12, index=True)
    reason: str = Field(max_length=40)
    object_type: str = Field(max_length=20)
    object_id: int
    created_at: datetime = Field(sa_column=timestamp_column())
    processed_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
