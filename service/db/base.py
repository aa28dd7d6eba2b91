"""Table metadata shared by every model: one constraint naming convention, so migrations can name what they alter."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata = SQLModel.metadata


def utcnow() -> datetime:
    """Aware UTC now; columns store it as timestamptz on PostgreSQL."""
    return datetime.now(UTC)


def timestamp_column(**kwargs: object) -> sa.Column:
    """A timezone-aware timestamp column defaulting to now."""
    return sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow, **kwargs)
