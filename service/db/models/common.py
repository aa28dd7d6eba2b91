"""Field types shared by the request and response schemas of several domains."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

T = TypeVar("T")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9\- ]{5,19}$")]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
TownshipCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{9}([0-9]{3})?$")]
RegionCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}([0-9]{3})?([0-9]{3})?$")]
ServiceTypeCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
# Row ids are INTEGER columns (32-bit on PostgreSQL): a larger number names no row, and the driver refuses to send
# it (a 500 before this bound).  2.1 billion rows of one kind is decades of a national programme.
MAX_ID = 2**31 - 1
# Bounded so a typo cannot park a need in the year 20025.
WindowDate = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]


class Strict(BaseModel):
    """Request bodies: unknown fields are errors, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def check_window(start: date | None, end: date | None) -> None:
    """A window must not end before it starts."""
    if start is not None and end is not None and end < start:
        raise ValueError("window_end must not be before window_start / 结束日期不能早于开始日期")


def window_end_after_start() -> Any:
    """A field validator reporting a reversed window on `window_end`, where the person must fix it."""

    def _check(cls: type, value: date | None, info: ValidationInfo) -> date | None:
        check_window(info.data.get("window_start"), value)
        return value

    return field_validator("window_end")(classmethod(_check))


class Coordinates(Strict):
    """Both or neither: a half coordinate is an error, not a point."""

    latitude: Latitude | None = None
    longitude: Longitude | None = None


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next page (null: last page)."""

    items: list[T]
    next_cursor: str | None
    limit: int
