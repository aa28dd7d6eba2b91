"""Solve a `Problem`: split into components, min-cost flow where exact, CP-SAT elsewhere, reuse untouched parts."""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from service.matching import components as cc
from service.matching.candidates import member, sorted_unique
from service.matching.cpsat import CpResult, solve_cpsat
from service.matching.flow import FlowResult, solve_flow
from service.matching.greedy import fill, greedy, stations_served
from service.matching.problem import Normalised, Problem, normalise, station_codes

# Small components are packed into flow graphs of about this many edges (amortises the per-graph overhead); OR-Tools'
# min-cost flow is superlinear, so one graph per component of a province (8k edges) is twice as fast as one graph.
# 1,000 rather than 4,000 since 20:35: the pieces of a local re-solve and the dive's batches are small, and smaller
# graphs were faster still (province re-solve 72-73 -> 66-68 ms median of 15, national 2.55-2.75 -> 2.30-2.57 s,
# cold no slower; objective -0.00002 % cold, -0.0002 % re-solve from other ties; /tmp/s12/batch_probe.py, batch_nat.py).
FLOW_BATCH_EDGES = 1_000
# Flow-first runs may cut components above `part_edges` active edges into parts (METIS), solved as separate graphs.
# Off by default: on the national benchmark (one component of 1.7 M edges, offers by distance link neighbouring
# counties) 16k-edge parts halve the solve time but lose 0.26 % of the objective and loosen the bound from 6 % to
# 18 % (shared offers count in full in every part); see bench/RESULTS.md.
PART_EDGES: int | None = None
_CP_WORKERS_MIN_EDGES = 400
# CP-SAT on a smaller model still runs a portfolio of four workers (unless the caller allows one): a single worker,
# or two, can crawl one unit at a time through domains in the billions (units up to 2**40 are allowed), where the
# portfolio's core and LNS workers reach the optimum at once (5 s unproven -> 0.02 s optimal on the test's example).
_CP_SMALL_WORKERS = 4
# Flow first: the dive's answer is in hand before CP-SAT starts, so the CP-SAT phase (all its calls together) stops
# once it has not improved on that answer for a while (a fraction of the time limit, at least STALL_MIN_S) instead
# of running to the limit; it is skipped when that window is too short for its neighbourhood (CP_LOAD_S_PER_EDGE).
STALL_MIN_S = 0.3
STALL_FRACTION = 0.03
# CP-SAT needs about this long per edge to build a neighbourhood model and get back to its hint (province: 13 us to
# build, 30-35 us to the first solution).  The flow-first CP-SAT phase runs only when the whole neighbourhood can be
# reloaded within the stall window; otherwise the window would end before CP-SAT had seen most of it (province at a
# 10 s limit: 32k edges, 1.5 s to reload against a 0.3 s window; it found +0.001 % in a 1 s window).  A caller who
# wants that search raises `time_limit_s` (the window is a fraction of it).
CP_LOAD_S_PER_EDGE = 45e-6
# Local re-solve (flow-first runs with a previous solution, of this process or restored from `component_state`): only
# the needs that changed since `previous`, plus the needs holding units on offers they can reach (LOCAL_HOPS rounds of
# that), are solved again; every other edge keeps its incumbent units.  Used when the touched components hold at least
# LOCAL_MIN_EDGES active edges (smaller ones are solved whole, CP-SAT included), the freed edges are at most
# LOCAL_MAX_SHARE of them and the previous answer's gap is at most LOCAL_MAX_GAP (the carried-over bound loosens with
# every local re-solve; a full re-solve tightens it again).  LOCAL_MAX_SHARE = 0 turns it off.
LOCAL_MIN_EDGES = 5_000
LOCAL_MAX_SHARE = 0.3
LOCAL_MAX_GAP = 0.05
LOCAL_HOPS = 1
# `solve(..., processes=N)` splits the work over N processes only from this many active edges.  Measured on sets of
# national's components, warm pool, 2 cores: 1.8x faster from 100k edges up (1.6x at 55k); at 26k one bin ran a CP-SAT
# phase the whole run skips (its neighbourhood fits the stall window: 2.5 s instead of 0.06 s); see bench/RESULTS.md.
PARALLEL_MIN_EDGES = 100_000


@dataclass
class ComponentTable:
    """Per-component bookkeeping, kept so a later re-solve can reuse untouched components."""

    comps: cc.Components | None  # None when restored from `component_state` (only the rows below are kept)
    fingerprint: np.ndarray  # (count, 2) uint64
    units_hash: np.ndarray  # uint64 hash of the solution's units per component
    method: np.ndarray  # "flow" | "cpsat" | "greedy" | "reused" | "empty"
    status: np.ndarray  # "optimal" | "feasible"
    objective: np.ndarray
    bound: np.ndarray
    penalty_paid: np.ndarray  # change penalty paid by the solution (needed to carry bounds over)


@dataclass
class Solution:
    """Result of `solve`: status, exact objective, proven bound and units per edge."""

    status: str
    objective: int
    bound: int
    edge_units: np.ndarray
    table: ComponentTable | None = None
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    items: cc.ItemHashes | None = None  # per need and offer hashes, for a later local re-solve
    edge_hashes: cc.EdgeHashes | None = None  # what a later re-solve on the same components need not rehash


def component_state(solution: Solution) -> dict[str, Any] | None:
    """What a later re-solve needs, as JSON-ready data (a service stores it with the run, so a re-solve in another
    process can reuse untouched components and re-solve large touched ones locally): the per-component rows, the
    whole answer's status, objective and bound, and the per-need and per-offer hashes (`ItemHashes`, base64), with the
    version of those hashes."""
    t = solution.table
    if t is None:
        return None
    rows = np.flatnonzero(t.method != "empty")
    state: dict[str, Any] = {
        "hashes": cc.HASH_VERSION,
        "fingerprint": [f"{int(a):016x}{int(b):016x}" for a, b in t.fingerprint[rows].tolist()],
        "units_hash": [f"{int(h):016x}" for h in t.units_hash[rows].tolist()],
        "status": t.status[rows].astype(str).tolist(),
        "bound": t.bound[rows].tolist(),
        "penalty_paid": t.penalty_paid[rows].tolist(),
        "answer": {"status": solution.status, "objective": int(solution.objective), "bound": int(solution.bound)},
    }
    if solution.items is not None:
        state["items"] = _items_state(solution.items)
    return state


_ITEM_ARRAYS = ("need_key", "need_hash", "offer_key", "offer_hash")
_ANSWER_ARRAYS = ("need_units", "need_served")  # optional: states stored before 2026-11-28 18:00 lack them


def _items_state(items: cc.ItemHashes) -> dict[str, Any]:
    """`ItemHashes` as base64 of little-endian 64-bit words (5 k needs: about 0.2 MB)."""
    out: dict[str, Any] = {
        k: base64.b64encode(np.ascontiguousarray(getattr(items, k), "<u8").tobytes()).decode() for k in _ITEM_ARRAYS
    }
    out["need_fixed"] = base64.b64encode(np.packbits(items.need_fixed).tobytes()).decode()
    if items.need_units is not None and items.need_served is not None:
        for k in _ANSWER_ARRAYS:
            out[k] = base64.b64encode(np.ascontiguousarray(getattr(items, k), "<u8").tobytes()).decode()
    return out


def _items_from_state(state: dict[str, Any]) -> cc.ItemHashes:
    """Inverse of `_items_state`; ValueError when malformed."""
    try:
        kept = _ITEM_ARRAYS + tuple(k for k in _ANSWER_ARRAYS if k in state)
        arrays = {k: np.frombuffer(base64.b64decode(state[k], validate=True), "<u8") for k in kept}
        packed = np.frombuffer(base64.b64decode(state["need_fixed"], validate=True), np.uint8)
    except (binascii.Error, KeyError, TypeError, ValueError) as exc:
        raise ValueError("malformed item hashes in the component state") from exc
    n, m = len(arrays["need_key"]), len(arrays["offer_key"])
    if (
        len(arrays["need_hash"]) != n
        or len(arrays["offer_hash"]) != m
        or len(packed) != (n + 7) // 8
        or any(len(arrays.get(k, ())) != n for k in _ANSWER_ARRAYS if k in kept)
        or (len(kept) - len(_ITEM_ARRAYS)) not in (0, len(_ANSWER_ARRAYS))
    ):
        raise ValueError("malformed item hashes in the component state")
    keys = {k: arrays[k].view(np.int64) for k in ("need_key", "offer_key")}
    if np.any(np.diff(keys["need_key"]) < 0) or np.any(np.diff(keys["offer_key"]) < 0):
        raise ValueError("unsorted item keys in the component state")
    fixed = np.unpackbits(packed, count=n).astype(bool)
    answer = {k: arrays[k] for k in _ANSWER_ARRAYS if k in arrays}
    if "need_served" in answer:
        answer["need_served"] = answer["need_served"].view(np.int64)
    return cc.ItemHashes(
        keys["need_key"], arrays["need_hash"], fixed, keys["offer_key"], arrays["offer_hash"], **answer
    )


