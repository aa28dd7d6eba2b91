"""The GAP large-neighbourhood search: feasible, never worse than its start, optimal on small and OR-Library cases,
and the engine's CP-SAT phase keeps its guarantees when it runs the search."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from bench.orlib import GAP_DIR, load
from service.matching import Problem, cpsat
from service.matching.gap_search import Gap, search
from service.matching.greedy import greedy
from service.matching.problem import normalise
from tests.matching.reference import brute_force, check_feasible, objective
from tests.matching.test_solver_properties import problems

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def gaps(draw) -> Gap:
    """A small dense GAP: some pairs not allowed, some jobs optional, tight capacities."""
    m, n = draw(st.integers(2, 4)), draw(st.integers(1, 6))

    def matrix(lo: int, hi: int) -> np.ndarray:
        return np.array(draw(st.lists(st.integers(lo, hi), min_size=m * n, max_size=m * n)), np.int64).reshape(m, n)

    allowed = np.array(draw(st.lists(st.booleans(), min_size=m * n, max_size=m * n))).reshape(m, n)
    capacity = np.array(draw(st.lists(st.integers(0, 12), min_size=m, max_size=m)), np.int64)
    optional = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return Gap(matrix(-5, 20), matrix(0, 8), allowed, capacity, optional)


def _all_assignments(gap: Gap) -> list[tuple[int, np.ndarray]]:
    """(cost, assignment) of every feasible assignment, by brute force."""
    out = []
    for pick in itertools.product(range(gap.m + 1), repeat=gap.n):
        agent = np.array(pick, np.int64)
        if gap.feasible(agent):
            out.append((gap.total(agent), agent))
    return out


@SETTINGS
@given(gap=gaps(), workers=st.sampled_from([1, 2]))
def test_search_reaches_the_brute_force_optimum_from_the_worst_start(gap: Gap, workers: int) -> None:
    every = _all_assignments(gap)
    if not every:
        return
    best = min(c for c, _ in every)
    worst_cost, start = max(every, key=lambda t: t[0])
    agent, stats = search(gap, start, time.perf_counter() + 10.0, workers=workers, seed=1, target=best)
    assert gap.feasible(agent)
    assert gap.total(agent) == stats["cost"] <= worst_cost
    assert gap.total(agent) == best


def test_search_rejects_an_infeasible_start() -> None:
    gap = Gap(np.ones((2, 2), np.int64), np.full((2, 2), 5), np.ones((2, 2), bool), np.array([5, 5]), np.zeros(2, bool))
    with pytest.raises(ValueError, match="not feasible"):
        search(gap, np.array([0, 0]), time.perf_counter() + 1.0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=problems(splittable=False, usage=True))
def test_cpsat_with_the_search_keeps_the_engine_guarantees(p) -> None:
    """The search always runs here (no minimum time, almost no time for the full model first)."""
    norm = normalise(p)
    edges = np.arange(norm.n_edges)
    hint = greedy(norm, edges)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpsat, "GAP_SEARCH_MIN_S", 0.0)
        mp.setattr(cpsat, "GAP_PROVE_SHARE", 0.02)
        res = cpsat.solve_cpsat(norm, edges, hint, 0.5, 2)
    assert res.units is not None
    check_feasible(norm, res.units)
    got = objective(norm, res.units)
    assert got >= objective(norm, hint)
    best = brute_force(norm)
    assert best is not None
    assert got <= best[1]
    assert res.bound is None or res.bound >= best[1]
    if res.status == "optimal":
        assert got == best[1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=problems(splittable=False, usage=True))
def test_search_on_an_engine_component_reaches_the_brute_force_optimum(p) -> None:
    """The component as a GAP (values, usage, change penalties) and back: from the greedy answer to the optimum."""
    norm = normalise(p)
    edges = np.arange(norm.n_edges)
    plan = cpsat._gap_plan(norm, edges, None)
    assert plan is not None or len(np.unique(norm.e_offer)) < 2 or len(edges) < 2
    if plan is None:
        return
    hint = greedy(norm, edges)
    best = brute_force(norm)
    assert best is not None
    units = cpsat._gap_improve(plan, norm, edges, hint, best[1], 10.0, workers=1)
    check_feasible(norm, units)
    assert objective(norm, units) == best[1]


def _first_solution(cost: np.ndarray, weight: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Any feasible assignment of every job (CP-SAT's first solution)."""
    m, n = cost.shape
    model = cp_model.CpModel()
    x = [[model.new_bool_var("") for _ in range(n)] for _ in range(m)]
    for j in range(n):
        model.add_exactly_one(x[i][j] for i in range(m))
    for i in range(m):
        model.add(cp_model.LinearExpr.weighted_sum(x[i], weight[i].tolist()) <= int(capacity[i]))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.stop_after_first_solution = True
    assert solver.solve(model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    return np.array([[solver.value(x[i][j]) for j in range(n)] for i in range(m)]).argmax(axis=0)


@pytest.mark.skipif(not GAP_DIR.is_dir(), reason=f"OR-Library GAP data not found at {GAP_DIR}")
@pytest.mark.parametrize(("file", "index"), [("gap1", 0), ("gap5", 2), ("gap9", 4), ("gap12", 1)])
def test_search_reaches_the_proven_optimum_of_orlib_problems(file: str, index: int) -> None:
    inst = load(file)[index]
    cost = -inst.cost if inst.sense == "max" else inst.cost
    m, n = cost.shape
    gap = Gap(cost, inst.resource, np.ones((m, n), bool), inst.capacity, np.zeros(n, bool))
    start = _first_solution(cost, inst.resource, inst.capacity)
    target = -inst.optimum if inst.sense == "max" else inst.optimum
    agent, _ = search(gap, start, time.perf_counter() + 30.0, workers=2, seed=0, target=target)
    assert gap.feasible(agent)
    assert gap.total(agent) == target


def test_a_component_too_large_for_the_full_models_share_still_gets_the_search_from_the_hint() -> None:
    """30 offers x 400 needs, every pair a candidate: CP-SAT finds nothing in 10 ms, and the search improves the
    engine's greedy answer in the rest of the time instead of returning no answer."""
    rng = np.random.default_rng(3)
    m, n = 30, 400
    usage = rng.integers(1, 100, m * n)
    p = Problem(
        need_demand=np.ones(n, np.int64),
        need_splittable=np.zeros(n, bool),
        offer_capacity=np.full(m, int(usage.sum() / m / m * 0.8)),
        edge_need=np.repeat(np.arange(n), m),
        edge_offer=np.tile(np.arange(m), n),
        edge_value=rng.integers(1, 50, m * n),
        edge_usage=usage,
    )
    norm = normalise(p)
    edges = np.arange(norm.n_edges)
    hint = greedy(norm, edges)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpsat, "GAP_SEARCH_MIN_S", 0.0)
        mp.setattr(cpsat, "GAP_PROVE_SHARE", 0.0)  # the full model gets CP-SAT's floor, 10 ms
        res = cpsat.solve_cpsat(norm, edges, hint, 1.0, 2)
    assert res.units is not None and res.status == "feasible"
    check_feasible(norm, res.units)
    assert objective(norm, res.units) > objective(norm, hint)


def test_a_hint_the_plan_cannot_express_is_not_searched_from() -> None:
    """Every need on the first offer overloads it: the search (which refuses infeasible starts) is not started from
    it, and whatever comes back is feasible."""
    rng = np.random.default_rng(4)
    m, n = 30, 400
    p = Problem(
        need_demand=np.ones(n, np.int64),
        need_splittable=np.zeros(n, bool),
        offer_capacity=np.full(m, 500),
        edge_need=np.repeat(np.arange(n), m),
        edge_offer=np.tile(np.arange(m), n),
        edge_value=rng.integers(1, 50, m * n),
        edge_usage=rng.integers(1, 100, m * n),
    )
    norm = normalise(p)
    edges = np.arange(norm.n_edges)
    overloaded = (norm.e_offer[edges] == 0).astype(np.int64)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpsat, "GAP_SEARCH_MIN_S", 0.0)
        mp.setattr(cpsat, "GAP_PROVE_SHARE", 0.0)
        res = cpsat.solve_cpsat(norm, edges, overloaded, 1.0, 2)
    if res.units is not None:  # CP-SAT may still find an answer of its own in 10 ms on a fast machine
        check_feasible(norm, res.units)
