"""Realistic synthetic instances: stations in townships of counties, organizations near their county seats.

Layouts: "nested" (default) puts each county next to the other counties of its city and each city next to the other
cities of its province, as the region codes say (counties about 50 km apart, a province about 700 x 450 km, provinces
side by side); "scattered" (the layout before 2026-11-28) drops every county centre anywhere in one 23 x 22 degree
box, so a province's counties lie up to 2,500 km apart and city-wide offers link counties across the country (one
giant component at national size: a stress case, kept for comparison)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from service.matching import NeedRecord, OfferRecord, OrganizationRecord, StationRecord

TYPES = (
    "elder_daycare",
    "elder_home_visit",
    "child_protection",
    "child_tutoring",
    "disability_rehab",
    "disability_employment",
    "community_mediation",
    "mental_health",
)
DOMAIN = {t: t.split("_")[0] for t in TYPES}
YEAR = (date(2026, 1, 1), date(2026, 12, 31))
QUARTERS = [(date(2026, m, 1), date(2026, m + 2, 28)) for m in (1, 4, 7, 10)]
LAYOUTS = ("nested", "scattered")
COUNTY_SPACING_DEG = 0.45  # about 50 km between neighbouring county seats (China: ~2,800 counties on 9.6 M km2)
GRID_COLUMNS = 4  # counties of a city, and cities of a province, sit on a grid this many cells wide


@dataclass
class Size:
    """Scale of one instance."""

    stations: int
    needs_per_station: float
    orgs: int
    townships_per_county: int = 11
    counties_per_city: int = 10
    cities_per_province: int = 12


SIZES = {
    "city": Size(stations=10, needs_per_station=5, orgs=20),
    "province": Size(stations=1056, needs_per_station=5, orgs=2000),
    "national": Size(stations=40_000, needs_per_station=5, orgs=50_000),
}


@dataclass
class Instance:
    """Records of one synthetic run."""

    stations: list[StationRecord]
    needs: list[NeedRecord]
    offers: list[OfferRecord]
    orgs: list[OrganizationRecord]
    pairings: list[tuple[str, str]]
    rejected: list[tuple[str, str]]


def _county_codes(n_counties: int, size: Size) -> tuple[list[str], list[str]]:
    """6-digit county codes and their 4-digit city codes."""
    k = np.arange(n_counties)
    city = k // size.counties_per_city
    prov = 11 + city // size.cities_per_province
    c6 = [
        f"{p:02d}{c % size.cities_per_province + 1:02d}{k_ % size.counties_per_city + 1:02d}"
        for p, c, k_ in zip(prov.tolist(), city.tolist(), k.tolist(), strict=True)
    ]
    return c6, [c[:4] for c in c6]


def _nested_centres(rng: np.random.Generator, n_counties: int, size: Size) -> np.ndarray:
    """County centres (lat, lon): counties on a grid inside their city's cell, cities inside their province's."""
    k = np.arange(n_counties)
    city = k // size.counties_per_city
    prov = city // size.cities_per_province
    cols = GRID_COLUMNS
    c_rows = -(-size.counties_per_city // cols)
    p_rows = -(-size.cities_per_province // cols)
    city_h, city_w = c_rows * COUNTY_SPACING_DEG, cols * COUNTY_SPACING_DEG
    prov_h, prov_w = p_rows * city_h, cols * city_w
    p_cols = max(1, int(np.ceil(np.sqrt(int(prov.max()) + 1))))
    ci, ki = city % size.cities_per_province, k % size.counties_per_city
    lat = 20 + (prov // p_cols) * prov_h + (ci // cols) * city_h + (ki // cols + 0.5) * COUNTY_SPACING_DEG
    lon = 80 + (prov % p_cols) * prov_w + (ci % cols) * city_w + (ki % cols + 0.5) * COUNTY_SPACING_DEG
    jitter = rng.normal(0, COUNTY_SPACING_DEG / 6, (n_counties, 2))
    return np.stack([lat, lon], axis=1) + jitter


def _stations(
    rng: np.random.Generator, size: Size, layout: str
) -> tuple[list[StationRecord], np.ndarray, np.ndarray, list[str]]:
    """Stations; returns their county index and the county centres (lat, lon)."""
    n_counties = max(1, -(-size.stations // size.townships_per_county))
    c6, _ = _county_codes(n_counties, size)
    if layout == "scattered":
        centre = np.stack([rng.uniform(22, 45, n_counties), rng.uniform(100, 122, n_counties)], axis=1)
    else:
        centre = _nested_centres(rng, n_counties, size)
    county = np.arange(size.stations) // size.townships_per_county
    town = np.arange(size.stations) % size.townships_per_county + 1
    lat = centre[county, 0] + rng.normal(0, 0.08, size.stations)
    lon = centre[county, 1] + rng.normal(0, 0.08, size.stations)
    has = rng.random(size.stations) < 0.9
    st = [
        StationRecord(f"S{k}", f"{c6[c]}{t:03d}000", float(a) if h else None, float(b) if h else None)
        for k, (c, t, a, b, h) in enumerate(
            zip(county.tolist(), town.tolist(), lat.tolist(), lon.tolist(), has.tolist(), strict=True)
        )
    ]
    return st, county, centre, c6


def _needs(rng: np.random.Generator, stations: list[StationRecord], size: Size) -> list[NeedRecord]:
    """About `needs_per_station` needs per station; a fifth cannot be split."""
    n = round(len(stations) * size.needs_per_station)
    st = rng.integers(0, len(stations), n)
    typ = rng.integers(0, len(TYPES), n)
    qty = rng.integers(1, 16, n)
    prio = rng.integers(1, 6, n)
    split = rng.random(n) >= 0.2
    quarter = np.where(rng.random(n) < 0.8, -1, rng.integers(0, 4, n))
    return [
        NeedRecord(f"N{k}", stations[s].id, TYPES[t], q, YEAR if w < 0 else QUARTERS[w], p, sp, DOMAIN[TYPES[t]])
        for k, (s, t, q, p, sp, w) in enumerate(
            zip(st.tolist(), typ.tolist(), qty.tolist(), prio.tolist(), split.tolist(), quarter.tolist(), strict=True)
        )
    ]


def _orgs(rng: np.random.Generator, size: Size, centre: np.ndarray) -> tuple[list[OrganizationRecord], np.ndarray]:
    """Organizations near a county centre; a fifth limit the number of stations they take."""
    n = size.orgs
    county = rng.integers(0, len(centre), n)
    lat = centre[county, 0] + rng.normal(0, 0.05, n)
    lon = centre[county, 1] + rng.normal(0, 0.05, n)
    rating = np.where(rng.random(n) < 0.8, rng.integers(1, 6, n), -1)
    feedback = np.where(rng.random(n) < 0.6, rng.uniform(0.3, 1.0, n), -1)
    limit = np.where(rng.random(n) < 0.2, rng.integers(2, 6, n), -1)
    dom = rng.integers(0, 4, n)
    domains = sorted({DOMAIN[t] for t in TYPES})
    orgs = [
        OrganizationRecord(
            f"O{k}",
            None if r < 0 else float(r),
            None if f < 0 else float(f),
            None if m < 0 else int(m),
            float(a),
            float(b),
            (domains[d],),
        )
        for k, (r, f, m, a, b, d) in enumerate(
            zip(
                rating.tolist(),
                feedback.tolist(),
                limit.tolist(),
                lat.tolist(),
                lon.tolist(),
                dom.tolist(),
                strict=True,
            )
        )
    ]
    return orgs, county


def _offers(
    rng: np.random.Generator, orgs: list[OrganizationRecord], org_county: np.ndarray, c6: list[str]
) -> list[OfferRecord]:
    """One to three offers per organization, mostly county-wide, some city-wide or by distance."""
    per = rng.integers(1, 4, len(orgs))
    owner = np.repeat(np.arange(len(orgs)), per)
    n = len(owner)
    n_types = rng.integers(1, 3, n)
    first = rng.integers(0, len(TYPES), n)
    second = (first + rng.integers(1, len(TYPES), n)) % len(TYPES)
    cap = rng.integers(2, 14, n)
    scope = rng.random(n)
    offers = []
    for k, (o, nt, a, b, c, s) in enumerate(
        zip(
            owner.tolist(), n_types.tolist(), first.tolist(), second.tolist(), cap.tolist(), scope.tolist(), strict=True
        )
    ):
        county = c6[org_county[o]]
        area = (county,) if s < 0.85 else (county[:4],) if s < 0.92 else (county,)
        types = (TYPES[a],) if nt == 1 else (TYPES[a], TYPES[b])
        offers.append(OfferRecord(f"F{k}", orgs[o].id, types, c, YEAR, area, 20.0 if s >= 0.92 else None))
    return offers


def generate(name: str, seed: int = 0, layout: str = "nested") -> Instance:
    """A synthetic instance of the named size ("city", "province", "national") and layout (see the module doc)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    size = SIZES[name]
    rng = np.random.default_rng(seed)
    stations, st_county, centre, c6 = _stations(rng, size, layout)
    needs = _needs(rng, stations, size)
    orgs, org_county = _orgs(rng, size, centre)
    offers = _offers(rng, orgs, org_county, c6)
    by_county: dict[int, list[int]] = {}
    for k, c in enumerate(st_county.tolist()):
        by_county.setdefault(c, []).append(k)
    paired = rng.random(len(orgs)) < 0.1
    pairings = [
        (orgs[g].id, stations[rng.choice(by_county[int(org_county[g])])].id)
        for g in np.flatnonzero(paired).tolist()
        if int(org_county[g]) in by_county
    ]
    rej_needs = rng.choice(len(needs), size=len(needs) // 100, replace=False)
    rejected = [(needs[i].id, orgs[int(rng.integers(0, len(orgs)))].id) for i in rej_needs.tolist()]
    return Instance(stations, needs, offers, orgs, pairings, rejected)
