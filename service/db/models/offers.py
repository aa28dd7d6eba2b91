"""Offers (供给清单, 接单): what an organization can give each month, within its business scope.

No `from __future__ import annotations` here: SQLModel resolves relationship annotations at class creation.
"""

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PydField
from sqlmodel import Field, Relationship, SQLModel

from service.db.base import timestamp_column
from service.db.models.common import (
    MAX_ID,
    Description,
    RegionCode,
    ServiceTypeCode,
    Strict,
    Title,
    WindowDate,
    window_end_after_start,
)
from service.db.models.organizations import JSON


class OfferStatus(StrEnum):
    active = "active"
    paused = "paused"
    withdrawn = "withdrawn"
    expired = "expired"


LIVE_OFFER_STATUSES = (OfferStatus.active, OfferStatus.paused)
OFFER_STATUS_CHECK = "status IN ('active','paused','withdrawn','expired')"


class Offer(SQLModel, table=True):
    """One item on an organization's supply list."""

    __tablename__ = "offers"
    __table_args__ = (
        sa.CheckConstraint("capacity >= 0", name="capacity_nonnegative"),
        sa.CheckConstraint("committed >= 0 AND committed <= capacity", name="committed_within_capacity"),
        sa.CheckConstraint("window_end >= window_start", name="window_ordered"),
        sa.CheckConstraint(OFFER_STATUS_CHECK, name="status_known"),
        sa.Index("ix_offers_organization_status", "organization_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    title: str = Field(max_length=100)
    description: str = Field(default="", max_length=2000)
    capacity: int
    committed: int = Field(default=0, description="units in accepted proposals")
    unit: str = Field(max_length=16)
    service_area: list[str] | None = Field(default=None, sa_column=sa.Column(JSON, nullable=True))
    window_start: date
    window_end: date
    status: str = Field(default=OfferStatus.active, max_length=20, index=True)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_column=timestamp_column())
    updated_at: datetime = Field(sa_column=timestamp_column())

    service_types: list["OfferServiceType"] = Relationship(
        sa_relationship_kwargs={
            "lazy": "raise",
            "cascade": "all, delete-orphan",
            "order_by": "OfferServiceType.position",
        }
    )


class OfferServiceType(SQLModel, table=True):
    """Which service types an offer covers (a join table, so lists filter by type in SQL)."""

    __tablename__ = "offer_service_types"

    offer_id: int = Field(foreign_key="offers.id", primary_key=True, ondelete="CASCADE")
    service_type_code: str = Field(foreign_key="service_types.code", primary_key=True, index=True, max_length=60)
    position: int = 0


class OfferItem(Strict):
    """An offer as an organization writes it (one item of a supply list)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_types": ["child_welfare.safety_education", "child_welfare.parent_child_activity"],
                    "title": "留守儿童安全教育与亲子活动",
                    "capacity": 10,
                    "window_start": "2026-01-01",
                    "window_end": "2026-12-31",
                }
            ]
        }
    )

    service_types: list[ServiceTypeCode] = PydField(min_length=1, max_length=10)
    title: Title
    description: Description = ""
    capacity: int = PydField(ge=0, le=1_000_000, description="per month, in the service types' common unit")
    service_area: list[RegionCode] | None = PydField(
        default=None, max_length=200, description="overrides the organization's service area for this offer"
    )
    window_start: WindowDate
    window_end: WindowDate
    status: OfferStatus = PydField(OfferStatus.active, description="active or paused on creation")

    _window = window_end_after_start()

    @model_validator(mode="after")
    def _check(self) -> "OfferItem":
        if len(set(self.service_types)) != len(self.service_types):
            raise ValueError("service_types must not repeat / 服务类型不能重复")
        if self.status not in LIVE_OFFER_STATUSES:
            raise ValueError("a new offer is active or paused / 新供给只能是 active 或 paused")
        return self


class OfferCreate(OfferItem):
    """A single new offer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"organization_id": 1, **OfferItem.model_config["json_schema_extra"]["examples"][0]}]
        }
    )

    organization_id: int = PydField(ge=1, le=MAX_ID)


class OfferList(Strict):
    """An organization's whole supply list in one request: all stored, or none."""

    items: list[OfferItem] = PydField(min_length=1, max_length=10_000)


class OfferUpdate(Strict):
    """Fields an organization may change on a live offer (pause/resume through status)."""

    service_types: list[ServiceTypeCode] | None = PydField(default=None, min_length=1, max_length=10)
    title: Title | None = None
    description: Description | None = None
    capacity: int | None = PydField(default=None, ge=0, le=1_000_000)
    service_area: list[RegionCode] | None = PydField(default=None, max_length=200)
    window_start: WindowDate | None = None
    window_end: WindowDate | None = None
    status: OfferStatus | None = None

    _window = window_end_after_start()

    @model_validator(mode="after")
    def _check(self) -> "OfferUpdate":
        if self.status is not None and self.status not in LIVE_OFFER_STATUSES:
            raise ValueError(
                "status can be set to active or paused; DELETE withdraws"
                " / 状态只能设为 active 或 paused，撤回请用 DELETE"
            )
        if self.service_types is not None and len(set(self.service_types)) != len(self.service_types):
            raise ValueError("service_types must not repeat / 服务类型不能重复")
        return self


class OfferRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    organization_id: int
    service_types: list[str]
    title: str
    description: str
    capacity: int
    committed: int
    unit: str
    service_area: list[str] | None
    window_start: date
    window_end: date
    status: OfferStatus
    version: int
    created_at: datetime
    updated_at: datetime
