"""Large-neighbourhood search for generalised assignment problems (GAP), with CP-SAT as the exact sub-solver.

A GAP here: jobs (unsplittable needs) go to at most one agent (offer) each, exactly one unless optional; the jobs on
an agent weigh at most its capacity; minimise the total cost.  `search` improves a feasible start by re-solving
neighbourhoods exactly, the rest of the assignment fixed: every job of k agents, over those k agents.  The agents of
a neighbourhood are drawn at random, the first uniformly, the others weighted by how cheaply the jobs of those
already drawn could move to them (and theirs back), since those are the agents between which re-packing can pay.

* With two or more workers, two neighbourhoods on disjoint agents are solved at once in two threads (one CP-SAT
  worker each; CP-SAT releases the GIL) and both answers are merged: they touch different jobs and agents (only
  the first may place the unassigned jobs).
* A neighbourhood proven optimal is not drawn again until one of its agents changes (per-agent versions).
* k starts at AGENTS_START; it grows by one when CP-SAT closes neighbourhoods within FAST_S (or the one drawn was
  already proven) and shrinks by one when it needs more than SLOW_S.

Randomness comes from `seed` only; a run stops at its deadline, so the number of steps, and with it the answer,
may differ between runs of the same seed.  Never returns an assignment worse than the start; proves no bound (the
caller runs CP-SAT on the full model for that) and stops early once the start's cost reaches `target`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

AGENTS_START = 3  # agents freed per neighbourhood at first
AGENTS_MAX = 12
SUB_S = 1.0  # time limit of one neighbourhood
FAST_S, SLOW_S = 0.1, 0.5  # neighbourhoods closed faster grow by one agent, slower ones shrink by one


@dataclass
class Gap:
    """Dense GAP: `cost`, `weight` and `allowed` are (agents, jobs); `optional` jobs may stay unassigned at cost 0.
    An assignment gives each job an agent 0..m-1, or m for "unassigned"."""

    cost: np.ndarray
    weight: np.ndarray
    allowed: np.ndarray
    capacity: np.ndarray
    optional: np.ndarray
    c: np.ndarray = field(init=False, repr=False)  # (m + 1, n): row m is "unassigned" (free, weightless)
    w: np.ndarray = field(init=False, repr=False)
    ok: np.ndarray = field(init=False, repr=False)
    cap: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = self.cost.shape[1]
        zero = np.zeros((1, n), np.int64)
        self.c = np.vstack([np.where(self.allowed, self.cost, 0), zero]).astype(np.int64)
        self.w = np.vstack([np.where(self.allowed, self.weight, 0), zero]).astype(np.int64)
        self.ok = np.vstack([self.allowed & (self.weight <= self.capacity[:, None]), self.optional[None, :]])
        self.cap = np.append(self.capacity, np.int64(2**62)).astype(np.int64)

    @property
    def m(self) -> int:
        """Agents."""
        return int(self.cost.shape[0])

    @property
    def n(self) -> int:
        """Jobs."""
        return int(self.cost.shape[1])

    def total(self, agent: np.ndarray) -> int:
        """Cost of an assignment."""
        return int(self.c[agent, np.arange(self.n)].sum())

    def load(self, agent: np.ndarray, jobs: np.ndarray | None = None) -> np.ndarray:
        """Weight on each agent (row m included) of `jobs` (all by default)."""
        jobs = np.arange(self.n) if jobs is None else jobs
        out = np.zeros(self.m + 1, np.int64)
        np.add.at(out, agent[jobs], self.w[agent[jobs], jobs])  # exact integers (weights may exceed 2**53 in sum)
        return out

    def feasible(self, agent: np.ndarray) -> bool:
        """Every job on an allowed agent (or unassigned if optional), capacities respected."""
        if agent.shape != (self.n,) or agent.min(initial=0) < 0 or agent.max(initial=0) > self.m:
            return False
        return bool(self.ok[agent, np.arange(self.n)].all() and (self.load(agent)[: self.m] <= self.capacity).all())


def _groups(keys: np.ndarray, count: int) -> list[tuple[int, list[int]]]:
    """Positions grouped by key, for keys 0..count-1 that occur."""
    order = np.argsort(keys, kind="stable")
    cuts = np.searchsorted(keys[order], np.arange(count + 1))
    return [(g, order[cuts[g] : cuts[g + 1]].tolist()) for g in range(count) if cuts[g + 1] > cuts[g]]


class _Search:
    """Incumbent, per-agent versions (for the memo of proven neighbourhoods) and random stream of one search."""

    def __init__(self, gap: Gap, start: np.ndarray, deadline: float, workers: int, seed: int) -> None:
        self.gap, self.deadline, self.workers = gap, deadline, workers
        self.agent = start.copy()
        self.best = gap.total(start)
        self.rng = np.random.default_rng(seed)
        self.version = np.zeros(gap.m + 1, np.int64)
        self.memo: dict[tuple[int, ...], tuple[int, ...]] = {}
        ok = gap.ok[: gap.m]
        diff = gap.c[: gap.m] - np.where(ok, gap.c[: gap.m], np.iinfo(np.int64).max).min(axis=0)
        pos = ok & (diff > 0)
        self.scale = float(np.median(diff[pos])) if pos.any() else 1.0
        self.shift = np.where(ok, gap.c[: gap.m], np.iinfo(np.int64).max).min(axis=0)
        self.shift[~ok.any(axis=0)] = 0
        self.k = min(AGENTS_START, gap.m)
        self.stats = {"steps": 0, "solves": 0, "improved": 0, "proven": 0}

    def left(self) -> float:
        """Seconds to the deadline."""
        return self.deadline - time.perf_counter()

    def affinity(self) -> np.ndarray:
        """(m, m): how cheaply the jobs of one agent could move to the other, both ways."""
        gap, agent = self.gap, self.agent
        cur = gap.c[agent, np.arange(gap.n)]
        ease = np.where(gap.ok[: gap.m], np.exp(-np.maximum(gap.c[: gap.m] - cur, 0) / self.scale), 0.0)
        aff = np.zeros((gap.m + 1, gap.m))
        np.add.at(aff, agent, ease.T)  # aff[a, b]: how cheaply a's jobs could go to b
        return aff[: gap.m] + aff[: gap.m].T

    def pick(self, aff: np.ndarray, taken: set[int]) -> tuple[int, ...] | None:
        """k agents outside `taken`; None if fewer than two are left or the draw is already proven optimal."""
        m = self.gap.m
        free = np.ones(m, bool)
        free[list(taken)] = False
        if free.sum() < 2:
            return None
        chosen = [int(self.rng.choice(np.flatnonzero(free)))]
        free[chosen[0]] = False
        while len(chosen) < self.k and free.any():
            p = (aff[chosen].sum(axis=0) + 1e-12) * free
            nxt = int(self.rng.choice(m, p=p / p.sum()))
            chosen.append(nxt)
            free[nxt] = False
        key = tuple(sorted(chosen))
        if self.memo.get(key) == tuple(self.version[list(key)].tolist()):
            return None
        return key

    def solve(
        self, key: tuple[int, ...], seed: int, unassigned: bool = True
    ) -> tuple[int, np.ndarray, np.ndarray | None]:
        """Re-solve the jobs of agents `key` (and the unassigned ones) over those agents: (CP-SAT status, the jobs,
        their new agents or None).  Reads the incumbent only (runs in a worker thread)."""
        gap, agent = self.gap, self.agent
        rows = np.zeros(gap.m + 1, bool)
        rows[list(key)] = True
        rows[gap.m] = unassigned  # of two neighbourhoods solved at once, only the first takes the unassigned jobs
        jobs = np.flatnonzero(rows[agent])
        allow = rows[:, None] & gap.ok[:, jobs]
        # Leaving out an assigned job whose cost that way, plus the least every other job could cost, exceeds what the
        # neighbourhood costs now cannot lead to a better answer: drop that option (it only slows CP-SAT down).
        # Costs relative to each job's cheapest agent (`shift`), so a job costs at least min(0, -shift if optional).
        out = -self.shift[jobs]
        least = np.where(allow[gap.m], np.minimum(out, 0), 0)
        now = int((gap.c[agent[jobs], jobs] - self.shift[jobs]).sum())
        allow[gap.m] &= (agent[jobs] == gap.m) | (out + (int(least.sum()) - least) <= now)
        ii, tt = np.nonzero(allow)
        jj = jobs[tt]
        mdl = cp_model.CpModel()
        x = [mdl.new_bool_var("") for _ in range(len(ii))]
        for _, ks in _groups(tt, len(jobs)):
            mdl.add_exactly_one(x[k] for k in ks)
        wk = gap.w[ii, jj].tolist()
        for i, ks in _groups(ii, gap.m):
            mdl.add(cp_model.LinearExpr.weighted_sum([x[k] for k in ks], [wk[k] for k in ks]) <= int(gap.cap[i]))
        # Costs relative to each job's cheapest agent (a constant per job, as each takes exactly one option): small
        # coefficients even when leaving a job out costs a large bonus.
        mdl.minimize(cp_model.LinearExpr.weighted_sum(x, (gap.c[ii, jj] - self.shift[jj]).tolist()))
        for var, hit in zip(x, (agent[jj] == ii).tolist(), strict=True):
            mdl.add_hint(var, hit)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = seed
        solver.parameters.symmetry_level = 0
        solver.parameters.max_time_in_seconds = max(0.01, min(SUB_S, self.left()))
        status = solver.solve(mdl)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return status, jobs, None
        chosen = np.asarray(solver.values(x), bool)
        new = agent.copy()
        new[jj[chosen]] = ii[chosen]
        return status, jobs, new[jobs]

    def step(self, pool: ThreadPoolExecutor | None) -> None:
        """One neighbourhood, or two on disjoint agents solved at once; merged, kept if better."""
        aff = self.affinity()
        keys: list[tuple[int, ...]] = []
        for _ in range(1 if pool is None else 2):
            key = self.pick(aff, {a for k in keys for a in k})
            if key is not None:
                keys.append(key)
        self.stats["steps"] += 1
        if not keys:
            self.k = min(self.k + 1, AGENTS_MAX, self.gap.m)
            return
        seeds = [int(s) for s in self.rng.integers(2**31, size=len(keys))]
        t0 = time.perf_counter()
        if pool is not None and len(keys) == 2:
            results = list(pool.map(self.solve, keys, seeds, [True, False]))
        else:
            results = [self.solve(keys[0], seeds[0])]
        took = time.perf_counter() - t0
        new = self.agent.copy()
        for _, jobs, sub in results:
            if sub is not None:
                new[jobs] = sub
        self.accept(new)
        for key, (status, _, _) in zip(keys, results, strict=True):
            if status == cp_model.OPTIMAL:
                self.memo[key] = tuple(self.version[list(key)].tolist())
                self.stats["proven"] += 1
        self.stats["solves"] += len(results)
        if took < FAST_S:
            self.k = min(self.k + 1, AGENTS_MAX, self.gap.m)
        elif took > SLOW_S and self.k > 2:
            self.k -= 1

    def accept(self, new: np.ndarray) -> None:
        """Keep `new` if strictly better and feasible."""
        cost = self.gap.total(new)
        if cost >= self.best or not self.gap.feasible(new):
            return
        moved = new != self.agent
        self.version[np.unique(np.concatenate([self.agent[moved], new[moved]]))] += 1
        self.agent, self.best = new, cost
        self.stats["improved"] += 1

    def run(self, target: int | None) -> np.ndarray:
        """Steps until the deadline (or the target cost)."""
        if self.gap.m < 2:
            return self.agent
        pool = ThreadPoolExecutor(2) if self.workers >= 2 and self.gap.m >= 4 else None
        try:
            while self.left() > 0.02 and (target is None or self.best > target):
                self.step(pool)
        finally:
            if pool is not None:
                pool.shutdown()
        return self.agent


def search(
    gap: Gap,
    start: np.ndarray,
    deadline: float,
    *,
    workers: int = 1,
    seed: int = 0,
    target: int | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Improve a feasible assignment until `deadline` (perf_counter) or until its cost is at most `target`; returns
    one at least as good and counters."""
    start = np.asarray(start, np.int64)
    if not gap.feasible(start):
        raise ValueError("the start assignment is not feasible")
    s = _Search(gap, start, deadline, workers, seed)
    out = s.run(target)
    return out, {**s.stats, "k": s.k, "cost": s.best}
