"""Records-level entry point: records in, explained allocations out."""

from __future__ import annotations

import gc
import operator
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from service.matching import explain
from service.matching.candidates import (
    Candidates,
    Indexed,
    build_candidates,
    index_records,
    reindex_needs,
    stable_keys,
    update_candidates,
)
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
from service.matching.solver import Solution, objective_on, offer_use, solve


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
    if codes and len(cand.need):
        edge_codes = cand.need * m + cand.offer  # sorted by construction
        c = np.asarray(codes, np.int64)
        pos = np.searchsorted(edge_codes, c)
        hit = (pos < len(edge_codes)) & (edge_codes[np.minimum(pos, len(edge_codes) - 1)] == c)
        out[pos[hit]] = np.asarray(vals, np.int64)[hit]
    return out


@dataclass
class Reusable:
    """What a later `match` given this result as `previous` reuses when only some needs changed (增量重算): the
    indexed records and candidates, the settings the candidates depend on, and the explanations by edge, need and
    offer.  Kept on `MatchResult.reusable`; nothing here is ever modified in place."""

    ix: Indexed
    cand: Candidates
    settings: tuple
    need_key: np.ndarray
    offer_key: np.ndarray
    units: np.ndarray  # per edge
    gain: np.ndarray  # objective per edge with units (0 elsewhere: only allocations read it)
    allocations: np.ndarray  # Allocation objects of the edges with units, in edge order
    unmatched: np.ndarray  # Unmatched objects, in need order
    unmatched_need: np.ndarray  # need index of each
    utilisation: np.ndarray  # OfferUsage objects, one per offer
    used: np.ndarray  # per offer
    org_stations: np.ndarray  # stations each organization serves


@dataclass
class _Delta:
    """This run against the previous one when only some needs changed: their indices (`changed`) and, per edge, the
    same edge of the previous run or -1."""

    prev: Reusable
    changed: np.ndarray
    edge_map: np.ndarray


def _settings(
    weights: Weights, pairings: list[tuple[Id, Id]], rejected: list[tuple[Id, Id]], forced: list[tuple[Id, Id]]
) -> tuple:
    """What candidates depend on besides the records (as sets: their order does not matter)."""
    return weights, *(frozenset(map(tuple, pairs)) for pairs in (pairings, rejected, forced))


def _untouched(allocations: list[Allocation], kept: np.ndarray) -> bool:
    """Whether a result's allocations are still those it was built with (a caller may drop or edit them and pass the
    result as `previous`: then they, not the kept per-edge units, are the incumbent)."""
    return len(allocations) == len(kept) and all(map(operator.is_, allocations, kept.tolist()))


def _at(values: np.ndarray, edge_map: np.ndarray) -> np.ndarray:
    """`values` of the previous run's edges by `edge_map`, 0 for new edges (-1)."""
    return np.append(values, 0)[edge_map]


def _inputs(
    previous: MatchResult | Iterable[Allocation] | None,
    records: tuple[Sequence[NeedRecord], Sequence[OfferRecord], Sequence[OrganizationRecord], Sequence[StationRecord]],
    weights: Weights,
    links: tuple[list[tuple[Id, Id]], list[tuple[Id, Id]], list[tuple[Id, Id]]],
) -> tuple[Indexed, Candidates, _Delta | None, tuple]:
    """Indexed records and candidates (from the previous result's when only some needs changed, else built) and the
    settings they depend on; `links`: pairings, rejected and forced pairs, in the caller's order (an unknown id in
    them is reported in that order)."""
    pairings, rejected, forced = links
    settings = _settings(weights, pairings, rejected, forced)
    prev = previous.reusable if isinstance(previous, MatchResult) else None
    if prev is not None and prev.settings == settings and _untouched(previous.allocations, prev.allocations):
        again = reindex_needs(prev.ix, *records)
        if again is not None:
            ix, changed = again
            cand, edge_map = update_candidates(prev.cand, ix, changed, weights, pairings, rejected, forced)
            return ix, cand, _Delta(prev, changed, edge_map), settings
    ix = index_records(*records)
    return ix, build_candidates(ix, weights, pairings, rejected, forced), None, settings


