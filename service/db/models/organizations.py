"""Social organizations (社会组织): the side that takes orders (接单)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from pydantic import Field as PydField
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from service.db.base import timestamp_column
from service.db.models.common import Address, Latitude, Longitude, Name, Phone, RegionCode, Strict

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


class OrganizationKind(StrEnum):
    """Registration kind under the civil-affairs regulations."""

    social_group = "social_group"  # 社会团体
    social_service_agency = "social_service_agency"  # 社会服务机构（民办非企业单位）
    foundation = "foundation"  # 基金会


class Rating(StrEnum):
    """Assessment grade (社会组织等级评估) 1A–5A."""

    a1 = "1A"
    a2 = "2A"
    a3 = "3A"
    a4 = "4A"
    a5 = "5A"


class Organization(SQLModel, table=True):
    """An organization, where it is based and where it will serve."""

    __tablename__ = "organizations"
    __table_args__ = (
        sa.CheckConstraint("max_stations IS NULL OR max_stations >= 1", name="max_stations_positive"),
        sa.CheckConstraint("max_distance_km IS NULL OR max_distance_km > 0", name="max_distance_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    credit_code: str = Field(max_length=18, unique=True)
    kind: str = Field(max_length=32)
    home_region_code: str = Field(max_length=9, index=True)
    service_area: list[str] = Field(default_factory=list, sa_column=sa.Column(JSON, nullable=False))
    expertise: list[str] = Field(default_factory=list, sa_column=sa.Column(JSON, nullable=False))
    max_distance_km: float | None = None
    rating: str | None = Field(default=None, max_length=2)
    max_stations: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    contact_phone: str | None = Field(default=None, max_length=24)
    address: str | None = Field(default=None, max_length=200)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_column=timestamp_column())
    updated_at: datetime = Field(sa_column=timestamp_column())
    archived_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


CreditCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=18, max_length=18)]
DomainCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class _OrganizationFields(Strict):
    service_area: list[RegionCode] | None = PydField(default=None, max_length=200)
    expertise: list[DomainCode] | None = PydField(default=None, max_length=20)
    max_distance_km: float | None = PydField(default=None, gt=0, le=3000)
    max_stations: int | None = PydField(default=None, ge=1, le=10000)
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    contact_phone: Phone | None = None
    address: Address | None = None

    @model_validator(mode="after")
    def _coordinates(self) -> _OrganizationFields:
        if (self.latitude is None) != (self.longitude is None) and (
            "latitude" in self.model_fields_set or "longitude" in self.model_fields_set
        ):
            raise ValueError("latitude and longitude go together / 经纬度须同时提供")
        return self


class OrganizationCreate(_OrganizationFields):
    """A new organization. Service area defaults to its home region; a county code covers its townships."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "宜昌市三峡社会工作服务中心",
                    "credit_code": "52420502MJ0001001C",
                    "kind": "social_service_agency",
                    "home_region_code": "420502",
                    "service_area": ["420500"],
                    "expertise": ["child_welfare"],
                    "rating": "4A",
                    "max_stations": 5,
                }
            ]
        }
    )

    name: Name
    credit_code: CreditCode
    kind: OrganizationKind
    home_region_code: RegionCode
    rating: Rating | None = None


class OrganizationUpdate(_OrganizationFields):
    """Fields an organization's record may change (identity fields — name, credit code, kind — are fixed)."""

    home_region_code: RegionCode | None = None
    rating: Rating | None = None


class OrganizationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    credit_code: str
    kind: OrganizationKind
    home_region_code: str
    service_area: list[str]
    expertise: list[str]
    max_distance_km: float | None
    rating: Rating | None
    max_stations: int | None
    latitude: float | None
    longitude: float | None
    contact_phone: str | None
    address: str | None
    version: int
    created_at: datetime
    updated_at: datetime
