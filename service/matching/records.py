"""Plain records in and out of the records-level API (the service layer converts database rows into these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.matching.match import Reusable
    from service.matching.solver import Solution

Id = str | int
Window = tuple[date, date]  # inclusive start and end dates


@dataclass(frozen=True, slots=True)
class StationRecord:
    """A township/street social-work station (社工站)."""

    id: Id
    region_code: str  # 12-digit township code, e.g. "420106001000"
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class NeedRecord:
    """A station's need (需求): `quantity` units of one service type within a window."""

    id: Id
    station_id: Id
    service_type: str
    quantity: int
    window: Window
    priority: int = 3  # 1 (low) .. 5 (urgent)
    splittable: bool = True  # False: a single offer must serve the whole quantity
    domain: str | None = None  # service domain of the type (e.g. "elderly"), for expertise fit


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """An organization's offer (供给): monthly capacity for some service types, in an area and window."""

    id: Id
    organization_id: Id
    service_types: tuple[str, ...]  # the first is the primary type (full service-type score)
    capacity: int
    window: Window
    area: tuple[str, ...] = ()  # region-code prefixes: "42" province, "4201" city, "420106" county, 9/12-digit too
    max_distance_km: float | None = None  # also serves stations within this distance of the organization
    active: bool = True


@dataclass(frozen=True, slots=True)
class OrganizationRecord:
    """A social organization (社会组织)."""

    id: Id
    rating: float | None = None  # 0..5 (1A–5A evaluation grade); None: not rated
    feedback: float | None = None  # 0..1 past feedback score; None: no feedback yet
    max_stations: int | None = None  # at most this many distinct stations per run; None: no limit
    lat: float | None = None
    lon: float | None = None
    domains: tuple[str, ...] = ()  # expertise domains
    active: bool = True


@dataclass(frozen=True, slots=True)
class Weights:
    """Score weights (each component is in [0, 1]); an edge's value per unit is `1 + resolution * score`."""

    service_type: float = 1.0
    expertise: float = 1.0
    distance: float = 1.0
    rating: float = 0.5
    feedback: float = 0.5
    continuity: float = 1.5  # 结对: the same organization keeps helping the same station
    priority: float = 2.0
    distance_scale_km: float = 25.0  # distance score = exp(-km / scale)
    secondary_type: float = 0.6  # service-type score when the type is not the offer's primary one
    unknown: float = 0.5  # neutral component score when rating, feedback, expertise or coordinates are missing
    resolution: int = 100  # integer value points per unit of score


@dataclass(frozen=True, slots=True)
class ScoreComponents:
    """The components of one candidate's score, each in [0, 1]."""

    service_type: float
    expertise: float
    distance: float
    rating: float
    feedback: float
    continuity: float
    priority: float


@dataclass(frozen=True, slots=True)
class Allocation:
    """Units of a need served by an offer, with the reasons for the pairing."""

    need_id: Id
    offer_id: Id
    organization_id: Id
    station_id: Id
    units: int
    value: int  # objective value earned by this allocation
    score: float
    components: ScoreComponents
    distance_km: float | None
    fixed: bool = False  # an accepted allocation that had to stay


@dataclass(frozen=True, slots=True)
class Unmatched:
    """A need not (fully) served and why.

    reason "no_candidate": `filter` names the filter that removed the last candidates ("no_offer_of_type",
    "no_active_offer", "none_in_range", "none_in_window", "all_rejected").
    reason "capacity_taken": candidates exist; `taken_by` names needs with higher value per unit that use the
    candidate offers' capacity (or `filter` is "station_limit" / "does_not_fit" when that is the binding cause).
    """

    need_id: Id
    station_id: Id
    reason: str
    units_missing: int
    candidates: int
    filter: str | None = None
    taken_by: tuple[Id, ...] = ()


@dataclass(frozen=True, slots=True)
class OfferUsage:
    """Capacity used by an offer's allocations."""

    offer_id: Id
    organization_id: Id
    capacity: int
    used: int

    @property
    def utilisation(self) -> float:
        """Share of the capacity used (0 when the capacity is 0)."""
        return self.used / self.capacity if self.capacity else 0.0


@dataclass(frozen=True, slots=True)
class Churn:
    """Differences with the previous allocations: (need, offer, units) and (need, offer, old, new)."""

    added: tuple[tuple[Id, Id, int], ...] = ()
    removed: tuple[tuple[Id, Id, int], ...] = ()
    changed: tuple[tuple[Id, Id, int, int], ...] = ()


@dataclass
class MatchResult:
    """Outcome of `match`: allocations, unmatched needs, utilisation, churn and solver figures."""

    status: str  # "optimal" | "feasible" | "infeasible"
    objective: int
    bound: int
    allocations: list[Allocation]
    unmatched: list[Unmatched]
    utilisation: list[OfferUsage]
    churn: Churn
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    solution: Solution | None = None  # engine state: pass this result as `previous` to reuse untouched parts
    # Inputs and explanations a later `match` with this result as `previous` reuses when only some needs changed.
    reusable: Reusable | None = field(default=None, repr=False, compare=False)
