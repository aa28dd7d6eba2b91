"""Explanations: allocations with their scores, reasons for unmatched needs, utilisation and churn."""

from __future__ import annotations

import operator
from collections.abc import Mapping

import numpy as np

from service.matching.candidates import Candidates, Indexed, member
from service.matching.records import Allocation, Churn, Id, OfferUsage, ScoreComponents, Unmatched

FILTER_ORDER = ("no_offer_of_type", "no_active_offer", "none_in_range", "none_in_window", "all_rejected")
MAX_NAMED = 3


def objects(values: list) -> np.ndarray:
    """A 1-D object array of `values` (records, ids), for gathering with numpy.  `fromiter` stores each value as it
    is; a slice assignment first asks every value whether it is a sequence (national's 172k allocations: 21 ms
    against 4 ms)."""
    return np.fromiter(values, dtype=object, count=len(values))


def allocations(
    ix: Indexed, cand: Candidates, units: np.ndarray, gain: np.ndarray, idx: np.ndarray | None = None
) -> list[Allocation]:
    """One Allocation per edge carrying units, or per edge at `idx` (records built by `map` over gathered
    columns)."""
    if idx is None:
        idx = np.flatnonzero(units > 0)
    needs, offers = ix.needs, ix.offers
    # Gathered per row: a re-match explains a few edges, and building id columns of every record costs more.
    need_rows = [needs[i] for i in cand.need[idx].tolist()]
    offer_rows = [offers[j] for j in cand.offer[idx].tolist()]
    need_id = [n.id for n in need_rows]
    station_id = [n.station_id for n in need_rows]
    offer_id = [o.id for o in offer_rows]
    org_id = [o.organization_id for o in offer_rows]
    comps = list(map(ScoreComponents, *cand.components[idx].T.tolist()))
    dist = cand.distance_km[idx]
    dist_l = np.where(np.isnan(dist), None, dist).tolist() if np.isnan(dist).any() else dist.tolist()
    return list(
        map(
            Allocation,
            need_id,
            offer_id,
            org_id,
            station_id,
            units[idx].tolist(),
            gain[idx].tolist(),
            cand.score[idx].tolist(),
            comps,
            dist_l,
            cand.forced[idx].tolist(),
        )
    )


def _per_unit(ix: Indexed, cand: Candidates, at: np.ndarray) -> np.ndarray:
    """Value per unit of the edges `at` (unsplittable values are spread over the need's quantity)."""
    need, value = cand.need[at], cand.value[at]
    return np.where(ix.need_split[need], value, value / ix.need_qty[need])


def _first_empty_filter(cand: Candidates, i: int) -> str:
    """The filter that removed the need's last candidates."""
    for name in FILTER_ORDER:
        if cand.filter_counts[name][i] == 0:
            return name
    return "all_rejected"


