"""Pairings (结对): an organization helping a station, from the first accepted proposal until ended."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlmodel import Field, SQLModel

from service.db.base import timestamp_column


class Pairing(SQLModel, table=True):
    """At most one active pairing per organization and station."""

    __tablename__ = "pairings"
    __table_args__ = (
        sa.Index(
            "uq_pairings_active",
            "organization_id",
            "station_id",
            unique=True,
            sqlite_where=sa.text("ended_on IS NULL"),
            postgresql_where=sa.text("ended_on IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    station_id: int = Field(foreign_key="stations.id", index=True)
    region_code: str = Field(max_length=12, index=True)
    started_on: date
    ended_on: date | None = None
    first_proposal_id: int = Field(foreign_key="proposals.id")
    created_at: datetime = Field(sa_column=timestamp_column())


class PairingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organization_id: int
    station_id: int
    region_code: str
    started_on: date
    ended_on: date | None
    first_proposal_id: int
