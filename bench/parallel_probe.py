"""Costs of the process-parallel solve: `PYTHONPATH=. .venv/bin/python -m bench.parallel_probe [--sizes 25000,...]`.

Prints the pool's start (forkserver first use, new pool, reused pool, spawn for comparison), the split and transfer
of national's bins, and 1 vs 2 processes on random sets of national's components (warm pool, median of 3), which is
what PARALLEL_MIN_EDGES rests on.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from bench.generate import generate
from service.matching import Weights, parallel, solve, solver
from service.matching import components as cc
from service.matching.candidates import build_candidates, index_records
from service.matching.match import build_problem
from service.matching.problem import Normalised, normalise


def _noop(x: int) -> int:
    """A task that only proves the worker is up (imports the engine if the start method did not)."""
    import service.matching.solver  # noqa: F401

    return x


def _edges(sub: Normalised) -> int:
    """A task that receives a sub-problem."""
    return sub.n_edges


def start_costs() -> None:
    """Pool start: forkserver first use, new pool with the server up, reused pool, spawn."""
    parallel.shutdown()
    t0 = time.perf_counter()
    list(parallel._executor(2).map(_noop, range(2)))
    print(
        f"forkserver pool, first use in this process (server + preload + 2 workers): {time.perf_counter() - t0:.3f} s"
    )
    t0 = time.perf_counter()
    list(parallel._executor(2).map(_noop, range(2)))
    print(f"reused pool, 2 no-op tasks: {(time.perf_counter() - t0) * 1e3:.2f} ms")
    parallel.shutdown()
    t0 = time.perf_counter()
    list(parallel._executor(2).map(_noop, range(2)))
    print(f"forkserver pool, new pool with the server up: {time.perf_counter() - t0:.3f} s")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_noop, range(2)))
        print(f"spawn pool (start + imports in the child): {time.perf_counter() - t0:.3f} s")


def national() -> Normalised:
    """National's problem, validated."""
    inst = generate("national")
    ix = index_records(inst.needs, inst.offers, inst.orgs, inst.stations)
    cand = build_candidates(ix, Weights(), inst.pairings, inst.rejected)
    return normalise(build_problem(ix, cand, incumbent=None, fixed=None, change_penalty=1, coverage_first=False))


def transfer(norm: Normalised) -> None:
    """Split of national into two bins and the cost of moving them to a worker."""
    t0 = time.perf_counter()
    need_bin, offer_bin, count = parallel.bins(norm, 2)
    t1 = time.perf_counter()
    active, edge_bin = cc.active_edges(norm), need_bin[norm.e_need]
    subs = [
        parallel.sub_problem(
            norm,
            np.flatnonzero(need_bin == b),
            np.flatnonzero(offer_bin == b),
            np.flatnonzero(active & (edge_bin == b)),
        )
        for b in range(count)
    ]
    t2 = time.perf_counter()
    print(f"bins {t1 - t0:.3f} s, sub-problems {t2 - t1:.3f} s, edges per bin {[s.n_edges for s in subs]}")
    t0 = time.perf_counter()
    blobs = [pickle.dumps(s, protocol=5) for s in subs]
    print(f"pickled: {time.perf_counter() - t0:.3f} s, {[round(len(b) / 2**20, 1) for b in blobs]} MiB")
    pool = parallel._executor(2)
    for _ in range(2):
        t0 = time.perf_counter()
        list(pool.map(_edges, subs))
        print(f"both through the pool's pipe and back (caller idle): {time.perf_counter() - t0:.3f} s")
    t0 = time.perf_counter()
    blocks = [parallel.to_shared(s) for s in subs]
    print(f"both into shared memory: {time.perf_counter() - t0:.3f} s")
    for shm, _ in blocks:
        shm.close()
        shm.unlink()


def by_size(norm: Normalised, targets: list[int]) -> None:
    """1 vs 2 processes on random sets of components of about `targets` active edges."""
    solver.PARALLEL_MIN_EDGES = 0
    comps = cc.label(norm, link_limits=True)
    sizes = np.diff(comps.edge_start)
    order = np.random.default_rng(0).permutation(np.flatnonzero(sizes > 0))
    parallel.warm_up(2)
    for target in targets:
        take = order[: np.searchsorted(np.cumsum(sizes[order]), target) + 1]
        needs = np.flatnonzero(np.isin(comps.need_comp, take))
        offers = np.flatnonzero(np.isin(comps.offer_comp, take))
        edges = np.flatnonzero(cc.active_edges(norm) & np.isin(comps.need_comp[norm.e_need], take))
        sub = parallel.sub_problem(norm, needs, offers, edges)
        res: dict[int, list[tuple[float, int, int]]] = {1: [], 2: []}
        for _ in range(3):
            for procs in (1, 2):
                t0 = time.perf_counter()
                s = solve(sub, 10.0, gap_tolerance=0.001, processes=procs)
                res[procs].append((time.perf_counter() - t0, s.objective, s.bound))
        m1, m2 = (float(np.median([r[0] for r in res[k]])) for k in (1, 2))
        print(
            f"{sub.n_edges:>9,} edges, {len(take)} components: 1 process {m1:.3f} s, 2 processes {m2:.3f} s "
            f"({m1 / m2:.2f}x); objective {res[1][0][1]} vs {res[2][0][1]}, bound {res[1][0][2]} vs {res[2][0][2]}",
            flush=True,
        )


def main() -> None:
    """Run the three probes."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="25000,50000,100000,200000,400000,800000")
    args = ap.parse_args()
    start_costs()
    norm = national()
    transfer(norm)
    by_size(norm, [int(x) for x in args.sizes.split(",") if x])
    parallel.shutdown()


if __name__ == "__main__":
    main()
