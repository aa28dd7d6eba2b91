"""OR-Library GAP problems (all jobs must be assigned) reach their proven optima."""

from __future__ import annotations

import pytest

from bench.orlib import GAP_DIR, gap_value, load, to_problem
from service.matching import solve

pytestmark = pytest.mark.skipif(not GAP_DIR.is_dir(), reason=f"OR-Library GAP data not found at {GAP_DIR}")

SAMPLE = [("gap1", 0), ("gap4", 2), ("gap8", 4), ("gap12", 1)]


@pytest.mark.parametrize(("file", "index"), SAMPLE)
def test_gap_problem_is_solved_to_its_proven_optimum(file: str, index: int) -> None:
    inst = load(file)[index]
    s = solve(to_problem(inst), time_limit_s=30.0)
    served = int((s.edge_units > 0).sum())
    assert s.status == "optimal"
    assert gap_value(inst, s.objective, served) == inst.optimum
    assert s.bound == s.objective


@pytest.mark.slow
def test_every_gap1_to_gap12_problem_is_solved_to_optimum() -> None:
    misses = []
    for f in range(1, 13):
        for inst in load(f"gap{f}"):
            s = solve(to_problem(inst), time_limit_s=30.0)
            got = gap_value(inst, s.objective, int((s.edge_units > 0).sum()))
            if s.status != "optimal" or got != inst.optimum:
                misses.append((inst.name, s.status, got, inst.optimum))
    assert misses == []
