"""Process-parallel solve: large problems split into independent shares of components, solved in worker processes
and stitched; the answer, its bookkeeping and later re-solves are those of the in-process solve."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

from service.matching import Problem, Solution, parallel, solution_from_state, solve, solver
from service.matching.components import label
from service.matching.problem import normalise
from service.matching.solver import component_state
from tests.matching.reference import check_feasible, objective
from tests.matching.test_flow_first import _problem
from tests.matching.test_match_records import _need, _offer, _run, _units


def _regions(count: int, seed: int = 31, incumbent: bool = False) -> Problem:
    """`count` regions of `_problem` side by side (own needs, offers, stations and organizations, some with
    station limits): a multi-component problem as a country of separate regions gives."""
    ps = [_problem(seed + r, incumbent) for r in range(count)]
    n = np.cumsum([0] + [len(p.need_demand) for p in ps])
    m = np.cumsum([0] + [len(p.offer_capacity) for p in ps])
    st = np.cumsum([0] + [int(np.max(p.need_station)) + 1 for p in ps])
    orgs = np.cumsum([0] + [len(p.org_max_stations) for p in ps])

    def cat(f: str, off: np.ndarray | None = None) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(p, f)) + (0 if off is None else off[r]) for r, p in enumerate(ps)])

    kw = {"incumbent": cat("incumbent"), "change_penalty": 3} if incumbent else {}
    return Problem(
        need_demand=cat("need_demand"),
        need_splittable=cat("need_splittable"),
        offer_capacity=cat("offer_capacity"),
        edge_need=cat("edge_need", n),
        edge_offer=cat("edge_offer", m),
        edge_value=cat("edge_value"),
        need_station=cat("need_station", st),
        offer_org=cat("offer_org", orgs),
        org_max_stations=cat("org_max_stations"),
        need_key=np.arange(n[-1]) * 7 + 1000,  # keys unrelated to the indices
        offer_key=np.arange(m[-1]) * 11 + 5,
        **kw,
    )


@pytest.fixture
def parallel_always(monkeypatch):
    """Every problem is large enough for the parallel path (the workers run with the caller's solver settings); no
    CP-SAT phase (its answers depend on the time it gets, which differs between one process and several); one flow
    graph per component (packing small components into shared graphs depends on which components a process holds,
    and among equally good relaxed optima the graph decides which one the dive starts from)."""
    monkeypatch.setattr(solver, "PARALLEL_MIN_EDGES", 0)
    monkeypatch.setattr(solver, "CP_LOAD_S_PER_EDGE", 1.0)
    monkeypatch.setattr(solver, "FLOW_BATCH_EDGES", 1)


def _same(a, b) -> None:
    assert (a.status, a.objective, a.bound) == (b.status, b.objective, b.bound)
    assert np.array_equal(a.edge_units, b.edge_units)


@pytest.mark.parametrize(
    ("incumbent", "processes", "in_caller"), [(False, 2, True), (True, 2, True), (False, 3, True), (False, 2, False)]
)
def test_several_processes_give_the_answer_of_one(
    parallel_always, monkeypatch, incumbent: bool, processes: int, in_caller: bool
) -> None:
    monkeypatch.setattr(parallel, "IN_CALLER", in_caller)  # one bin in the calling process, or all in workers
    p = _regions(4, incumbent=incumbent)
    norm = normalise(p)
    assert label(norm, link_limits=True).count >= 4
    one = solve(p, time_limit_s=5.0)
    two = solve(p, time_limit_s=5.0, processes=processes)
    assert two.stats["processes"] == processes and "processes" not in one.stats
    _same(one, two)
    check_feasible(norm, two.edge_units)
    assert two.objective == objective(norm, two.edge_units)
    assert two.stats["components"] == one.stats["components"]
    # The same component rows (in another order) and the same per-need and per-offer hashes.
    s1, s2 = component_state(one), component_state(two)
    assert sorted(zip(s1["fingerprint"], s1["units_hash"], s1["status"], strict=True)) == sorted(
        zip(s2["fingerprint"], s2["units_hash"], s2["status"], strict=True)
    )
    assert s1["items"] == s2["items"] and s1["answer"] == s2["answer"]
    # The stitched components are those of the whole problem.
    comps = two.table.comps
    assert comps.count == one.table.comps.count
    for c in range(comps.count):
        e = comps.edges_of(c)
        assert np.all(comps.need_comp[norm.e_need[e]] == c) and np.all(comps.offer_comp[norm.e_offer[e]] == c)


def test_with_shared_flow_graphs_the_answer_is_as_good_and_the_bound_the_same(parallel_always, monkeypatch) -> None:
    monkeypatch.setattr(solver, "FLOW_BATCH_EDGES", 4_000)  # the default: regions of 3,000 edges share graphs
    p = _regions(4)
    norm = normalise(p)
    one = solve(p, time_limit_s=5.0)
    two = solve(p, time_limit_s=5.0, processes=2)
    check_feasible(norm, two.edge_units)
    assert two.objective == objective(norm, two.edge_units)
    assert two.bound == one.bound  # the relaxation's optimum does not depend on the graph
    assert abs(two.objective - one.objective) <= 0.01 * one.objective  # the dive's rounding may


def test_an_organization_with_a_station_limit_across_regions_keeps_its_regions_in_one_process(
    parallel_always,
) -> None:
    p = _regions(4)
    limited = int(np.flatnonzero(np.asarray(p.org_max_stations) >= 0)[0])  # an organization of the first region
    org = np.asarray(p.offer_org).copy()
    org[-1] = limited  # one of its offers now lies in the last region
    p.offer_org = org
    norm = normalise(p)
    _, offer_bin, count = parallel.bins(norm, 2)
    assert count == 2
    mine = np.flatnonzero(org == limited)
    assert len(set(offer_bin[mine].tolist())) == 1
    one = solve(p, time_limit_s=5.0)
    two = solve(p, time_limit_s=5.0, processes=2)
    _same(one, two)
    check_feasible(norm, two.edge_units)


def test_a_stitched_state_round_trips_and_re_solves_as_the_in_process_one(parallel_always, monkeypatch) -> None:
    monkeypatch.setattr(solver, "LOCAL_MIN_EDGES", 0)
    monkeypatch.setattr(solver, "LOCAL_MAX_SHARE", 1.0)
    monkeypatch.setattr(solver, "LOCAL_MAX_GAP", 1e9)
    p = _regions(4)
    one = solve(p, time_limit_s=5.0)
    two = solve(p, time_limit_s=5.0, processes=2)
    stored = json.loads(json.dumps(component_state(two)))
    restored = solution_from_state(stored)
    assert component_state(restored) == stored  # nothing lost on the way
    # Unchanged data, the answer as incumbent: every component with edges is reused.
    same = Problem(**{**p.__dict__, "incumbent": two.edge_units, "change_penalty": 1})
    for prev in (two, restored):
        again = solve(same, time_limit_s=5.0, previous=prev, processes=2)
        assert again.stats["components_reused"] >= int((two.table.method != "empty").sum())
        assert np.array_equal(again.edge_units, two.edge_units)
    # A small change: the local re-solve (in this process) from the stitched answer, stored or not, is the one
    # from the in-process answer.
    bump = np.zeros(len(p.need_demand), np.int64)
    bump[[3, 700]] = 1
    q = Problem(**{**same.__dict__, "need_demand": np.asarray(p.need_demand) + bump})
    here = solve(q, time_limit_s=5.0, previous=one)
    for prev in (two, restored):
        there = solve(q, time_limit_s=5.0, previous=prev, processes=2)
        assert there.stats["local_changed_needs"] == 2 and "processes" not in there.stats
        _same(here, there)


def test_a_re_solve_without_the_local_path_runs_in_processes_and_reuses_untouched_components(
    parallel_always, monkeypatch
) -> None:
    monkeypatch.setattr(solver, "LOCAL_MAX_SHARE", 0)
    p = _regions(4)
    first = solve(p, time_limit_s=5.0, processes=2)
    bump = np.zeros(len(p.need_demand), np.int64)
    bump[3] = 1  # in the first region only
    q = Problem(**{**p.__dict__, "incumbent": first.edge_units, "need_demand": np.asarray(p.need_demand) + bump})
    one = solve(q, time_limit_s=5.0, previous=first)
    two = solve(q, time_limit_s=5.0, previous=first, processes=2)
    assert two.stats["processes"] == 2
    assert two.stats["components_reused"] == one.stats["components_reused"] >= 3
    _same(one, two)


def test_invalid_input_is_a_value_error_before_any_process_starts(parallel_always, monkeypatch) -> None:
    def no_pool(processes: int):
        raise AssertionError("a process pool was asked for")

    monkeypatch.setattr(parallel, "_executor", no_pool)
    p = _regions(2)
    bad = Problem(**{**p.__dict__, "edge_offer": np.asarray(p.edge_offer)[:-1]})
    with pytest.raises(ValueError):
        solve(bad, time_limit_s=1.0, processes=2)
    for processes in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            solve(p, time_limit_s=1.0, processes=processes)


def test_a_problem_under_the_threshold_stays_in_process(monkeypatch) -> None:
    def no_pool(processes: int):
        raise AssertionError("a process pool was asked for")

    monkeypatch.setattr(parallel, "_executor", no_pool)
    p = _regions(2)
    assert normalise(p).n_edges < solver.PARALLEL_MIN_EDGES
    s = solve(p, time_limit_s=1.0, processes=2)
    assert "processes" not in s.stats
    # A single region is one component with edges: nothing to split.
    monkeypatch.setattr(solver, "PARALLEL_MIN_EDGES", 0)
    q = _regions(1)
    assert "processes" not in solve(q, time_limit_s=1.0, processes=2).stats


def test_the_pool_can_be_started_ahead_and_is_kept_between_solves(parallel_always) -> None:
    parallel.shutdown()
    assert parallel.warm_up(2) > 0
    pool = parallel._pool
    p = _regions(4)
    first = solve(p, time_limit_s=5.0, processes=2)
    again = solve(p, time_limit_s=5.0, processes=2)
    assert parallel._pool is pool  # no new processes for the second solve
    _same(first, again)


def test_match_runs_its_solve_in_processes_with_the_same_allocations(parallel_always) -> None:
    offers = [_offer("oa", "A", ("elder_care",), 6), _offer("ob", "B", ("child_care",), 6, area=("420111",))]
    needs = [_need("e1", "s1", "elder_care", 3), _need("e2", "s2", "elder_care", 3), _need("c1", "s3", "child_care", 4)]
    one = _run(needs, offers)
    two = _run(needs, offers, processes=2)
    assert two.stats["processes"] == 2
    assert _units(two) == _units(one) and (two.objective, two.bound) == (one.objective, one.bound)
    assert two.utilisation == one.utilisation and two.unmatched == one.unmatched
    again = _run(needs, offers, previous=two, processes=2)  # reuse from the stitched answer
    assert again.stats["components_reused"] == 2 and _units(again) == _units(one)


def test_coverage_first_keeps_each_station_in_one_process(parallel_always) -> None:
    p = Problem(**{**_regions(4).__dict__, "coverage_first": True})
    norm = normalise(p)
    need_bin, _, count = parallel.bins(norm, 2)
    assert count == 2
    station = norm.station
    assert all(len(set(need_bin[station == s].tolist())) == 1 for s in np.unique(station).tolist())
    two = solve(p, time_limit_s=2.0, processes=2)
    assert two.stats["processes"] == 2
    check_feasible(norm, two.edge_units)
    assert two.objective == objective(norm, two.edge_units) and two.bound >= two.objective


def test_a_broken_pool_falls_back_to_one_process(parallel_always, monkeypatch) -> None:
    class Broken:
        def submit(self, *args, **kw):
            raise BrokenProcessPool("a worker died")

        def shutdown(self, *args, **kw) -> None:
            pass

    monkeypatch.setattr(parallel, "_executor", lambda processes: Broken())
    p = _regions(4)
    s = solve(p, time_limit_s=5.0, processes=2)
    assert "processes" not in s.stats
    _same(s, solve(p, time_limit_s=5.0))


def test_a_full_dev_shm_falls_back_to_one_process_and_leaves_no_block(parallel_always, monkeypatch) -> None:
    # A container's /dev/shm is 64 MiB by default; a national bin needs ~45 MB. Reserving the block fails cleanly
    # (without the reservation, writing into it would kill the process with SIGBUS).
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(parallel.os, "posix_fallocate", full)
    before = set(os.listdir("/dev/shm"))
    p = _regions(4)
    s = solve(p, time_limit_s=5.0, processes=2)
    assert "processes" not in s.stats
    _same(s, solve(p, time_limit_s=5.0))
    assert set(os.listdir("/dev/shm")) - before == set()


def test_threads_asking_for_different_process_counts_all_get_answers(parallel_always, monkeypatch) -> None:
    # The service calls the engine from threads; a call that needs a bigger pool must not shut down the pool another
    # call is still submitting to (thread A is slow to prepare its bins, B enlarges the pool meanwhile).
    slow_thread, to_shared = "A", parallel.to_shared

    def slow(sub):
        if threading.current_thread().name == slow_thread:
            time.sleep(1.0)
        return to_shared(sub)

    monkeypatch.setattr(parallel, "to_shared", slow)
    p = _regions(4)
    alone = solve(p, time_limit_s=5.0)
    out: dict[str, object] = {}

    def run(processes: int) -> None:
        try:
            out[threading.current_thread().name] = solve(p, time_limit_s=5.0, processes=processes)
        except Exception as exc:  # reported below
            out[threading.current_thread().name] = exc

    a = threading.Thread(target=run, args=(3,), name="A")
    a.start()
    time.sleep(1.3)
    b = threading.Thread(target=run, args=(4,), name="B")
    b.start()
    a.join()
    b.join()
    for name in "AB":
        assert isinstance(out[name], Solution), out[name]
        assert out[name].stats.get("processes", 1) > 1  # both really ran in processes
        assert out[name].bound == alone.bound
