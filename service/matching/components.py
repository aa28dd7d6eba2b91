"""Connected components of the matching graph and order-independent component fingerprints."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pymetis
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from service.matching.problem import Normalised

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SECOND = np.uint64(0x5BD1E9955BD1E995)
# Version of the hashes above: stored component states of another version are not compared (`solver`).
HASH_VERSION = 2


@dataclass
class Components:
    """Component labels and the edges of each component, grouped contiguously."""

    count: int
    need_comp: np.ndarray
    offer_comp: np.ndarray
    active: np.ndarray  # edges that can matter for the optimum
    edge_order: np.ndarray  # active edge indices sorted by component
    edge_start: np.ndarray  # edge_order[edge_start[c]:edge_start[c+1]] are component c's edges
    # The (validated, never modified) edge arrays of a problem labelled without links: a later problem with equal
    # arrays and active edges has these components (`same_components`).
    edges: tuple[np.ndarray, np.ndarray] | None = None

    def edges_of(self, c: int) -> np.ndarray:
        """Active edge indices of component c."""
        return self.edge_order[self.edge_start[c] : self.edge_start[c + 1]]


def active_edges(norm: Normalised) -> np.ndarray:
    """Edges that may carry units in an optimal solution (others stay at zero)."""
    if norm.coverage_first:
        return np.ones(norm.n_edges, bool)
    return (norm.value > 0) | (norm.incumbent > 0) | (norm.fixed > 0)


def link_groups(labels: np.ndarray, mask: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs joining every masked node to the first masked node with the same label."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lab = labels[idx]
    _, first = np.unique(lab, return_index=True)
    _, inv = np.unique(lab, return_inverse=True)
    return idx + offset, idx[first][inv] + offset


def connected(rows: np.ndarray, cols: np.ndarray, size: int) -> tuple[int, np.ndarray]:
    """Connected components of the undirected graph on `size` nodes with links rows[k]-cols[k]: how many, and each
    node's label."""
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(size, size)).tocsr()
    count, labels = connected_components(graph, directed=False)
    return int(count), labels


