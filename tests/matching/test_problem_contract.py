"""The public integer contract: inputs are validated with clear errors, outputs have the promised shape."""

from __future__ import annotations

import numpy as np
import pytest

from service.matching import Problem, solve


def _problem(**over) -> Problem:
    """Two needs, two offers, three edges."""
    base = dict(
        need_demand=[3, 2],
        need_splittable=[True, False],
        offer_capacity=[4, 2],
        edge_need=[0, 0, 1],
        edge_offer=[0, 1, 1],
        edge_value=[5, 1, 9],
    )
    base.update(over)
    return Problem(**base)


def test_solution_reports_status_objective_bound_and_units() -> None:
    s = solve(_problem(), time_limit_s=5.0)
    assert s.status == "optimal"
    assert s.edge_units.tolist() == [3, 0, 2]
    assert s.objective == 3 * 5 + 9 == s.bound
    assert s.edge_units.dtype.kind == "i"


def test_numpy_arrays_are_accepted_like_lists() -> None:
    p = _problem(
        need_demand=np.array([3, 2]),
        need_splittable=np.array([True, False]),
        offer_capacity=np.array([4, 2], np.int32),
        edge_need=np.array([0, 0, 1]),
        edge_offer=np.array([0, 1, 1]),
        edge_value=np.array([5, 1, 9], np.int16),
    )
    assert solve(p).objective == 24


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("need_demand", [3, 0], "need_demand"),
        ("need_splittable", [True], "need_splittable"),
        ("offer_capacity", [4, -1], "offer_capacity"),
        ("edge_need", [0, 0, 2], "edge_need"),
        ("edge_offer", [0, 1], "edge_offer"),
        ("edge_offer", [0, 1, -1], "edge_offer"),
        ("edge_value", [5, 1.5, 9], "edge_value"),
        ("edge_value", [[5, 1, 9]], "edge_value"),
        ("edge_value", ["a", "b", "c"], "edge_value"),
        ("edge_usage", [1, 1], "edge_usage"),
        ("incumbent", [0, -1, 0], "incumbent"),
        ("fixed", [0, 0, -2], "fixed"),
        ("change_penalty", -1, "change_penalty"),
        ("change_penalty", 1.5, "change_penalty"),
        ("edge_value", [2**60, 1, 1], "edge_value"),
    ],
)
def test_invalid_input_raises_a_clear_value_error(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        solve(_problem(**{field: value}))


def test_values_that_could_overflow_the_objective_are_rejected() -> None:
    with pytest.raises(ValueError, match="too large"):
        solve(_problem(need_demand=[2**40, 2], edge_value=[2**40, 1, 1]))


def test_values_up_to_the_magnitude_limit_are_accepted_and_one_more_is_rejected() -> None:
    at_limit = dict(need_demand=[2**20], need_splittable=[True], offer_capacity=[2**20], edge_need=[0], edge_offer=[0])
    s = solve(Problem(**at_limit, edge_value=[2**32]))  # the objective could reach exactly 2**52
    assert (s.status, s.objective, s.bound) == ("optimal", 2**52, 2**52)
    with pytest.raises(ValueError, match="too large"):
        solve(Problem(**at_limit, edge_value=[2**32 + 1]))


@pytest.mark.parametrize("splittable", [False, True])
def test_values_too_large_for_one_flow_graph_are_still_served_and_proven(splittable: bool) -> None:
    # One offer, 2,100 needs: a value of 2**51 times the graph's node count is beyond what OR-Tools' flow accepts
    # (it scales costs by the node count), so the flow cannot take this component; the answer must still serve
    # every need it can (the one of value 2**51 first), and CP-SAT proves it.
    n = 2100
    p = Problem(
        need_demand=[1] * n,
        need_splittable=[splittable] * n,
        offer_capacity=[n - 1],
        edge_need=list(range(n)),
        edge_offer=[0] * n,
        edge_value=[2**51] + [1] * (n - 1),
    )
    s = solve(p, time_limit_s=10.0)
    assert (s.status, s.objective, s.bound) == ("optimal", 2**51 + n - 2, 2**51 + n - 2)
    assert s.edge_units[0] == 1 and s.edge_units.sum() == n - 1


@pytest.mark.parametrize("value", [7, 2**51])
def test_a_need_of_a_million_units_is_proven_optimal(value: int) -> None:
    # The relaxation spreads an unsplittable need's value over its units; with 1,000,003 units and a value it does
    # not divide, the per-unit values are rounded (the lcm scale is capped), so the flow's bound alone is loose
    # (14 for a value of 7), and near the 2**52 limit the scaled values must not leave int64.
    p = Problem(
        need_demand=[1_000_003],
        need_splittable=[False],
        offer_capacity=[0, 1_000_003],
        edge_need=[0, 0],
        edge_offer=[0, 1],
        edge_value=[value, value],
    )
    s = solve(p, time_limit_s=10.0)
    assert (s.status, s.objective, s.bound) == ("optimal", value, value)
    assert s.edge_units.tolist() == [0, 1_000_003]


def test_fixed_units_that_cannot_be_honoured_make_the_run_infeasible() -> None:
    s = solve(_problem(fixed=[3, 0, 0], offer_capacity=[2, 2]))
    assert s.status == "infeasible"
    assert s.edge_units.tolist() == [0, 0, 0]


def test_a_fixed_part_of_an_unsplittable_need_is_infeasible() -> None:
    assert solve(_problem(fixed=[0, 0, 1])).status == "infeasible"


def test_fixed_units_stay_even_when_worse() -> None:
    s = solve(_problem(fixed=[0, 2, 0]))
    assert s.status == "optimal"
    assert s.edge_units.tolist() == [1, 2, 0]  # the unsplittable need no longer fits offer 1


def test_empty_problem_is_optimal_with_zero_objective() -> None:
    s = solve(
        Problem(need_demand=[], need_splittable=[], offer_capacity=[], edge_need=[], edge_offer=[], edge_value=[])
    )
    assert (s.status, s.objective, s.bound, len(s.edge_units)) == ("optimal", 0, 0, 0)


def test_negative_or_zero_values_are_never_served_without_incumbent() -> None:
    s = solve(_problem(edge_value=[0, -4, -1]))
    assert s.edge_units.tolist() == [0, 0, 0]


def test_change_penalty_keeps_an_equally_good_incumbent() -> None:
    # Both offers are worth the same: without a penalty either is optimal; with one, the incumbent stays.
    p = Problem(
        need_demand=[2],
        need_splittable=[True],
        offer_capacity=[2, 2],
        edge_need=[0, 0],
        edge_offer=[0, 1],
        edge_value=[7, 7],
        incumbent=[0, 2],
        change_penalty=1,
    )
    s = solve(p)
    assert s.edge_units.tolist() == [0, 2]
    assert s.objective == 14


def test_penalty_applies_to_units_dropped_below_the_incumbent() -> None:
    # Moving a unit to the better edge gains 3 and costs the penalty twice (one unit less, one unit more).
    p = Problem(
        need_demand=[3],
        need_splittable=[True],
        offer_capacity=[3, 3],
        edge_need=[0, 0],
        edge_offer=[0, 1],
        edge_value=[1, 4],
        incumbent=[3, 0],
        change_penalty=1,
    )
    s = solve(p)
    assert s.edge_units.tolist() == [0, 3]
    assert s.objective == 12 - 3 - 3
    p.change_penalty = 2
    assert solve(p).edge_units.tolist() == [3, 0]
