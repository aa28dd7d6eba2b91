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
    """Residual demand, capacity and organization-station bookkeeping during the greedy pass."""

    def __init__(self, norm: Normalised, edges: np.ndarray, cap: np.ndarray | None = None,
                 opened: dict[int, set[int]] | None = None) -> None:
        self.norm = norm
        needs, offers = np.unique(norm.e_need[edges]), np.unique(norm.e_offer[edges])
        self.dem = dict(zip(needs.tolist(), norm.demand[needs].tolist(), strict=True))
        self.cap = dict(zip(offers.tolist(), (norm.capacity if cap is None else cap)[offers].tolist(), strict=True))
        self.stations: dict[int, set[int]] = {g: set(s) for g, s in (opened or {}).items()}
        self.covered: set[int] = set()

    def station_ok(self, j: int, i: int) -> bool:
        """Whether offer j's organization may take need i's station."""
        norm = self.norm
        if not len(norm.org_limit):
            return True
        g = int(norm.org[j])
        lim = int(norm.org_limit[g])
        seen = self.stations.get(g, set())
        return lim < 0 or int(norm.station[i]) in seen or len(seen) < lim

    def take(self, i: int, j: int, units: int, used: int) -> None:
        """Record an allocation."""
        self.dem[i] -= units
        self.cap[j] -= used
        if len(self.norm.org_limit):
            self.stations.setdefault(int(self.norm.org[j]), set()).add(int(self.norm.station[i]))
        self.covered.add(int(self.norm.station[i]))


def _try(st: _State, e: int, limit: int) -> int:
    """Units the edge can take now, at most `limit`."""
    norm = st.norm
    i, j = int(norm.e_need[e]), int(norm.e_offer[e])
    if not st.station_ok(j, i):
        return 0
    u = int(norm.usage[e])
    if not norm.splittable[i]:
        ok = st.dem[i] == int(norm.demand[i]) and st.cap[j] >= u and limit >= st.dem[i]
        return st.dem[i] if ok else 0
    room = st.cap[j] // u if u > 0 else st.dem[i]
    return max(0, min(limit, st.dem[i], room))


def _assign(st: _State, units: np.ndarray, pos: int, e: int, limit: int) -> None:
    """Put as many units as allowed on edge e."""
    x = _try(st, e, limit)
    if x > 0:
        norm = st.norm
        i = int(norm.e_need[e])
        used = int(norm.usage[e]) * (x if norm.splittable[i] else 1)
        st.take(i, int(norm.e_offer[e]), x, used)
        units[pos] += x


def greedy(norm: Normalised, edges: np.ndarray, start: np.ndarray | None = None, *, cap: np.ndarray | None = None,
           opened: dict[int, set[int]] | None = None) -> np.ndarray:
    """Greedy units on `edges` (every edge of their needs); fixed (and `start`) units are taken first (assumed
    feasible). `cap` overrides offer capacities (residual capacity), `opened` lists stations each organization
    already serves outside `edges`."""
    units = np.zeros(len(edges), np.int64)
    st = _State(norm, edges, cap, opened)
    fixed = norm.fixed[edges] if start is None else np.maximum(norm.fixed[edges], start)
    for pos in np.flatnonzero(fixed > 0).tolist():
        e = int(edges[pos])
        i, j = int(norm.e_need[e]), int(norm.e_offer[e])
        units[pos] = fixed[pos]
        st.take(i, j, int(fixed[pos]), int(norm.usage[e]) * (int(fixed[pos]) if norm.splittable[i] else 1))
    gain = edge_gain(norm, edges)
    split = norm.splittable[norm.e_need[edges]]
    density = np.where(split, gain, gain / norm.demand[norm.e_need[edges]])
    order = np.lexsort((np.arange(len(edges)), -density)).tolist()
    inc = norm.incumbent[edges]
    # Units beyond the incumbent gain value - penalty (splittable); unsplittable gains are whole-need gains.
    extra = np.where(split, norm.value[edges] - (norm.penalty if norm.has_incumbent else 0), gain)
    big = 1 << 62
    if norm.has_incumbent:
        for pos in order:
            if inc[pos] > units[pos] and gain[pos] > 0:
                _assign(st, units, pos, int(edges[pos]), int(inc[pos] - units[pos]) if split[pos] else big)
    if norm.coverage_first:
        for pos in order:
            if int(norm.station[norm.e_need[edges[pos]]]) not in st.covered:
                _assign(st, units, pos, int(edges[pos]), 1 if split[pos] else big)
    for pos in order:
        if extra[pos] > 0:
            _assign(st, units, pos, int(edges[pos]), big)
    return units
