"""Activities (帮扶活动): what was delivered under a pairing, counted, and rated by the station."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from service.db.base import timestamp_column
from service.db.models.common import MAX_ID, Description, ServiceTypeCode, Strict, WindowDate


class Activity(SQLModel, table=True):
    __tablename__ = "activities"
    __table_args__ = (
        sa.CheckConstraint("units_delivered >= 0 AND people_served >= 0", name="counts_nonnegative"),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
        sa.Index("ix_activities_region_date", "region_code", "occurred_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pairing_id: int = Field(foreign_key="pairings.id", index=True)
    proposal_id: int | None = Field(default=None, foreign_key="proposals.id", index=True)
    station_id: int = Field(foreign_key="stations.id")
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    region_code: str = Field(max_length=12)
    service_type_code: str = Field(foreign_key="service_types.code", max_length=60)
    occurred_on: date
    units_delivered: int
    people_served: int
    volunteers: int = 0
    volunteer_hours: float = 0
    description: str = Field(default="", max_length=2000)
    recorded_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=timestamp_column())
    rating: int | None = None
    rating_comment: str | None = Field(default=None, max_length=500)
    rated_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


class ActivityCreate(Strict):
    """An activity under a pairing; name the accepted proposal it delivers on, where there is one."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_type": "elderly_care.home_visit",
                    "occurred_on": "2026-12-06",
                    "units_delivered": 12,
                    "people_served": 12,
                    "volunteers": 6,
                    "volunteer_hours": 18,
                    "description": "上门探访独居老人，检查用电安全",
                }
            ]
        }
    )

    proposal_id: int | None = PydField(default=None, ge=1, le=MAX_ID)
    service_type: ServiceTypeCode
    occurred_on: WindowDate
    units_delivered: int = PydField(ge=0, le=100_000)
    people_served: int = PydField(ge=0, le=100_000)
    volunteers: int = PydField(0, ge=0, le=10_000)
    volunteer_hours: float = PydField(0, ge=0, le=100_000)
    description: Description = ""


class ActivityRating(Strict):
    rating: int = PydField(ge=1, le=5)
    comment: str | None = PydField(default=None, max_length=500)


class ActivityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    pairing_id: int
    proposal_id: int | None
    station_id: int
    organization_id: int
    region_code: str
    service_type_code: str
    occurred_on: date
    units_delivered: int
    people_served: int
    volunteers: int
    volunteer_hours: float
    description: str
    recorded_by: str
    created_at: datetime
    rating: int | None
    rating_comment: str | None
