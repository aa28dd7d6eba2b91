"""Pure matching engine: social organizations' offers to social-work stations' needs (no I/O, no web, no DB).

Integer layer: `solve(Problem(...))`. Records layer: `match(needs, offers, organizations, stations, ...)`.
"""

from service.matching.match import match
from service.matching.problem import Problem
from service.matching.records import (
    Allocation,
    Churn,
    MatchResult,
    NeedRecord,
    OfferRecord,
    OfferUsage,
    OrganizationRecord,
    ScoreComponents,
    StationRecord,
    Unmatched,
    Weights,
)
from service.matching.solver import Solution, component_state, objective_of, solution_from_state, solve

__all__ = [
    "Allocation",
    "Churn",
    "MatchResult",
    "NeedRecord",
    "OfferRecord",
    "OfferUsage",
    "OrganizationRecord",
    "Problem",
    "ScoreComponents",
    "Solution",
    "StationRecord",
    "Unmatched",
    "Weights",
    "component_state",
    "match",
    "objective_of",
    "solution_from_state",
    "solve",
]
