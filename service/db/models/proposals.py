"""Proposals (匹配建议): one allocation a run suggests, answered by both sides."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from service.db.base import timestamp_column
from service.db.models.common import Strict
from service.db.models.organizations import JSON


class ProposalStatus(StrEnum):
    proposed = "proposed"
    accepted = "accepted"
    rejected = "rejected"
    withdrawn = "withdrawn"
    expired = "expired"
    superseded = "superseded"  # a later run of the same scope replaced it before anyone answered


OPEN_PROPOSAL = ProposalStatus.proposed


class Answer(StrEnum):
    accepted = "accepted"
    rejected = "rejected"


class Side(StrEnum):
    station = "station"
    organization = "organization"


class Proposal(SQLModel, table=True):
    """Need, offer and quantity, with the engine's explanation and each side's answer."""

    __tablename__ = "proposals"
    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint(
            "status IN ('proposed','accepted','rejected','withdrawn','expired','superseded')", name="status_known"
        ),
        sa.Index("ix_proposals_need_status", "need_id", "status"),
        sa.Index("ix_proposals_offer_status", "offer_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="match_runs.id", index=True)
    need_id: int = Field(foreign_key="needs.id")
    offer_id: int = Field(foreign_key="offers.id")
    organization_id: int = Field(foreign_key="organizations.id", index=True)
    station_id: int = Field(foreign_key="stations.id", index=True)
    region_code: str = Field(max_length=12, index=True)
    quantity: int
    status: str = Field(default=ProposalStatus.proposed, max_length=12, index=True)
    station_answer: str | None = Field(default=None, max_length=10)
    organization_answer: str | None = Field(default=None, max_length=10)
    reject_reason: str | None = Field(default=None, max_length=500)
    explanation: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=timestamp_column())
    expires_at: datetime = Field(sa_column=timestamp_column())
    answered_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    version: int = Field(default=1)


class ProposalAnswer(Strict):
    """An answer from one side. Admins say which side they answer for; the others answer for their own."""

    side: Side | None = None


class ProposalRejection(ProposalAnswer):
    """A refusal, with the reason the other side and the bureau will read."""

    reason: str = PydField(min_length=1, max_length=500)


class ProposalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    need_id: int
    offer_id: int
    organization_id: int
    station_id: int
    region_code: str
    quantity: int
    status: ProposalStatus
    station_answer: Answer | None
    organization_answer: Answer | None
    reject_reason: str | None
    explanation: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None
    version: int