def solution_from_state(state: dict[str, Any]) -> Solution:
    """A `previous` for `solve` rebuilt from `component_state`: untouched components are reused; with the answer and
    item hashes (states stored since 2026-11-28) large touched components can be re-solved locally too.  ValueError
    if the state is malformed (whatever its shape: it comes from storage)."""
    try:
        return _solution_from_state(state)
    except (AttributeError, KeyError, TypeError, OverflowError) as exc:
        raise ValueError(f"malformed component state: {exc!r}") from exc


def _solution_from_state(state: dict[str, Any]) -> Solution:
    if state.get("hashes") != cc.HASH_VERSION:  # hashed differently (stored by an earlier release): nothing compares
        return Solution("feasible", 0, 0, np.zeros(0, np.int64), None)
    keys = ("fingerprint", "units_hash", "status", "bound", "penalty_paid")
    if (
        len({len(state[k]) for k in keys}) != 1
        or any(len(h) != 32 for h in state["fingerprint"])
        or any(len(h) != 16 for h in state["units_hash"])
    ):
        raise ValueError("malformed component state")
    fp = np.array([[int(h[:16], 16), int(h[16:], 16)] for h in state["fingerprint"]], np.uint64).reshape(-1, 2)
    n = len(fp)
    table = ComponentTable(
        None,
        fp,
        np.array([int(h, 16) for h in state["units_hash"]], np.uint64),
        np.full(n, "restored", dtype=object),
        np.array(state["status"], dtype=object),
        np.zeros(n, np.int64),
        np.array(state["bound"], np.int64),
        np.array(state["penalty_paid"], np.int64),
    )
    answer, items = state.get("answer"), state.get("items")
    if answer is None or items is None:  # an older state: reuse only (no local re-solve without the answer)
        return Solution("feasible", 0, 0, np.zeros(0, np.int64), table)
    if (
        not isinstance(answer, dict)
        or not isinstance(items, dict)
        or answer.get("status") not in ("optimal", "feasible")
        or not all(type(answer.get(k)) is int for k in ("objective", "bound"))
    ):
        raise ValueError("malformed answer in the component state")
    solution = Solution(answer["status"], answer["objective"], answer["bound"], np.zeros(0, np.int64), table)
    solution.items = _items_from_state(items)
    return solution


def edge_objective(norm: Normalised, units: np.ndarray) -> np.ndarray:
    """Exact objective contribution of every edge at `units`."""
    val = np.where(norm.edge_split, norm.value * units, np.where(units > 0, norm.value, 0))
    if norm.has_incumbent:
        val = val - norm.penalty * np.abs(units - norm.incumbent)
    return val


def objective_of(problem: Problem | Normalised, units: np.ndarray) -> int:
    """Objective of a full edge-units vector (no feasibility check)."""
    norm = problem if isinstance(problem, Normalised) else normalise(problem)
    return int(edge_objective(norm, np.asarray(units, np.int64)).sum())


def fixed_feasible(norm: Normalised) -> bool:
    """Whether the fixed units fit demands, capacities, unsplittable rules and station limits."""
    f = norm.fixed
    if not f.any():
        return True
    per_need = np.bincount(norm.e_need, weights=f, minlength=norm.n_needs)
    if np.any(per_need > norm.demand):
        return False
    split = norm.edge_split
    whole = norm.demand[norm.e_need]
    if np.any(~split & (f > 0) & (f != whole)):
        return False
    if np.any(offer_use(norm, np.arange(norm.n_edges), f) > norm.capacity):
        return False
    return _limits_ok(norm, np.flatnonzero(f > 0))


def _limits_ok(norm: Normalised, used_edges: np.ndarray) -> bool:
    """Whether the stations reached by `used_edges` respect every organization's limit."""
    return not _orgs_over_limit(norm, used_edges).size


