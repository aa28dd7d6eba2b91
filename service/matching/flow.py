"""Exact min-cost flow for splittable components, built from numpy arrays in a few vectorised calls.

Per edge the objective is `value * x - penalty * |x - incumbent|`, concave piecewise linear in x, so two
parallel arcs model it exactly: the first `incumbent - fixed` units gain `value + penalty` each, later units
gain `value - penalty`.  Fixed units are taken out beforehand (residual demand and capacity).  Unsplittable
needs whose edges use `demand` capacity enter as a relaxation: per-unit value `value / demand`, scaled by the
lcm of those demands so costs stay integral; the caller checks whether the relaxed optimum is integral.  An
unsplittable need never enters an offer whose (residual) capacity is below its usage, relaxation or not.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from service.matching.problem import Normalised, largest_objective

# OR-Tools scales costs by the node count internally; keep the scaled costs well inside int64.
_MAX_SCALED_COST = 2**62


@dataclass
class FlowResult:
    """Units per edge of the batch and the relaxation objective scaled by `scale`."""

    units: np.ndarray
    scaled_gain: np.ndarray  # per edge: scale * (value term - penalty term) at the solution
    scale: int
    ortools_s: float = 0.0  # time inside OR-Tools (graph build and solve)


# Above this lcm the relaxation uses rounded-up per-unit values: still an upper bound, no longer exact.
MAX_EXACT_SCALE = 2520
# The scale times the most the edges' objective could reach stays below this, so scaled values, gains and their sums
# fit int64 (`normalise` admits objectives up to 2**52, and 2**52 * 2520 would not fit).
_MAX_SCALED_OBJECTIVE = 2**61


def relaxation_scale(norm: Normalised, edges: np.ndarray, need: np.ndarray | None = None) -> int:
    """Smallest scale making every unsplittable edge's value per unit integral, capped at MAX_EXACT_SCALE and at what
    keeps the scaled objective within _MAX_SCALED_OBJECTIVE (values near the 2**52 limit); `need`: the edges' needs,
    if at hand."""
    need = norm.e_need[edges] if need is None else need
    whole = ~norm.splittable[need]
    dem = norm.demand[need[whole]]
    dens = np.unique(dem // np.gcd(np.abs(norm.value[edges[whole]]), dem))
    scale = 1
    for d in dens.tolist():
        scale = math.lcm(scale, d)
        if scale > MAX_EXACT_SCALE:
            scale = MAX_EXACT_SCALE
            break
    return min(scale, _magnitude_cap(norm, edges)) if scale > 1 else 1


def _magnitude_cap(norm: Normalised, edges: np.ndarray) -> int:
    """The largest scale whose scaled objective on `edges` stays within _MAX_SCALED_OBJECTIVE."""
    return max(1, int(_MAX_SCALED_OBJECTIVE // max(largest_objective(norm, edges), 1.0)))


def per_unit_value(norm: Normalised, edges: np.ndarray, scale: int, need: np.ndarray | None = None) -> np.ndarray:
    """Value per unit times `scale` (an unsplittable need's value is spread over its demand); `need`: the edges'
    needs, if at hand."""
    need = norm.e_need[edges] if need is None else need
    out = norm.value[edges] * scale
    whole = np.flatnonzero(~norm.splittable[need])
    # Ceiling division keeps the relaxation an upper bound when the scale is not a multiple of the demand.
    out[whole] = -((-out[whole]) // norm.demand[need[whole]])
    return out


def scaled_gain(
    norm: Normalised, edges: np.ndarray, units: np.ndarray, scale: int, unit: np.ndarray | None = None
) -> np.ndarray:
    """Exact scaled objective contribution of each edge at `units` (relaxed value for unsplittable needs); `unit`:
    `per_unit_value` if already at hand."""
    gain = (per_unit_value(norm, edges, scale) if unit is None else unit) * units
    if norm.has_incumbent:
        gain -= norm.penalty * scale * np.abs(units - norm.incumbent[edges])
    return gain


def _compact(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(values, return_inverse=True)` for indices below `n`: by marking when `values` is not much shorter
    than `n` (linear), else by sorting."""
    if len(values) * 4 < n:
        return np.unique(values, return_inverse=True)
    mark = np.zeros(n, bool)
    mark[values] = True
    rank = np.cumsum(mark) - 1
    return np.flatnonzero(mark), rank[values]


def solve_flow(norm: Normalised, edges: np.ndarray, scale: int | None = None) -> FlowResult | None:
    """Optimal units on `edges` (one or several whole components); None if OR-Tools rejects the ranges.  `scale`
    None: `relaxation_scale` of the edges (the relaxation of their unsplittable needs, exact where it can be)."""
    e_need, e_offer = norm.e_need[edges], norm.e_offer[edges]
    auto = scale is None
    scale = relaxation_scale(norm, edges, e_need) if auto else scale
    # Local node numbers: the sorted unique needs and offers, and each edge's position among them.
    needs, ln = _compact(e_need, norm.n_needs)
    offers, lo = _compact(e_offer, norm.n_offers)
    fixed = norm.fixed[edges]
    if fixed.any():
        res_dem = norm.demand[needs] - np.bincount(ln, weights=fixed, minlength=len(needs)).astype(np.int64)
        used = np.bincount(
            lo,
            weights=fixed * norm.usage[edges] // np.where(norm.splittable[e_need], 1, norm.demand[e_need]),
            minlength=len(offers),
        ).astype(np.int64)
        res_cap = np.maximum(norm.capacity[offers] - used, 0)
    else:
        res_dem, res_cap = norm.demand[needs], norm.capacity[offers]
    unit = per_unit_value(norm, edges, scale, e_need)
    pen = norm.penalty * scale if norm.has_incumbent else 0
    limit = _MAX_SCALED_COST // (len(needs) + len(offers) + 2)
    if auto and scale > 1 and np.abs(unit).max(initial=0) + pen > limit:
        # Values near the 2**52 limit on a larger graph: the largest scale OR-Tools takes (rounded per-unit values,
        # a bound but no longer exact; the caller sees it from the scale).
        most = int(np.abs(norm.value[edges]).max(initial=0)) + (norm.penalty if norm.has_incumbent else 0)
        scale = max(1, min(scale, limit // max(most, 1)))
        unit = per_unit_value(norm, edges, scale, e_need)
        pen = norm.penalty * scale if norm.has_incumbent else 0
    if np.abs(unit).max(initial=0) + pen > limit:
        return None
    # An unsplittable need fits an offer only whole: edges to offers with less (residual) capacity carry nothing,
    # in the relaxation too (the generalised assignment problem's usual LP cut; it tightens the bound).
    whole = ~norm.splittable[e_need]
    cap_edge = np.where(whole & (norm.usage[edges] > res_cap[lo]), 0, res_dem[ln])
    n_loc, n_off = len(needs), len(offers)
    sink = n_loc + n_off
    # Edge arcs: with an incumbent, the kept units first (value + penalty each), then the rest (value - penalty).
    if pen:
        first = np.minimum(np.maximum(norm.incumbent[edges] - fixed, 0), cap_edge)
        e_tail, e_head = np.concatenate([ln, ln]), np.concatenate([n_loc + lo, n_loc + lo])
        e_cap, e_cost = np.concatenate([first, cap_edge - first]), np.concatenate([-(unit + pen), -(unit - pen)])
    else:
        e_tail, e_head, e_cap, e_cost = ln, n_loc + lo, cap_edge, -unit
    # An arc that gains nothing is never needed: dropping it removes ties and shrinks the graph.
    sel = np.flatnonzero((e_cost < 0) & (e_cap > 0))
    # Then need->sink (unserved) and offer->sink (capacity).
    tails = np.concatenate([e_tail[sel], np.arange(n_loc), n_loc + np.arange(n_off)]).astype(np.int32)
    heads = np.concatenate([e_head[sel], np.full(n_loc + n_off, sink)]).astype(np.int32)
    caps = np.concatenate([e_cap[sel], res_dem, res_cap])
    costs = np.concatenate([e_cost[sel], np.zeros(n_loc + n_off, np.int64)])
    supplies = np.concatenate([res_dem, [-int(res_dem.sum())]]).astype(np.int64)
    nodes = np.concatenate([np.arange(n_loc), [sink]]).astype(np.int32)
    t0 = time.perf_counter()
    smcf = min_cost_flow.SimpleMinCostFlow()
    arcs = smcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    smcf.set_nodes_supplies(nodes, supplies)
    if smcf.solve() != smcf.OPTIMAL:
        return None
    arc_flow = smcf.flows(arcs)
    took = time.perf_counter() - t0
    edge_flow = np.zeros(len(e_cap), np.int64)
    edge_flow[sel] = arc_flow[: len(sel)]
    k = len(edges)
    units = fixed + (edge_flow[:k] + edge_flow[k:] if pen else edge_flow)
    return FlowResult(units, scaled_gain(norm, edges, units, scale, unit), scale, took)
