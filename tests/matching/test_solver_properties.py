"""The solver's optimum equals independent references on small random problems, and answers are feasible."""

from __future__ import annotations

import resource
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.matching import Problem, solve
from service.matching import greedy as greedy_module
from service.matching.greedy import fill, greedy
from service.matching.problem import MAX_OBJECTIVE, largest_objective, normalise
from tests.matching.reference import (
    brute_force,
    check_feasible,
    greedy_sequential,
    lp_splittable,
    milp_mixed,
    objective,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(
    draw,
    *,
    splittable: bool | None,
    max_needs: int = 5,
    usage: bool = False,
    limits: bool = False,
    incumbent: bool = True,
    coverage: bool = False,
) -> Problem:
    """A small random problem; `splittable` None mixes both kinds."""
    n = draw(st.integers(1, max_needs))
    m = draw(st.integers(1, 4))
    demand = draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    split = [splittable] * n if splittable is not None else draw(st.lists(st.booleans(), min_size=n, max_size=n))
    cap = draw(st.lists(st.integers(0, 12), min_size=m, max_size=m))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, m - 1)), min_size=1, max_size=8, unique=True))
    k = len(pairs)
    value = draw(st.lists(st.integers(-3, 20), min_size=k, max_size=k))
    kw: dict = {}
    if usage:
        kw["edge_usage"] = [draw(st.integers(0, 4)) if split[i] else draw(st.integers(0, 10)) for i, _ in pairs]
    if incumbent and draw(st.booleans()):
        kw["incumbent"] = draw(st.lists(st.integers(0, 4), min_size=k, max_size=k))
        kw["change_penalty"] = draw(st.integers(0, 5))
    if limits:
        kw["need_station"] = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
        kw["offer_org"] = draw(st.lists(st.integers(0, 1), min_size=m, max_size=m))
        kw["org_max_stations"] = draw(st.lists(st.integers(-1, 2), min_size=2, max_size=2))
    if coverage:
        kw.setdefault("need_station", draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
        kw["coverage_first"] = True
    return Problem(
        need_demand=demand,
        need_splittable=split,
        offer_capacity=cap,
        edge_need=[i for i, _ in pairs],
        edge_offer=[j for _, j in pairs],
        edge_value=value,
        **kw,
    )


def _solve_checked(p: Problem):
    """Solve and assert the invariants every answer must satisfy."""
    s = solve(p, time_limit_s=10.0)
    norm = normalise(p)
    assert s.status == "optimal"
    check_feasible(norm, s.edge_units)
    assert s.objective == objective(norm, s.edge_units)
    assert s.bound == s.objective
    return s, norm


@SETTINGS
@given(problems(splittable=True))
def test_splittable_optimum_equals_the_lp_optimum(p: Problem) -> None:
    s, norm = _solve_checked(p)
    assert s.objective == pytest.approx(lp_splittable(norm), abs=1e-6)


@SETTINGS
@given(problems(splittable=False, max_needs=5, usage=True))
def test_unsplittable_optimum_equals_brute_force(p: Problem) -> None:
    s, norm = _solve_checked(p)
    assert (0, s.objective) == brute_force(norm)


@SETTINGS
@given(problems(splittable=False, max_needs=5, limits=True))
def test_station_limits_optimum_equals_brute_force(p: Problem) -> None:
    s, norm = _solve_checked(p)
    assert (0, s.objective) == brute_force(norm)


@SETTINGS
@given(problems(splittable=None, usage=True, limits=True))
def test_mixed_problem_with_side_constraints_equals_the_milp(p: Problem) -> None:
    s, norm = _solve_checked(p)
    assert s.objective == pytest.approx(milp_mixed(norm), abs=1e-6)


@SETTINGS
@given(problems(splittable=False, max_needs=5, incumbent=False, coverage=True))
def test_coverage_first_maximises_stations_then_value(p: Problem) -> None:
    s, norm = _solve_checked(p)
    covered = len(set(norm.station[norm.e_need[s.edge_units > 0]].tolist()))
    assert (covered, s.objective) == brute_force(norm)


@settings(max_examples=40, deadline=None)
@given(problems(splittable=None, usage=True, limits=True), st.data())
def test_fixed_units_stay_or_the_run_is_infeasible(p: Problem, data) -> None:
    base = solve(p, time_limit_s=5.0)
    norm = normalise(p)
    # Fix a random subset of a feasible answer: always honourable.
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=norm.n_edges, max_size=norm.n_edges)))
    p.fixed = np.where(keep, base.edge_units, 0)
    s, norm = _solve_checked(p)
    assert np.all(s.edge_units >= p.fixed)
    assert s.objective == pytest.approx(milp_mixed(norm), abs=1e-6)


