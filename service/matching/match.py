"""Records-level entry point: records in, explained allocations out."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from service.matching import explain
from service.matching.candidates import Candidates, Indexed, build_candidates, index_records, stable_keys
from service.matching.problem import Normalised, Problem, normalise
from service.matching.records import (
    Allocation,
    Id,
    MatchResult,
    NeedRecord,
    OfferRecord,
    OrganizationRecord,
    StationRecord,
    Weights,
)
from service.matching.solver import Solution, edge_objective, offer_use, solve


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while records are turned into arrays and allocations into records: these
    steps make tens of thousands of objects but no reference cycles, and the collections they would trigger walk
    every long-lived object of the caller (province: ~25 ms of a 45 ms explain). Short steps only, never the solve."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _previous_units(previous: MatchResult | Iterable[Allocation] | None) -> dict[tuple[Id, Id], int]:
    """(need id, offer id) -> units of the previous allocations."""
    if previous is None:
        return {}
    allocs = previous.allocations if isinstance(previous, MatchResult) else previous
    out: dict[tuple[Id, Id], int] = {}
    for a in allocs:
        out[(a.need_id, a.offer_id)] = out.get((a.need_id, a.offer_id), 0) + a.units
    return out


def _edge_lookup(ix: Indexed, cand: Candidates, units: dict[tuple[Id, Id], int]) -> np.ndarray:
    """Units per candidate edge from an (need id, offer id) mapping (pairs no longer candidates are dropped)."""
    m = max(len(ix.offers), 1)
    codes, vals = [], []
    for (a, b), u in units.items():
        i, j = ix.need_index.get(a), ix.offer_index.get(b)
        if i is not None and j is not None:
            codes.append(i * m + j)
            vals.append(u)
    out = np.zeros(len(cand.need), np.int64)
    if codes:
        edge_codes = cand.need * m + cand.offer  # sorted by construction
        c = np.asarray(codes, np.int64)
        pos = np.searchsorted(edge_codes, c)
        hit = (pos < len(edge_codes)) & (edge_codes[np.minimum(pos, len(edge_codes) - 1)] == c)
        out[pos[hit]] = np.asarray(vals, np.int64)[hit]
    return out


def build_problem(
    ix: Indexed,
    cand: Candidates,
    *,
    incumbent: np.ndarray | None,
    fixed: np.ndarray | None,
    change_penalty: int,
    coverage_first: bool,
) -> Problem:
    """The engine's integer problem for the candidates."""
    return Problem(
        need_demand=ix.need_qty,
        need_splittable=ix.need_split,
        offer_capacity=ix.offer_cap,
        edge_need=cand.need,
        edge_offer=cand.offer,
        edge_value=cand.value,
        incumbent=incumbent,
        change_penalty=change_penalty,
        fixed=fixed,
        need_station=ix.need_station,
        offer_org=ix.offer_org,
        org_max_stations=ix.org_limit if len(ix.orgs) else None,
        coverage_first=coverage_first,
        need_key=stable_keys(n.id for n in ix.needs),
        offer_key=stable_keys(o.id for o in ix.offers),
    )


def match(
    needs: Sequence[NeedRecord],
    offers: Sequence[OfferRecord],
    organizations: Sequence[OrganizationRecord],
    stations: Sequence[StationRecord],
    *,
    pairings: Iterable[tuple[Id, Id]] = (),
    rejected: Iterable[tuple[Id, Id]] = (),
    accepted: Iterable[tuple[Id, Id, int]] = (),
    weights: Weights | None = None,
    previous: MatchResult | Iterable[Allocation] | None = None,
    change_penalty: int = 1,
    coverage_first: bool = False,
    time_limit_s: float = 10.0,
    gap_tolerance: float = 0.0,
    previous_solution: Solution | None = None,
    processes: int = 1,
) -> MatchResult:
    """Match needs to offers: `pairings` are (organization id, station id), `rejected` (need id, organization id),
    `accepted` (need id, offer id, units) allocations that must stay.  Components unchanged since `previous` keep
    its allocations without a solve when the engine's solution of that run is at hand: `previous` as a MatchResult,
    or `previous_solution` (e.g. `solution_from_state` of a stored `component_state`).  `processes` > 1 lets a
    large solve run in that many worker processes (`solve`)."""
    t0 = time.perf_counter()
    weights = weights or Weights()
    accepted = list(accepted)
    with _collector_paused():
        ix = index_records(needs, offers, organizations, stations)
        cand = build_candidates(ix, weights, pairings, rejected, [(a, b) for a, b, _ in accepted])
    prev = _previous_units(previous)
    fixed = _edge_lookup(ix, cand, {(a, b): u for a, b, u in accepted}) if accepted else None
    incumbent = _edge_lookup(ix, cand, prev) if previous is not None else None
    if incumbent is not None and fixed is not None:
        incumbent = np.maximum(incumbent, fixed)  # accepted units were part of the previous answer too
    problem = build_problem(
        ix, cand, incumbent=incumbent, fixed=fixed, change_penalty=change_penalty, coverage_first=coverage_first
    )
    t1 = time.perf_counter()
    norm = normalise(problem)  # validated once, for the solve and the explanations
    prev_solution = previous.solution if isinstance(previous, MatchResult) else previous_solution
    sol = solve(
        norm,
        max(time_limit_s - (t1 - t0), 0.1),
        previous=prev_solution,
        gap_tolerance=gap_tolerance,
        processes=processes,
    )
    t2 = time.perf_counter()
    with _collector_paused():
        result = _explain(ix, cand, norm, sol, prev)
    result.timings = {
        "candidates": t1 - t0,
        **{f"solve_{k}": v for k, v in sol.timings.items()},
        "solve": t2 - t1,
        "explain": time.perf_counter() - t2,
    }
    return result


def _explain(
    ix: Indexed, cand: Candidates, norm: Normalised, sol: Solution, prev: dict[tuple[Id, Id], int]
) -> MatchResult:
    """Assemble the MatchResult from the engine's solution."""
    units = sol.edge_units
    gain = edge_objective(norm, units)
    used = offer_use(norm, np.arange(norm.n_edges), units)
    allocs = explain.allocations(ix, cand, units, gain)
    current = {(a.need_id, a.offer_id): a.units for a in allocs}
    return MatchResult(
        sol.status,
        sol.objective,
        sol.bound,
        allocs,
        explain.unmatched(ix, cand, units, used),
        explain.utilisation(ix, used),
        explain.churn(prev, current),
        stats=sol.stats,
        solution=sol,
    )
