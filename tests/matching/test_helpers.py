"""Fast helpers agree with the numpy functions (or plain Python) they replace; CP-SAT bounds are only read with a
solution."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from service.matching import cpsat
from service.matching.candidates import member, sorted_unique
from service.matching.components import grouped, key_rows
from service.matching.explain import MAX_NAMED, _top_named
from service.matching.greedy import _UNSEEN, _density_order, _first

ints = st.lists(st.integers(-50, 50), max_size=60)


@settings(max_examples=200, deadline=None)
@given(ints, ints)
def test_member_and_sorted_unique_match_numpy(values: list[int], members: list[int]) -> None:
    v, m = np.array(values, np.int64), np.array(members, np.int64)
    assert np.array_equal(member(v, m), np.isin(v, m))
    assert np.array_equal(member(v, np.unique(m), presorted=True), np.isin(v, m))
    assert np.array_equal(sorted_unique(v), np.unique(v))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-5, 30), max_size=40), st.data())
def test_key_rows_are_what_a_binary_search_of_the_previous_keys_finds(previous: list[int], data) -> None:
    # The keys of this run: the previous ones shuffled (the re-solve's fast path), some dropped, or others added.
    prev = np.sort(np.array(previous, np.int64))
    keys = np.array(data.draw(st.permutations(previous)), np.int64)
    if data.draw(st.booleans()):
        keys = np.array(
            data.draw(st.lists(st.sampled_from([*previous, 31, 32]), max_size=40)) if previous else [], np.int64
        )
    pos, found = key_rows(prev, keys, np.argsort(keys, kind="stable"))
    want = np.minimum(np.searchsorted(prev, keys), max(len(prev) - 1, 0))
    assert np.array_equal(found, prev[want] == keys if len(prev) else np.zeros(len(keys), bool))
    assert np.array_equal(pos[found], want[found])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=80), st.sampled_from([10, 70_000]))
def test_grouped_is_the_stable_sort_by_label_with_group_starts(labels: list[int], count: int) -> None:
    # 70,000 labels: past the uint16 path; labels up to 69,993, which uint16 would wrap and reorder
    lab = np.array(labels, np.int64) * (1 if count == 10 else 7_777)
    order, start = grouped(lab, count)
    assert np.array_equal(order, np.argsort(lab, kind="stable"))
    assert np.array_equal(start, np.searchsorted(lab[order], np.arange(count + 1)))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-3, 3), max_size=80),
    st.sampled_from([1.0, 0.5, 1 / 3, 40_000.0]),
    st.sampled_from(["ascending", "shuffled"]),
)
def test_density_order_is_highest_density_first_then_position(levels: list[int], step: float, layout: str) -> None:
    # whole densities within 2**16 of each other take the radix path; halves, thirds, a span of 240,000 and
    # positions out of order take the two-key sort: every path gives the same order
    density = np.array(levels, np.float64) * step
    positions = np.arange(len(levels), dtype=np.int64) * 3
    if layout == "shuffled":
        positions = np.random.default_rng(len(levels)).permutation(positions)
    expected = sorted(range(len(levels)), key=lambda k: (-density[k], positions[k]))
    assert _density_order(positions, density).tolist() == expected


@pytest.mark.parametrize("span", [2**16 - 1, 2**16, 2**16 + 1])
def test_density_order_at_the_edge_of_the_sixteen_bit_key(span: int) -> None:
    # A span of 2**16 - 1 still fits the radix key; 2**16 would wrap to 0 in 16 bits and put the lowest density
    # first, so it must take the two-key sort.
    density = np.array([0.0, span, 1.0, span - 1.0, 0.0, span], np.float64)
    positions = np.arange(len(density), dtype=np.int64)
    assert _density_order(positions, density).tolist() == [1, 5, 3, 2, 0, 4]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=80))
def test_first_marks_each_keys_first_position_and_leaves_the_scratch_clean(keys: list[int]) -> None:
    scratch = np.full(31, _UNSEEN, np.int64)
    out = _first(np.array(keys, np.int64), scratch)
    assert out.tolist() == [keys.index(k) == p for p, k in enumerate(keys)]
    assert np.all(scratch == _UNSEEN)  # the next round reuses it


def test_cpsat_bound_is_not_read_without_a_solution() -> None:
    class Stopped:  # what CP-SAT reports when stopped before any solution: bound 0, not a bound
        objective_value = 0.0
        best_objective_bound = 0.0

    assert cpsat._bound(Stopped(), cp_model.UNKNOWN) is None
    assert cpsat._bound(Stopped(), cp_model.FEASIBLE) == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 7), st.sampled_from([0.5, 1.0, 1.0, 2.5, 7.0])), max_size=60)
)
def test_names_are_each_needs_first_distinct_others_by_value_then_index(pairs: list[tuple[int, int, float]]) -> None:
    """What `_taken_by` names per short need: distinct other needs at their best value per unit, highest first, ties
    by index, MAX_NAMED at most; needs in order."""
    best: dict[tuple[int, int], float] = {}
    for i, k, p in pairs:
        best[i, k] = max(best.get((i, k), p), p)
    want = []
    for i in sorted({i for i, _ in best}):
        mine = sorted(((-p, k) for (j, k), p in best.items() if j == i))[:MAX_NAMED]
        want += [(i, k, -q) for q, k in mine]
    arr = np.array(pairs, np.float64).reshape(-1, 3)
    i, k, p = _top_named(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2], 8)
    assert list(zip(i.tolist(), k.tolist(), p.tolist(), strict=True)) == want
