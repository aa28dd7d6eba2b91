"""The integer matching problem: validation of the public `Problem` into normalised numpy arrays."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

# Keeps every objective exactly representable as a float64 (CP-SAT reports objectives as doubles).
MAX_OBJECTIVE = 2**52
MAX_QUANTITY = 2**40

ArrayLike = Sequence[Any] | np.ndarray


@dataclass
class Problem:
    """Needs, offers and candidate edges of one matching run (see the package docstring for the contract)."""

    need_demand: ArrayLike
    need_splittable: ArrayLike
    offer_capacity: ArrayLike
    edge_need: ArrayLike
    edge_offer: ArrayLike
    edge_value: ArrayLike
    edge_usage: ArrayLike | None = None
    incumbent: ArrayLike | None = None
    change_penalty: int = 1
    fixed: ArrayLike | None = None
    # Engine extensions (side constraints and stable identities); the records layer fills them.
    need_station: ArrayLike | None = None
    offer_org: ArrayLike | None = None
    org_max_stations: ArrayLike | None = None
    coverage_first: bool = False
    need_key: ArrayLike | None = None
    offer_key: ArrayLike | None = None


@dataclass
class Normalised:
    """Validated, int64/bool numpy view of a `Problem`."""

    demand: np.ndarray
    splittable: np.ndarray
    capacity: np.ndarray
    e_need: np.ndarray
    e_offer: np.ndarray
    value: np.ndarray
    usage: np.ndarray
    incumbent: np.ndarray
    has_incumbent: bool
    penalty: int
    fixed: np.ndarray
    station: np.ndarray
    org: np.ndarray
    org_limit: np.ndarray
    coverage_first: bool
    need_key: np.ndarray
    offer_key: np.ndarray

    @property
    def n_needs(self) -> int:
        """Number of needs."""
        return len(self.demand)

    @property
    def n_offers(self) -> int:
        """Number of offers."""
        return len(self.capacity)

    @property
    def n_edges(self) -> int:
        """Number of candidate edges."""
        return len(self.e_need)

    @property
    def edge_split(self) -> np.ndarray:
        """Whether the need of each edge is splittable."""
        return self.splittable[self.e_need]

    @functools.cached_property
    def need_order(self) -> np.ndarray:
        """Need indices by key (a stable sort): how a re-solve lines its needs up with a previous run's sorted keys
        (several steps of a re-solve read it; one sort of national's 200k keys costs 15-30 ms)."""
        return np.argsort(self.need_key, kind="stable")

    @functools.cached_property
    def offer_order(self) -> np.ndarray:
        """Offer indices by key (a stable sort), as `need_order`."""
        return np.argsort(self.offer_key, kind="stable")

    @property
    def limited_offer(self) -> np.ndarray:
        """Offers whose organization has a station limit."""
        return self.org_limit[self.org] >= 0 if len(self.org_limit) else np.zeros(self.n_offers, bool)


def _as_array(name: str, seq: ArrayLike | None) -> np.ndarray:
    """Convert to a 1-D numpy array, rejecting anything else."""
    try:
        arr = np.asarray(seq)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be read as an array ({exc})") from exc
    if arr.ndim != 1:
        if arr.ndim == 0 or arr.size == 0:
            arr = arr.reshape(-1)
        else:
            raise ValueError(f"{name}: expected a 1-D sequence, got shape {arr.shape}")
    return arr


def _int_array(
    name: str, seq: ArrayLike | None, length: int | None, lo: int | None = None, hi: int | None = None
) -> np.ndarray:
    """Validate an integer sequence (length and inclusive range) and return it as int64."""
    arr = _as_array(name, seq)
    if length is not None and len(arr) != length:
        raise ValueError(f"{name}: expected {length} entries, got {len(arr)}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name}: entries must be integers")
        if np.any(np.abs(arr) > 2**62):
            raise ValueError(f"{name}: entries out of the int64 range")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: entries must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > 2**62:
        raise ValueError(f"{name}: entries out of the int64 range")
    out = arr.astype(np.int64)
    if lo is not None and out.min() < lo:
        raise ValueError(f"{name}: entries must be >= {lo} (found {out.min()} at index {int(out.argmin())})")
    if hi is not None and out.max() > hi:
        raise ValueError(f"{name}: entries must be <= {hi} (found {out.max()} at index {int(out.argmax())})")
    return out


def _bool_array(name: str, seq: ArrayLike, length: int) -> np.ndarray:
    """Validate a boolean sequence of the given length."""
    arr = _as_array(name, seq)
    if len(arr) != length:
        raise ValueError(f"{name}: expected {length} entries, got {len(arr)}")
    if arr.size == 0:
        return np.zeros(0, bool)
    if arr.dtype == bool:
        return arr.copy()
    if arr.dtype.kind in "iuf" and np.all((arr == 0) | (arr == 1)):
        return arr.astype(bool)
    raise ValueError(f"{name}: entries must be booleans")


def _scalar_int(name: str, value: Any, lo: int) -> int:
    """Validate a scalar integer."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if int(value) < lo:
        raise ValueError(f"{name}: must be >= {lo}, got {value}")
    return int(value)


def largest_objective(norm: Normalised, edges: np.ndarray | None = None) -> float:
    """The most the objective of `edges` (all by default) could reach in absolute value: |value| per unit served
    (whole needs once), plus the change penalty on every unit that could move."""
    need = norm.e_need if edges is None else norm.e_need[edges]
    value = norm.value if edges is None else norm.value[edges]
    # Units per edge: the need's demand if splittable, else 1 (one whole need), as a per-need column gathered once.
    units = np.where(norm.splittable, norm.demand, 1).astype(np.float64)[need]
    # Not np.dot: BLAS would start threads that spin on the other core after the call.
    total = float((np.abs(value) * units).sum())
    if norm.has_incumbent:
        incumbent = norm.incumbent if edges is None else norm.incumbent[edges]
        total += norm.penalty * float(norm.demand.astype(np.float64)[need].sum() + incumbent.astype(np.float64).sum())
    return total


def _check_magnitude(norm: Normalised) -> None:
    """Reject data whose objective could exceed the exact integer range of the solvers."""
    total = largest_objective(norm)
    if total > MAX_OBJECTIVE:
        raise ValueError(f"values too large: the objective could reach {total:.3g}, above the limit 2**52")


def normalise(p: Problem) -> Normalised:
    """Validate every field of `p` and return int64/bool arrays; raise ValueError on any inconsistency."""
    demand = _int_array("need_demand", p.need_demand, None, 1, MAX_QUANTITY)
    n = len(demand)
    split = _bool_array("need_splittable", p.need_splittable, n)
    cap = _int_array("offer_capacity", p.offer_capacity, None, 0, MAX_QUANTITY)
    m = len(cap)
    e_need = _int_array("edge_need", p.edge_need, None, 0, n - 1)
    k = len(e_need)
    e_offer = _int_array("edge_offer", p.edge_offer, k, 0, m - 1)
    value = _int_array("edge_value", p.edge_value, k, -MAX_OBJECTIVE, MAX_OBJECTIVE)
    if p.edge_usage is None:
        usage = np.where(split[e_need], 1, demand[e_need]).astype(np.int64)
    else:
        usage = _int_array("edge_usage", p.edge_usage, k, 0, MAX_QUANTITY)
    penalty = _scalar_int("change_penalty", p.change_penalty, 0)
    has_inc = p.incumbent is not None
    incumbent = _int_array("incumbent", p.incumbent, k, 0, MAX_QUANTITY) if has_inc else np.zeros(k, np.int64)
    fixed = _int_array("fixed", p.fixed, k, 0, MAX_QUANTITY) if p.fixed is not None else np.zeros(k, np.int64)
    station, org, org_limit = _side_arrays(p, n, m)
    if not isinstance(p.coverage_first, bool | np.bool_):
        raise ValueError("coverage_first: expected a bool")
    need_key = _int_array("need_key", p.need_key, n) if p.need_key is not None else np.arange(n, dtype=np.int64)
    offer_key = _int_array("offer_key", p.offer_key, m) if p.offer_key is not None else np.arange(m, dtype=np.int64)
    norm = Normalised(
        demand,
        split,
        cap,
        e_need,
        e_offer,
        value,
        usage,
        incumbent,
        has_inc,
        penalty,
        fixed,
        station,
        org,
        org_limit,
        bool(p.coverage_first),
        need_key,
        offer_key,
    )
    _check_magnitude(norm)
    return norm


def _side_arrays(p: Problem, n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the station/organization side-constraint arrays (defaults: one station per need, no limits)."""
    if p.need_station is None:
        station = np.arange(n, dtype=np.int64)
    else:
        station = _int_array("need_station", p.need_station, n, 0)
    if p.offer_org is None:
        if p.org_max_stations is not None:
            raise ValueError("org_max_stations needs offer_org")
        return station, np.zeros(m, np.int64), np.zeros(0, np.int64)
    org = _int_array("offer_org", p.offer_org, m, 0)
    n_orgs = int(org.max()) + 1 if m else 0
    if p.org_max_stations is None:
        limit = np.full(n_orgs, -1, np.int64)
    else:
        limit = _int_array("org_max_stations", p.org_max_stations, None, -1)
        if len(limit) < n_orgs:
            raise ValueError(f"org_max_stations: expected at least {n_orgs} entries (one per organization index)")
    return station, org, limit


def station_codes(norm: Normalised, extra: np.ndarray | None = None) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Station of each need as a small integer code, the number of codes and the station id of each code (None when
    the codes are the ids), so (organization, station) pairs fit one int64 code in the same order (station ids are
    only compared; huge ones from the integer API are renumbered).  `extra`: more station ids the codes must cover
    (stations organizations serve outside a sub-problem, which holds no need there)."""
    ids = norm.station if extra is None or not extra.size else np.concatenate([norm.station, extra])
    top = int(ids.max()) + 1 if ids.size else 1
    if top < 2**31:
        return norm.station, top, None
    ids, codes = np.unique(ids, return_inverse=True)
    return codes.ravel()[: norm.n_needs], len(ids), ids


def sub_problem(norm: Normalised, needs: np.ndarray, offers: np.ndarray, edges: np.ndarray) -> Normalised:
    """The problem restricted to some needs, offers and edges (sorted indices; every edge's need and offer among
    them), re-indexed in the same order; keys, stations, organizations and limits are kept as they are."""
    nmap = np.full(norm.n_needs, -1, np.int64)
    nmap[needs] = np.arange(len(needs))
    omap = np.full(norm.n_offers, -1, np.int64)
    omap[offers] = np.arange(len(offers))
    return replace(
        norm,
        demand=norm.demand[needs],
        splittable=norm.splittable[needs],
        capacity=norm.capacity[offers],
        e_need=nmap[norm.e_need[edges]],
        e_offer=omap[norm.e_offer[edges]],
        value=norm.value[edges],
        usage=norm.usage[edges],
        incumbent=norm.incumbent[edges],
        fixed=norm.fixed[edges],
        station=norm.station[needs],
        org=norm.org[offers],
        need_key=norm.need_key[needs],
        offer_key=norm.offer_key[offers],
    )
