"""Flow-first path on mid-size problems: the dive and the CP-SAT repair give feasible answers, never below greedy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from service.matching import Problem, solve, solver
from service.matching.flow import relaxation_scale, solve_flow
from service.matching.greedy import greedy
from service.matching.problem import normalise
from service.matching.solver import edge_objective
from tests.matching.reference import check_feasible, objective


def _problem(seed: int, incumbent: bool = False) -> Problem:
    """About 300 needs, a fifth unsplittable, organizations with station limits, dense candidate edges."""
    rng = np.random.default_rng(seed)
    n, m, stations, orgs = 300, 120, 60, 40
    demand = rng.integers(1, 10, n)
    split = rng.random(n) >= 0.2
    station = rng.integers(0, stations, n)
    offer_org = rng.integers(0, orgs, m)
    limit = np.where(rng.random(orgs) < 0.4, rng.integers(1, 4, orgs), -1)
    pairs = np.unique(np.stack([rng.integers(0, n, 3000), rng.integers(0, m, 3000)]), axis=1)
    per_unit = rng.integers(1, 50, pairs.shape[1])
    value = np.where(split[pairs[0]], per_unit, per_unit * demand[pairs[0]])
    kw = {}
    if incumbent:
        kw = {"incumbent": np.where(rng.random(pairs.shape[1]) < 0.05, 1, 0), "change_penalty": 3}
    return Problem(
        need_demand=demand,
        need_splittable=split,
        offer_capacity=rng.integers(0, 20, m),
        edge_need=pairs[0],
        edge_offer=pairs[1],
        edge_value=value,
        need_station=station,
        offer_org=offer_org,
        org_max_stations=limit,
        **kw,
    )


@pytest.mark.parametrize(("seed", "incumbent", "seconds"), [(1, False, 0.05), (2, False, 2.0), (3, True, 1.0)])
def test_answers_are_feasible_bounded_and_not_below_greedy(seed: int, incumbent: bool, seconds: float) -> None:
    p = _problem(seed, incumbent)
    norm = normalise(p)
    s = solve(p, time_limit_s=seconds)
    check_feasible(norm, s.edge_units)
    assert s.objective == objective(norm, s.edge_units)
    assert s.bound >= s.objective
    assert s.objective >= int(edge_objective(norm, greedy(norm, np.arange(norm.n_edges))).sum())
    assert s.status in ("optimal", "feasible")
    if s.status == "optimal":
        assert s.bound == s.objective


def _regional(seed: int, splittable_share: float) -> Problem:
    """Twelve 'cities' of needs and offers with dense edges inside and a few offers reaching the next city, so the
    whole problem is one connected component of about 3,000 edges."""
    rng = np.random.default_rng(seed)
    cities, per_city_n, per_city_m = 12, 40, 15
    n, m = cities * per_city_n, cities * per_city_m
    need_city, offer_city = np.arange(n) // per_city_n, np.arange(m) // per_city_m
    pairs = set()
    for i in range(n):
        for j in rng.choice(per_city_m, 6, replace=False).tolist():
            pairs.add((i, int(need_city[i] * per_city_m + j)))
    for j in range(m):
        nxt = (offer_city[j] + 1) % cities
        for i in rng.choice(per_city_n, 2, replace=False).tolist():
            pairs.add((int(nxt * per_city_n + i), j))
    e = np.array(sorted(pairs)).T
    demand = rng.integers(1, 8, n)
    split = rng.random(n) < splittable_share
    per_unit = rng.integers(1, 60, e.shape[1])
    value = np.where(split[e[0]], per_unit, per_unit * demand[e[0]])
    return Problem(
        need_demand=demand,
        need_splittable=split,
        offer_capacity=rng.integers(2, 10, m),
        edge_need=e[0],
        edge_offer=e[1],
        edge_value=value,
        need_station=np.arange(n) // 4,
        offer_org=np.arange(m),
        org_max_stations=np.full(m, -1),
    )


@pytest.mark.parametrize("seed", [4, 5])
def test_a_component_cut_into_parts_stays_feasible_with_a_valid_bound_near_the_optimum(seed: int) -> None:
    p = _regional(seed, splittable_share=1.0)
    norm = normalise(p)
    exact = solve(p, time_limit_s=5.0)  # one graph: the exact min-cost flow optimum
    assert exact.status == "optimal" and exact.stats["parts"] == 1
    cut = solve(p, time_limit_s=5.0, part_edges=400)
    assert cut.stats["components"] == 1 and cut.stats["parts"] >= 6
    check_feasible(norm, cut.edge_units)
    assert cut.objective == objective(norm, cut.edge_units)
    assert cut.bound >= exact.objective  # the parts' bound is still a bound
    assert cut.objective >= 0.97 * exact.objective  # shared offers cost little
    assert cut.objective >= int(edge_objective(norm, greedy(norm, np.arange(norm.n_edges))).sum())


def test_parts_with_unsplittable_needs_and_accepted_units_stay_feasible() -> None:
    p = _regional(6, splittable_share=0.7)
    norm = normalise(p)
    first = solve(p, time_limit_s=2.0, part_edges=400)
    fixed = np.where(np.random.default_rng(0).random(norm.n_edges) < 0.1, first.edge_units, 0)
    p.fixed = fixed
    norm = normalise(p)
    again = solve(p, time_limit_s=2.0, part_edges=400)
    check_feasible(norm, again.edge_units)
    assert again.bound >= again.objective
    assert again.objective >= int(edge_objective(norm, greedy(norm, np.arange(norm.n_edges))).sum())


def test_the_relaxation_leaves_out_unsplittable_needs_larger_than_the_offer() -> None:
    # Need 0 (5 units, unsplittable) fits neither offer (capacity 3 each); need 1 (2 units) fits offer 1.
    p = Problem(
        need_demand=[5, 2],
        need_splittable=[False, False],
        offer_capacity=[3, 3],
        edge_need=[0, 0, 1],
        edge_offer=[0, 1, 1],
        edge_value=[500, 500, 20],
    )
    norm = normalise(p)
    res = solve_flow(norm, np.arange(3), relaxation_scale(norm, np.arange(3)))
    assert res is not None and res.units.tolist() == [0, 0, 2]
    s = solve(p)
    assert s.status == "optimal" and s.objective == s.bound == 20


def test_the_cpsat_phase_is_skipped_when_its_window_cannot_reload_the_neighbourhood(monkeypatch) -> None:
    p = _problem(4)
    norm = normalise(p)
    greedy_obj = int(edge_objective(norm, greedy(norm, np.arange(norm.n_edges))).sum())
    monkeypatch.setattr(solver, "CP_LOAD_S_PER_EDGE", 1.0)  # every neighbourhood is too large for the window
    s = solve(p, time_limit_s=10.0)
    assert s.stats["search_skipped_edges"] > 0 and s.timings["ortools_cpsat"] == 0
    check_feasible(norm, s.edge_units)
    assert s.bound >= s.objective >= greedy_obj
    monkeypatch.setattr(solver, "CP_LOAD_S_PER_EDGE", 1e-9)
    assert "search_skipped_edges" not in solve(p, time_limit_s=1.0).stats


def test_the_dive_moves_needs_that_hold_what_the_repaired_needs_could_use(monkeypatch) -> None:
    # Organization 0 (offer 0, limit one station) serves needs 0 and 1 at stations 0 and 1 in the relaxation.  The
    # dive keeps one station for it; need 1 can then only use offer 1, which need 2 fills although it could go to
    # offer 2.  The dive frees need 2 too (it holds capacity need 1 could use) and reaches the optimum
    # 80 + 4 * 10 + 4 * 11 = 164; freeing only the needs of organization 0 would leave need 1 out (128, the greedy's).
    p = Problem(
        need_demand=[4, 4, 4],
        need_splittable=[True, True, True],
        offer_capacity=[8, 4, 4],
        edge_need=[0, 1, 1, 2, 2],
        edge_offer=[0, 0, 1, 1, 2],
        edge_value=[20, 20, 10, 12, 11],
        need_station=[0, 1, 2],
        offer_org=[0, 1, 2],
        org_max_stations=[1, -1, -1],
    )
    monkeypatch.setattr(solver, "CP_LOAD_S_PER_EDGE", 1.0)  # no CP-SAT phase: the dive's answer stands
    s = solve(p, time_limit_s=5.0)
    norm = normalise(p)
    assert int(edge_objective(norm, greedy(norm, np.arange(5))).sum()) == 128
    assert s.stats["dive_objective"] == s.objective == 164 and s.timings["ortools_cpsat"] == 0


def test_huge_station_ids_give_the_same_dive_as_small_ones() -> None:
    p = _problem(5)
    big = Problem(**{**p.__dict__, "need_station": np.asarray(p.need_station) * 10**17 + 7})
    a, b = solve(p, time_limit_s=0.5), solve(big, time_limit_s=0.5)
    check_feasible(normalise(big), b.edge_units)
    assert a.stats["dive_objective"] == b.stats["dive_objective"]


def test_the_dive_leaves_room_for_fixed_units_of_splittable_needs() -> None:
    # Seed 11 with a tenth of an answer accepted: the dive placed unsplittable needs on capacity that fixed units of
    # splittable needs hold (offer 119: 15 units used of 14).
    p = _problem(11)
    norm = normalise(p)
    rng = np.random.default_rng(11)
    spared = np.isin(norm.e_need, rng.choice(norm.n_needs, 3, replace=False))
    keep = ~spared & (rng.random(norm.n_edges) < 0.1)
    p.fixed = np.where(keep, solve(p, time_limit_s=1.0).edge_units, 0)
    s = solve(p, time_limit_s=2.0)
    norm = normalise(p)
    check_feasible(norm, s.edge_units)
    assert s.bound >= s.objective


@pytest.mark.parametrize(("seed", "splittable_share"), [(8, 0.95), (9, 0.95), (11, 0.9)])
def test_the_dive_keeps_the_relaxed_units_away_from_every_violation(seed: int, splittable_share: float, monkeypatch):
    """Rounding touches only the unsplittable needs the relaxation split and needs near them (sharing an offer with
    them, or with needs that do): farther away in the component the relaxed optimum is already an answer, and it
    stays (the last fill may add units to it, never take any)."""
    p = _regional(seed, splittable_share)
    norm = normalise(p)
    every = np.arange(norm.n_edges)
    relaxed = solve_flow(norm, every, relaxation_scale(norm, every)).units
    whole = ~norm.splittable[norm.e_need]
    near = np.bincount(norm.e_need[whole & (relaxed > 0)], minlength=norm.n_needs) > 1  # split over offers
    near[norm.e_need[whole & (relaxed > 0) & (relaxed != norm.demand[norm.e_need])]] = True  # served in part
    assert near.any()
    for _ in range(2):  # needs two offer-hops away from a violation
        offers = np.zeros(norm.n_offers, bool)
        offers[norm.e_offer[near[norm.e_need]]] = True
        near[norm.e_need[offers[norm.e_offer]]] = True
    away = ~near[norm.e_need]
    assert away.sum() > norm.n_edges / 3

    monkeypatch.setattr(solver, "CP_LOAD_S_PER_EDGE", 1.0)  # no CP-SAT search after the dive
    s = solve(p, time_limit_s=5.0)
    assert s.stats["components"] == 1 and s.stats.get("components_dive") == 1
    check_feasible(norm, s.edge_units)
    assert np.all(s.edge_units[away] >= relaxed[away])
    assert np.array_equal(s.edge_units[away & whole], relaxed[away & whole])


@pytest.mark.parametrize("seed", [4, 12])
def test_the_dive_flow_piece_by_piece_is_the_optimum_of_one_flow_over_all_its_edges(seed: int, monkeypatch) -> None:
    """The dive's splittable needs are solved per connected piece of their edges (pieces share no need and no
    offer), several small pieces to a graph: the same objective as one graph of every edge, within capacities."""
    p = _regional(seed, splittable_share=1.0)
    norm = normalise(p)
    rng = np.random.default_rng(seed)
    edges = np.flatnonzero(rng.random(norm.n_edges) < 0.1)  # 70-80 pieces of up to 29-50 edges
    monkeypatch.setattr(solver, "FLOW_BATCH_EDGES", 40)  # several pieces to a graph
    pieces, one_graph = np.zeros(norm.n_edges, np.int64), np.zeros(norm.n_edges, np.int64)
    pieces[edges] = solver._Run(norm, 5.0, 1).flow_in_pieces(norm, edges)
    one_graph[edges] = solve_flow(norm, edges, 1).units
    check_feasible(norm, pieces)
    assert edge_objective(norm, pieces).sum() == edge_objective(norm, one_graph).sum()


def test_the_dive_flow_leaves_out_offers_with_no_capacity_left(monkeypatch) -> None:
    """Offers the dive has filled (no residual capacity) carry nothing: their edges never reach OR-Tools, and the
    answer is still the optimum of one graph over every edge."""
    p = _regional(4, splittable_share=1.0)
    norm = normalise(p)
    rng = np.random.default_rng(4)
    full = rng.random(norm.n_offers) < 0.3
    norm = replace(norm, capacity=np.where(full, 0, norm.capacity))
    edges = np.flatnonzero(rng.random(norm.n_edges) < 0.2)
    sent: list[np.ndarray] = []

    def spy(n, e, scale=1):
        sent.append(e)
        return solve_flow(n, e, scale)

    monkeypatch.setattr(solver, "solve_flow", spy)
    pieces, one_graph = np.zeros(norm.n_edges, np.int64), np.zeros(norm.n_edges, np.int64)
    pieces[edges] = solver._Run(norm, 5.0, 1).flow_in_pieces(norm, edges)
    one_graph[edges] = solve_flow(norm, edges, 1).units
    assert full[norm.e_offer[edges]].any()
    assert not full[norm.e_offer[np.concatenate(sent)]].any()
    check_feasible(norm, pieces)
    assert edge_objective(norm, pieces).sum() == edge_objective(norm, one_graph).sum()
