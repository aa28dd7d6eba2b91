"""Needs (需求清单, 点单): what a station asks for, counted in its service type's unit."""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum, StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from service.db.base import timestamp_column
from service.db.models.common import (
    MAX_ID,
    Description,
    ServiceTypeCode,
    Strict,
    Title,
    WindowDate,
    window_end_after_start,
)


class NeedStatus(StrEnum):
    open = "open"
    partially_matched = "partially_matched"
    matched = "matched"
    fulfilled = "fulfilled"
    cancelled = "cancelled"
    expired = "expired"


LIVE_NEED_STATUSES = (NeedStatus.open, NeedStatus.partially_matched, NeedStatus.matched)
EDITABLE_NEED_STATUSES = (NeedStatus.open, NeedStatus.partially_matched)


class NeedMode(StrEnum):
    direct_aid = "direct_aid"  # 输血: deliver the service
    capacity_building = "capacity_building"  # 造血: help the station do it itself


class BeneficiaryGroup(StrEnum):
    """Who benefits — a group and a count, never a named person."""

    elderly_living_alone = "elderly_living_alone"  # 独居老人
    elderly = "elderly"  # 老年人
    left_behind_children = "left_behind_children"  # 留守儿童
    children_in_difficulty = "children_in_difficulty"  # 困境儿童
    people_with_disabilities = "people_with_disabilities"  # 残疾人
    low_income_households = "low_income_households"  # 低保、低收入家庭
    people_sleeping_rough = "people_sleeping_rough"  # 流浪乞讨人员
    job_seekers = "job_seekers"  # 就业困难人员
    families = "families"  # 家庭
    residents = "residents"  # 社区居民
    social_workers = "social_workers"  # 社会工作者（含备考人员）


class Priority(IntEnum):
    low = 1
    normal = 2
    high = 3
    urgent = 4


NEED_STATUS_CHECK = "status IN ('open','partially_matched','matched','fulfilled','cancelled','expired')"


class Need(SQLModel, table=True):
    """One item on a station's need list."""

    __tablename__ = "needs"
    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("committed >= 0 AND committed <= quantity", name="committed_within_quantity"),
        sa.CheckConstraint("beneficiary_count >= 0", name="beneficiary_count_nonnegative"),
        sa.CheckConstraint("window_end >= window_start", name="window_ordered"),
        sa.CheckConstraint("priority BETWEEN 1 AND 4", name="priority_range"),
        sa.CheckConstraint(NEED_STATUS_CHECK, name="status_known"),
        sa.Index("ix_needs_station_status", "station_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    station_id: int = Field(foreign_key="stations.id", index=True)
    service_type_code: str = Field(foreign_key="service_types.code", index=True, max_length=60)
    title: str = Field(max_length=100)
    description: str = Field(default="", max_length=2000)
    quantity: int
    committed: int = Field(default=0, description="units in accepted proposals")
    beneficiary_group: str = Field(max_length=40)
    beneficiary_count: int = 0
    priority: int = Field(default=Priority.normal)
    window_start: date
    window_end: date
    splittable: bool = True
    mode: str = Field(default=NeedMode.direct_aid, max_length=20)
    status: str = Field(default=NeedStatus.open, max_length=20, index=True)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_column=timestamp_column())
    updated_at: datetime = Field(sa_column=timestamp_column())


class NeedItem(Strict):
    """A need as a station writes it (one item of a need list)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_type": "elderly_care.home_visit",
                    "title": "独居老人每月探访",
                    "quantity": 40,
                    "beneficiary_group": "elderly_living_alone",
                    "beneficiary_count": 40,
                    "priority": 3,
                    "window_start": "2026-01-01",
                    "window_end": "2026-12-31",
                    "splittable": True,
                    "mode": "direct_aid",
                }
            ]
        }
    )

    service_type: ServiceTypeCode
    title: Title
    description: Description = ""
    quantity: int = PydField(gt=0, le=1_000_000, description="in the service type's unit")
    beneficiary_group: BeneficiaryGroup
    beneficiary_count: int = PydField(0, ge=0, le=1_000_000)
    priority: Priority = Priority.normal
    window_start: WindowDate
    window_end: WindowDate
    splittable: bool = PydField(True, description="False: one organization serves it whole")
    mode: NeedMode = NeedMode.direct_aid

    _window = window_end_after_start()


class NeedCreate(NeedItem):
    """A single new need."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"station_id": 1, **NeedItem.model_config["json_schema_extra"]["examples"][0]}]}
    )

    station_id: int = PydField(ge=1, le=MAX_ID)


class NeedList(Strict):
    """A station's whole need list in one request: all stored, or none."""

    items: list[NeedItem] = PydField(min_length=1, max_length=10_000)


class NeedUpdate(Strict):
    """Fields a station may change on an open need."""

    title: Title | None = None
    description: Description | None = None
    quantity: int | None = PydField(default=None, gt=0, le=1_000_000)
    beneficiary_group: BeneficiaryGroup | None = None
    beneficiary_count: int | None = PydField(default=None, ge=0, le=1_000_000)
    priority: Priority | None = None
    window_start: WindowDate | None = None
    window_end: WindowDate | None = None
    splittable: bool | None = None
    mode: NeedMode | None = None

    _window = window_end_after_start()


class NeedRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    station_id: int
    service_type: str
    domain: str
    unit: str
    title: str
    description: str
    quantity: int
    committed: int
    beneficiary_group: BeneficiaryGroup
    beneficiary_count: int
    priority: Priority
    window_start: date
    window_end: date
    splittable: bool
    mode: NeedMode
    status: NeedStatus
    version: int
    created_at: datetime
    updated_at: datetime
