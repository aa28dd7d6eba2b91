"""Social-work stations (乡镇街道社工站): one per township or street, the side that orders (点单)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, model_validator
from sqlmodel import Field, SQLModel

from service.db.base import timestamp_column
from service.db.models.common import Address, Latitude, Longitude, Name, Phone, Strict, TownshipCode


class Station(SQLModel, table=True):
    """A station and the township it serves."""

    __tablename__ = "stations"
    __table_args__ = (
        sa.Index(
            "uq_stations_live_region_code",
            "region_code",
            unique=True,
            sqlite_where=sa.text("archived_at IS NULL"),
            postgresql_where=sa.text("archived_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    region_code: str = Field(max_length=12, index=True)
    latitude: float | None = None
    longitude: float | None = None
    contact_phone: str | None = Field(default=None, max_length=24)
    address: str | None = Field(default=None, max_length=200)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_column=timestamp_column())
    updated_at: datetime = Field(sa_column=timestamp_column())
    archived_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))


def _both_or_neither(lat: float | None, lon: float | None) -> None:
    if (lat is None) != (lon is None):
        raise ValueError("latitude and longitude go together / 经纬度须同时提供")


class StationCreate(Strict):
    """A new station. Its contact is the station's office, never a private person."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "西陵区西陵街道社工站",
                    "region_code": "420502001",
                    "latitude": 30.7046,
                    "longitude": 111.295,
                    "contact_phone": "0717-6221001",
                    "address": "西陵区西陵二路 12 号",
                }
            ]
        }
    )

    name: Name
    region_code: TownshipCode
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    contact_phone: Phone | None = None
    address: Address | None = None

    @model_validator(mode="after")
    def _coordinates(self) -> StationCreate:
        _both_or_neither(self.latitude, self.longitude)
        return self


class StationUpdate(Strict):
    """Fields a station may change; region changes are a new station."""

    name: Name | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    contact_phone: Phone | None = None
    address: Address | None = None

    @model_validator(mode="after")
    def _coordinates(self) -> StationUpdate:
        if "latitude" in self.model_fields_set or "longitude" in self.model_fields_set:
            _both_or_neither(self.latitude, self.longitude)
        return self


class StationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    region_code: str
    county_name: str | None = None
    latitude: float | None
    longitude: float | None
    coordinates_source: str = "station"
    contact_phone: str | None
    address: str | None
    version: int
    created_at: datetime
    updated_at: datetime
