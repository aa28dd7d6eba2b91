"""Webhooks (通知): subscribers and the deliveries owed to them (an outbox, written with the change it reports)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import AnyHttpUrl, BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from service.db.base import timestamp_column
from service.db.models.common import RegionCode, Strict
from service.db.models.organizations import JSON


class Owner(StrEnum):
    station = "station"
    organization = "organization"
    region = "region"  # the coordinator's region


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"  # gave up after the last attempt


class WebhookSubscription(SQLModel, table=True):
    __tablename__ = "webhook_subscriptions"
    __table_args__ = (sa.Index("ix_webhook_subscriptions_owner", "owner_type", "owner_id"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_type: str = Field(max_length=20)
    owner_id: int | None = None
    region_code: str = Field(max_length=12, index=True)
    url: str = Field(max_length=500)
    secret: str = Field(max_length=100)
    active: bool = True
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=timestamp_column())


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhook_subscriptions.id", index=True)
    event_type: str = Field(max_length=40)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSON, nullable=False))
    status: str = Field(default=DeliveryStatus.pending, max_length=12)
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=timestamp_column())
    next_attempt_at: datetime = Field(sa_column=timestamp_column())
    delivered_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


class WebhookCreate(Strict):
    """Where to POST events. Stations and organizations subscribe for themselves; coordinators for a region."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"url": "https://ngo.example.cn/jiedui/events"}]})

    url: AnyHttpUrl = PydField(description="https:// (http:// only where configuration allows)")
    region_code: RegionCode | None = PydField(default=None, description="coordinators: the region to follow")


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_type: Owner
    owner_id: int | None
    region_code: str
    url: str
    active: bool
    created_at: datetime
    secret: str | None = PydField(default=None, description="shown once, at creation: verify signatures with it")


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]
