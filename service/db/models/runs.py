"""Match runs (匹配批次): one solve of a region's needs and offers for a month, run as a job."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from service.db.base import timestamp_column
from service.db.models.common import RegionCode, Strict
from service.db.models.organizations import JSON


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class RunTrigger(StrEnum):
    manual = "manual"  # a coordinator asked
    rematch = "rematch"  # lists changed (动态管理)


class MatchRun(SQLModel, table=True):
    """A run and its outcome: solver figures, timings, counts and churn against the previous proposals."""

    __tablename__ = "match_runs"
    __table_args__ = (
        sa.CheckConstraint("status IN ('queued','running','succeeded','failed')", name="status_known"),
        sa.Index("ix_match_runs_scope", "region_code", "period", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    region_code: str = Field(max_length=12)
    period: str = Field(max_length=7)  # YYYY-MM
    trigger: str = Field(default=RunTrigger.manual, max_length=10)
    status: str = Field(default=RunStatus.queued, max_length=10, index=True)
    weights: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSON, nullable=False))
    coverage_first: bool = False
    time_limit_s: float = 10.0
    solver_status: str | None = Field(default=None, max_length=12)
    objective: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    bound: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    timings: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSON, nullable=False))
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSON, nullable=False))
    churn: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSON, nullable=False))
    unmatched: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSON, nullable=False))
    error: str | None = Field(default=None, max_length=2000)
    executed_by: str | None = Field(default=None, max_length=200)  # host:pid of the worker that ran it
    # The engine's per-component rows (`service.matching.component_state`): the next run of the same region and
    # month reuses components that did not change since, even in another worker process.  Not part of the API.
    engine_state: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSON, nullable=True))
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=timestamp_column())
    started_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


class RunWeights(Strict):
    """Optional score weights for this run (defaults documented in the engine's `Weights`)."""

    service_type: float | None = PydField(default=None, ge=0, le=10)
    expertise: float | None = PydField(default=None, ge=0, le=10)
    distance: float | None = PydField(default=None, ge=0, le=10)
    rating: float | None = PydField(default=None, ge=0, le=10)
    feedback: float | None = PydField(default=None, ge=0, le=10)
    continuity: float | None = PydField(default=None, ge=0, le=10)
    priority: float | None = PydField(default=None, ge=0, le=10)
    distance_scale_km: float | None = PydField(default=None, gt=0, le=1000)


class RunCreate(Strict):
    """Ask for proposals for a region and month; `dry_run` computes and returns them without storing anything."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"region_code": "420500", "period": "2026-12"}]})

    region_code: RegionCode
    period: str = PydField(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$", description="month, YYYY-MM")
    weights: RunWeights | None = None
    coverage_first: bool = PydField(False, description="全覆盖: first maximise the stations helped, then value")
    time_limit_s: float = PydField(10.0, gt=0, le=300)
    dry_run: bool = False


class ProposalView(BaseModel):
    """One allocation with its explanation (a proposal, or what a dry run would propose)."""

    model_config = ConfigDict(from_attributes=True)

    id: int | None = None
    need_id: int
    offer_id: int
    organization_id: int
    station_id: int
    quantity: int
    status: str = "proposed"
    explanation: dict[str, Any]


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int | None
    region_code: str
    period: str
    trigger: str
    status: RunStatus
    dry_run: bool = False
    coverage_first: bool
    time_limit_s: float
    weights: dict[str, Any]
    solver_status: str | None
    objective: int | None
    bound: int | None
    timings: dict[str, Any]
    counts: dict[str, Any]
    churn: dict[str, Any]
    unmatched: list[dict[str, Any]]
    error: str | None
    executed_by: str | None = None
    created_by: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    proposals: list[ProposalView] | None = None