@SETTINGS
@given(problems(splittable=None, limits=True), st.sampled_from([(1,), (5, 7, 8, 9), (1_000_003, 2)]))
def test_values_scaled_up_to_the_magnitude_limit_scale_the_answer(p: Problem, demands: tuple[int, ...]) -> None:
    """Multiplying every value and the change penalty by K multiplies every answer's objective by K, so the optimum
    and its bound scale exactly, up to the largest values `normalise` accepts (objective 2**52).  Demands of 5, 7, 8
    and 9, or of a million, make the relaxation's scale (the lcm of the unsplittable needs' demands, at most 2,520)
    reach 2,520: scaled values and gains must not leave int64."""
    p = replace(
        p,
        need_demand=[demands[k % len(demands)] for k in range(len(p.need_demand))],
        offer_capacity=[c * max(demands) for c in p.offer_capacity],  # room for the large needs
    )
    small, _ = _solve_checked(p)
    k = MAX_OBJECTIVE // max(int(largest_objective(normalise(p))), 1)
    big = replace(p, edge_value=[v * k for v in p.edge_value], change_penalty=p.change_penalty * k)
    s, _ = _solve_checked(big)
    assert (s.objective, s.bound) == (small.objective * k, small.bound * k)


@SETTINGS
@given(problems(splittable=None, usage=True, limits=True), st.sampled_from([1_000, 999_983, 10**9]), st.data())
def test_units_in_the_billions_are_still_solved_to_proven_optimality(p: Problem, scale: int, data) -> None:
    """Demands, capacities and incumbents times up to a billion (unsplittable usages too, or not): still a feasible
    answer proven optimal (no reference here: HiGHS's MILP with big-M station links misjudges such magnitudes)."""
    grow = data.draw(st.booleans())
    split = list(p.need_splittable)
    usage = zip(p.edge_usage, p.edge_need, strict=True)
    p = replace(
        p,
        need_demand=[d * scale + data.draw(st.integers(0, 3)) for d in p.need_demand],
        offer_capacity=[c * scale for c in p.offer_capacity],
        edge_usage=[u * (scale if grow and not split[i] else 1) for u, i in usage],
        incumbent=None if p.incumbent is None else [h * scale for h in p.incumbent],
    )
    try:
        normalise(p)
    except ValueError:
        return  # beyond the magnitude limit
    _solve_checked(p)


# A component found by the property above: CP-SAT with one worker crawled through its domains inside one propagation
# call, past the time limit, until the process ran out of memory (std::bad_alloc, or an OOM kill in a test run).
_CRAWLING = """
from service.matching import Problem, solve
from service.matching.problem import normalise
from tests.matching.reference import check_feasible
p = Problem(
    need_demand=[3_000_000_003, 3_000_000_002, 3_000_000_001, 5_000_000_000, 4_000_000_002],
    need_splittable=[False, True, False, False, True],
    offer_capacity=[8_000_000_000, 4_000_000_000],
    edge_need=[0, 0, 1, 2, 2, 1, 4, 3],
    edge_offer=[1, 0, 0, 1, 0, 1, 0, 0],
    edge_value=[-1, 11, 20, 16, 6, 16, 6, 8],
    edge_usage=[4 * 10**9, 6 * 10**9, 4, 2 * 10**9, 4 * 10**9, 1, 4, 6 * 10**9],
    incumbent=[10**9, 2 * 10**9, 4 * 10**9, 2 * 10**9, 3 * 10**9, 3 * 10**9, 0, 4 * 10**9],
    change_penalty=2,
    need_station=[0, 1, 0, 0, 2],
    offer_org=[1, 1],
    org_max_stations=[0, -1],
)
s = solve(p, time_limit_s=10.0, workers=WORKERS)
check_feasible(normalise(p), s.edge_units)
print(s.status, s.objective, s.bound)
"""


@pytest.mark.parametrize("workers", [1, None])
def test_a_search_crawling_through_billions_stops_within_bounded_memory(workers: int | None) -> None:
    """In a child process limited to 3 GiB of address space: the solve returns a feasible answer (proven optimal
    with the default portfolio) instead of exhausting memory."""
    limit = 3 * 2**30

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    code = _CRAWLING.replace("WORKERS", repr(workers))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, preexec_fn=cap_memory, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    status, objective, bound = done.stdout.split()
    assert int(objective) == 26_000_000_050  # the optimum, found at once
    if workers is None:
        assert (status, int(bound)) == ("optimal", 26_000_000_050)
    else:  # one worker does not prove it before the memory watch stops the search
        assert status in ("optimal", "feasible") and int(bound) >= int(objective)


