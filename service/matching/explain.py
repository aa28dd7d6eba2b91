"""Explanations: allocations with their scores, reasons for unmatched needs, utilisation and churn."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from service.matching.candidates import Candidates, Indexed
from service.matching.records import Allocation, Churn, Id, OfferUsage, ScoreComponents, Unmatched

FILTER_ORDER = ("no_offer_of_type", "no_active_offer", "none_in_range", "none_in_window", "all_rejected")
MAX_NAMED = 3


def allocations(ix: Indexed, cand: Candidates, units: np.ndarray, gain: np.ndarray) -> list[Allocation]:
    """One Allocation per edge carrying units."""
    out = []
    idx = np.flatnonzero(units > 0)
    comps = cand.components[idx].tolist()
    dist = cand.distance_km[idx].tolist()
    for k, e in enumerate(idx.tolist()):
        need, offer = ix.needs[cand.need[e]], ix.offers[cand.offer[e]]
        d = dist[k]
        out.append(Allocation(need.id, offer.id, offer.organization_id, need.station_id, int(units[e]), int(gain[e]),
                              float(cand.score[e]), ScoreComponents(*comps[k]), None if d != d else d,
                              bool(cand.forced[e])))
    return out


def _per_unit(ix: Indexed, cand: Candidates) -> np.ndarray:
    """Value per unit of each edge (unsplittable values are spread over the need's quantity)."""
    return np.where(ix.need_split[cand.need], cand.value, cand.value / ix.need_qty[cand.need])


def _first_empty_filter(cand: Candidates, i: int) -> str:
    """The filter that removed the need's last candidates."""
    for name in FILTER_ORDER:
        if cand.filter_counts[name][i] == 0:
            return name
    return "all_rejected"


class _Capacity:
    """Per offer, the allocations sorted by value per unit, to name the needs that took capacity."""

    def __init__(self, ix: Indexed, cand: Candidates, units: np.ndarray, used: np.ndarray) -> None:
        self.ix, self.cand, self.used = ix, cand, used
        self.pu = _per_unit(ix, cand)
        alloc = np.flatnonzero(units > 0)
        order = alloc[np.lexsort((alloc, -self.pu[alloc]))]
        self.by_offer: dict[int, list[int]] = {}
        for e in order.tolist():
            self.by_offer.setdefault(int(cand.offer[e]), []).append(e)
        org_st = {(int(ix.offer_org[cand.offer[e]]), int(ix.need_station[cand.need[e]])) for e in alloc.tolist()}
        self.org_stations = np.bincount([g for g, _ in org_st], minlength=len(ix.orgs)) if org_st else \
            np.zeros(len(ix.orgs), np.int64)

    def reason(self, i: int, edges: np.ndarray) -> tuple[tuple[Id, ...], str | None]:
        """Needs (higher value per unit) holding the candidate offers' capacity, or the binding filter."""
        ix, cand = self.ix, self.cand
        named: list[tuple[float, int]] = []
        for e in edges.tolist():
            for other in self.by_offer.get(int(cand.offer[e]), [])[:MAX_NAMED * 2]:
                if cand.need[other] != i and self.pu[other] >= self.pu[e]:
                    named.append((-self.pu[other], int(cand.need[other])))
        ids = tuple(dict.fromkeys(ix.needs[k].id for _, k in sorted(named)))[:MAX_NAMED]
        if ids:
            return ids, None
        orgs = ix.offer_org[cand.offer[edges]]
        lim = ix.org_limit[orgs]
        if np.any((lim >= 0) & (self.org_stations[orgs] >= lim)):
            return (), "station_limit"
        return (), "does_not_fit" if not ix.need_split[i] else None


def unmatched(ix: Indexed, cand: Candidates, units: np.ndarray, used: np.ndarray) -> list[Unmatched]:
    """Every need served below its quantity, with its reason."""
    served = np.bincount(cand.need, weights=units, minlength=len(ix.needs)).astype(np.int64)
    short = np.flatnonzero(served < ix.need_qty)
    order = np.argsort(cand.need, kind="stable")
    start = np.searchsorted(cand.need[order], np.arange(len(ix.needs) + 1))
    cap = _Capacity(ix, cand, units, used)
    out = []
    for i in short.tolist():
        need = ix.needs[i]
        edges = order[start[i]:start[i + 1]]
        missing = int(ix.need_qty[i] - served[i])
        if edges.size == 0:
            out.append(Unmatched(need.id, need.station_id, "no_candidate", missing, 0, _first_empty_filter(cand, i)))
            continue
        taken, filt = cap.reason(i, edges)
        out.append(Unmatched(need.id, need.station_id, "capacity_taken", missing, int(edges.size), filt, taken))
    return out


def utilisation(ix: Indexed, used: np.ndarray) -> list[OfferUsage]:
    """Capacity used per offer (every offer, including unused ones)."""
    return [OfferUsage(o.id, o.organization_id, int(o.capacity), int(u)) for o, u in zip(ix.offers, used.tolist(),
                                                                                        strict=True)]


def churn(previous: Mapping[tuple[Id, Id], int], current: Mapping[tuple[Id, Id], int]) -> Churn:
    """Allocations added, removed and changed since the previous run."""
    added = tuple((a, b, u) for (a, b), u in current.items() if (a, b) not in previous)
    removed = tuple((a, b, u) for (a, b), u in previous.items() if (a, b) not in current)
    changed = tuple((a, b, previous[(a, b)], u) for (a, b), u in current.items()
                    if (a, b) in previous and previous[(a, b)] != u)
    return Churn(added, removed, changed)
