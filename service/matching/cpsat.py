"""CP-SAT for components with unsplittable needs or side constraints, hinted and time limited."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from service.matching import gap_search
from service.matching.problem import Normalised

# A CP-SAT call with at least GAP_SEARCH_MIN_S on a generalised assignment problem (every need unsplittable, no
# fixed units, station limits or coverage, no stall window) spends GAP_PROVE_SHARE of its time on the full model
# (which may prove optimality, and gives the bound), then improves that answer with `gap_search` (neighbourhoods
# re-solved by CP-SAT) until the time limit or the bound; OR-Library gapd at 60 s: 0.92 % -> 0.58-0.66 % from the
# optimum, gapc 0.17 % -> 0.00-0.13 % (bench/RESULTS.md).  Up to GAP_MAX_CELLS needs x offers (dense matrices).
GAP_SEARCH_MIN_S = 5.0
GAP_PROVE_SHARE = 0.25
GAP_MAX_CELLS = 1_000_000
GAP_SEED = 0

# A model with a variable's domain or a row's coefficients past LARGE_UNITS (units in the tens of millions and more;
# the service's needs and offers count people and sessions, far below) is solved by CP-SAT with defences against its
# behaviour at such magnitudes (`_solver`), and by a portfolio of at least LARGE_WORKERS workers where the run
# allows more than one.  Two 8-edge components in the billions, 6 runs each: four workers with the classic
# propagator ended once unproven at 10 s ("feasible"), eight with the new propagator once in
# std::bad_alloc (3 GB limit); eight with the classic propagator proved both optima every time within 0.04 s.
LARGE_UNITS = 2**24
LARGE_WORKERS = 8
# CP-SAT's bound propagation can still crawl through such domains, growing by hundreds of MiB a second (the trail of
# bound changes): a search on a large model stops once the process has grown by LARGE_MEMORY_MIB during it.
LARGE_MEMORY_MIB = 1024
_PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20

_STATUS = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible", cp_model.INFEASIBLE: "infeasible"}


@dataclass
class CpResult:
    """CP-SAT answer for one component; `units` is None when no solution was found."""

    units: np.ndarray | None
    status: str  # "optimal" | "feasible" | "infeasible" | "unknown"
    bound: int | None
    ortools_s: float = 0.0  # wall time inside CP-SAT
    last_gain: float | None = None  # with a stall window: monotonic time the search last improved


class _Model:
    """CP-SAT model of a set of whole components."""

    def __init__(
        self,
        norm: Normalised,
        edges: np.ndarray,
        cap: np.ndarray | None = None,
        opened: dict[int, set[int]] | None = None,
    ) -> None:
        self.norm, self.edges = norm, edges
        self.cap = norm.capacity if cap is None else cap
        self.opened = opened or {}
        self.model = cp_model.CpModel()
        self.need = norm.e_need[edges]
        self.offer = norm.e_offer[edges]
        self.split = norm.splittable[self.need]
        self.x = self._edge_vars()
        self.extra: list[tuple[cp_model.IntVar, str, object]] = []
        self._need_rows()
        self._offer_rows()
        self.z = self._station_limits()
        self.w = self._coverage() if norm.coverage_first else {}
        self.large = self._large()

    def _edge_vars(self) -> list[cp_model.IntVar]:
        """Units (splittable) or a 0/1 choice (unsplittable) per edge, fixed units as lower bounds."""
        norm, m = self.norm, self.model
        dem = norm.demand[self.need]
        use = norm.usage[self.edges]
        cap = self.cap[self.offer]
        room = np.where(use > 0, cap // np.maximum(use, 1), dem)
        ub = np.where(self.split, np.minimum(dem, room), (use <= cap).astype(np.int64))
        lb = np.where(self.split, norm.fixed[self.edges], (norm.fixed[self.edges] > 0).astype(np.int64))
        ub = np.maximum(ub, lb)
        self.ub = ub.tolist()
        return [m.new_int_var(int(a), int(b), "") for a, b in zip(lb.tolist(), ub.tolist(), strict=True)]

    def _large(self) -> bool:
        """Whether a variable's domain or an offer row's coefficients reach past LARGE_UNITS."""
        if not self.edges.size:
            return False
        rows = np.bincount(self.offer, weights=self.norm.usage[self.edges].astype(np.float64))
        return max(self.ub) > LARGE_UNITS or float(rows.max()) > LARGE_UNITS

    def _groups(self, keys: np.ndarray) -> list[tuple[int, list[int]]]:
        """Edge positions grouped by key."""
        order = np.argsort(keys, kind="stable")
        uniq, start = np.unique(keys[order], return_index=True)
        bounds = [*start.tolist(), len(order)]
        return [(int(k), order[bounds[t] : bounds[t + 1]].tolist()) for t, k in enumerate(uniq.tolist())]

    def _need_rows(self) -> None:
        """Demand: units up to the demand (splittable); at most one chosen edge (unsplittable)."""
        for i, pos in self._groups(self.need):
            xs = [self.x[p] for p in pos]
            if self.norm.splittable[i]:
                self.model.add(sum(xs) <= int(self.norm.demand[i]))
            elif len(xs) > 1:
                self.model.add_at_most_one(xs)

    def _offer_rows(self) -> None:
        """Capacity: usage-weighted units within the offer's capacity."""
        use = self.norm.usage[self.edges].tolist()
        for j, pos in self._groups(self.offer):
            expr = cp_model.LinearExpr.weighted_sum([self.x[p] for p in pos], [use[p] for p in pos])
            self.model.add(expr <= int(self.cap[j]))

    def _station_limits(self) -> dict[tuple[int, int], cp_model.IntVar]:
        """Per organization with a limit: a station counts once any of its edges carries units (stations in
        `opened` are already counted)."""
        norm = self.norm
        z: dict[tuple[int, int], cp_model.IntVar] = {}
        if not len(norm.org_limit):
            return z
        org = norm.org[self.offer]
        station = norm.station[self.need]
        lim_pos = np.flatnonzero(norm.org_limit[org] >= 0)
        keys = list(zip(org[lim_pos].tolist(), station[lim_pos].tolist(), strict=True))
        opened = self.opened
        for p, key in zip(lim_pos.tolist(), keys, strict=True):
            if key[1] in opened.get(key[0], ()):
                continue
            var = z.get(key)
            if var is None:
                var = z[key] = self.model.new_bool_var("")
            if self.split[p]:
                self.model.add(self.x[p] <= self.ub[p] * var)
            else:
                self.model.add_implication(self.x[p], var)
        by_org: dict[int, list[cp_model.IntVar]] = {}
        for (g, _), var in z.items():
            by_org.setdefault(g, []).append(var)
        for g, vs in by_org.items():
            room = int(norm.org_limit[g]) - len(opened.get(g, ()))
            if room < len(vs):
                self.model.add(sum(vs) <= room)
        return z

    def _coverage(self) -> dict[int, cp_model.IntVar]:
        """A station is covered only if one of its edges carries at least one unit."""
        w: dict[int, cp_model.IntVar] = {}
        for s, pos in self._groups(self.norm.station[self.need]):
            w[s] = self.model.new_bool_var("")
            self.model.add(w[s] <= sum(self.x[p] for p in pos))
        return w

    def value_expr(self) -> cp_model.LinearExprT:
        """Objective: values minus change penalties (exact at every optimum; a valid relaxation elsewhere)."""
        norm = self.norm
        val = norm.value[self.edges].tolist()
        terms = cp_model.LinearExpr.weighted_sum(self.x, val)
        if not norm.has_incumbent or norm.penalty == 0:
            return terms
        p = norm.penalty
        h = norm.incumbent[self.edges].tolist()
        dem = norm.demand[self.need].tolist()
        pen_vars, pen_coefs, const = [], [], 0
        for k, var in enumerate(self.x):
            if not self.split[k]:
                const -= p * h[k]
                pen_vars.append(var)
                pen_coefs.append(p * h[k] - p * abs(dem[k] - h[k]))
                continue
            if h[k] == 0:
                pen_vars.append(var)
                pen_coefs.append(-p)
                continue
            # |x - h| = (h - x) + 2 max(0, x - h): one excess variable above the incumbent instead of two rows
            # bounding |x - h| from both sides, whose pair (x + t >= h) sent CP-SAT's bound propagation crawling
            # through domains in the billions (a 10-variable model grew to 2.7 GB in 20 s, past its time limit).
            const -= p * h[k]
            pen_vars.append(var)
            pen_coefs.append(p)
            if self.ub[k] > h[k]:
                t = self.model.new_int_var(0, self.ub[k] - h[k], "")
                self.model.add(t >= var - h[k])
                self.extra.append((t, "excess", (k, h[k])))
                pen_vars.append(t)
                pen_coefs.append(-2 * p)
        return terms + cp_model.LinearExpr.weighted_sum(pen_vars, pen_coefs) + const

    def hint(self, units: np.ndarray) -> None:
        """Hint every variable from a full solution."""
        m = self.model
        m.clear_hints()
        val = np.where(self.split, units, units > 0).astype(np.int64).tolist()
        for var, v in zip(self.x, val, strict=True):
            m.add_hint(var, v)
        for t, _, (k, h) in self.extra:
            m.add_hint(t, max(val[k] - h, 0))
        station = self.norm.station[self.need]
        org = self.norm.org[self.offer]
        used = {(int(org[p]), int(station[p])) for p in np.flatnonzero(units > 0).tolist()}
        for key, var in self.z.items():
            m.add_hint(var, key in used)
        covered = {int(station[p]) for p in np.flatnonzero(units > 0).tolist()}
        for s, var in self.w.items():
            m.add_hint(var, s in covered)

    def units(self, solver: cp_model.CpSolver) -> np.ndarray:
        """Units per edge from the solver's best solution."""
        vals = np.asarray(solver.values(self.x), dtype=np.int64) if self.x else np.zeros(0, np.int64)
        return np.where(self.split, vals, vals * self.norm.demand[self.need])


