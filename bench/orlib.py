"""OR-Library generalised assignment problems (GAP) as matching problems."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.matching import Problem

GAP_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "orlib-gap"


@dataclass
class GapInstance:
    """One GAP problem: cost and resource matrices (agents x jobs), capacities, sense and known optimum."""

    name: str
    cost: np.ndarray
    resource: np.ndarray
    capacity: np.ndarray
    sense: str  # "max" | "min"
    optimum: int


def _optima(folder: Path) -> dict[tuple[str, int], tuple[str, str, int]]:
    """(file, index) -> (instance name, sense, optimum)."""
    with (folder / "optima.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return {(r["file"], int(r["index"])): (r["instance"], r["sense"], int(r["optimum"])) for r in rows}


def load(file: str, folder: Path = GAP_DIR) -> list[GapInstance]:
    """All problems of one OR-Library GAP file (e.g. "gap1", "gapd")."""
    nums = np.array((folder / f"{file}.txt").read_text().split(), dtype=np.int64)
    optima = _optima(folder)
    count, pos, out = int(nums[0]), 1, []
    for index in range(1, count + 1):
        m, n = int(nums[pos]), int(nums[pos + 1])
        pos += 2
        cost = nums[pos : pos + m * n].reshape(m, n)
        pos += m * n
        resource = nums[pos : pos + m * n].reshape(m, n)
        pos += m * n
        capacity = nums[pos : pos + m]
        pos += m
        name, sense, opt = optima[(file, index)]
        out.append(GapInstance(name, cost, resource, capacity, sense, opt))
    return out


def offset(inst: GapInstance) -> int:
    """Per-job bonus larger than any total cost difference, so serving every job dominates."""
    return int(np.abs(inst.cost).max(axis=0).sum()) * 2 + 1


def to_problem(inst: GapInstance) -> Problem:
    """Jobs become unsplittable needs (demand 1), agents offers, resource the per-edge usage; every job carries a
    bonus that makes serving all jobs dominate."""
    m, n = inst.cost.shape
    value = offset(inst) + (inst.cost if inst.sense == "max" else -inst.cost)
    return Problem(
        need_demand=np.ones(n, np.int64),
        need_splittable=np.zeros(n, bool),
        offer_capacity=inst.capacity,
        edge_need=np.tile(np.arange(n), m),
        edge_offer=np.repeat(np.arange(m), n),
        edge_value=value.ravel(),
        edge_usage=inst.resource.ravel(),
    )


def gap_value(inst: GapInstance, objective: int, n_served: int) -> int | None:
    """GAP objective of an engine answer (None unless every job is assigned)."""
    if n_served < inst.cost.shape[1]:
        return None
    raw = objective - offset(inst) * n_served
    return raw if inst.sense == "max" else -raw
