"""Process-parallel `solve`: independent shares ("bins") of the components, one solved in the calling process and the
others in worker processes, then stitched into one `Solution`.

The components are labelled as in a linked run (`components.label(link_limits=True)`: an organization with a
station limit keeps all its offers in one component, and so do the needs of a station in coverage-first runs), so
no constraint spans two bins; bins get whole components, largest first into the least loaded bin by active edges.
Each bin is a sub-problem of its needs, offers and active edges (inactive edges carry no units in any answer),
re-indexed in the same order but keeping the need and offer keys, the station and organization numbers and the
organizations' limits, so its component fingerprints, units hashes and item hashes are those of the whole problem.
Each bin is solved by the sequential `solver.solve_normalised` with the whole problem's component notion (`linked`),
the same deadline and the caller's solver settings.  A worker's bin reaches it through shared memory, written
before the caller starts on its own bin (through the pool's pipe, the transfer would wait on the interpreter lock
that OR-Tools holds in the caller).

Same answer as one process when every component gets the same flow graph and the same decisions; what can differ:
small components packed into shared flow graphs (FLOW_BATCH_EDGES) are packed by bin, and among equally good relaxed
optima the graph decides which one the dive rounds (national: +636 of 280 M, bound equal); the gap check before the
CP-SAT phase, the check that its neighbourhood fits the stall window and the greedy guard are taken per bin; and the
CP-SAT phase is time-limited anyway.

The pool is created on first use and kept for later calls (its start, with the imports of numpy, SciPy and OR-Tools,
is paid once: about 0.5 s); it uses the "forkserver" start method (never plain fork: the service calls the engine
from a thread of an asyncio process), with the engine preloaded in the server, and is shut down at exit.  As with
any non-fork start method, the caller's main module must be importable without side effects (`if __name__ ==
"__main__":`): the workers import it.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields, replace
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from service.matching import components as cc
from service.matching import solver
from service.matching.problem import Normalised, sub_problem
from service.matching.solver import ComponentTable, Solution, SolveOptions, _infeasible, solve_normalised

log = logging.getLogger(__name__)
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
# Per-bin timings that are phases of the wall clock (bins run side by side: the slowest counts); the others (time
# inside OR-Tools, greedy) are work and add up.
_WALL_PHASES = ("prepare", "flow", "dive", "cpsat")

# Bin 0 is solved in the calling process (`processes` = N uses N - 1 workers); False: every bin in a worker.
IN_CALLER = True

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_retired: list[ProcessPoolExecutor] = []  # smaller pools replaced while other threads may still use them
# A worker's bin answers within the solve's deadline; past it by this much, the worker is taken for hung, killed,
# and the run finishes in the calling process.
HUNG_GRACE_S = 30.0


def _executor(processes: int) -> ProcessPoolExecutor:
    """The shared pool, (re)created with at least `processes` workers.  A smaller pool is replaced, not shut down
    (another thread may be submitting to it); it is shut down at exit."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < processes:
            if _pool is not None:
                _retired.append(_pool)
            ctx = multiprocessing.get_context(START_METHOD)
            if START_METHOD == "forkserver":
                ctx.set_forkserver_preload(["service.matching.solver"])
            _pool, _pool_size = ProcessPoolExecutor(max_workers=processes, mp_context=ctx), processes
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    """Drop a pool that failed (broken, or a worker hung): kill its workers; a later solve starts a new pool.  Only
    that pool: another thread may already use a newer one."""
    global _pool, _pool_size
    with _lock:
        if _pool is pool:
            _pool, _pool_size = None, 0
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _ready() -> int:
    """Worker: nothing to do (the engine is imported with the forkserver preload)."""
    return 0


def warm_up(processes: int) -> float:
    """Start the pool's workers for `solve(..., processes=processes)` now (e.g. when a service starts) rather than
    in its first large solve; return the seconds it took (about 0.5 s on first use in a process)."""
    t0 = time.perf_counter()
    n = processes - 1 if IN_CALLER else processes
    if n > 0:
        pool = _executor(n)
        for f in [pool.submit(_ready) for _ in range(n)]:
            f.result()
    return time.perf_counter() - t0