def _orgs_over_limit(norm: Normalised, used_edges: np.ndarray) -> np.ndarray:
    """Organizations whose distinct stations among `used_edges` exceed their limit."""
    if not len(norm.org_limit) or used_edges.size == 0:
        return np.zeros(0, np.int64)
    org = norm.org[norm.e_offer[used_edges]]
    lim = norm.org_limit[org] >= 0
    station, n_st, _ = station_codes(norm)
    pairs = np.unique(org[lim] * n_st + station[norm.e_need[used_edges[lim]]])  # (org, station) codes
    counts = np.bincount(pairs // n_st, minlength=len(norm.org_limit))
    return np.flatnonzero((norm.org_limit >= 0) & (counts > norm.org_limit))


class _Run:
    """State of one solve call."""

    def __init__(
        self,
        norm: Normalised,
        time_limit_s: float,
        workers: int,
        gap_tolerance: float = 0.0,
        linked: bool = True,
        part_edges: int | None = PART_EDGES,
        comps: cc.Components | None = None,
    ) -> None:
        self.norm, self.workers, self.gap_tolerance, self.linked = norm, workers, gap_tolerance, linked
        self.deadline = time.perf_counter() + time_limit_s
        self.stall_s = max(STALL_MIN_S, STALL_FRACTION * time_limit_s)
        self.last_gain = time.monotonic()  # last CP-SAT improvement (flow first); reset when the phase starts
        self.comps = comps or cc.label(norm, link_limits=linked)
        self.parts = cc.partition(norm, self.comps, None if linked else part_edges)
        # Never pack the parts of a cut component back into one graph.
        self.batch_edges = min(FLOW_BATCH_EDGES, part_edges or FLOW_BATCH_EDGES)
        c = self.comps.count
        self.units = np.zeros(norm.n_edges, np.int64)
        self.relaxed = np.full(norm.n_edges, -1, np.int64)  # flow relaxation units, for repair
        self.method = np.full(c, "empty", dtype=object)
        self.status = np.full(c, "optimal", dtype=object)
        self.relax_bound = self._trivial_bound()
        self.cp_bound = self.relax_bound.copy()
        self.timings: dict[str, float] = {"ortools_flow": 0.0, "ortools_cpsat": 0.0, "greedy": 0.0}
        self.dive_objective: int | None = None  # objective right after the dive (before any CP-SAT)
        self.group_bounds: list[tuple[np.ndarray, int]] = []  # CP-SAT bounds of groups of components
        self.search_skipped = 0  # neighbourhood edges left without a CP-SAT phase (too large for the window)
        self.local_stats: dict[str, int] = {}  # what a local re-solve freed
        # Components whose relaxed bound is not exact (values rounded to the scale, or no flow at all): `repair`
        # has CP-SAT prove them even where the relaxed answer breaks nothing.
        self.unproven = np.zeros(c, bool)

    def _trivial_bound(self) -> np.ndarray:
        """Per component: every positive value served in full (penalties only lower the objective).  Summed over all
        edges in edge order: an inactive edge has no positive value, so it adds nothing."""
        norm, comps = self.norm, self.comps
        most = np.where(norm.splittable[norm.e_need], norm.demand[norm.e_need], 1)
        return _sum_per(comps.need_comp[norm.e_need], np.maximum(norm.value, 0) * most, comps.count)

    def comp_sizes(self) -> np.ndarray:
        """Active edges per component."""
        return np.diff(self.comps.edge_start)

    def needs_cpsat(self) -> np.ndarray:
        """Components the flow relaxation cannot even model (usage not one per unit, coverage-first)."""
        norm, comps = self.norm, self.comps
        e = comps.edge_order
        split = norm.splittable[norm.e_need[e]]
        odd = np.where(split, norm.usage[e] != 1, norm.usage[e] != norm.demand[norm.e_need[e]])
        flag = np.zeros(comps.count, bool)
        flag[comps.need_comp[norm.e_need[e[odd]]]] = True
        return flag

    def batches(self, comp_ids: np.ndarray, sizes: np.ndarray | None = None) -> list[np.ndarray]:
        """Group components (or parts, with their `sizes`) into flow batches of about FLOW_BATCH_EDGES edges."""
        sizes = self.comp_sizes()[comp_ids] if sizes is None else sizes
        cuts = np.searchsorted(np.cumsum(sizes), np.arange(self.batch_edges, sizes.sum() + 1, self.batch_edges))
        return [b for b in np.split(comp_ids, np.unique(cuts + 1)) if b.size]

    def parts_of(self, comp_ids: np.ndarray) -> np.ndarray:
        """Non-empty parts of some components."""
        mask = np.zeros(self.comps.count, bool)
        mask[comp_ids] = True
        return np.flatnonzero(mask[self.parts.comp_of_part] & (self.parts.sizes() > 0))

    def relax_parts(self, comp_ids: np.ndarray) -> None:
        """Flow first: the flow relaxation part by part (shared offers at full capacity in each part, so the sum is
        still an upper bound); the relaxed units stand as the answer until `repair`."""
        acc = np.zeros(self.comps.count, np.int64)
        failed = np.zeros(self.comps.count, bool)
        ids = self.parts_of(comp_ids)
        for batch in self.batches(ids, self.parts.sizes()[ids]):
            if self._relax(batch, acc):
                continue
            # A batch OR-Tools rejects is retried part by part (smaller lcm scales).
            for p in batch.tolist():
                if batch.size == 1 or not self._relax(np.array([p]), acc):
                    failed[self.parts.comp_of_part[p]] = True
        ok = comp_ids[~failed[comp_ids]]
        self.relax_bound[ok] = acc[ok]
        if failed.any():  # values too large for OR-Tools on these graphs: the greedy's answer, for CP-SAT to prove
            bad = np.flatnonzero(failed)
            edges = self.sorted_edges_of(bad)
            self.units[edges] = greedy(self.norm, edges, opened=self.opened_outside(edges))
            self.method[bad], self.status[bad] = "greedy", "feasible"
            self.unproven[bad] = True

    def _relax(self, part_ids: np.ndarray, acc: np.ndarray) -> bool:
        """Relaxed flow of some parts; adds each component's floored gain to `acc` (each part's objective is
        integral, so the floors add up to a bound)."""
        norm, comps = self.norm, self.comps
        edges = np.concatenate([self.parts.edges_of(p) for p in part_ids.tolist()])
        res = solve_flow(norm, edges)
        if res is None:
            return False
        self.timings["ortools_flow"] += res.ortools_s
        # `edges` lists the parts one after another: per-part sums and each edge's component need no gather (every
        # part here has edges: `parts_of` drops empty ones, and `reduceat` would misread an empty one).
        sizes = self.parts.sizes()[part_ids]
        comp = self.parts.comp_of_part[part_ids]
        gain = np.zeros(comps.count, np.int64)
        np.add.at(gain, comp, np.add.reduceat(res.scaled_gain, np.cumsum(sizes) - sizes))
        acc += np.floor_divide(gain, res.scale)
        need = norm.e_need[edges]
        whole = norm.demand[need]
        rounded = ~norm.splittable[need] & ((norm.value[edges] * res.scale) % whole != 0)
        inexact = rounded | (~norm.splittable[need] & (res.units > 0) & (res.units != whole))
        edge_comp = np.repeat(comp, sizes)
        self.status[edge_comp[inexact]] = "feasible"
        self.unproven[edge_comp[rounded]] = True
        self.units[edges] = res.units
        self.relaxed[edges] = res.units
        self.method[comp] = "flow"
        return True

    def edges_of(self, comp_ids: np.ndarray) -> np.ndarray:
        """Active edges of several components."""
        s = self.comps.edge_start
        return np.concatenate([self.comps.edge_order[s[c] : s[c + 1]] for c in comp_ids.tolist()] or [np.zeros(0, int)])

    def sorted_edges_of(self, comp_ids: np.ndarray) -> np.ndarray:
        """Active edges of several components (ids or a mask), in edge order: the repair's and the re-solve's passes
        over them gather every edge column, which runs several times faster on ascending indices than on
        `edges_of`'s component order (national: 4 ms against 30 ms per column of 1.7 M edges)."""
        mask = np.zeros(self.comps.count, bool)
        mask[comp_ids] = True
        return np.flatnonzero(self.comps.active & mask[self.comps.need_comp[self.norm.e_need]])

    def run_flow(self, comp_ids: np.ndarray) -> np.ndarray:
        """Solve components by flow; return those whose relaxed optimum is not a valid answer."""
        if not self.linked:
            self.relax_parts(comp_ids)
            return np.zeros(0, np.int64)
        failed: list[np.ndarray] = []
        for batch in self.batches(comp_ids):
            edges = self.edges_of(batch)
            res = solve_flow(self.norm, edges)
            if res is None:
                failed.append(self._flow_one_by_one(batch))
                continue
            failed.append(self._accept_flow(batch, edges, res))
        return np.concatenate(failed) if failed else np.zeros(0, np.int64)

    def _flow_one_by_one(self, batch: np.ndarray) -> np.ndarray:
        """Retry a batch per component (smaller lcm scales); return the components that still fail."""
        bad = []
        for c in batch.tolist():
            edges = self.comps.edges_of(c)
            res = solve_flow(self.norm, edges)
            if res is None:
                bad.append(c)
            else:
                bad.extend(self._accept_flow(np.array([c]), edges, res).tolist())
        return np.asarray(bad, np.int64)

    def _accept_flow(self, batch: np.ndarray, edges: np.ndarray, res: FlowResult) -> np.ndarray:
        """Keep flow answers that are integral and within side constraints; return the other components."""
        norm, comps = self.norm, self.comps
        edge_comp = comps.need_comp[norm.e_need[edges]]
        self.timings["ortools_flow"] += res.ortools_s
        gain = np.zeros(comps.count, np.int64)
        np.add.at(gain, edge_comp, res.scaled_gain)
        self.relax_bound[batch] = np.floor_divide(gain[batch], res.scale)
        split = norm.splittable[norm.e_need[edges]]
        whole = norm.demand[norm.e_need[edges]]
        bad = np.zeros(comps.count, bool)
        bad[edge_comp[~split & (res.units > 0) & (res.units != whole)]] = True
        rounded = ~split & ((norm.value[edges] * res.scale) % whole != 0)
        bad[edge_comp[rounded]] = True  # rounded values: a bound, not an answer
        self.relaxed[edges] = res.units
        used = edges[res.units > 0]
        over = _orgs_over_limit(norm, used)
        if over.size:
            offers = np.flatnonzero(np.isin(norm.org, over))
            bad[comps.offer_comp[offers]] = True
        good_edge = ~bad[edge_comp]
        self.units[edges[good_edge]] = res.units[good_edge]
        ok = batch[~bad[batch]]
        self.method[ok] = "flow"
        return batch[bad[batch]]

    def run_cpsat(self, comp_ids: np.ndarray) -> None:
        """Solve the remaining components with CP-SAT, sharing the time left, never below greedy."""
        sizes = self.comp_sizes()
        order = comp_ids[np.argsort(sizes[comp_ids], kind="stable")]
        left = float(sizes[order].sum())
        for c in order.tolist():
            edges = self.comps.edges_of(c)
            budget = max(0.05, (self.deadline - time.perf_counter()) * sizes[c] / max(left, 1.0))
            left -= sizes[c]
            self._cp_component(c, edges, budget)

    def _cp_component(self, c: int, edges: np.ndarray, budget: float) -> None:
        """One CP-SAT component with the greedy answer as hint and fallback."""
        norm = self.norm
        t0 = time.perf_counter()
        base = greedy(norm, edges)
        if self.relaxed[edges[0]] >= 0:
            rounded = greedy(norm, edges, start=_repair(norm, edges, self.relaxed[edges]))
            if self._better(edges, rounded, base):
                base = rounded
        self.timings["greedy"] += time.perf_counter() - t0
        bound = min(self.relax_bound[c], self.cp_bound[c])
        gap = bound - objective_on(norm, edges, base).sum()
        if gap <= self.gap_tolerance * max(abs(bound), 1) and not norm.coverage_first:
            self.units[edges] = base
            self.method[c], self.status[c] = "rounded", "optimal" if gap <= 0 else "feasible"
            return
        res = solve_cpsat(norm, edges, base, budget, self.cp_workers(len(edges)))
        self.timings["ortools_cpsat"] += res.ortools_s
        if res.bound is not None:
            self.cp_bound[c] = res.bound
        best, method, status = base, "greedy", "feasible"
        if res.units is not None and self._better(edges, res.units, base):
            best, method, status = res.units, "cpsat", res.status
        self.units[edges] = best
        self.method[c] = method
        self.status[c] = status

    def violations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unsplittable needs served partly (or by several offers), organizations over their station limit and
        offers over capacity (shared offers of a cut component)."""
        norm, u = self.norm, self.units
        used = np.flatnonzero(u > 0)
        need = norm.e_need[used]
        whole = ~norm.splittable[need]
        served = np.bincount(need[whole], weights=u[used[whole]], minlength=norm.n_needs)
        edges_per = np.bincount(need[whole], minlength=norm.n_needs)
        bad = np.flatnonzero((edges_per > 1) | ((edges_per == 1) & (served != norm.demand)))
        return bad, _orgs_over_limit(norm, used), np.flatnonzero(offer_use(norm, used, u[used]) > norm.capacity)

    def dive_edges(self, edges: np.ndarray, norm: Normalised, opened: dict[int, set[int]] | None = None) -> None:
        """Round the relaxed answer (`units`) on `edges` (every active edge of their needs): place unsplittable needs
        whole (relaxed choice first), keep each limited organization's best stations, then re-solve the splittable
        needs by exact flow.  Offer capacities are `norm`'s (the residual ones when units outside `edges` are held);
        `opened`: `opened_outside(edges)` if at hand."""
        relaxed = self.units[edges]
        need, offer = norm.e_need[edges], norm.e_offer[edges]
        split = norm.splittable[need]
        # Flow-first components do not link an organization's offers: stations it serves elsewhere count too.
        opened = self.opened_outside(edges) if opened is None else opened
        allowed = _allowed_stations(norm, edges, relaxed, opened)
        units = np.zeros(len(edges), np.int64)
        gain = np.where(split, 0, norm.value[edges])
        if norm.has_incumbent:
            gain = gain - norm.penalty * (np.abs(norm.demand[need] - norm.incumbent[edges]) - norm.incumbent[edges])
        pos = np.flatnonzero(~split & ((gain > 0) | (norm.fixed[edges] > 0)))
        # Fixed first, then the relaxed choices (largest share), then the rest by gain.
        order = pos[np.lexsort((-gain[pos], -relaxed[pos], -(norm.fixed[edges[pos]] > 0).astype(np.int64)))]
        lim = norm.org_limit
        o_need, o_offer = need[order], offer[order]
        o_org = norm.org[o_offer]
        o_lim = lim[o_org] if len(lim) else np.full(len(order), -1, np.int64)
        cols = (
            order.tolist(),
            o_need.tolist(),
            o_offer.tolist(),
            norm.usage[edges[order]].tolist(),
            o_org.tolist(),
            o_lim.tolist(),
            norm.station[o_need].tolist(),
        )
        done: set[int] = set()
        # Fixed units of splittable needs keep their capacity: unsplittable needs placed first must leave it.
        fixed_split = np.bincount(
            offer[split], weights=norm.fixed[edges[split]] * norm.usage[edges[split]], minlength=norm.n_offers
        ).astype(np.int64)
        left = (norm.capacity - fixed_split).tolist()
        taken: list[int] = []
        for p, i, j, use, g, g_lim, st in zip(*cols, strict=True):
            if i in done or left[j] < use:
                continue
            if g_lim >= 0:
                seen = allowed.setdefault(g, set())
                if st not in seen:
                    if len(seen) >= g_lim:
                        continue
                    seen.add(st)
            done.add(i)
            left[j] -= use
            taken.append(p)
        units[taken] = norm.demand[need[taken]]
        cap = np.asarray(left, np.int64) + fixed_split  # the exact flow takes the fixed units out itself
        ok = split.copy()
        if len(lim) and allowed:
            g = norm.org[offer]
            check = np.flatnonzero(split & (lim[g] >= 0))
            station, n_st, ids = station_codes(norm)
            here = set(np.unique(g[check]).tolist())  # `allowed` also lists organizations with no edge here
            pairs = [(a, b) for a, seen in allowed.items() if a in here for b in seen]
            a_ = np.array([a for a, _ in pairs], np.int64)
            b_ = np.array([b for _, b in pairs], np.int64)
            codes = a_ * n_st + (b_ if ids is None else np.searchsorted(ids, b_))
            ok[check] = np.isin(g[check] * n_st + station[need[check]], codes)
        elif len(lim):
            ok &= lim[norm.org[offer]] < 0
        sp = np.flatnonzero(ok)
        split_units = self.flow_in_pieces(replace(norm, capacity=cap), edges[sp])
        if split_units is None:  # OR-Tools rejected the ranges: the relaxed units must not stand
            self.units[edges] = greedy(norm, edges, opened=opened)
            return
        units[sp] = split_units
        self.units[edges] = units

    def _dive_around(self, edges: np.ndarray, free: np.ndarray) -> None:
        """`dive_edges` on the edges of the `free` needs (the violations' neighbourhood) alone; every other relaxed
        unit of `edges` breaks no constraint and is held, with the capacity it uses.

        Rounding only there keeps the relaxed optimum wherever it is already a valid answer: on the national
        instance 36 % of the edges are re-solved instead of all, and the answer is 2.8 % better (province 1.1 %)
        than rounding whole components, whose greedy placement of every unsplittable need undid most of it."""
        norm = self.norm
        inside = free[norm.e_need[edges]]
        held = edges[~inside]
        held = held[self.units[held] > 0]
        residual = replace(norm, capacity=norm.capacity - offer_use(norm, held, self.units[held]))
        self.dive_edges(edges[inside], residual)

    def opened_outside(self, edges: np.ndarray) -> dict[int, set[int]]:
        """Per limited organization, the stations it serves with the current units outside `edges`."""
        norm = self.norm
        if not len(norm.org_limit):
            return {}
        inside = np.zeros(norm.n_edges, bool)
        inside[edges] = True
        out = np.flatnonzero(~inside & (self.units > 0))
        return stations_served(norm, norm.e_offer[out], norm.e_need[out], norm.e_offer[edges])

    def flow_in_pieces(self, norm: Normalised, edges: np.ndarray) -> np.ndarray | None:
        """Exact flow units on `edges` solved piece by piece: their connected pieces (in batches of about
        FLOW_BATCH_EDGES edges), which share no need and no offer, so the pieces' optima are the optimum of all of
        them, and each piece's graph is small (OR-Tools' flow time grows faster than the graph: the cold national
        dive's 418k edges are 332 pieces of at most 6.4k, solved in 1.1 s instead of 1.75 s per component); None if
        OR-Tools rejects a batch.  A small change's freed needs are scattered over many small pieces too.

        Edges to offers with no capacity left carry nothing (bar fixed units) and are left out before the pieces are
        formed, so the graphs are smaller and split further (the cold national dive: 31k of 418k edges)."""
        units = np.zeros(len(edges), np.int64)
        live = np.flatnonzero((norm.capacity[norm.e_offer[edges]] > 0) | (norm.fixed[edges] > 0))
        sub = edges[live]
        n, e_need = norm.n_needs, norm.e_need[sub]
        count, labels = cc.connected(e_need, n + norm.e_offer[sub], n + norm.n_offers)
        piece = labels[e_need]
        for pos in self._part_batches(piece, cc.grouped(piece, count)[0]):
            pos = np.sort(pos)
            res = solve_flow(norm, sub[pos])
            if res is None:
                return None
            self.timings["ortools_flow"] += res.ortools_s
            units[live[pos]] = res.units
        return units

    def _part_batches(self, parts: np.ndarray, order: np.ndarray) -> list[np.ndarray]:
        """Positions (sorted by part via `order`) in batches of whole parts of about FLOW_BATCH_EDGES edges."""
        if order.size == 0:
            return []
        p = parts[order]
        starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]]).tolist()
        cuts = [0]
        for s in starts[1:]:
            if s - cuts[-1] >= self.batch_edges:
                cuts.append(s)
        return np.split(order, cuts[1:])

    def neighbourhood(self, bad_needs: np.ndarray, over: np.ndarray, over_cap: np.ndarray | None = None) -> np.ndarray:
        """Needs to re-solve: the violating ones, those served by organizations over their limit (and by offers
        over capacity), and those holding capacity of the offers the former could use."""
        norm, u = self.norm, self.units
        used = np.flatnonzero(u > 0)
        over_mask = np.zeros(len(norm.org_limit), bool)
        over_mask[over] = True
        seed = np.zeros(norm.n_needs, bool)
        seed[bad_needs] = True
        if over_cap is not None and over_cap.size:
            cap_mask = np.zeros(norm.n_offers, bool)
            cap_mask[over_cap] = True
            seed[norm.e_need[used[cap_mask[norm.e_offer[used]]]]] = True
        if len(norm.org_limit):
            seed[norm.e_need[used[over_mask[norm.org[norm.e_offer[used]]]]]] = True
        act = self.comps.active & seed[norm.e_need]
        near = np.zeros(norm.n_offers, bool)
        near[norm.e_offer[act]] = True
        free = seed.copy()
        free[norm.e_need[used[near[norm.e_offer[used]]]]] = True
        return free

    def repair(self) -> None:
        """Flow first: re-solve only the neighbourhood of violated side constraints, the rest stays fixed."""
        bad_needs, over, over_cap = self.violations()
        if not bad_needs.size and not over.size and not over_cap.size:
            # A valid relaxed answer whose values were rounded (large demands: the lcm scale is capped) is not proven
            # optimal by its rounded bound; CP-SAT can prove it (a need of a million units and value 7: bound 14).
            if self.unproven.any():
                self.last_gain = time.monotonic()
                self.prove(self.unproven)
            return
        norm, comps = self.norm, self.comps
        free = self.neighbourhood(bad_needs, over)
        t0 = time.perf_counter()
        hit = np.zeros(comps.count, bool)
        hit[comps.need_comp[bad_needs]] = True
        hit[comps.offer_comp[np.flatnonzero(np.isin(norm.org, over))]] = True
        hit[comps.offer_comp[over_cap]] = True
        edges = self.sorted_edges_of(hit)
        self._dive_around(edges, self.neighbourhood(bad_needs, over, over_cap))
        self.method[hit] = "dive"
        opened = self.opened_outside(edges)  # the units outside `edges` stay as they are from here on
        self.units[edges] = fill(norm, edges, self.units[edges], opened=opened)
        self.timings["dive"] = time.perf_counter() - t0
        self.dive_objective = int(edge_objective(norm, self.units).sum())
        bound = int(np.minimum(self.relax_bound, self.cp_bound).sum())
        if bound - self.dive_objective <= self.gap_tolerance * max(abs(bound), 1):
            return
        t1 = time.perf_counter()
        base = greedy(norm, edges, opened=opened)  # guard: never worse than the greedy baseline
        if not self._better(edges, self.units[edges], base):
            self.units[edges] = base
        self.timings["greedy"] += time.perf_counter() - t1
        free_edges = int(np.count_nonzero(comps.active & free[norm.e_need]))
        if free_edges * CP_LOAD_S_PER_EDGE > self.stall_s:
            self.search_skipped = free_edges
            return
        self.last_gain = time.monotonic()
        self.improve(free, time.perf_counter() + (self.deadline - time.perf_counter()) / 4)
        self.prove(hit | self.unproven)

    def prove(self, hit: np.ndarray) -> None:
        """CP-SAT on whole components linked by station limits (valid bounds), where a gap remains."""
        norm, comps = self.norm, self.comps
        obj = _sum_per(comps.need_comp[norm.e_need], edge_objective(norm, self.units), comps.count)
        open_gap = hit & (obj < self.relax_bound)
        if not open_gap.any() or self._stalled():
            return
        linked = cc.label(norm, link_limits=True)
        base_of = [np.unique(comps.need_comp[norm.e_need[linked.edges_of(c)]]) for c in range(linked.count)]
        todo = [c for c in range(linked.count) if base_of[c].size and open_gap[base_of[c]].any()]
        sizes = np.array([len(linked.edges_of(c)) for c in todo], float)
        for k, budget in self._shares(sizes, self.deadline):
            c = todo[k]
            edges = linked.edges_of(c)
            res = self._cpsat(edges, self.units[edges], budget)
            if res.units is not None and self._better(edges, res.units, self.units[edges]):
                self.units[edges] = res.units
                self.method[base_of[c]] = "cpsat"
            if res.bound is not None:
                self.group_bounds.append((base_of[c], res.bound))

    def improve(self, free: np.ndarray, deadline: float) -> None:
        """CP-SAT on the neighbourhood `free` (needs), everything else fixed at the current answer."""
        norm, comps, u = self.norm, self.comps, self.units
        free_edges = np.flatnonzero(comps.active & free[norm.e_need])
        fixed_edges = np.flatnonzero(~free[norm.e_need] & (u > 0))
        cap = norm.capacity - offer_use(norm, fixed_edges, u[fixed_edges])
        opened = stations_served(norm, norm.e_offer[fixed_edges], norm.e_need[fixed_edges])
        groups = _groups(norm, free_edges)
        sizes = np.array([len(e) for e in groups], float)
        for k, budget in self._shares(sizes, deadline):
            edges = groups[k]
            res = self._cpsat(edges, u[edges], budget, cap=cap, opened=opened)
            if res.units is not None and self._better(edges, res.units, u[edges]):
                u[edges] = res.units
                self.method[np.unique(comps.need_comp[norm.e_need[edges]])] = "cpsat"

    def _shares(self, sizes: np.ndarray, deadline: float) -> Iterator[tuple[int, float]]:
        """Groups smallest first, each with its share (by size) of the time left until `deadline`; groups whose share
        is too small to use are skipped, and the phase ends once it has stalled."""
        left = float(sizes.sum())
        for k in np.argsort(sizes, kind="stable").tolist():
            budget = (deadline - time.perf_counter()) * sizes[k] / max(left, 1.0)
            left -= sizes[k]
            if budget < 0.02:
                continue
            if self._stalled():
                return
            yield k, budget

    def _cpsat(self, edges: np.ndarray, hint: np.ndarray, budget: float, **kw: Any) -> CpResult:
        """One CP-SAT call of the improvement phase (stall window shared by the phase, time accounted)."""
        workers = self.cp_workers(len(edges))
        res = solve_cpsat(self.norm, edges, hint, budget, workers, stall=(self.stall_s, self.last_gain), **kw)
        self._note_gain(res.last_gain)
        self.timings["ortools_cpsat"] += res.ortools_s
        return res

    def cp_workers(self, n_edges: int) -> int:
        """CP-SAT workers for a model of `n_edges` edges: the run's for large ones, a portfolio of _CP_SMALL_WORKERS
        for small ones (one if the run allows one)."""
        if n_edges >= _CP_WORKERS_MIN_EDGES:
            return self.workers
        return _CP_SMALL_WORKERS if self.workers > 1 else 1

    def _stalled(self) -> bool:
        """Whether the CP-SAT phase has gone a whole stall window without improving the answer."""
        return time.monotonic() - self.last_gain > self.stall_s

    def _note_gain(self, last: float | None) -> None:
        """Carry a CP-SAT call's last improvement time over to the phase."""
        if last is not None:
            self.last_gain = max(self.last_gain, last)

    def _better(self, edges: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether units `a` are at least as good as `b` (lexicographic with coverage first)."""
        norm = self.norm
        if not norm.coverage_first:  # the objective is a sum over edges: only where the answers differ counts
            diff = np.flatnonzero(a != b)
            at = edges[diff]
            return int(objective_on(norm, at, a[diff]).sum()) >= int(objective_on(norm, at, b[diff]).sum())
        key_a = objective_on(norm, edges, a).sum()
        key_b = objective_on(norm, edges, b).sum()
        cov_a = np.unique(norm.station[norm.e_need[edges[a > 0]]]).size
        cov_b = np.unique(norm.station[norm.e_need[edges[b > 0]]]).size
        return (cov_a, key_a) >= (cov_b, key_b)


def _sum_per(labels: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Integer sums of `values` per label, by a float bincount (a tenth of `np.add.at`'s time): exact, because
    `normalise` bounds the total of every objective term by 2**52, inside float64's exact integers."""
    return np.rint(np.bincount(labels, weights=values, minlength=count)).astype(np.int64)


def offer_use(norm: Normalised, edges: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Capacity each offer uses for `units` on `edges`."""
    use = np.where(
        norm.splittable[norm.e_need[edges]], units * norm.usage[edges], np.where(units > 0, norm.usage[edges], 0)
    )
    return np.bincount(norm.e_offer[edges], weights=use, minlength=norm.n_offers).astype(np.int64)


def objective_on(norm: Normalised, edges: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Exact objective contribution of `units` on some edges (`edge_objective` of a subset)."""
    split = norm.splittable[norm.e_need[edges]]
    val = np.where(split, norm.value[edges] * units, np.where(units > 0, norm.value[edges], 0))
    if norm.has_incumbent:
        val = val - norm.penalty * np.abs(units - norm.incumbent[edges])
    return val


def _repair(norm: Normalised, edges: np.ndarray, relaxed: np.ndarray) -> np.ndarray:
    """Round a relaxed answer: drop partly served unsplittable needs, then trim organizations over their limit."""
    units = relaxed.copy()
    need = norm.e_need[edges]
    partial = ~norm.splittable[need] & (units > 0) & (units != norm.demand[need])
    units[np.isin(need, need[partial])] = 0
    for g in _orgs_over_limit(norm, edges[units > 0]).tolist():
        mine = (norm.org[norm.e_offer[edges]] == g) & (units > 0)
        station = norm.station[need]
        val = objective_on(norm, edges[mine], units[mine])
        totals: dict[int, int] = {}
        for s_, v in zip(station[mine].tolist(), val.tolist(), strict=True):
            totals[s_] = totals.get(s_, 0) + v
        keep = sorted(totals, key=lambda k: -totals[k])[: int(norm.org_limit[g])]
        units[mine & ~np.isin(station, keep)] = 0
    return units


def _allowed_stations(
    norm: Normalised, edges: np.ndarray, relaxed: np.ndarray, opened: dict[int, set[int]] | None = None
) -> dict[int, set[int]]:
    """Per limited organization, the stations it may serve: those it serves outside `edges` (`opened`), those with
    fixed units, then its best relaxed ones."""
    out: dict[int, set[int]] = {g: set(sts) for g, sts in (opened or {}).items()}
    if not len(norm.org_limit):
        return out
    g = norm.org[norm.e_offer[edges]]
    pick = (norm.org_limit[g] >= 0) & ((relaxed > 0) | (norm.fixed[edges] > 0))
    if not pick.any():
        return out
    val = objective_on(norm, edges[pick], relaxed[pick]) + (norm.fixed[edges[pick]] > 0) * (1 << 50)
    station, n_st, ids = station_codes(norm)
    codes, inv = np.unique(g[pick] * n_st + station[norm.e_need[edges[pick]]], return_inverse=True)  # sorted pairs
    tot = np.bincount(inv.ravel(), weights=val.astype(np.float64))
    key_org, key_st = codes // n_st, codes % n_st
    if ids is not None:
        key_st = ids[key_st]
    order = np.lexsort((-tot, key_org))
    for a, b, cap in zip(
        key_org[order].tolist(), key_st[order].tolist(), norm.org_limit[key_org[order]].tolist(), strict=True
    ):
        seen = out.setdefault(a, set())
        if len(seen) < cap:
            seen.add(b)
    return out


def _groups(norm: Normalised, edges: np.ndarray) -> list[np.ndarray]:
    """Split `edges` into independent groups: linked by needs, offers and station-limited organizations."""
    if edges.size == 0:
        return []
    n, m = norm.n_needs, norm.n_offers
    r, c = [norm.e_need[edges]], [n + norm.e_offer[edges]]
    if len(norm.org_limit):
        offers = np.unique(norm.e_offer[edges])
        a, b = cc.link_groups(norm.org[offers], norm.org_limit[norm.org[offers]] >= 0, 0)
        r.append(n + offers[a])
        c.append(n + offers[b])
    _, labels = cc.connected(np.concatenate(r), np.concatenate(c), n + m)
    lab = labels[norm.e_need[edges]]
    order = np.argsort(lab, kind="stable")
    cuts = np.flatnonzero(np.diff(lab[order])) + 1
    return np.split(edges[order], cuts)


def _odd_usage(norm: Normalised) -> np.ndarray:
    """Edges whose usage is not one per unit (splittable) or the demand (unsplittable): flow cannot model them."""
    whole = norm.demand[norm.e_need]
    return np.where(norm.edge_split, norm.usage != 1, norm.usage != whole)


def _infeasible(norm: Normalised) -> Solution:
    """The answer when fixed units cannot be honoured."""
    return Solution("infeasible", 0, 0, np.zeros(norm.n_edges, np.int64))


def _reusable(run: _Run, fp: np.ndarray, previous: Solution | None, vanished: bool) -> np.ndarray:
    """Components identical to a previous one whose solution is exactly the incumbent (and that `_uncoupled` keeps;
    `vanished`: `_units_vanished`)."""
    if previous is None or previous.table is None or not run.norm.has_incumbent:
        return np.zeros(0, np.int64)
    prev = previous.table
    index = {(int(a), int(b)): r for r, (a, b) in enumerate(prev.fingerprint.tolist())}
    inc_hash = cc.units_hash(run.norm, run.comps, run.norm.incumbent)
    rows = np.array([index.get((int(a), int(b)), -1) for a, b in fp.tolist()], np.int64)
    hit = rows >= 0
    hit[hit] &= prev.units_hash[rows[hit]] == inc_hash[hit]
    comps = _uncoupled(run, np.flatnonzero(hit), vanished)
    run.method[comps] = "reused"
    run.status[comps] = prev.status[rows[comps]]
    # Triangle inequality: the old bound plus the penalty the old solution paid bounds the new objective.
    run.cp_bound[comps] = prev.bound[rows[comps]] + prev.penalty_paid[rows[comps]]
    return comps


def _uncoupled(run: _Run, reusable: np.ndarray, vanished: bool) -> np.ndarray:
    """The `reusable` components that no station-limited organization links to a component solved anew (none at all
    when units of the previous answer `vanished` with their needs or offers: the organizations they used are not
    known here).  A component's previous answer, status and bound hold only while the stations its organizations
    serve elsewhere stay as they were (an organization allowed one station kept it for another component's need; once
    that need shrank or left, serving this component's instead was better, and the reused "optimal" answer was not)."""
    norm, comps = run.norm, run.comps
    limited = np.flatnonzero(norm.limited_offer)
    if not reusable.size or not limited.size:
        return reusable
    n = comps.count
    if vanished:
        touched = np.zeros(n, bool)
        touched[comps.offer_comp[limited]] = True
        return reusable[~touched[reusable]]
    _, labels = cc.connected(comps.offer_comp[limited], n + norm.org[limited], n + len(norm.org_limit))
    group = labels[:n]
    fresh = run.comp_sizes() > 0
    fresh[reusable] = False
    tainted = np.zeros(int(labels.max()) + 1, bool)
    tainted[group[fresh]] = True
    return reusable[~tainted[group[reusable]]]


def _units_vanished(norm: Normalised, prev: cc.ItemHashes | None) -> bool:
    """Whether units of the previous answer are gone from this run's incumbent: a need that held units left, or holds
    fewer now (an offer or edge it used left, or its units were dropped); True when the previous answer's per-need
    units were not kept."""
    if prev is None or prev.need_served is None:
        return True
    pos, found, gone = _previous_rows(norm, prev)
    now = np.bincount(norm.e_need, weights=norm.incumbent, minlength=norm.n_needs).astype(np.int64)
    return bool(np.any(prev.need_served[gone] > 0) or np.any(now[found] < prev.need_served[pos[found]]))


def _previous_rows(norm: Normalised, prev: cc.ItemHashes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each need's row among the previous answer's sorted keys (`pos`, valid where `found`), and the previous needs
    no key of this run found (`gone`; O(n): no second search)."""
    if not len(prev.need_key):
        return np.zeros(norm.n_needs, np.int64), np.zeros(norm.n_needs, bool), np.zeros(0, bool)
    pos, found = cc.key_rows(prev.need_key, norm.need_key, norm.need_order)
    gone = np.ones(len(prev.need_key), bool)
    gone[pos[found]] = False
    return pos, found, gone


def _changed_needs(
    norm: Normalised,
    prev: cc.ItemHashes,
    items: cc.ItemHashes,
    need_h: np.ndarray,
    offer_h: np.ndarray,
    active: np.ndarray,
) -> np.ndarray | None:
    """Needs (mask) that are new, whose data or active edges changed, or that reach a new or changed offer; None if
    a need with fixed units changed or left (the carried-over bound assumes the previous fixed units still stand)."""
    if np.any(prev.need_key[1:] == prev.need_key[:-1]) or np.any(prev.offer_key[1:] == prev.offer_key[:-1]):
        return None
    same = _same_items(norm.need_key, norm.need_order, need_h, prev.need_key, prev.need_hash)
    order = norm.need_order
    fk = prev.need_key[prev.need_fixed]
    if fk.size:
        pos = np.minimum(np.searchsorted(items.need_key, fk), max(len(items.need_key) - 1, 0))
        if not len(items.need_key) or not np.all((items.need_key[pos] == fk) & same[order][pos]):
            return None
    changed = ~same
    off_changed = ~_same_items(norm.offer_key, norm.offer_order, offer_h, prev.offer_key, prev.offer_hash)
    if off_changed.any():
        changed[norm.e_need[active & off_changed[norm.e_offer]]] = True
    return changed


def _same_items(
    keys: np.ndarray, order: np.ndarray, hashes: np.ndarray, prev_keys: np.ndarray, prev_hashes: np.ndarray
) -> np.ndarray:
    """Whether each item (by key; `order` sorts the keys) is in the sorted previous keys with the same hash."""
    if not len(prev_keys):
        return np.zeros(len(keys), bool)
    pos, found = cc.key_rows(prev_keys, keys, order)
    return found & (prev_hashes[pos] == hashes)


def _moved_needs(norm: Normalised, prev: cc.ItemHashes) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Needs (mask) whose incumbent is not their units in the previous answer, and each need's units in that answer
    (0 for new needs); (None, None) when the previous answer's per-need units were not kept."""
    if prev.need_units is None or prev.need_served is None:
        return None, None
    if not len(prev.need_key):
        return np.zeros(norm.n_needs, bool), np.zeros(norm.n_needs, np.int64)
    pos, found, gone = _previous_rows(norm, prev)
    prev_h = np.where(found, prev.need_units[pos], np.uint64(0))
    moved = cc.need_units_hash(norm, norm.incumbent) != prev_h
    if np.any(moved & found & prev.need_fixed[pos]):
        return None, None  # the bound needs the previous fixed units to stand: only the whole-answer check applies
    if np.any(prev.need_served[gone] > 0):
        # A need that held units left (cancelled, fulfilled): the capacity it frees is on offers this run cannot
        # name, and the bound would owe its units too; only the whole-answer check applies (it fails: a full solve).
        return None, None
    return moved, np.where(found, prev.need_served[pos], 0)


def _within_station_limits(norm: Normalised, edges: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Which `edges` a flow may use without taking an organization past its station limit: those of organizations
    without one, to a station it serves in `units` already, or of an organization that may serve every station
    `units` and all its `edges` reach."""
    if not len(norm.org_limit) or not edges.size:
        return np.ones(len(edges), bool)
    station, n_st, _ = station_codes(norm)
    g = norm.org[norm.e_offer[edges]]
    limited = norm.org_limit[g] >= 0
    used = np.flatnonzero(units > 0)
    g_used = norm.org[norm.e_offer[used]]
    keep = norm.org_limit[g_used] >= 0
    opened = sorted_unique(g_used[keep] * n_st + station[norm.e_need[used[keep]]])
    code = g * n_st + station[norm.e_need[edges]]
    every = sorted_unique(np.concatenate([opened, code[limited]]))
    room = np.bincount(every // n_st, minlength=len(norm.org_limit)) <= norm.org_limit
    return ~limited | room[g] | member(code, opened, presorted=True)


def _solve_neighbourhood(
    run: _Run, edges: np.ndarray, held: np.ndarray, changed: np.ndarray, residual: Normalised
) -> np.ndarray | None:
    """Units on the freed `edges`, the `held` edges at the incumbent (`residual`: the capacity they leave): changed
    unsplittable needs placed whole first (greedy), then one exact flow for the splittable needs on the edges that
    keep every organization within its station limit (or carry fixed units).  Returns those flow edges, or None if
    OR-Tools rejects a batch."""
    norm, inc = run.norm, run.norm.incumbent
    split = norm.splittable[norm.e_need[edges]]
    place = edges[~split & changed[norm.e_need[edges]]]
    flow_edges = edges[split]
    run.units[edges] = np.where(split, inc[edges], 0)  # stations the flow may keep count as opened
    run.units[held] = inc[held]
    if place.size:
        # Fixed units of the freed splittable needs keep their capacity (the flow takes them out itself).
        keep = offer_use(norm, flow_edges, norm.fixed[flow_edges])
        run.units[place] = greedy(norm, place, cap=residual.capacity - keep, opened=run.opened_outside(place))
        residual = replace(residual, capacity=residual.capacity - offer_use(norm, place, run.units[place]))
    allowed = flow_edges[_within_station_limits(norm, flow_edges, run.units) | (norm.fixed[flow_edges] > 0)]
    run.units[flow_edges] = 0
    units = run.flow_in_pieces(residual, allowed)
    if units is None:
        return None
    run.units[allowed] = units
    return allowed


def _local_resolve(
    run: _Run,
    previous: Solution | None,
    items: cc.ItemHashes,
    need_h: np.ndarray,
    offer_h: np.ndarray,
    todo: np.ndarray,
) -> int | None:
    """Re-solve only the needs that changed since `previous` and their neighbourhood, every other edge held at the
    incumbent (= the previous answer); return a proven bound of the whole problem, or None (nothing done) when the
    local re-solve does not apply: no previous answer (or an old stored state without one), the incumbent is not that
    answer, the change is large, the held units do not fit the new data, or the previous bound was already loose.

    Changed needs include "moved" ones: needs whose incumbent is not their units in the previous answer (a standing
    proposal was rejected or expired since), when the previous answer kept its per-need units.

    Bound: let x* be optimal and x' be x* without the changed needs.  x' is feasible for the previous problem (same
    data on the rest; fixed units of changed needs excluded above), so its previous objective is at most the previous
    bound B; its new objective on unchanged edges (where the incumbent is the previous answer) exceeds the previous one
    by at most the penalty the previous answer paid plus the penalty of the previous answer's units on changed needs
    (triangle inequality); the changed needs add at most their best values (every unit on its best edge).  Hence
    opt <= B + paid + sum over changed needs of (best value + penalty * their units in the previous answer)."""
    norm, comps = run.norm, run.comps
    if (
        LOCAL_MAX_SHARE <= 0
        or previous is None
        or previous.items is None
        or previous.table is None
        or previous.status == "infeasible"
        or not norm.has_incumbent
        or not todo.size
    ):
        return None
    sizes = run.comp_sizes()
    todo_edges = int(sizes[todo].sum())
    if todo_edges < LOCAL_MIN_EDGES:
        return None
    paid = int(previous.table.penalty_paid.sum())
    if previous.bound - previous.objective > LOCAL_MAX_GAP * max(abs(previous.bound), 1):
        return None
    active = comps.active
    changed = _changed_needs(norm, previous.items, items, need_h, offer_h, active)
    moved, served = _moved_needs(norm, previous.items)
    if moved is None:  # no per-need answer kept: the incumbent must be the whole previous answer
        with np.errstate(over="ignore"):
            if cc.units_hash(norm, comps, norm.incumbent).sum() != previous.table.units_hash.sum():
                return None
    elif changed is not None:
        changed |= moved  # a need whose standing units were answered or expired is re-solved like a changed one
    if changed is None:
        return None
    inc = norm.incumbent
    # Accepted units the incumbent does not hold (a caller's fixed units beyond it): their needs are re-solved, or
    # holding the incumbent would drop them.
    changed[norm.e_need[norm.fixed > inc]] = True
    if not changed.any():
        return None
    free = changed.copy()
    holding = inc > 0
    for _ in range(LOCAL_HOPS):
        reach = np.zeros(norm.n_offers, bool)
        reach[norm.e_offer[active & free[norm.e_need]]] = True
        free[norm.e_need[holding & reach[norm.e_offer]]] = True
    edges = np.flatnonzero(active & free[norm.e_need])
    if len(edges) > LOCAL_MAX_SHARE * todo_edges:
        return None
    split = norm.splittable[norm.e_need]
    # Unsplittable needs of the neighbourhood keep their units unless they changed: moving them whole is what the
    # rounding dive did after a relaxed flow, and it cost more answer than the flow gained (the whole-component
    # greedy won 13 of 20 province re-solves).  The changed ones are placed whole first, then the splittable
    # needs get an exact flow on what is left, among stations their organizations may serve: no rounding.
    outside = holding & ~free[norm.e_need]
    keep = outside | (holding & free[norm.e_need] & ~split & ~changed[norm.e_need])
    held = np.flatnonzero(keep)
    use = offer_use(norm, held, inc[held])
    # The accepted units the re-solve must place fit beside the held ones, or only a full re-solve can honour them.
    placed = np.flatnonzero((norm.fixed > 0) & ~keep)
    if np.any(use + offer_use(norm, placed, norm.fixed[placed]) > norm.capacity):
        return None
    if not _limits_ok(norm, np.concatenate([held, placed])):
        return None
    t0 = time.perf_counter()
    allowed = _solve_neighbourhood(run, edges, held, changed, replace(norm, capacity=norm.capacity - use))
    if allowed is None:
        return None
    # Components re-solved in part ("local") or held whole ("held"): answers, not optima, and their bounds are the
    # trivial ones (the carried-over bound covers the whole problem only).
    run.method[todo], run.status[todo] = "held", "feasible"
    run.method[np.unique(comps.need_comp[norm.e_need[edges]])] = "local"
    run.timings["flow"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    bad_needs, over, _ = run.violations()
    if bad_needs.size or over.size:  # not expected (the held units respect the limits): round the whole region
        out = np.flatnonzero(outside)
        around = replace(norm, capacity=norm.capacity - offer_use(norm, out, inc[out]))
        run.dive_edges(edges, around)  # guided by the answer in hand
        run.dive_objective = int(edge_objective(norm, run.units).sum())
    t2 = time.perf_counter()
    run.timings["dive"] = t2 - t1
    # Never worse than greedy: the greedy answer of the components re-solved in part (as the cold run's guard; the
    # greedy keeps incumbent units first, so on a re-solve it is close: with the fill before it, it won 1 of 20
    # province re-solves).  A greedy pass over the freed edges alone never beat the local answer, so there is none.
    whole, guard = run.sorted_edges_of(todo), 0
    opened = run.opened_outside(whole)
    run.units[whole] = fill(norm, whole, run.units[whole], opened=opened)  # slack the held answer left
    base = greedy(norm, whole, opened=opened)
    if not run._better(whole, run.units[whole], base):
        run.units[whole] = base
        run.method[todo] = "greedy"
        guard = 1
    run.timings["greedy"] += time.perf_counter() - t2
    run.timings["cpsat"] = time.perf_counter() - t1
    # The bound carried over (see above), never above the trivial one.
    e_ch = np.flatnonzero(active & changed[norm.e_need])
    best = np.zeros(norm.n_needs, np.int64)
    np.maximum.at(best, norm.e_need[e_ch], np.maximum(norm.value[e_ch], 0))
    best = np.where(norm.splittable, best * norm.demand, best)
    # The previous answer's units on changed needs (with an unmoved incumbent, the incumbent's).
    held_inc = norm.penalty * (int(inc[e_ch].sum()) if served is None else int(served[changed].sum()))
    run.local_stats = {
        "local_changed_needs": int(changed.sum()),
        "local_free_needs": int(free.sum()),
        "local_free_edges": len(edges),
        "local_flow_edges": len(allowed),
        "local_greedy_won": guard,
    }
    return previous.bound + paid + int(best[changed].sum()) + held_inc


def solve(
    problem: Problem | Normalised,
    time_limit_s: float = 10.0,
    *,
    previous: Solution | None = None,
    workers: int | None = None,
    gap_tolerance: float = 0.0,
    part_edges: int | None = PART_EDGES,
    processes: int = 1,
) -> Solution:
    """Maximise value minus change penalties; components untouched since `previous` keep the incumbent.

    A component whose rounded flow answer is within `gap_tolerance` (relative) of its bound skips CP-SAT; flow-first
    components of more than `part_edges` active edges are solved in parts.  `problem` may be given already
    normalised (`normalise`), so a caller that needs the arrays too validates it once.  With a `previous` answer (of
    this process, or from `solution_from_state`) whose units are the incumbent, large flow-first components touched
    by a small change are re-solved locally (`_local_resolve`: the changed needs and their neighbourhood, the rest
    held; status "feasible" and a carried-over bound).

    `processes` > 1 solves large problems (at least PARALLEL_MIN_EDGES active edges) in that many worker processes,
    each on an independent share of the components (`parallel`); the answer is stitched back into one `Solution`.
    Re-solves that may take the local path stay in this process."""
    if not (isinstance(time_limit_s, int | float) and time_limit_s > 0):
        raise ValueError(f"time_limit_s must be a positive number, got {time_limit_s!r}")
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a positive integer, got {processes!r}")
    t0 = time.perf_counter()
    norm = problem if isinstance(problem, Normalised) else normalise(problem)
    if not fixed_feasible(norm):
        return _infeasible(norm)
    linked = norm.coverage_first or bool(_odd_usage(norm).any())
    vanished = previous is None or _units_vanished(norm, previous.items)
    opts = SolveOptions(workers or min(os.cpu_count() or 1, 8), gap_tolerance, part_edges, linked, vanished)
    if processes > 1 and _parallel_pays(norm, previous, linked):
        from service.matching import parallel  # imports this module: loaded on first use

        return parallel.solve_in_processes(norm, time_limit_s, t0, processes, previous, opts)
    return solve_normalised(norm, time_limit_s, t0, previous, opts)


def _parallel_pays(norm: Normalised, previous: Solution | None, linked: bool) -> bool:
    """Whether a process-parallel solve is worth its start and transfer cost and keeps every path of a sequential
    one: large enough, and no previous answer the local re-solve could start from (checked cheaply here; the local
    re-solve's own checks need the components; linked runs never take it)."""
    if int(np.count_nonzero(cc.active_edges(norm))) < PARALLEL_MIN_EDGES:
        return False
    if previous is None or previous.status == "infeasible" or linked:
        return True
    local_possible = (
        LOCAL_MAX_SHARE > 0
        and previous.items is not None
        and previous.table is not None
        and norm.has_incumbent
        and previous.bound - previous.objective <= LOCAL_MAX_GAP * max(abs(previous.bound), 1)
    )
    return not local_possible


@dataclass(frozen=True)
class SolveOptions:
    """How `solve` runs, fixed once per call (and handed as is to the bins of a parallel solve)."""

    workers: int  # CP-SAT workers
    gap_tolerance: float
    part_edges: int | None
    linked: bool  # the component notion: station-limit and coverage links (a bin keeps the whole problem's)
    # Units of the previous answer are gone with their needs or offers (`_units_vanished`, of the whole problem: a bin
    # sees only its share of the needs).
    units_vanished: bool = True


def solve_normalised(
    norm: Normalised, time_limit_s: float, t0: float, previous: Solution | None, opts: SolveOptions
) -> Solution:
    """`solve` of a validated problem in this process, started at `t0` (perf_counter)."""
    prev_comps = previous.table.comps if previous is not None and previous.table is not None else None
    run = _Run(
        norm,
        time_limit_s - (time.perf_counter() - t0),
        opts.workers,
        opts.gap_tolerance,
        opts.linked,
        opts.part_edges,
        cc.same_components(prev_comps, norm, opts.linked),
    )
    prev_hashes = previous.edge_hashes if previous is not None and run.comps is prev_comps else None
    fp, need_h, offer_h, edge_h = cc.fingerprints_and_items(norm, run.comps, prev_hashes)
    items = cc.item_hashes(norm, need_h, offer_h)
    reused = _reusable(run, fp, previous, opts.units_vanished)
    for c in reused.tolist():
        e = run.comps.edges_of(c)
        run.units[e] = norm.incumbent[e]
    run.timings["prepare"] = time.perf_counter() - t0
    todo = np.flatnonzero((run.comp_sizes() > 0) & (run.method == "empty"))
    if not opts.linked:
        local = _local_resolve(run, previous, items, need_h, offer_h, todo)
        if local is not None:
            return _assemble(run, fp, reused, items, edge_h, local)
        t1 = time.perf_counter()
        run.run_flow(todo)
        run.timings["flow"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        run.repair()
        run.timings["cpsat"] = time.perf_counter() - t2
        return _assemble(run, fp, reused, items, edge_h)
    direct = run.needs_cpsat()[todo] | norm.coverage_first
    t1 = time.perf_counter()
    to_cp = np.concatenate([run.run_flow(todo[~direct]), todo[direct]])
    run.timings["flow"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    run.run_cpsat(np.sort(to_cp))
    run.timings["cpsat"] = time.perf_counter() - t2
    return _assemble(run, fp, reused, items, edge_h)


def _proven(
    run: _Run, exact: np.ndarray, obj: np.ndarray, bound: np.ndarray, status: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per component: status, objective and bound as a later run reuses them.  A component is optimal when its own
    bound says so, when CP-SAT proved the group of components linked with it, or when the whole run is optimal;
    then its bound is its objective (else an unchanged re-run would report a proven answer as only feasible)."""
    done = exact.copy() if status != "optimal" else np.ones(len(obj), bool)
    for base, b in run.group_bounds:
        if b <= int(obj[base].sum()):
            done[base] = True
    return np.where(done, "optimal", run.status).astype(object), obj, np.where(done, obj, bound)


def _assemble(
    run: _Run,
    fp: np.ndarray,
    reused: np.ndarray,
    items: cc.ItemHashes | None,
    edge_hashes: cc.EdgeHashes | None,
    local: int | None = None,
) -> Solution:
    """Exact objective, bounds and bookkeeping for the whole run; `local`: a proven bound of a local re-solve."""
    norm, comps = run.norm, run.comps
    obj_e = edge_objective(norm, run.units)
    comp_of_edge = comps.need_comp[norm.e_need]
    obj = _sum_per(comp_of_edge, obj_e, comps.count)
    paid = np.zeros(comps.count, np.int64)
    if norm.has_incumbent:  # no incumbent, no change penalty
        paid = _sum_per(comp_of_edge, norm.penalty * np.abs(run.units - norm.incumbent), comps.count)
    bound = np.minimum(run.relax_bound, run.cp_bound)
    exact = run.status == "optimal"
    if not run.linked:
        exact = np.where(run.method == "reused", exact, obj >= bound)
    bound = np.where(exact, obj, np.maximum(bound, obj))
    total_bound = int(bound.sum())
    for base, b in run.group_bounds:
        total_bound -= max(int(bound[base].sum()) - max(b, int(obj[base].sum())), 0)
    if local is not None:
        total_bound = max(min(total_bound, local), int(obj.sum()))
    status = "optimal" if bool(np.all(exact)) or int(obj.sum()) >= total_bound else "feasible"
    comp_hash, need_hash = cc.units_hashes(norm, comps, run.units)
    table = ComponentTable(comps, fp, comp_hash, run.method, *_proven(run, exact, obj, bound, status), paid)
    methods, counts = np.unique(run.method.astype(str), return_counts=True)
    stats = {f"components_{m}": int(k) for m, k in zip(methods.tolist(), counts.tolist(), strict=True)}
    stats["components"] = comps.count
    stats["parts"] = int((run.parts.sizes() > 0).sum())
    if run.dive_objective is not None:
        stats["dive_objective"] = run.dive_objective
    if run.search_skipped:
        stats["search_skipped_edges"] = run.search_skipped
    stats.update(run.local_stats)
    if items is not None:
        items = cc.with_answer(items, norm, run.units, need_hash)
    return Solution(status, int(obj.sum()), total_bound, run.units, table, run.timings, stats, items, edge_hashes)