def org_station_counts(ix: Indexed, cand: Candidates, alloc: np.ndarray) -> np.ndarray:
    """Distinct stations each organization serves in the allocation."""
    n_st = max(len(ix.stations), 1)
    pairs = np.unique(ix.offer_org[cand.offer[alloc]] * n_st + ix.need_station[cand.need[alloc]])
    return np.bincount(pairs // n_st, minlength=len(ix.orgs))


_CHUNK_EDGES = 200_000  # bounds the memory of the per-edge gather of its offer's first allocations


def _top_named(i: np.ndarray, k: np.ndarray, p: np.ndarray, n_needs: int) -> tuple[np.ndarray, ...]:
    """Per need i, its first MAX_NAMED distinct other needs k by (-p, k), as (i, k, p) arrays sorted by i then rank."""
    if not i.size:
        return i, k, p
    code = i * max(n_needs, 1) + k
    order = np.argsort(code)
    code = code[order]
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    best = np.maximum.reduceat(p[order], starts)  # each (i, k) once, at its highest p
    i, k = code[starts] // max(n_needs, 1), code[starts] % max(n_needs, 1)  # by i, then k
    # MAX_NAMED rounds each take every need's best pair left (smallest k on ties: the first); a sort by (-p, k)
    # of every pair cost five times as much (national: 3 M pairs).
    first = np.r_[True, i[1:] != i[:-1]]
    group, group_start = np.cumsum(first) - 1, np.flatnonzero(first)
    left = best.astype(np.float64)
    picks = []
    for _ in range(MAX_NAMED):
        top = np.maximum.reduceat(left, group_start)
        at = np.flatnonzero((left == top[group]) & (left > -np.inf))
        at = at[np.r_[True, group[at][1:] != group[at][:-1]]] if at.size else at
        left[at] = -np.inf
        picks.append(at)
    at = np.concatenate(picks)
    at = at[np.argsort(group[at], kind="stable")]  # by need, each need's picks in round order
    return i[at], k[at], best[at]


def _taken_by(ix: Indexed, cand: Candidates, units: np.ndarray, edges: np.ndarray) -> dict[int, tuple[Id, ...]]:
    """Per need of `edges` (candidate edges of short needs): up to MAX_NAMED other needs holding those offers'
    capacity at a value per unit at least the edge's (among each offer's first MAX_NAMED + 1: `offer_tops`)."""
    # Only the offers of `edges` matter (a re-match explains a few needs anew).
    mine = np.zeros(len(ix.offers), bool)
    mine[cand.offer[edges]] = True
    # An edge's first MAX_NAMED other needs are among its offer's first MAX_NAMED + 1 allocations (one may be the
    # edge's own need), and a need's names among its edges' (a need named by none of its edges is beaten at each by
    # MAX_NAMED others).
    top_need, top_value = offer_tops(ix, cand, units, mine)
    parts = []
    for lo in range(0, len(edges), _CHUNK_EDGES):  # a need's top names are among its chunks' top names
        chunk = edges[lo : lo + _CHUNK_EDGES]
        own, other, value = cand.need[chunk], top_need[cand.offer[chunk]], top_value[cand.offer[chunk]]
        row, col = np.nonzero((other >= 0) & (other != own[:, None]) & (value >= _per_unit(ix, cand, chunk)[:, None]))
        parts.append(_top_named(own[row], other[row, col], value[row, col], len(ix.needs)))
    if not parts:
        return {}
    if len(parts) == 1:
        i, k, _ = parts[0]
    else:
        i, k, _ = _top_named(*(np.concatenate(c) for c in zip(*parts, strict=True)), len(ix.needs))
    needs = ix.needs
    names = [needs[b].id for b in k.tolist()]
    cuts = np.flatnonzero(np.r_[True, i[1:] != i[:-1], True]).tolist() if i.size else [0]
    return {a: tuple(names[s:e]) for a, s, e in zip(i[cuts[:-1]].tolist(), cuts[:-1], cuts[1:], strict=True)}


def offer_tops(ix: Indexed, cand: Candidates, units: np.ndarray, offers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per offer, the needs (-1: none) and values per unit (-inf: none) of its first MAX_NAMED + 1 allocations by
    (-value per unit, need), as (offers, MAX_NAMED + 1) arrays, for the offers the mask `offers` marks (the others
    read as none): all that an unmatched need's names read of an offer (`_taken_by`), so a re-match re-explains only
    the needs of offers where these differ."""
    alloc = np.flatnonzero((units > 0) & offers[cand.offer])
    pu = _per_unit(ix, cand, alloc)
    order = np.lexsort((cand.need[alloc], -pu, cand.offer[alloc]))
    alloc, pu = alloc[order], pu[order]
    off = cand.offer[alloc]
    rank = np.arange(len(alloc)) - np.searchsorted(off, off, "left")
    top = rank <= MAX_NAMED
    needs = np.full((len(ix.offers), MAX_NAMED + 1), -1, np.int64)
    values = np.full((len(ix.offers), MAX_NAMED + 1), -np.inf)
    needs[off[top], rank[top]] = cand.need[alloc[top]]
    values[off[top], rank[top]] = pu[top]
    return needs, values


def unmatched(
    ix: Indexed,
    cand: Candidates,
    units: np.ndarray,
    among: np.ndarray | None = None,
    stations: np.ndarray | None = None,
    alloc: np.ndarray | None = None,
) -> tuple[list[Unmatched], np.ndarray]:
    """Every need served below its quantity (among those `among` marks, if given), with its reason, and the needs'
    indices.  `stations`: `org_station_counts` of `units`, and `alloc`: the edges with units, if at hand."""
    # Sums over the allocations, not every candidate edge (national: 172k of 1.7 M).
    alloc = np.flatnonzero(units > 0) if alloc is None else alloc
    served = np.bincount(cand.need[alloc], weights=units[alloc], minlength=len(ix.needs)).astype(np.int64)
    short_mask = served < ix.need_qty
    if among is not None:
        short_mask &= among
    short = np.flatnonzero(short_mask)
    edges = np.flatnonzero(short_mask[cand.need])
    n_edges = np.bincount(cand.need[edges], minlength=len(ix.needs))  # every edge of the short needs
    taken = _taken_by(ix, cand, units, edges)
    orgs = ix.offer_org[cand.offer[edges]]
    lim = ix.org_limit[orgs] if len(ix.orgs) else np.zeros(0, np.int64)
    if stations is None:
        stations = org_station_counts(ix, cand, alloc)
    full = (lim >= 0) & (stations[orgs] >= lim)
    at_limit = np.bincount(cand.need[edges[full]], minlength=len(ix.needs)) > 0
    out = []
    for i, missing, count, limit_hit, split in zip(
        short.tolist(),
        (ix.need_qty[short] - served[short]).tolist(),
        n_edges[short].tolist(),
        at_limit[short].tolist(),
        ix.need_split[short].tolist(),
        strict=True,
    ):
        need = ix.needs[i]
        if count == 0:
            out.append(Unmatched(need.id, need.station_id, "no_candidate", missing, 0, _first_empty_filter(cand, i)))
            continue
        ids = taken.get(i, ())
        filt = None if ids else "station_limit" if limit_hit else None if split else "does_not_fit"
        out.append(Unmatched(need.id, need.station_id, "capacity_taken", missing, count, filt, ids))
    return out, short


def utilisation(ix: Indexed, used: np.ndarray, at: np.ndarray | None = None) -> list[OfferUsage]:
    """Capacity used per offer (every offer, including unused ones; or the offers `at`)."""
    offers = ix.offers if at is None else [ix.offers[j] for j in at.tolist()]
    return list(
        map(
            OfferUsage,
            [o.id for o in offers],
            [o.organization_id for o in offers],
            (ix.offer_cap if at is None else ix.offer_cap[at]).tolist(),
            (used if at is None else used[at]).tolist(),
        )
    )


def churn(previous: Mapping[tuple[Id, Id], int], current: Mapping[tuple[Id, Id], int]) -> Churn:
    """Allocations added, removed and changed since the previous run."""
    if not previous:  # a first run: every allocation is added ((need, offer) + (units,), built in C)
        return Churn(tuple(map(operator.add, current.keys(), zip(current.values()))), (), ())
    added = tuple((a, b, u) for (a, b), u in current.items() if (a, b) not in previous)
    removed = tuple((a, b, u) for (a, b), u in previous.items() if (a, b) not in current)
    changed = tuple(
        (a, b, previous[(a, b)], u) for (a, b), u in current.items() if (a, b) in previous and previous[(a, b)] != u
    )
    return Churn(added, removed, changed)


def churn_by_edge(
    ix: Indexed, prev_cand: Candidates, prev_units: np.ndarray, cand: Candidates, units: np.ndarray
) -> Churn:
    """`churn` from per-edge units of two runs over the same needs and offers (same indices), in the same order:
    added and changed by this run's edges, removed by the previous run's."""
    m = max(len(ix.offers), 1)
    now, before = np.flatnonzero(units > 0), np.flatnonzero(prev_units > 0)
    code, prev_code = cand.need[now] * m + cand.offer[now], prev_cand.need[before] * m + prev_cand.offer[before]
    pos = np.minimum(np.searchsorted(prev_code, code), max(len(prev_code) - 1, 0))
    known = prev_code[pos] == code if len(prev_code) else np.zeros(len(code), bool)
    was = np.where(known, prev_units[before][pos] if len(prev_code) else 0, 0)
    gone = ~member(prev_code, code, presorted=True)
    needs, offers = ix.needs, ix.offers

    def ids(i: np.ndarray, j: np.ndarray) -> tuple[list[Id], list[Id]]:
        return [needs[k].id for k in i.tolist()], [offers[k].id for k in j.tolist()]

    def triples(i: np.ndarray, j: np.ndarray, u: np.ndarray) -> tuple[tuple[Id, Id, int], ...]:
        return tuple(zip(*ids(i, j), u.tolist(), strict=True))

    new, moved = ~known, known & (was != units[now])
    e, p = now[moved], before[pos[moved]]
    return Churn(
        triples(cand.need[now[new]], cand.offer[now[new]], units[now[new]]),
        triples(prev_cand.need[before[gone]], prev_cand.offer[before[gone]], prev_units[before[gone]]),
        tuple(zip(*ids(cand.need[e], cand.offer[e]), prev_units[p].tolist(), units[e].tolist(), strict=True)),
    )