def shutdown() -> None:
    """Stop the shared pools' processes (registered at exit; a later parallel solve starts a new pool)."""
    global _pool, _pool_size
    with _lock:
        pools = [*_retired, *([_pool] if _pool is not None else [])]
        _retired.clear()
        _pool, _pool_size = None, 0
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown)


def bins(norm: Normalised, processes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Bin of each need and each offer, and the number of bins: whole linked components, largest first into the
    least loaded bin by active edges (components without edges join the least loaded bin at the end)."""
    comps = cc.label(norm, link_limits=True)
    sizes = np.diff(comps.edge_start)
    nonempty = np.flatnonzero(sizes > 0)
    count = min(processes, len(nonempty))
    loads = np.zeros(max(count, 1), np.int64)
    bin_of = np.zeros(comps.count, np.int64)
    for c in nonempty[np.argsort(-sizes[nonempty], kind="stable")].tolist():
        b = int(loads.argmin())
        bin_of[c] = b
        loads[b] += sizes[c]
    bin_of[sizes == 0] = int(loads.argmin())
    return bin_of[comps.need_comp], bin_of[comps.offer_comp], count


_SCALARS = ("has_incumbent", "penalty", "coverage_first")


def to_shared(sub: Normalised) -> tuple[shared_memory.SharedMemory, list[tuple[str, str, int, int]]]:
    """The arrays of a sub-problem copied into one shared memory block, and their layout (field, dtype, length,
    offset): a worker maps it instead of reading ~40 MB (national, half the edges) through the pool's pipe."""
    arrays = {f.name: getattr(sub, f.name) for f in fields(sub) if f.name not in _SCALARS}
    layout, offset = [], 0
    for name, a in arrays.items():
        layout.append((name, a.dtype.str, len(a), offset))
        offset += -(-a.nbytes // 8) * 8
    shm = shared_memory.SharedMemory(create=True, size=max(offset, 8))
    try:
        # Reserve the pages now: writing into a block that /dev/shm cannot back (a container's 64 MiB default) would
        # kill this process with SIGBUS; reserved, a full /dev/shm is an OSError the caller falls back from.
        if hasattr(os, "posix_fallocate") and hasattr(shm, "_fd"):
            os.posix_fallocate(shm._fd, 0, max(offset, 8))
        for name, dtype, n, off in layout:
            np.ndarray(n, dtype, shm.buf, off)[:] = arrays[name]
    except BaseException:
        shm.close()
        shm.unlink()
        raise
    return shm, layout


def from_shared(name: str, layout: list[tuple[str, str, int, int]], scalars: dict[str, Any]) -> Normalised:
    """Inverse of `to_shared` in a worker (the arrays are copied out; the caller unlinks the block)."""
    shm = shared_memory.SharedMemory(name=name)  # the pool's workers share the caller's resource tracker
    try:
        arrays = {f: np.ndarray(n, dtype, shm.buf, off).copy() for f, dtype, n, off in layout}
    finally:
        shm.close()
    return Normalised(**arrays, **scalars)


def _solve_bin(
    sub: Normalised | tuple[str, list[tuple[str, str, int, int]], dict[str, Any]],
    deadline: float,
    previous: Solution | None,
    opts: SolveOptions,
    settings: dict[str, Any] | None = None,
) -> tuple[Solution, float, float]:
    """The sequential solve of one bin (in a worker: from shared memory, with the caller's solver settings) until
    `deadline` (time.monotonic, shared by the processes of a machine); also its wall and CPU time."""
    t0, c0 = time.perf_counter(), time.process_time()
    for k, v in (settings or {}).items():
        setattr(solver, k, v)
    if isinstance(sub, tuple):
        sub = from_shared(*sub)
    left = max(deadline - time.monotonic(), 0.05)
    sol = solve_normalised(sub, left, t0, previous, opts)
    return sol, time.perf_counter() - t0, time.process_time() - c0


def _settings() -> dict[str, Any]:
    """The solver's module settings (upper-case constants) as the caller has them, for the workers."""
    return {k: v for k, v in vars(solver).items() if k.isupper() and isinstance(v, int | float | None)}


def _light(previous: Solution | None) -> Solution | None:
    """What a bin needs of a previous answer: its component rows (reuse), without units, components or items."""
    if previous is None or previous.table is None:
        return None
    return Solution(
        previous.status, previous.objective, previous.bound, np.zeros(0, np.int64), replace(previous.table, comps=None)
    )


def solve_in_processes(
    norm: Normalised,
    time_limit_s: float,
    t0: float,
    processes: int,
    previous: Solution | None,
    opts: SolveOptions,
) -> Solution:
    """`solve` with the components split into `processes` bins, one solved in this process and the others in worker
    processes (falls back to this process alone when there are fewer than two non-empty bins or the pool breaks)."""
    deadline = time.monotonic() - (time.perf_counter() - t0) + time_limit_s
    need_bin, offer_bin, count = bins(norm, processes)
    if count < 2:
        return solve_normalised(norm, time_limit_s, t0, previous, opts)
    active = cc.active_edges(norm)
    edge_bin = need_bin[norm.e_need]
    shares = []
    for b in range(count):
        needs, offers = np.flatnonzero(need_bin == b), np.flatnonzero(offer_bin == b)
        edges = np.flatnonzero(active & (edge_bin == b))
        shares.append((needs, offers, edges))
    light, settings = _light(previous), _settings()
    scalars = {k: getattr(norm, k) for k in _SCALARS}
    blocks: list[shared_memory.SharedMemory] = []
    pool: ProcessPoolExecutor | None = None
    t_split = time.perf_counter()
    try:
        # Bin 0 is solved here (this process would only wait otherwise), the others in the pool's workers; each
        # worker's bin is in shared memory before it is submitted, so no transfer competes with this process's solve
        # for the interpreter lock.
        futures: list[Future[tuple[Solution, float, float]]] = []
        args = (deadline, light, opts)
        # Sized by `processes`, not by this problem's bins, so calls with fewer bins do not resize the shared pool.
        pool = _executor(processes - 1 if IN_CALLER else processes)
        for share in shares[1:] if IN_CALLER else shares:
            shm, layout = to_shared(sub_problem(norm, *share))
            blocks.append(shm)
            futures.append(pool.submit(_solve_bin, (shm.name, layout, scalars), *args, settings))
        here = [_solve_bin(sub_problem(norm, *shares[0]), *args)] if IN_CALLER else []
        wait_s = max(deadline - time.monotonic(), 0.0) + HUNG_GRACE_S
        results = here + [f.result(timeout=wait_s) for f in futures]
    except (BrokenProcessPool, CancelledError, FuturesTimeout, OSError, RuntimeError) as exc:
        # The pool broke or was shut down under us, a worker hung, or /dev/shm is full: the answer comes from this
        # process alone (with what is left of the time limit).
        log.warning("parallel solve fell back to one process: %r", exc)
        if pool is not None and not isinstance(exc, OSError):
            _discard(pool)
        left = time_limit_s - (time.perf_counter() - t0)
        return solve_normalised(norm, max(left, 0.05), time.perf_counter(), previous, opts)
    finally:
        for shm in blocks:
            shm.close()
            shm.unlink()
    t_solved = time.perf_counter()
    sol = stitch(norm, shares, [r[0] for r in results])
    sol.timings["prepare"] = sol.timings.get("prepare", 0.0) + (t_split - t0)
    sol.timings["parallel_split"] = t_split - t0
    sol.timings["parallel_overhead"] = (t_solved - t_split) - max(r[1] for r in results)
    sol.timings["parallel_bin_cpu_max"] = max(r[2] for r in results)
    sol.timings["parallel_bin_cpu_sum"] = sum(r[2] for r in results)
    sol.timings["parallel_stitch"] = time.perf_counter() - t_solved
    return sol


def stitch(
    norm: Normalised, shares: list[tuple[np.ndarray, np.ndarray, np.ndarray]], parts: list[Solution]
) -> Solution:
    """One `Solution` of the whole problem from the bins' (`shares`: their needs, offers and edges)."""
    if any(s.status == "infeasible" for s in parts):
        return _infeasible(norm)
    units = np.zeros(norm.n_edges, np.int64)
    for (_, _, edges), s in zip(shares, parts, strict=True):
        units[edges] = s.edge_units
    tables = [s.table for s in parts]
    assert all(t is not None for t in tables)
    table = ComponentTable(
        _components(norm, shares, [t.comps for t in tables]),  # type: ignore[union-attr]
        *(np.concatenate([getattr(t, f) for t in tables]) for f in _TABLE_ARRAYS),
    )
    status = "optimal" if all(s.status == "optimal" for s in parts) else "feasible"
    sol = Solution(
        status,
        sum(s.objective for s in parts),
        sum(s.bound for s in parts),
        units,
        table,
        _timings(parts),
        _stats(parts),
        _items([s.items for s in parts]),
    )
    return sol


_TABLE_ARRAYS = ("fingerprint", "units_hash", "method", "status", "objective", "bound", "penalty_paid")


def _components(
    norm: Normalised, shares: list[tuple[np.ndarray, np.ndarray, np.ndarray]], comps: list[cc.Components | None]
) -> cc.Components | None:
    """The bins' components as components of the whole problem (numbered bin after bin)."""
    if any(c is None for c in comps):
        return None
    need_comp = np.zeros(norm.n_needs, np.int64)
    offer_comp = np.zeros(norm.n_offers, np.int64)
    active = np.zeros(norm.n_edges, bool)
    order, starts = [], []
    count = placed = 0
    for (needs, offers, edges), c in zip(shares, comps, strict=True):
        assert c is not None
        need_comp[needs] = c.need_comp + count
        offer_comp[offers] = c.offer_comp + count
        active[edges[c.active]] = True
        order.append(edges[c.edge_order])
        starts.append(c.edge_start[:-1] + placed)
        count += c.count
        placed += len(c.edge_order)
    starts.append(np.array([placed]))
    return cc.Components(count, need_comp, offer_comp, active, np.concatenate(order), np.concatenate(starts))


def _items(items: list[cc.ItemHashes | None]) -> cc.ItemHashes | None:
    """The bins' item hashes merged (each need and offer is in one bin), sorted by key."""
    if any(i is None for i in items):
        return None
    got = [i for i in items if i is not None]
    nk = np.concatenate([i.need_key for i in got])
    ok = np.concatenate([i.offer_key for i in got])
    no, oo = np.argsort(nk, kind="stable"), np.argsort(ok, kind="stable")
    answered = all(i.need_units is not None and i.need_served is not None for i in got)
    return cc.ItemHashes(
        nk[no],
        np.concatenate([i.need_hash for i in got])[no],
        np.concatenate([i.need_fixed for i in got])[no],
        ok[oo],
        np.concatenate([i.offer_hash for i in got])[oo],
        np.concatenate([i.need_units for i in got])[no] if answered else None,  # type: ignore[misc]
        np.concatenate([i.need_served for i in got])[no] if answered else None,  # type: ignore[misc]
    )


def _timings(parts: list[Solution]) -> dict[str, float]:
    """Wall-clock phases: the slowest bin's; time inside OR-Tools and greedy: summed over the bins."""
    out: dict[str, float] = {}
    for s in parts:
        for k, v in s.timings.items():
            out[k] = max(out.get(k, 0.0), v) if k in _WALL_PHASES else out.get(k, 0.0) + v
    return out


def _stats(parts: list[Solution]) -> dict[str, int]:
    """Counts summed over the bins; the objective after the dive is each bin's (its final one when it had none)."""
    out: dict[str, int] = {}
    for s in parts:
        for k, v in s.stats.items():
            if k != "dive_objective":
                out[k] = out.get(k, 0) + v
    if any("dive_objective" in s.stats for s in parts):
        out["dive_objective"] = sum(s.stats.get("dive_objective", s.objective) for s in parts)
    out["processes"] = len(parts)
    return out
