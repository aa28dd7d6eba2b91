"""Independent reference solvers for the property tests: brute force and scipy's HiGHS (LP / MILP)."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import LinearConstraint, linprog, milp

from service.matching.problem import Normalised


def check_feasible(norm: Normalised, units: np.ndarray) -> None:
    """Assert demands, capacities, unsplittable wholeness, fixed units and station limits hold."""
    assert units.shape == (norm.n_edges,)
    assert np.all(units >= norm.fixed)
    per_need = np.bincount(norm.e_need, weights=units, minlength=norm.n_needs)
    assert np.all(per_need <= norm.demand)
    split = norm.edge_split
    whole = norm.demand[norm.e_need]
    assert np.all(split | (units == 0) | (units == whole)), "unsplittable need served in part"
    served_edges = np.bincount(norm.e_need, weights=units > 0, minlength=norm.n_needs)
    assert np.all(norm.splittable | (served_edges <= 1)), "unsplittable need served by two offers"
    used = np.where(split, units * norm.usage, np.where(units > 0, norm.usage, 0))
    assert np.all(np.bincount(norm.e_offer, weights=used, minlength=norm.n_offers) <= norm.capacity)
    if len(norm.org_limit):
        for g, lim in enumerate(norm.org_limit.tolist()):
            if lim >= 0:
                mask = (units > 0) & (norm.org[norm.e_offer] == g)
                assert len(set(norm.station[norm.e_need[mask]].tolist())) <= lim


def objective(norm: Normalised, units: np.ndarray) -> int:
    """Objective as the contract defines it."""
    val = np.where(norm.edge_split, norm.value * units, np.where(units > 0, norm.value, 0))
    if norm.has_incumbent:
        val = val - norm.penalty * np.abs(units - norm.incumbent)
    return int(val.sum())


def _feasible(norm: Normalised, units: np.ndarray) -> bool:
    """Non-raising feasibility check."""
    try:
        check_feasible(norm, units)
    except AssertionError:
        return False
    return True


def brute_force(norm: Normalised) -> tuple[int, int] | None:
    """Best (coverage, objective) over all assignments of an all-unsplittable problem; None if infeasible."""
    choices = []
    for i in range(norm.n_needs):
        edges = np.flatnonzero(norm.e_need == i).tolist()
        choices.append([None, *edges])
    best = None
    for pick in itertools.product(*choices):
        units = np.zeros(norm.n_edges, np.int64)
        for i, e in enumerate(pick):
            if e is not None:
                units[e] = norm.demand[i]
        if not _feasible(norm, units):
            continue
        cover = len(set(norm.station[norm.e_need[units > 0]].tolist())) if norm.coverage_first else 0
        key = (cover, objective(norm, units))
        best = key if best is None or key > best else best
    return best


def lp_splittable(norm: Normalised) -> float | None:
    """LP optimum of an all-splittable problem with usage one per unit (penalties via |x - h| <= t)."""
    k = norm.n_edges
    p = norm.penalty if norm.has_incumbent else 0
    # Variables: x (k), t (k); maximise value*x - p*t.
    c = np.concatenate([-norm.value.astype(float), np.full(k, float(p))])
    rows, rhs = [], []
    for i in range(norm.n_needs):
        rows.append(np.concatenate([(norm.e_need == i).astype(float), np.zeros(k)]))
        rhs.append(norm.demand[i])
    for j in range(norm.n_offers):
        rows.append(np.concatenate([(norm.e_offer == j) * norm.usage.astype(float), np.zeros(k)]))
        rhs.append(norm.capacity[j])
    eye = np.eye(k)
    for e in range(k):  # x - t <= h and -x - t <= -h
        rows.append(np.concatenate([eye[e], -eye[e]]))
        rhs.append(norm.incumbent[e])
        rows.append(np.concatenate([-eye[e], -eye[e]]))
        rhs.append(-norm.incumbent[e])
    bounds = [(float(f), None) for f in norm.fixed] + [(0, None)] * k
    res = linprog(
        c,
        A_ub=np.array(rows) if rows else None,
        b_ub=np.array(rhs, float) if rhs else None,
        bounds=bounds,
        method="highs",
    )
    return None if res.status != 0 else -res.fun


def milp_mixed(norm: Normalised) -> float | None:
    """MILP optimum of a mixed problem with usages and station limits (no coverage objective)."""
    k = norm.n_edges
    split = norm.edge_split
    pairs = sorted(
        {
            (int(norm.org[norm.e_offer[e]]), int(norm.station[norm.e_need[e]]))
            for e in range(k)
            if len(norm.org_limit) and norm.org_limit[norm.org[norm.e_offer[e]]] >= 0
        }
    )
    nz = len(pairs)
    n_var = 2 * k + nz  # x (units or 0/1 choice), t = |units - h|, z (org, station)
    whole = norm.demand[norm.e_need].astype(float)
    gain = np.where(split, norm.value, norm.value).astype(float)
    p = norm.penalty if norm.has_incumbent else 0
    c = np.concatenate([-gain, np.full(k, float(p)), np.zeros(nz)])
    a, lo, hi = [], [], []

    def row(coefs: dict[int, float], low: float, high: float) -> None:
        r = np.zeros(n_var)
        for idx, v in coefs.items():
            r[idx] += v
        a.append(r)
        lo.append(low)
        hi.append(high)

    for i in range(norm.n_needs):
        es = np.flatnonzero(norm.e_need == i).tolist()
        if es:
            row({e: 1.0 for e in es}, -np.inf, norm.demand[i] if norm.splittable[i] else 1)
    for j in range(norm.n_offers):
        es = np.flatnonzero(norm.e_offer == j).tolist()
        if es:
            row({e: float(norm.usage[e]) for e in es}, -np.inf, norm.capacity[j])
    for e in range(k):
        units_per = 1.0 if split[e] else whole[e]
        row({e: units_per, k + e: -1.0}, -np.inf, norm.incumbent[e])
        row({e: -units_per, k + e: -1.0}, -np.inf, -norm.incumbent[e])
    for z, (g, s) in enumerate(pairs):
        for e in range(k):
            if norm.org[norm.e_offer[e]] == g and norm.station[norm.e_need[e]] == s:
                row({e: 1.0, 2 * k + z: -float(norm.demand[norm.e_need[e]])}, -np.inf, 0)
    for g in sorted({g for g, _ in pairs}):
        row({2 * k + z: 1.0 for z, (gg, _) in enumerate(pairs) if gg == g}, -np.inf, norm.org_limit[g])
    lb = np.concatenate([np.where(split, norm.fixed, norm.fixed > 0), np.zeros(k + nz)]).astype(float)
    ub = np.concatenate([np.where(split, norm.demand[norm.e_need], 1), np.full(k, np.inf), np.ones(nz)])
    cons = LinearConstraint(np.array(a), lo, hi) if a else ()
    res = milp(c, constraints=cons, integrality=np.ones(n_var), bounds=(lb, ub))
    return None if res.status != 0 else -res.fun


def greedy_sequential(norm: Normalised) -> np.ndarray:
    """The greedy baseline's rule one edge at a time, with no shortcuts: fixed units; then, with an incumbent, each
    edge's incumbent units (if it gains) by density; then (coverage-first) one unit for each uncovered station; then
    every edge by density, as many units as demand, capacity and station limits allow."""
    k = norm.n_edges
    units = np.zeros(k, np.int64)
    dem, full, cap = norm.demand.copy(), norm.demand.copy(), norm.capacity.copy()
    stations: dict[int, set[int]] = {}
    covered: set[int] = set()
    lim = norm.org_limit[norm.org] if len(norm.org_limit) else np.full(norm.n_offers, -1, np.int64)

    def put(e: int, limit: int) -> None:
        i, j, u = int(norm.e_need[e]), int(norm.e_offer[e]), int(norm.usage[e])
        g, s = int(norm.org[j]), int(norm.station[i])
        if dem[i] <= 0 or (lim[j] >= 0 and s not in stations.get(g, set()) and len(stations.get(g, ())) >= lim[j]):
            return
        if norm.splittable[i]:
            x = min(dem[i], limit, dem[i] if u <= 0 else cap[j] // u)
            if x <= 0:
                return
            cap[j] -= u * x
        else:
            if dem[i] != full[i] or cap[j] < u or limit < dem[i]:
                return
            x = int(dem[i])
            cap[j] -= u
        dem[i] -= x
        units[e] += x
        if lim[j] >= 0:
            stations.setdefault(g, set()).add(s)
        covered.add(s)

    for e in np.flatnonzero(norm.fixed > 0).tolist():
        i, j = int(norm.e_need[e]), int(norm.e_offer[e])
        units[e] = norm.fixed[e]
        dem[i] -= norm.fixed[e]
        cap[j] -= norm.usage[e] * (norm.fixed[e] if norm.splittable[i] else 1)
        if lim[j] >= 0:
            stations.setdefault(int(norm.org[j]), set()).add(int(norm.station[i]))
        covered.add(int(norm.station[i]))
    split = norm.splittable[norm.e_need]
    inc, pen = norm.incumbent, norm.penalty
    if norm.has_incumbent:
        h, d = inc, norm.demand[norm.e_need]
        gain = np.where(split, norm.value + np.where(h > 0, pen, -pen), norm.value - pen * (np.abs(d - h) - h))
    else:
        gain = norm.value
    density = np.where(split, gain, gain / norm.demand[norm.e_need])
    order = sorted(range(k), key=lambda e: (-density[e], e))
    big = 1 << 62
    if norm.has_incumbent:
        for e in order:
            if inc[e] > units[e] and gain[e] > 0:
                put(e, int(inc[e] - units[e]) if split[e] else big)
    if norm.coverage_first:
        for e in order:
            if int(norm.station[norm.e_need[e]]) not in covered:
                put(e, 1 if split[e] else big)
    extra = np.where(split, norm.value - (pen if norm.has_incumbent else 0), gain)
    for e in order:
        if extra[e] > 0:
            put(e, big)
    return units