def test_a_component_with_units_in_the_billions_is_solved_to_its_optimum() -> None:
    p = Problem(
        need_demand=[5_000_000_001, 5_000_000_001, 1_000_000_002, 1_000_000_003, 2_000_000_001],
        need_splittable=[False, True, True, False, False],
        offer_capacity=[1_000_000_000, 7_000_000_000],
        edge_need=[4, 2, 2, 4, 3, 1, 1, 3],
        edge_offer=[0, 0, 1, 1, 0, 1, 0, 1],
        edge_value=[2, 11, 3, 19, 1, 17, 13, 5],
        edge_usage=[10, 3, 3, 4, 2, 4, 4, 10],
        incumbent=[3 * 10**9, 3 * 10**9, 3 * 10**9, 2 * 10**9, 3 * 10**9, 2 * 10**9, 0, 3 * 10**9],
        change_penalty=4,
        need_station=[0, 2, 0, 1, 2],
        offer_org=[1, 0],
        org_max_stations=[-1, 2],
    )
    # CP-SAT with one or two workers: about -3.4e10 after 5 s, unproven (HiGHS's MILP agrees on the optimum here).
    s, norm = _solve_checked(p)
    assert s.objective == -22_250_000_013 == pytest.approx(milp_mixed(norm), rel=1e-12)


def test_station_limit_spans_components_the_flow_solves_apart() -> None:
    # Organization 0 (limit 1) has offers in two components; the dive repairs only the component where organization
    # 1 (limit 0) broke its limit, and must count the station organization 0 already serves in the other one.
    p = Problem(
        need_demand=[1, 1, 1, 1, 1],
        need_splittable=[False] * 5,
        offer_capacity=[1, 1, 1, 0],
        edge_need=[0, 0, 1, 1, 0, 0],
        edge_offer=[0, 3, 0, 1, 1, 2],
        edge_value=[0, 0, 2, 1, 0, 1],
        need_station=[0, 1, 0, 0, 0],
        offer_org=[1, 0, 0, 0],
        org_max_stations=[1, 0],
    )
    s, norm = _solve_checked(p)
    assert (0, s.objective) == brute_force(norm)


@settings(SETTINGS, max_examples=400)
@given(problems(splittable=None, usage=True, limits=True), st.data(), st.sampled_from([1, 2, 3, None]))
def test_the_greedy_baseline_follows_its_rule_edge_by_edge(p: Problem, data, chunk: int | None) -> None:
    """The greedy's vectorised shortcuts (edges no limit can stop, edges that can no longer take units, and in a
    pass longer than two chunks the positions of needs served and offers emptied in earlier chunks) change nothing:
    the same units as the rule applied one edge at a time, incumbent, fixed units and limits included.  Chunks of
    1-3 positions make every problem's passes long; None keeps the real chunk size."""
    norm = normalise(p)
    if data.draw(st.booleans()):  # fixed units that fit: a slice of the greedy's own answer
        base = greedy(norm, np.arange(norm.n_edges))
        norm = normalise(replace(p, fixed=(base * data.draw(st.integers(0, 1))).tolist()))
    with pytest.MonkeyPatch.context() as mp:
        if chunk is not None:
            mp.setattr(greedy_module, "_RUN_CHUNK", chunk)
        assert np.array_equal(greedy(norm, np.arange(norm.n_edges)), greedy_sequential(norm))


