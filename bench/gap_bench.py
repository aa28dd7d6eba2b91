"""OR-Library gapa-gapd: the engine against plain CP-SAT on the textbook GAP model, same time limit."""

from __future__ import annotations

import time

import numpy as np
from ortools.sat.python import cp_model

from bench.orlib import GapInstance, gap_value, load, to_problem
from service.matching import solve


def textbook(inst: GapInstance, seconds: float, workers: int) -> tuple[int | None, float, str]:
    """Plain CP-SAT: x[agent, job] booleans, one agent per job, capacities; (value, seconds, status)."""
    m, n = inst.cost.shape
    model = cp_model.CpModel()
    x = [[model.new_bool_var("") for _ in range(n)] for _ in range(m)]
    for j in range(n):
        model.add_exactly_one(x[i][j] for i in range(m))
    for i in range(m):
        model.add(cp_model.LinearExpr.weighted_sum(x[i], inst.resource[i].tolist()) <= int(inst.capacity[i]))
    obj = cp_model.LinearExpr.weighted_sum([v for row in x for v in row], inst.cost.ravel().tolist())
    (model.maximize if inst.sense == "max" else model.minimize)(obj)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = workers
    t0 = time.perf_counter()
    status = solver.solve(model)
    took = time.perf_counter() - t0
    value = round(solver.objective_value) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None
    return value, took, solver.status_name(status).lower()


def engine(inst: GapInstance, seconds: float, workers: int) -> tuple[int | None, float, str]:
    """The engine's public path: `solve` on the GAP mapped to unsplittable needs with a big bonus per job (serving
    every job dominates), so its CP-SAT phase (full model, then `gap_search`) runs; (value, seconds, status)."""
    t0 = time.perf_counter()
    s = solve(to_problem(inst), time_limit_s=seconds, workers=workers)
    took = time.perf_counter() - t0
    return gap_value(inst, s.objective, int(np.count_nonzero(s.edge_units))), took, s.status


def _gap(value: int | None, optimum: int) -> str:
    """Relative gap to the known optimum in percent."""
    return "no solution" if value is None else f"{abs(value - optimum) / optimum * 100:.3f} %"


def run(files: list[str], seconds: float, index: str, workers: int = 2) -> list[str]:
    """Markdown rows: instance, optimum, engine (value, time, gap), textbook CP-SAT (value, time, gap)."""
    rows = [
        "| instance | optimum | engine value | engine time s | engine gap | CP-SAT value | CP-SAT time s "
        "| CP-SAT gap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(rows), flush=True)
    for f in files:
        insts = load(f)
        chosen = insts if index == "all" else [insts[int(index) - 1 if index != "last" else -1]]
        for inst in chosen:
            ev, et, es = engine(inst, seconds, workers)
            tv, tt, ts = textbook(inst, seconds, workers)
            rows.append(
                f"| {f}/{inst.name} | {inst.optimum} | {ev} ({es}) | {et:.1f} | {_gap(ev, inst.optimum)} "
                f"| {tv} ({ts}) | {tt:.1f} | {_gap(tv, inst.optimum)} |"
            )
            print(rows[-1], flush=True)
    return rows