def grouped(labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `labels` (0..count-1) grouped by label, in position order within each group, and where each
    group starts: order[start[k]:start[k + 1]] are label k's positions.

    Up to 2**16 labels the stable sort runs on uint16, for which numpy uses a radix sort (national, 1.7 M edges in
    320 components: 0.21-0.24 -> 0.04-0.05 s), and the starts come from counts instead of a search."""
    keys = labels.astype(np.uint16) if count <= 1 << 16 else labels
    order = np.argsort(keys, kind="stable")
    start = np.zeros(count + 1, np.int64)
    np.cumsum(np.bincount(labels, minlength=count), out=start[1:])
    return order, start


def label(norm: Normalised, link_limits: bool = True) -> Components:
    """Label components over needs and offers, linking (if `link_limits`) offers of station-limited organizations
    and, for coverage-first runs, needs of the same station (their constraints span those nodes)."""
    n, m = norm.n_needs, norm.n_offers
    active = active_edges(norm)
    rows = [norm.e_need[active]]
    cols = [norm.e_offer[active] + n]
    if link_limits and m and len(norm.org_limit):
        a, b = link_groups(norm.org, norm.limited_offer, n)
        rows.append(a)
        cols.append(b)
    if norm.coverage_first and n:
        a, b = link_groups(norm.station, np.ones(n, bool), 0)
        rows.append(a)
        cols.append(b)
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    count, labels = connected(r, c, n + m)
    need_comp, offer_comp = labels[:n].astype(np.int64), labels[n:].astype(np.int64)
    act_idx = np.flatnonzero(active)
    order, start = grouped(need_comp[norm.e_need[act_idx]], count)
    unlinked = not link_limits and not norm.coverage_first
    edges = (norm.e_need, norm.e_offer) if unlinked else None
    return Components(count, need_comp, offer_comp, active, act_idx[order], start, edges)


def same_components(prev: Components | None, norm: Normalised, link_limits: bool) -> Components | None:
    """`prev` if it is what `label(norm, link_limits)` gives: labelled without links from equal edge arrays with the
    same active edges (a re-solve after some needs' quantities changed), else None."""
    if prev is None or prev.edges is None or link_limits or norm.coverage_first:
        return None
    if len(prev.need_comp) != norm.n_needs or len(prev.offer_comp) != norm.n_offers:
        return None
    e_need, e_offer = prev.edges
    if not (np.array_equal(e_need, norm.e_need) and np.array_equal(e_offer, norm.e_offer)):
        return None
    return prev if np.array_equal(prev.active, active_edges(norm)) else None


@dataclass
class Parts:
    """Flow parts: whole components, except that components above a size are cut into parts of about that size.

    An offer with edges in several parts is *shared*.  Each part sees a shared offer's whole capacity, so the parts'
    optima add up to an upper bound of the component's; a feasible answer then divides the capacity of overused
    shared offers between their parts (`solver`)."""

    count: int
    need_part: np.ndarray
    comp_of_part: np.ndarray
    edge_order: np.ndarray  # active edge indices sorted by part
    edge_start: np.ndarray

    def edges_of(self, p: int) -> np.ndarray:
        """Active edge indices of part p."""
        return self.edge_order[self.edge_start[p] : self.edge_start[p + 1]]

    def sizes(self) -> np.ndarray:
        """Active edges per part."""
        return np.diff(self.edge_start)


def partition(norm: Normalised, comps: Components, max_edges: int | None, seed: int = 7) -> Parts:
    """Parts of the components; those with more than `max_edges` active edges are cut by METIS (minimum edge cut
    over the need-offer graph, needs weighted by their edges so parts carry similar numbers of edges)."""
    sizes = np.diff(comps.edge_start)
    cut = np.flatnonzero(sizes > max_edges) if max_edges else np.zeros(0, np.int64)
    if cut.size == 0:  # parts are the components: share their arrays (national: 1.7 M edges)
        return Parts(comps.count, comps.need_comp, np.arange(comps.count), comps.edge_order, comps.edge_start)
    need_part = comps.need_comp.copy()
    comp_of_part = [np.arange(comps.count)]
    count = comps.count
    for c in cut.tolist():
        e = comps.edges_of(int(c))
        k = -(-len(e) // max_edges)
        labels = _metis_needs(norm, e, k, seed)
        needs = np.unique(norm.e_need[e])
        need_part[needs] = count + labels
        comp_of_part.append(np.full(k, c))
        count += k
    act = comps.edge_order
    order, start = grouped(need_part[norm.e_need[act]], count)
    return Parts(count, need_part, np.concatenate(comp_of_part), act[order], start)


def _metis_needs(norm: Normalised, edges: np.ndarray, k: int, seed: int) -> np.ndarray:
    """METIS part (0..k-1) of each need of `edges`, in the order of the sorted unique need indices."""
    needs, ln = np.unique(norm.e_need[edges], return_inverse=True)
    _, lo = np.unique(norm.e_offer[edges], return_inverse=True)
    n = len(needs)
    rows = np.concatenate([ln, n + lo])
    cols = np.concatenate([n + lo, ln])
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n + lo.max() + 1,) * 2).tocsr()
    weights = np.concatenate([np.bincount(ln, minlength=n), np.ones(lo.max() + 1, np.int64)])
    opts = pymetis.Options(seed=seed)
    res = pymetis.part_graph(
        k,
        pymetis.CSRAdjacency(graph.indptr.astype(np.int32), graph.indices.astype(np.int32)),
        vweights=weights.astype(np.int32),
        options=opts,
    )
    return np.asarray(res.vertex_part, np.int64)[:n]


def _mix_into(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised, in place on a uint64 array (wrapping arithmetic is intended)."""
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def _combine(*fields: np.ndarray, seed: int) -> np.ndarray:
    """Hash several integer columns into one uint64 column: h = mix(h ^ field), field by field, from `seed`.

    One finaliser per field, in place: the chain is as good a mix as hashing each field first (a bijection of the
    previous state xored with the next field) at half the passes and no temporaries (national: 0.5 -> 0.1 s)."""
    h = np.full(len(fields[0]), seed, dtype=np.uint64)
    for f in fields:
        h ^= f.view(np.uint64) if f.dtype == np.int64 else f.astype(np.int64).view(np.uint64)
        _mix_into(h)
    return h


def _second(h: np.ndarray) -> np.ndarray:
    """The second fingerprint column of hashes `h`: another bijective mix of each, so sums over a component are
    independent of the first column's unless the per-item hashes themselves collide (2**-64 per changed item)."""
    return _mix_into(h ^ _SECOND)


def _sum_by(values: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Wrapping uint64 sum of values per label."""
    out = np.zeros(count, np.uint64)
    np.add.at(out, labels, values)
    return out


def fingerprints(norm: Normalised, comps: Components) -> np.ndarray:
    """128-bit fingerprint (two uint64 columns) of each component's data, excluding the incumbent."""
    return fingerprints_and_items(norm, comps)[0]


@dataclass
class ItemHashes:
    """64-bit hash of each need (its own data and its active edges') and each offer, by stable key: what a later
    re-solve compares to find the needs that changed (`solver`'s local re-solve)."""

    need_key: np.ndarray  # sorted
    need_hash: np.ndarray  # uint64, aligned with need_key
    need_fixed: np.ndarray  # bool: the need had fixed units
    offer_key: np.ndarray  # sorted
    offer_hash: np.ndarray
    # Each need's units in the answer, aligned with need_key: a uint64 hash (by offer key) and the total; None until
    # solved (and in states stored before they were kept).
    need_units: np.ndarray | None = None
    need_served: np.ndarray | None = None


@dataclass(frozen=True)
class EdgeHashes:
    """Both fingerprint columns' hash of each active edge, and the (validated, never modified) arrays they hashed: a
    later problem on the same components rehashes only the edges whose data differ (`fingerprints_and_items`)."""

    active: np.ndarray  # indices of the active edges
    hashes: np.ndarray  # (active edges, 2) uint64, in index order of the active edges
    value: np.ndarray  # the problem's per-edge arrays and keys
    usage: np.ndarray
    fixed: np.ndarray
    need_key: np.ndarray
    offer_key: np.ndarray


_SEED = 0x1234567


def _edge_hashes(norm: Normalised, act: np.ndarray) -> np.ndarray:
    """Both fingerprint columns' hash of the edges `act`, (len(act), 2): identity (need and offer keys), value,
    usage, fixed units."""
    h = _combine(
        norm.need_key[norm.e_need[act]],
        norm.offer_key[norm.e_offer[act]],
        norm.value[act],
        norm.usage[act],
        norm.fixed[act],
        seed=_SEED,
    )
    return np.stack([h, _second(h)], axis=1)


def _rehash(norm: Normalised, act: np.ndarray, prev: EdgeHashes | None) -> np.ndarray | None:
    """`prev`'s edge hashes with the edges whose data differ rehashed, or None if `prev` is not for this shape."""
    if prev is None or len(prev.value) != norm.n_edges or not np.array_equal(prev.active, act):
        return None
    if len(prev.need_key) != norm.n_needs or len(prev.offer_key) != norm.n_offers:
        return None
    need_moved = prev.need_key != norm.need_key
    offer_moved = prev.offer_key != norm.offer_key
    diff = np.flatnonzero(
        (prev.value[act] != norm.value[act])
        | (prev.usage[act] != norm.usage[act])
        | (prev.fixed[act] != norm.fixed[act])
        | need_moved[norm.e_need[act]]
        | offer_moved[norm.e_offer[act]]
    )
    out = prev.hashes.copy()
    out[diff] = _edge_hashes(norm, act[diff])
    return out


def fingerprints_and_items(
    norm: Normalised, comps: Components, prev: EdgeHashes | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, EdgeHashes]:
    """`fingerprints`, plus the first column's hash per need (own data and active edges) and per offer, in index
    order (a component's first column is the sum of its needs' and offers' hashes), and the edge hashes.  `prev`:
    the edge hashes of a problem with these very components (`same_components`), to rehash only what changed."""
    out = np.zeros((comps.count, 2), np.uint64)
    act = np.flatnonzero(comps.active)
    edge_comp = comps.need_comp[norm.e_need[act]]
    lim = norm.org_limit[norm.org] if len(norm.org_limit) else np.full(norm.n_offers, -1, np.int64)
    edge_h = _rehash(norm, act, prev)
    if edge_h is None:
        edge_h = _edge_hashes(norm, act)
    nd = _combine(
        norm.need_key,
        norm.demand,
        norm.splittable,
        norm.station,
        np.full(norm.n_needs, norm.penalty * 2 + norm.coverage_first),
        seed=_SEED + 1,
    )
    of = _combine(norm.offer_key, norm.capacity, norm.org, lim, seed=_SEED + 2)
    with np.errstate(over="ignore"):
        need_h = nd + _sum_by(np.ascontiguousarray(edge_h[:, 0]), norm.e_need[act], norm.n_needs)
    out[:, 0] = _sum_by(need_h, comps.need_comp, comps.count) + _sum_by(of, comps.offer_comp, comps.count)
    out[:, 1] = (
        _sum_by(np.ascontiguousarray(edge_h[:, 1]), edge_comp, comps.count)
        + _sum_by(_second(nd), comps.need_comp, comps.count)
        + _sum_by(_second(of), comps.offer_comp, comps.count)
    )
    hashes = EdgeHashes(act, edge_h, norm.value, norm.usage, norm.fixed, norm.need_key, norm.offer_key)
    return out, need_h, of, hashes


def item_hashes(norm: Normalised, need_h: np.ndarray, offer_h: np.ndarray) -> ItemHashes:
    """`ItemHashes` of a problem from `fingerprints_and_items`' per-need and per-offer hashes."""
    fixed = np.bincount(norm.e_need, weights=norm.fixed, minlength=norm.n_needs) > 0
    no, oo = norm.need_order, norm.offer_order
    return ItemHashes(norm.need_key[no], need_h[no], fixed[no], norm.offer_key[oo], offer_h[oo])


def key_rows(sorted_keys: np.ndarray, keys: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of `keys`' row among the distinct `sorted_keys` (a previous run's), valid where found; `order` sorts
    `keys`.  When the keys are those very keys (a re-solve after some needs changed in place), the rows are the
    inverse of `order`: no binary search of 200k keys (30-45 ms on national).  Duplicate keys all find the first of
    theirs, as a binary search does."""
    if not len(sorted_keys):
        return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
    same = len(keys) == len(sorted_keys) and np.array_equal(keys[order], sorted_keys)
    if same and not np.any(sorted_keys[1:] == sorted_keys[:-1]):
        pos = np.empty(len(keys), np.int64)
        pos[order] = np.arange(len(keys))
        return pos, np.ones(len(keys), bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return pos, sorted_keys[pos] == keys


def _edge_units_hash(norm: Normalised, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges carrying units and a hash of each one's identity (need and offer keys) and units."""
    nz = np.flatnonzero(units > 0)
    return nz, _combine(norm.need_key[norm.e_need[nz]], norm.offer_key[norm.e_offer[nz]], units[nz], seed=0x55AA)


def units_hash(norm: Normalised, comps: Components, units: np.ndarray) -> np.ndarray:
    """Hash of the units on each component's edges (to match an incumbent against a previous solution)."""
    nz, h = _edge_units_hash(norm, units)
    return _sum_by(h, comps.need_comp[norm.e_need[nz]], comps.count)


def need_units_hash(norm: Normalised, units: np.ndarray) -> np.ndarray:
    """Hash of each need's units on its edges, in index order (to tell which needs' incumbent is not the previous
    answer)."""
    nz, h = _edge_units_hash(norm, units)
    return _sum_by(h, norm.e_need[nz], norm.n_needs)


def units_hashes(norm: Normalised, comps: Components, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`units_hash` and `need_units_hash` of one answer, from one pass over its edges."""
    nz, h = _edge_units_hash(norm, units)
    need = norm.e_need[nz]
    return _sum_by(h, comps.need_comp[need], comps.count), _sum_by(h, need, norm.n_needs)


def with_answer(items: ItemHashes, norm: Normalised, units: np.ndarray, need_hash: np.ndarray) -> ItemHashes:
    """`items` with each need's units in the answer `units`: their hash (`need_units_hash`, index order), total."""
    order = norm.need_order
    served = np.bincount(norm.e_need, weights=units, minlength=norm.n_needs).astype(np.int64)
    return replace(items, need_units=need_hash[order], need_served=served[order])