@SETTINGS
@given(st.booleans().flatmap(lambda c: problems(splittable=None, usage=True, limits=True, coverage=c)), st.data())
def test_a_short_greedy_pass_over_a_large_problem_takes_what_the_whole_problem_state_takes(p: Problem, data) -> None:
    """A pass over a few edges of a problem with many more needs and offers runs on the sub-problem of its needs and
    offers: the same units as the rule applied one edge at a time, and as the whole problem's pass state (a fill's
    last pass too) with residual capacities and stations already opened elsewhere (which the sub-problem's needs do
    not hold: that case found a station numbering that left them out)."""
    n, m, k = len(p.need_demand), len(p.offer_capacity), len(p.edge_need)
    pad = 4 * k + 1  # needs and offers with no edges here (the rest of a province, say)
    big = replace(
        p,
        need_demand=[*p.need_demand, *[1] * pad],
        need_splittable=[*p.need_splittable, *[True] * pad],
        offer_capacity=[*p.offer_capacity, *[5] * pad],
        need_station=[*p.need_station, *[0] * pad],
        offer_org=[*p.offer_org, *[1] * pad],
    )
    norm, edges = normalise(big), np.arange(k)
    assert np.array_equal(greedy(norm, edges), greedy_sequential(norm))
    cap = np.array([data.draw(st.integers(0, c)) for c in norm.capacity])
    opened = {0: {data.draw(st.integers(0, 2))}} if data.draw(st.booleans()) else None
    start = np.zeros(k, np.int64)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(greedy_module, "_PART_FACTOR", 10**9)  # never a sub-problem: the pass state of the whole problem
        whole = greedy(norm, edges, start, cap=cap, opened=opened)
    assert np.array_equal(greedy(norm, edges, start, cap=cap, opened=opened), whole)
    assert (n + pad) + (m + pad) > 4 * k  # the passes above ran on their sub-problems
    # `fill` too: what the last pass adds to part of the greedy's answer (feasible), with stations opened elsewhere.
    part = np.where(data.draw(st.lists(st.booleans(), min_size=k, max_size=k)), greedy(norm, edges), 0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(greedy_module, "_PART_FACTOR", 10**9)
        whole = fill(norm, edges, part, opened=opened)
    assert np.array_equal(fill(norm, edges, part, opened=opened), whole)


@SETTINGS
@given(problems(splittable=None, usage=True, limits=True), st.data())
def test_filling_an_answer_only_adds_units_that_gain_and_stays_feasible(p: Problem, data) -> None:
    """`fill` keeps every unit of a feasible answer and adds only what gains; the greedy's own answer has nothing
    left to fill, and filling nothing (no incumbent or fixed units) is the greedy."""
    norm = normalise(p)
    every = np.arange(norm.n_edges)
    base = greedy(norm, every)
    assert np.array_equal(fill(norm, every, base), base)
    if not norm.has_incumbent:
        assert np.array_equal(fill(norm, every, np.zeros(norm.n_edges, np.int64)), base)
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=norm.n_edges, max_size=norm.n_edges)))
    start = np.where(keep, solve(p, time_limit_s=5.0).edge_units, 0)  # a feasible answer with room left
    filled = fill(norm, every, start)
    check_feasible(norm, filled)
    assert np.all(filled >= start)
    whole = ~norm.splittable[norm.e_need] & (start > 0)
    assert np.array_equal(filled[whole], start[whole])  # a need served whole stays as it was
    assert objective(norm, filled) >= objective(norm, start)
    assert objective(norm, filled) > objective(norm, start) or np.array_equal(filled, start)


def test_the_greedy_takes_station_ids_as_large_as_int64() -> None:
    big = 2**62
    p = Problem(
        need_demand=[2, 2, 2],
        need_splittable=[True, True, True],
        offer_capacity=[10, 10],
        edge_need=[0, 1, 2],
        edge_offer=[1, 1, 0],
        edge_value=[5, 5, 5],
        incumbent=[2, 2, 2],
        need_station=[big + 10, big + 20, big + 30],
        offer_org=[0, 1],
        org_max_stations=[-1, 1],  # the second organization may serve one station
    )
    norm = normalise(p)
    assert greedy(norm, np.arange(norm.n_edges)).tolist() == greedy_sequential(norm).tolist() == [2, 0, 2]
    check_feasible(norm, solve(p, time_limit_s=5.0).edge_units)


def _crowded(seed: int) -> Problem:
    """40 needs of 10 stations on 12 offers of 4 organizations (station limits 0-3 or none), about 150 edges: long
    greedy passes in which many positions share a need, an offer or an organization."""
    rng = np.random.default_rng(seed)
    n, m = 40, 12
    pairs = np.unique(np.stack([rng.integers(0, n, 200), rng.integers(0, m, 200)], axis=1), axis=0)
    split = rng.random(n) < 0.6
    k = len(pairs)
    kw: dict = {}
    if seed % 2:
        kw = {"incumbent": rng.integers(0, 3, k), "change_penalty": int(rng.integers(0, 4))}
    return Problem(
        need_demand=rng.integers(1, 7, n),
        need_splittable=split,
        offer_capacity=rng.integers(0, 15, m),
        edge_need=pairs[:, 0],
        edge_offer=pairs[:, 1],
        edge_value=rng.integers(-2, 30, k),
        edge_usage=np.where(split[pairs[:, 0]], rng.integers(0, 3, k), rng.integers(0, 9, k)),
        need_station=rng.integers(0, 10, n),
        offer_org=rng.integers(0, 4, m),
        org_max_stations=rng.integers(-1, 4, 4),
        **kw,
    )


@pytest.mark.parametrize("rounds", [True, False])
@pytest.mark.parametrize("chunk", [5, 16])
@pytest.mark.parametrize("seed", range(150))
def test_a_long_greedy_pass_in_rounds_takes_what_the_edge_by_edge_rule_takes(seed: int, chunk: int, rounds: bool):
    """Chunks of a long pass run in rounds (each position first for its need, offer and limited organization among
    those left goes at once), or one position at a time when the organizations' station rows would be too large:
    the same units as one edge at a time, with limits, incumbents and usage."""
    norm = normalise(_crowded(seed))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(greedy_module, "_RUN_CHUNK", chunk)
        if not rounds:
            mp.setattr(greedy_module, "_SLOTS_MAX_CELLS", 0)
        assert np.array_equal(greedy(norm, np.arange(norm.n_edges)), greedy_sequential(norm))
