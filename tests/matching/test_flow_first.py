"""Flow-first path on mid-size problems: the dive and the CP-SAT repair give feasible answers, never below greedy."""

from __future__ import annotations

import numpy as np
import pytest

from service.matching import Problem, solve
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
    return Problem(need_demand=demand, need_splittable=split, offer_capacity=rng.integers(0, 20, m),
                   edge_need=pairs[0], edge_offer=pairs[1], edge_value=value, need_station=station,
                   offer_org=offer_org, org_max_stations=limit, **kw)


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