def _hint_objective(norm: Normalised, edges: np.ndarray, units: np.ndarray) -> int:
    """Objective of a full hint on `edges` (as the model's objective counts it)."""
    split = norm.splittable[norm.e_need[edges]]
    val = np.where(split, norm.value[edges] * units, np.where(units > 0, norm.value[edges], 0))
    if norm.has_incumbent:
        val = val - norm.penalty * np.abs(units - norm.incumbent[edges])
    return int(val.sum())


def _solver(time_limit_s: float, workers: int, large: bool = False) -> cp_model.CpSolver:
    """A CP-SAT solver with the run's limits.

    On `large` models (LARGE_UNITS) two parts of OR-Tools 9.15 misbehave, so they are switched off:
    - the new linear propagation can crawl through a domain in the billions within one propagation call, which
      checks neither the time limit nor a stop request: a 10-variable model ran 20 s and grew past 2.7 GB (most
      likely what grew a test process to 23.7 GB, OOM-killed); the classic propagator checks both (`_run`'s memory
      watch stops it);
    - the presolve's inclusion step sums int64 coefficients of Boolean terms in an `int`, which can drop an
      enforcement literal and certify a wrong optimum (google/or-tools#5293, fixed by #5294 after the release)."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(time_limit_s, 0.01)
    solver.parameters.num_workers = workers
    if large:
        solver.parameters.new_linear_propagation = False
        solver.parameters.presolve_inclusion_work_limit = 0
        if workers > 1:
            solver.parameters.num_workers = max(workers, LARGE_WORKERS)
    return solver


class _Stall(cp_model.CpSolverSolutionCallback):
    """Remembers when the search last improved on the best objective so far (`baseline`, the hint's, at first)."""

    def __init__(self, baseline: float, since: float) -> None:
        super().__init__()
        self.best = baseline
        self.last = since

    def on_solution_callback(self) -> None:
        """Record an improving solution."""
        value = self.objective_value
        if value > self.best + 0.5:
            self.best = value
            self.last = time.monotonic()


def _rss_mib() -> float | None:
    """Resident memory of this process in MiB (None where /proc is not available)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_MIB
    except (OSError, ValueError, IndexError):
        return None


def _run(
    solver: cp_model.CpSolver,
    model: cp_model.CpModel,
    baseline: float,
    stall: tuple[float, float] | None,
    memory_mib: float | None = None,
) -> tuple[int, float | None]:
    """Solve; with `stall` = (window s, monotonic time of the last improvement so far), stop once the search has not
    improved on `baseline` (or its own best) within the window; with `memory_mib`, stop once the process has grown
    by that much during the solve. Returns the status and the last improvement time."""
    watch: _Stall | None = None
    stops: list[Callable[[], bool]] = []
    if stall is not None:
        window, since = stall
        watch = stalled = _Stall(baseline, since)
        stops.append(lambda: time.monotonic() - stalled.last > window)
    start_mib = _rss_mib() if memory_mib is not None else None
    if start_mib is not None and memory_mib is not None:
        ceiling = start_mib + memory_mib
        stops.append(lambda: (_rss_mib() or 0.0) > ceiling)
    if not stops:
        return solver.solve(model), None
    done = threading.Event()

    def watcher() -> None:
        while not done.wait(0.02):
            if any(stop() for stop in stops):
                solver.stop_search()
                return

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    try:
        if watch is None:
            return solver.solve(model), None
        return solver.solve(model, watch), watch.last
    finally:
        done.set()
        thread.join()


def _bound(solver: cp_model.CpSolver, status: int) -> int | None:
    """Integer upper bound proven by the solver, if any."""
    if status == cp_model.OPTIMAL:
        return round(solver.objective_value)
    if status != cp_model.FEASIBLE:
        return None  # without a solution the reported bound is not meaningful (it reads 0)
    b = solver.best_objective_bound
    return math.floor(b + 1e-6) if math.isfinite(b) and abs(b) < 2**62 else None


@dataclass
class _GapPlan:
    """A component as a dense GAP: needs are jobs, offers agents; `pos` maps (offer row, need column) to the edge
    position in `edges` (-1: no edge)."""

    gap: gap_search.Gap
    pos: np.ndarray
    row: np.ndarray  # per edge position: its offer row and need column
    col: np.ndarray
    const: int  # objective = const - cost of the assignment


def _gap_plan(norm: Normalised, edges: np.ndarray, cap: np.ndarray | None) -> _GapPlan | None:
    """The edges as a GAP for `gap_search`, or None if they have anything a GAP cannot express."""
    need, offer = norm.e_need[edges], norm.e_offer[edges]
    if norm.coverage_first or norm.splittable[need].any() or norm.fixed[edges].any() or len(edges) < 2:
        return None
    if len(norm.org_limit) and (norm.org_limit[norm.org[offer]] >= 0).any():
        return None
    needs, col = np.unique(need, return_inverse=True)
    offers, row = np.unique(offer, return_inverse=True)
    m, n = len(offers), len(needs)
    if m < 2 or m * n > GAP_MAX_CELLS:
        return None
    pos = np.full((m, n), -1, np.int64)
    pos[row, col] = np.arange(len(edges))
    if int(np.count_nonzero(pos >= 0)) < len(edges):
        return None  # several edges between one need and one offer
    value = norm.value[edges]
    const = 0
    if norm.has_incumbent and norm.penalty:  # as `_Model.value_expr` counts it: linear in the choice
        h, p = norm.incumbent[edges], norm.penalty
        value = value + p * h - p * np.abs(norm.demand[need] - h)
        const = -p * int(h.sum())
    cost = np.zeros((m, n), np.int64)
    weight = np.zeros((m, n), np.int64)
    cost[row, col] = -value
    weight[row, col] = norm.usage[edges]
    capacity = (norm.capacity if cap is None else cap)[offers].astype(np.int64)
    optional = np.ones(n, bool)  # a need may stay unserved
    return _GapPlan(gap_search.Gap(cost, weight, pos >= 0, capacity, optional), pos, row, col, const)


def _gap_start(plan: _GapPlan, units: np.ndarray) -> np.ndarray:
    """The units of a solution over the plan's edges as a GAP assignment (agent m: unassigned)."""
    chosen = np.flatnonzero(units > 0)
    start = np.full(plan.gap.n, plan.gap.m, np.int64)
    start[plan.col[chosen]] = plan.row[chosen]
    return start


def _gap_feasible(plan: _GapPlan, norm: Normalised, edges: np.ndarray, units: np.ndarray) -> bool:
    """Whether `units` are a solution the plan can express: each need served whole by one offer, capacities kept."""
    chosen = np.flatnonzero(units > 0)
    whole = bool((units[chosen] == norm.demand[norm.e_need[edges[chosen]]]).all())
    once = len(np.unique(plan.col[chosen])) == len(chosen)
    return whole and once and plan.gap.feasible(_gap_start(plan, units))


def _gap_improve(
    plan: _GapPlan, norm: Normalised, edges: np.ndarray, units: np.ndarray, bound: int | None, seconds: float, **kw: int
) -> np.ndarray:
    """`gap_search` from the units of a solution for `seconds` (or until it reaches `bound`); units of an answer at
    least as good."""
    gap, start = plan.gap, _gap_start(plan, units)
    target = None if bound is None else plan.const - bound
    agent, _ = gap_search.search(gap, start, time.perf_counter() + seconds, seed=GAP_SEED, target=target, **kw)
    out = np.zeros(len(edges), np.int64)
    served = np.flatnonzero(agent < gap.m)
    e = plan.pos[agent[served], served]
    out[e] = norm.demand[norm.e_need[edges[e]]]
    return out


def solve_cpsat(
    norm: Normalised,
    edges: np.ndarray,
    hint: np.ndarray,
    time_limit_s: float,
    workers: int = 1,
    *,
    cap: np.ndarray | None = None,
    opened: dict[int, set[int]] | None = None,
    stall: tuple[float, float] | None = None,
) -> CpResult:
    """Maximise the objective over `edges` (every edge of their needs); coverage-first runs solve two phases.

    `cap` overrides offer capacities (residual capacity) and `opened` lists the stations each organization already
    serves outside `edges` (they do not count again towards its limit). `stall` = (window
    s, monotonic time of the caller's last improvement): stop the (second-phase) search once it has not improved on
    the hint within the window; `CpResult.last_gain` is the time of the last improvement."""
    mdl = _Model(norm, edges, cap, opened)
    mdl.hint(hint)
    if norm.coverage_first and mdl.w:
        phase1 = _solver(time_limit_s / 2, workers, mdl.large)
        mdl.model.maximize(sum(mdl.w.values()))
        status, _ = _run(phase1, mdl.model, 0.0, None, LARGE_MEMORY_MIB if mdl.large else None)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return CpResult(None, _STATUS.get(status, "unknown"), None)
        covered = round(phase1.objective_value)
        mdl.hint(mdl.units(phase1))
        mdl.model.add(sum(mdl.w.values()) >= covered)
        time_limit_s -= phase1.wall_time
        proven = status == cp_model.OPTIMAL
        spent = phase1.wall_time
    else:
        proven, spent = True, 0.0
    plan = None
    if stall is None and time_limit_s >= GAP_SEARCH_MIN_S:
        plan = _gap_plan(norm, edges, cap)
    t0 = time.perf_counter()
    solver = _solver(time_limit_s * GAP_PROVE_SHARE if plan is not None else time_limit_s, workers, mdl.large)
    mdl.model.maximize(mdl.value_expr())
    baseline = float(_hint_objective(norm, edges, hint)) if stall is not None else 0.0
    status, last = _run(solver, mdl.model, baseline, stall, LARGE_MEMORY_MIB if mdl.large else None)
    spent += solver.wall_time
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        name = "optimal" if status == cp_model.OPTIMAL and proven else "feasible"
        units, bound = mdl.units(solver), _bound(solver, status)
    elif status == cp_model.UNKNOWN and plan is not None and _gap_feasible(plan, norm, edges, hint):
        # The full model found nothing in its share (a large component): the search still improves the hint.
        name, units, bound = "feasible", hint, None
    else:
        return CpResult(None, _STATUS.get(status, "unknown"), _bound(solver, status), spent, last)
    if plan is not None and name != "optimal":
        t1 = time.perf_counter()
        found = _gap_improve(plan, norm, edges, units, bound, time_limit_s - (t1 - t0), workers=workers)
        spent += time.perf_counter() - t1
        if _hint_objective(norm, edges, found) > _hint_objective(norm, edges, units):
            units = found
        if bound is not None and _hint_objective(norm, edges, units) >= bound:
            name = "optimal"
    return CpResult(units, name, bound, spent, last)
