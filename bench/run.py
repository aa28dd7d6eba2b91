"""Benchmark: `.venv/bin/python -m bench.run --sizes city,province,national --gap gapa,gapb,gapc,gapd`.

Each size runs in its own process (so peak RSS is per size) and prints one markdown row.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
from ortools.graph.python import min_cost_flow

from bench.generate import LAYOUTS, generate
from service.matching import Weights, match, parallel, solver
from service.matching.candidates import build_candidates, index_records
from service.matching.greedy import greedy
from service.matching.match import build_problem
from service.matching.problem import normalise
from service.matching.solver import Solution, edge_objective


def raw_flow_seconds(sol: Solution, problem) -> float:
    """Raw OR-Tools min-cost flow of the same model (all needs splittable), one graph per connected component,
    timing only the OR-Tools calls; arrays are prepared beforehand with numpy."""
    norm = normalise(problem)
    comps = sol.table.comps
    total = 0.0
    for c in range(comps.count):
        e = comps.edges_of(c)
        if e.size == 0:
            continue
        needs, ln = np.unique(norm.e_need[e], return_inverse=True)
        offers, lo = np.unique(norm.e_offer[e], return_inverse=True)
        n, m = len(needs), len(offers)
        tails = np.concatenate([ln, np.arange(n), n + np.arange(m)]).astype(np.int32)
        heads = np.concatenate([n + lo, np.full(n + m, n + m)]).astype(np.int32)
        caps = np.concatenate([norm.demand[norm.e_need[e]], norm.demand[needs], norm.capacity[offers]])
        costs = np.concatenate([-norm.value[e], np.zeros(n + m, np.int64)])
        supplies = np.concatenate([norm.demand[needs], [-int(norm.demand[needs].sum())]])
        nodes = np.arange(n + 1, dtype=np.int32)
        nodes[-1] = n + m
        t0 = time.perf_counter()
        smcf = min_cost_flow.SimpleMinCostFlow()
        smcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
        smcf.set_nodes_supplies(nodes, supplies)
        smcf.solve()
        total += time.perf_counter() - t0
    return total


# glibc malloc keeping every page it got (no mmap for large blocks, no trimming of the heap): `--keep-memory`.
KEEP_MEMORY_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}


def first_touch_ms_per_mib(mib: int = 64) -> float:
    """Milliseconds per MiB to fill memory fresh from the kernel.  A virtual machine that hands freed memory back to
    its host (free page reporting; the benchmark machines do so within about 2 s) pays the host's page faults on
    every new page: 3-4.5 ms per MiB there against about 0.2 where pages stay backed.  A cold national run allocates
    several GiB of temporaries over its life, so this figure explains much of the spread between machines."""
    t0 = time.perf_counter()
    np.ones(mib * 2**20 // 8)
    return (time.perf_counter() - t0) * 1000 / mib


GAP_TOLERANCE = 0.001  # the service accepts a proven 0.1 % gap instead of waiting for CP-SAT to close it


def _kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` size field (VmHWM: peak RSS, VmRSS: RSS now) in KiB, 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pool_peak_rss_mib() -> tuple[float, float]:
    """Peak RSS of the engine's worker processes (sum over the workers, MiB) and the forkserver's RSS (MiB), read
    from /proc before the pool is shut down: the workers are the forkserver's children, not the bench's, so
    RUSAGE_CHILDREN does not see them while the forkserver lives."""
    pool = parallel._pool
    workers = sum(_kib(pid, "VmHWM") for pid in (pool._processes or {})) if pool is not None else 0
    from multiprocessing import forkserver

    server = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return workers / 1024, (_kib(server, "VmRSS") / 1024 if server else 0.0)


def one_size(
    name: str, time_limit: float, layout: str = "nested", processes: int = 1, warm: bool = False, repeat: int = 1
) -> dict:
    """All measurements of one size, in this process (`warm`: the engine's worker processes are started before the
    cold run, as a service would at start-up, so the cold run does not pay their start; `repeat` > 1: after
    everything else, that many cold runs and raw solves in all, for an engine / raw ratio of medians)."""
    inst = generate(name, layout=layout)
    pool_start = parallel.warm_up(processes) if warm and processes > 1 else 0.0
    kw = dict(
        pairings=inst.pairings,
        rejected=inst.rejected,
        time_limit_s=time_limit,
        gap_tolerance=GAP_TOLERANCE,
        processes=processes,
    )
    gc.collect()  # each timed phase starts with no collector debt of earlier phases (as timeit and pyperf do)
    t0 = time.perf_counter()
    res = match(inst.needs, inst.offers, inst.orgs, inst.stations, **kw)
    total = time.perf_counter() - t0
    cold_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # generator records + one cold run
    cold_workers_rss, _ = pool_peak_rss_mib()
    sol = res.solution
    ix = index_records(inst.needs, inst.offers, inst.orgs, inst.stations)
    cand = build_candidates(ix, Weights(), inst.pairings, inst.rejected)
    problem = build_problem(ix, cand, incumbent=None, fixed=None, change_penalty=1, coverage_first=False)
    norm = normalise(problem)
    tg = time.perf_counter()
    g_units = greedy(norm, np.arange(norm.n_edges))
    greedy_s = time.perf_counter() - tg
    g_obj = int(edge_objective(norm, g_units).sum())
    raw = raw_flow_seconds(sol, problem)
    # Re-solve after 1 % of the needs change quantity.
    rng = np.random.default_rng(1)
    changed = set(rng.choice(len(inst.needs), size=max(1, len(inst.needs) // 100), replace=False).tolist())
    needs2 = [replace(n, quantity=n.quantity + 1) if k in changed else n for k, n in enumerate(inst.needs)]
    gc.collect()
    t1 = time.perf_counter()
    res2 = match(needs2, inst.offers, inst.orgs, inst.stations, previous=res, **kw)
    resolve = time.perf_counter() - t1
    # The same re-solve without the local re-solve (whole touched components), for the objective it gives up.
    share, solver.LOCAL_MAX_SHARE = solver.LOCAL_MAX_SHARE, 0
    try:
        gc.collect()
        t2 = time.perf_counter()
        full = match(needs2, inst.offers, inst.orgs, inst.stations, previous=res, **kw)
        full_s = time.perf_counter() - t2
    finally:
        solver.LOCAL_MAX_SHARE = share
    t = res.timings
    # Repeats last, so the cold run, its peak RSS and the first re-solve are measured as without them.
    engine_runs = [total - t["candidates"] - t["explain"]]
    raw_runs = [raw + t["solve_ortools_cpsat"]]
    for _ in range(repeat - 1):
        gc.collect()
        t3 = time.perf_counter()
        again = match(inst.needs, inst.offers, inst.orgs, inst.stations, **kw)
        took = time.perf_counter() - t3
        engine_runs.append(took - again.timings["candidates"] - again.timings["explain"])
        raw_runs.append(raw_flow_seconds(again.solution, problem) + again.timings["solve_ortools_cpsat"])
    workers_rss, server_rss = pool_peak_rss_mib()
    parallel.shutdown()
    return {
        "keep_memory": os.environ.get("MALLOC_MMAP_MAX_") == "0",
        "processes": processes,
        "warm_pool_start_s": pool_start,
        "parallel_bins": sol.stats.get("processes", 1),
        "parallel_split_s": t.get("solve_parallel_split", 0.0),
        "parallel_overhead_s": t.get("solve_parallel_overhead", 0.0),
        "parallel_stitch_s": t.get("solve_parallel_stitch", 0.0),
        "resolve_bins": res2.solution.stats.get("processes", 1),
        "full_resolve_bins": full.solution.stats.get("processes", 1),
        "rounded": sol.stats.get("components_rounded", 0),
        "size": name if layout == "nested" else f"{name} ({layout})",
        "needs": len(inst.needs),
        "offers": len(inst.offers),
        "edges": int(norm.n_edges),
        "components": sol.stats["components"],
        "cp_components": sol.stats.get("components_cpsat", 0)
        + sol.stats.get("components_greedy", 0)
        + sol.stats.get("components_dive", 0),
        "candidates_s": t["candidates"],
        "prepare_s": t["solve_prepare"],
        "flow_s": t["solve_flow"],
        "cpsat_s": t["solve_cpsat"],
        "explain_s": t["explain"],
        "total_s": total,
        "ortools_flow_s": t["solve_ortools_flow"],
        "ortools_cpsat_s": t["solve_ortools_cpsat"],
        "raw_flow_s": raw,
        "engine_runs_s": engine_runs,  # per cold run: total less candidates and explanations
        "raw_runs_s": raw_runs,  # per cold run: raw flow plus that run's CP-SAT time
        "status": res.status,
        "objective": res.objective,
        "bound": res.bound,
        "greedy_objective": g_obj,
        "units": int(sol.edge_units.sum()),
        "greedy_units": int(g_units.sum()),
        "greedy_s": greedy_s,
        "dive_s": t.get("solve_dive", 0.0),
        "dive_objective": sol.stats.get("dive_objective", res.objective),
        "resolve_status": res2.status,
        "resolve_s": resolve,
        "resolve_reused": res2.solution.stats.get("components_reused", 0),
        "resolve_objective": res2.objective,
        "resolve_bound": res2.bound,
        "resolve_local_edges": res2.solution.stats.get("local_free_edges", 0),
        "resolve_solve_s": res2.timings["solve"],
        "full_resolve_s": full_s,
        "full_resolve_objective": full.objective,
        "full_resolve_bound": full.bound,
        "full_resolve_solve_s": full.timings["solve"],
        "churn": [len(res2.churn.added), len(res2.churn.removed), len(res2.churn.changed)],
        "peak_rss_mib": cold_rss,
        "peak_rss_all_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # Worker processes: their peak RSS summed after the cold run and after the whole bench (the pool is kept
        # between calls), the forkserver's RSS, and RUSAGE_CHILDREN after the pool's shutdown (waited-for children
        # only: the workers are the forkserver's, so this misses them).
        "workers_peak_rss_cold_mib": cold_workers_rss,
        "workers_peak_rss_all_mib": workers_rss,
        "forkserver_rss_mib": server_rss,
        "children_rusage_maxrss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


HEADER = (
    "| size | needs | offers | edges | components (CP-SAT) | candidates s | model+components s | flow s "
    "| dive s | CP-SAT s | explain s | total s | answer after dive s (objective vs final) | raw OR-Tools s "
    "| engine / raw | status | objective vs greedy | units vs greedy "
    "| re-solve 1 % s (vs cold; objective vs full re-solve) "
    "| peak RSS MiB: cold run (whole bench) | processes (bins): worker peak RSS MiB cold (whole bench) |"
)


def _engine_ratio(r: dict, raw: float) -> str:
    """Engine / raw of the cold run, or the ratio of the medians over repeated cold runs (`--repeat`)."""
    runs = r.get("engine_runs_s", [])
    if len(runs) > 1:
        ratio = statistics.median(runs) / max(statistics.median(r["raw_runs_s"]), 1e-9)
        return f"{ratio:.2f}x (medians of {len(runs)})"
    return f"{(r['total_s'] - r['candidates_s'] - r['explain_s']) / max(raw, 1e-9):.2f}x"


def row(r: dict) -> str:
    """One markdown row."""
    raw = r["raw_flow_s"] + r["ortools_cpsat_s"]
    answer = r["candidates_s"] + r["prepare_s"] + r["flow_s"] + r["dive_s"] + r["explain_s"]
    gap = (r["bound"] - r["objective"]) / max(r["bound"], 1) * 100
    return (
        f"| {r['size']} | {r['needs']:,} | {r['offers']:,} | {r['edges']:,} | {r['components']:,} "
        f"({r['cp_components']}) | {r['candidates_s']:.3f} | {r['prepare_s']:.3f} | {r['flow_s']:.3f} "
        f"| {r['dive_s']:.3f} | {r['cpsat_s'] - r['dive_s']:.3f} | {r['explain_s']:.3f} | {r['total_s']:.3f} "
        f"| {answer:.3f} ({(r['dive_objective'] / max(r['objective'], 1) - 1) * 100:+.3f} %) | {raw:.3f} "
        f"| {_engine_ratio(r, raw)} | {r['status']} "
        f"(gap {gap:.3f} %) | +{(r['objective'] / max(r['greedy_objective'], 1) - 1) * 100:.1f} % "
        f"| +{(r['units'] / max(r['greedy_units'], 1) - 1) * 100:.1f} % "
        f"| {r['resolve_s']:.3f} ({r['resolve_s'] / r['total_s'] * 100:.0f} %, {r['resolve_status']}; "
        f"{(r['resolve_objective'] / max(r['full_resolve_objective'], 1) - 1) * 100:+.3f} %) "
        f"| {r['peak_rss_mib']:.0f} ({r.get('peak_rss_all_mib', r['peak_rss_mib']):.0f}) "
        f"| {r.get('processes', 1)} ({r.get('parallel_bins', 1)}): {r.get('workers_peak_rss_cold_mib', 0):.0f} "
        f"({r.get('workers_peak_rss_all_mib', 0):.0f}) |"
    )


def main() -> None:
    """Parse flags, run each size in a subprocess, run the GAP comparison, print markdown tables."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="city,province,national")
    ap.add_argument("--gap", default="gapa,gapb,gapc,gapd")
    ap.add_argument("--gap-seconds", type=float, default=60.0)
    ap.add_argument("--gap-instances", default="last", help="'last' (largest), 'all' or a 1-based index")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--layout", default="nested", choices=LAYOUTS, help="county geography (bench.generate)")
    ap.add_argument("--processes", type=int, default=1, help="match(processes=N): cold run and re-solves")
    ap.add_argument("--warm-pool", action="store_true", help="start the worker processes before the cold run")
    ap.add_argument(
        "--repeat", type=int, default=1, help="cold runs and raw solves per size: engine / raw as a ratio of medians"
    )
    ap.add_argument(
        "--keep-memory",
        action="store_true",
        help="run each size with glibc malloc keeping the pages it got (MALLOC_MMAP_MAX_=0, no trimming), so only "
        "the first use of each page pays a fault",
    )
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.time_limit, args.layout, args.processes, args.warm_pool, args.repeat)))
        return
    sizes = [s for s in args.sizes.split(",") if s]
    if sizes:
        # Measured in a child of its own: a forked child's peak RSS starts from its parent's (Linux keeps the high
        # water mark across fork and exec), so 64 MiB touched here would show in the province's peak.
        probe = [sys.executable, "-c", "from bench.run import first_touch_ms_per_mib as f; print(f())"]
        per_mib = float(subprocess.run(probe, capture_output=True, text=True, check=True).stdout)
        print(
            f"memory: {per_mib:.2f} ms per MiB touched fresh from the kernel; "
            f"malloc {'keeps its pages (--keep-memory)' if args.keep_memory else 'as default'}\n"
        )
        print(HEADER)
        print("|" + "---|" * (HEADER.count("|") - 1))
    flags = ["--time-limit", str(args.time_limit), "--layout", args.layout, "--processes", str(args.processes)]
    flags += ["--warm-pool"] if args.warm_pool else []
    flags += ["--repeat", str(args.repeat)]
    for s in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "bench.run", "--one", s, *flags],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **KEEP_MEMORY_ENV} if args.keep_memory else None,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(row(r), flush=True)
        print(f"<!-- {json.dumps(r)} -->", flush=True)
    files = [g for g in args.gap.split(",") if g]
    if files:
        from bench.gap_bench import run

        print()
        run(files, args.gap_seconds, args.gap_instances)


if __name__ == "__main__":
    main()