def build_problem(
    ix: Indexed,
    cand: Candidates,
    *,
    incumbent: np.ndarray | None,
    fixed: np.ndarray | None,
    change_penalty: int,
    coverage_first: bool,
    keys: tuple[np.ndarray, np.ndarray] | None = None,
) -> Problem:
    """The engine's integer problem for the candidates (`keys`: the needs' and offers' stable keys, if known)."""
    need_key, offer_key = keys or (stable_keys(n.id for n in ix.needs), stable_keys(o.id for o in ix.offers))
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
        need_key=need_key,
        offer_key=offer_key,
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
    accepted = list(accepted)
    links = (list(pairings), list(rejected), [(a, b) for a, b, _ in accepted])
    with _collector_paused():
        ix, cand, delta, settings = _inputs(
            previous, (needs, offers, organizations, stations), weights or Weights(), links
        )
    fixed = _edge_lookup(ix, cand, {(a, b): u for a, b, u in accepted}) if accepted else None
    prev = {} if delta is not None else _previous_units(previous)
    if delta is not None:
        incumbent = _at(delta.prev.units, delta.edge_map)
    else:
        incumbent = _edge_lookup(ix, cand, prev) if previous is not None else None
    if incumbent is not None and fixed is not None:
        incumbent = np.maximum(incumbent, fixed)  # accepted units were part of the previous answer too
    problem = build_problem(
        ix,
        cand,
        incumbent=incumbent,
        fixed=fixed,
        change_penalty=change_penalty,
        coverage_first=coverage_first,
        keys=(delta.prev.need_key, delta.prev.offer_key) if delta is not None else None,
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
        out = _explain_again(ix, cand, norm, sol, delta) if delta is not None else _explain(ix, cand, norm, sol, prev)
        result = out.result
        result.reusable = _reusable(ix, cand, settings, problem, sol, out)
    if delta is not None:
        result.stats = {**result.stats, "needs_changed_in_place": len(delta.changed)}
    result.timings = {
        "candidates": t1 - t0,
        **{f"solve_{k}": v for k, v in sol.timings.items()},
        "solve": t2 - t1,
        "explain": time.perf_counter() - t2,
    }
    return result


@dataclass
class _Explained:
    """A run's MatchResult and the arrays behind its explanations (what `Reusable` keeps)."""

    result: MatchResult
    gain: np.ndarray  # objective per edge with units (0 elsewhere)
    used: np.ndarray  # per offer
    unmatched_need: np.ndarray  # need index of each unmatched entry
    org_stations: np.ndarray  # stations each organization serves


def _allocated(norm: Normalised, units: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges with units, each edge's objective (0 where no units: explanations read it only at allocations) and
    the capacity each offer uses, computed over the allocations alone (national: 172k of 1.7 M edges)."""
    idx = np.flatnonzero(units > 0)
    gain = np.zeros(norm.n_edges, np.int64)
    gain[idx] = objective_on(norm, idx, units[idx])
    return idx, gain, offer_use(norm, idx, units[idx])


def _explain(
    ix: Indexed, cand: Candidates, norm: Normalised, sol: Solution, prev: dict[tuple[Id, Id], int]
) -> _Explained:
    """Assemble the MatchResult from the engine's solution."""
    units = sol.edge_units
    idx, gain, used = _allocated(norm, units)
    allocs = explain.allocations(ix, cand, units, gain, idx)
    current = {(a.need_id, a.offer_id): a.units for a in allocs}
    org_stations = explain.org_station_counts(ix, cand, idx)
    unmatched, rows = explain.unmatched(ix, cand, units, stations=org_stations, alloc=idx)
    result = MatchResult(
        sol.status,
        sol.objective,
        sol.bound,
        allocs,
        unmatched,
        explain.utilisation(ix, used),
        explain.churn(prev, current),
        stats=sol.stats,
        solution=sol,
    )
    return _Explained(result, gain, used, rows, org_stations)


def _explain_again(ix: Indexed, cand: Candidates, norm: Normalised, sol: Solution, delta: _Delta) -> _Explained:
    """`_explain` after only some needs changed: explanations that cannot have changed are the previous run's
    objects (an allocation with the same edge, units and value; an unmatched need none of whose candidate offers, or
    their organizations, saw a change; an offer's unchanged use), the others built anew."""
    prev, units = delta.prev, sol.edge_units
    idx, gain, used = _allocated(norm, units)
    was = _at(prev.units, delta.edge_map)
    changed = np.zeros(len(ix.needs), bool)
    changed[delta.changed] = True
    # Allocations.
    old = delta.edge_map[idx]
    same = (old >= 0) & ~changed[cand.need[idx]] & (was[idx] == units[idx])
    same[same] = prev.gain[old[same]] == gain[idx[same]]
    allocs = np.empty(len(idx), object)
    prev_alloc_edges = np.flatnonzero(prev.units > 0)
    allocs[same] = prev.allocations[np.searchsorted(prev_alloc_edges, old[same])]
    allocs[~same] = explain.objects(explain.allocations(ix, cand, units, gain, idx[~same]))
    # Unmatched needs: an explanation reads the need's candidates and units, the first allocations of its candidate
    # offers (the names: `explain.offer_tops`) and the station counts of their organizations (station limits); anew
    # for the needs where any of these changed (national, 1 % of needs grown: 4,081 of 112,716 unmatched needs instead
    # of the 13,099 whose candidate offers saw any allocation change; province 459 of 1,766 instead of 594).
    touched = np.zeros(len(ix.offers), bool)  # offers with any allocation changed: only theirs can differ
    touched[cand.offer[(units != was) | (changed[cand.need] & (units > 0))]] = True
    touched[prev.cand.offer[changed[prev.cand.need] & (prev.units > 0)]] = True
    now_needs, now_values = explain.offer_tops(ix, cand, units, touched)
    was_needs, was_values = explain.offer_tops(ix, prev.cand, prev.units, touched)
    moved = (now_needs != was_needs).any(axis=1) | (now_values != was_values).any(axis=1)
    org_stations = _org_stations_again(ix, cand, idx, touched, prev.org_stations)
    if len(ix.orgs):
        moved |= ((org_stations != prev.org_stations) & (ix.org_limit >= 0))[ix.offer_org]
    served = np.bincount(cand.need[idx], weights=units[idx], minlength=len(ix.needs))
    before = prev_alloc_edges
    served_before = np.bincount(prev.cand.need[before], weights=prev.units[before], minlength=len(ix.needs))
    dirty = changed | (served != served_before)
    dirty[cand.need[moved[cand.offer]]] = True
    keep = ~dirty[prev.unmatched_need]
    fresh, fresh_need = explain.unmatched(ix, cand, units, dirty, org_stations, idx)
    rows = np.concatenate([prev.unmatched_need[keep], fresh_need])
    order = np.argsort(rows, kind="stable")
    unmatched = np.concatenate([prev.unmatched[keep], explain.objects(fresh)])[order]
    # Utilisation.
    usage = prev.utilisation.copy()
    diff = np.flatnonzero(used != prev.used)
    usage[diff] = explain.objects(explain.utilisation(ix, used, diff))
    result = MatchResult(
        sol.status,
        sol.objective,
        sol.bound,
        allocs.tolist(),
        unmatched.tolist(),
        usage.tolist(),
        explain.churn_by_edge(ix, prev.cand, prev.units, cand, units),
        stats=sol.stats,
        solution=sol,
    )
    return _Explained(result, gain, used, rows[order], org_stations)


def _org_stations_again(
    ix: Indexed, cand: Candidates, alloc: np.ndarray, touched: np.ndarray, before: np.ndarray
) -> np.ndarray:
    """`explain.org_station_counts` of the allocations `alloc`, counted anew only for the organizations of the
    `touched` offers (any allocation changed): the others serve the stations they served `before` (national: a
    sort of 172k (organization, station) pairs, 45 ms, becomes one of a few thousand)."""
    if len(before) != len(ix.orgs):
        return explain.org_station_counts(ix, cand, alloc)
    recount = np.zeros(len(ix.orgs), bool)
    recount[ix.offer_org[touched]] = True
    out = before.copy()
    mine = alloc[recount[ix.offer_org[cand.offer[alloc]]]]
    out[recount] = explain.org_station_counts(ix, cand, mine)[recount]
    return out


def _reusable(
    ix: Indexed, cand: Candidates, settings: tuple, problem: Problem, sol: Solution, out: _Explained
) -> Reusable:
    """What a later run may reuse of this one (`Reusable`)."""
    return Reusable(
        ix,
        cand,
        settings,
        np.asarray(problem.need_key),
        np.asarray(problem.offer_key),
        sol.edge_units,
        out.gain,
        explain.objects(out.result.allocations),
        explain.objects(out.result.unmatched),
        out.unmatched_need,
        explain.objects(out.result.utilisation),
        out.used,
        out.org_stations,
    )
