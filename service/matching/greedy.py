"""Greedy baseline: fixed units, then kept incumbent units, then edges by gain per unit of demand."""

from __future__ import annotations

import numpy as np

from service.matching.problem import Normalised


def edge_gain(norm: Normalised, edges: np.ndarray) -> np.ndarray:
    """Gain of serving an edge from scratch: per unit (splittable) or for the whole need (unsplittable)."""
    split = norm.splittable[norm.e_need[edges]]
    if not norm.has_incumbent:
        return norm.value[edges].astype(np.float64)
    h = norm.incumbent[edges]
    dem = norm.demand[norm.e_need[edges]]
    # Unsplittable: serving costs p*|d-h| instead of the p*h paid when unserved.
    whole = norm.value[edges] - norm.penalty * (np.abs(dem - h) - h)
    per_unit = norm.value[edges] + np.where(h > 0, norm.penalty, -norm.penalty)
    return np.where(split, per_unit, whole).astype(np.float64)


class _State:
    """Residual demand, capacity and organization-station bookkeeping during the greedy pass, as plain lists
    indexed by need, offer and edge position (the passes are sequential, so they run as tight Python loops; only
    three lists are per edge, to keep memory low on millions of edges)."""

    def __init__(self, norm: Normalised, edges: np.ndarray, cap: np.ndarray | None = None,
                 opened: dict[int, set[int]] | None = None) -> None:
        self.norm = norm
        self.dem = norm.demand.tolist()
        self.full = self.dem.copy()
        self.cap = (norm.capacity if cap is None else cap).tolist()
        self.stations: dict[int, set[int]] = {g: set(s) for g, s in (opened or {}).items()}
        self.covered: set[int] = set()
        self.need, self.offer = norm.e_need[edges].tolist(), norm.e_offer[edges].tolist()
        self.usage = norm.usage[edges].tolist()
        self.split = norm.splittable.tolist()  # per need
        self.station = norm.station.tolist()  # per need
        self.org = norm.org.tolist()  # per offer
        self.lim = (norm.org_limit[norm.org] if len(norm.org_limit) else np.full(norm.n_offers, -1)).tolist()

    def take(self, pos: int, units: int) -> None:
        """Record `units` on the edge at `pos`."""
        i, j = self.need[pos], self.offer[pos]
        self.dem[i] -= units
        self.cap[j] -= self.usage[pos] * (units if self.split[i] else 1)
        if self.lim[j] >= 0:
            self.stations.setdefault(self.org[j], set()).add(self.station[i])
        self.covered.add(self.station[i])

    def run(self, units: list[int], positions: list[int], limits: list[int] | int) -> None:
        """Put as many units as allowed on each position in turn (at most `limits`, per position or for all)."""
        dem, full, cap, stations = self.dem, self.full, self.cap, self.stations
        need, offer, usage, split, station, org, lim = (self.need, self.offer, self.usage, self.split, self.station,
                                                        self.org, self.lim)
        each = isinstance(limits, list)
        for k, pos in enumerate(positions):
            i, j, u = need[pos], offer[pos], usage[pos]
            g_lim = lim[j]
            if g_lim >= 0:
                seen = stations.get(org[j], ())
                if len(seen) >= g_lim and station[i] not in seen:
                    continue
            limit = limits[k] if each else limits
            if split[i]:
                room = cap[j] // u if u > 0 else dem[i]
                x = min(limit, dem[i], room)
                if x <= 0:
                    continue
                cap[j] -= u * x
            else:
                x = dem[i]
                if x != full[i] or cap[j] < u or limit < x:
                    continue
                cap[j] -= u
            dem[i] -= x
            units[pos] += x
            if g_lim >= 0:
                stations.setdefault(org[j], set()).add(station[i])
            self.covered.add(station[i])


def greedy(norm: Normalised, edges: np.ndarray, start: np.ndarray | None = None, *, cap: np.ndarray | None = None,
           opened: dict[int, set[int]] | None = None) -> np.ndarray:
    """Greedy units on `edges` (every edge of their needs); fixed (and `start`) units are taken first (assumed
    feasible). `cap` overrides offer capacities (residual capacity), `opened` lists stations each organization
    already serves outside `edges`."""
    units = [0] * len(edges)
    st = _State(norm, edges, cap, opened)
    fixed = norm.fixed[edges] if start is None else np.maximum(norm.fixed[edges], start)
    fixed_l = fixed.tolist()
    for pos in np.flatnonzero(fixed > 0).tolist():
        units[pos] = fixed_l[pos]
        st.take(pos, fixed_l[pos])
    gain = edge_gain(norm, edges)
    split = norm.splittable[norm.e_need[edges]]
    density = np.where(split, gain, gain / norm.demand[norm.e_need[edges]])
    order = np.lexsort((np.arange(len(edges)), -density))
    inc = norm.incumbent[edges]
    # Units beyond the incumbent gain value - penalty (splittable); unsplittable gains are whole-need gains.
    extra = np.where(split, norm.value[edges] - (norm.penalty if norm.has_incumbent else 0), gain)
    big = 1 << 62
    if norm.has_incumbent:
        now = np.asarray(units, np.int64)
        pick = order[(inc[order] > now[order]) & (gain[order] > 0)]
        st.run(units, pick.tolist(), np.where(split[pick], inc[pick] - now[pick], big).tolist())
    if norm.coverage_first:
        for pos in order.tolist():
            if st.station[st.need[pos]] not in st.covered:
                st.run(units, [pos], 1 if split[pos] else big)
    st.run(units, order[extra[order] > 0].tolist(), big)
    return np.asarray(units, np.int64)
