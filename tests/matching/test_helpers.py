"""Fast helpers agree with the numpy functions they replace; CP-SAT bounds are only read with a solution."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from service.matching import cpsat
from service.matching.candidates import member, sorted_unique
from service.matching.components import grouped

ints = st.lists(st.integers(-50, 50), max_size=60)


@settings(max_examples=200, deadline=None)
@given(ints, ints)
def test_member_and_sorted_unique_match_numpy(values: list[int], members: list[int]) -> None:
    v, m = np.array(values, np.int64), np.array(members, np.int64)
    assert np.array_equal(member(v, m), np.isin(v, m))
    assert np.array_equal(member(v, np.unique(m), presorted=True), np.isin(v, m))
    assert np.array_equal(sorted_unique(v), np.unique(v))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=80), st.sampled_from([10, 70_000]))
def test_grouped_is_the_stable_sort_by_label_with_group_starts(labels: list[int], count: int) -> None:
    # 70,000 labels: past the uint16 path; labels up to 69,993, which uint16 would wrap and reorder
    lab = np.array(labels, np.int64) * (1 if count == 10 else 7_777)
    order, start = grouped(lab, count)
    assert np.array_equal(order, np.argsort(lab, kind="stable"))
    assert np.array_equal(start, np.searchsorted(lab[order], np.arange(count + 1)))


def test_cpsat_bound_is_not_read_without_a_solution() -> None:
    class Stopped:  # what CP-SAT reports when stopped before any solution: bound 0, not a bound
        objective_value = 0.0
        best_objective_bound = 0.0

    assert cpsat._bound(Stopped(), cp_model.UNKNOWN) is None
    assert cpsat._bound(Stopped(), cp_model.FEASIBLE) == 0
