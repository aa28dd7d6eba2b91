"""Records to candidate edges: hard filters, distances and score components, vectorised with numpy."""

from __future__ import annotations

import functools
import hashlib
import itertools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial import cKDTree

from service.matching.records import Id, NeedRecord, OfferRecord, OrganizationRecord, StationRecord, Weights

LEVELS = (0, 2, 4, 6, 9, 12)  # region-code prefix lengths: nationwide, province, city, county, township, village
_TEN12 = 10**12
EARTH_KM = 6371.0088
COMPONENTS = ("service_type", "expertise", "distance", "rating", "feedback", "continuity", "priority")


def stable_key(value: Id) -> int:
    """Process-independent signed 64-bit key of an id (Python's str hash is salted per process)."""
    if isinstance(value, int) and -(2**62) < value < 2**62:
        return value
    digest = hashlib.blake2b(str(value).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def stable_keys(values: Iterable[Id]) -> np.ndarray:
    """`stable_key` of many ids as an int64 array (string ids hashed in one pass, same keys)."""
    vals = list(values)
    if all(type(v) is str for v in vals):
        blake = hashlib.blake2b
        digests = b"".join([blake(v.encode(), digest_size=8).digest() for v in vals])
        return np.frombuffer(digests, "<i8").astype(np.int64)
    return np.array([stable_key(v) for v in vals], np.int64)


def _ids(records: Sequence, kind: str) -> dict[Id, int]:
    """Index of each record id; duplicates are a data error."""
    index = {r.id: k for k, r in enumerate(records)}
    if len(index) != len(records):
        raise ValueError(f"duplicate {kind} ids")
    return index


def _lookup(index: dict[Id, int], key: Id, what: str) -> int:
    """Index of a referenced id with a clear error."""
    try:
        return index[key]
    except KeyError:
        raise ValueError(f"unknown {what} id {key!r}") from None


def _lookup_all(index: dict[Id, int], keys: Iterable[Id], what: str) -> np.ndarray:
    """Indices of many referenced ids (`_lookup` of each, in one pass)."""
    keys = list(keys)
    try:
        return np.fromiter(map(index.__getitem__, keys), np.int64, len(keys))
    except KeyError as e:
        raise ValueError(f"unknown {what} id {e.args[0]!r}") from None


@functools.lru_cache(maxsize=1 << 16)
def _region_code(code: str) -> tuple[int, int] | None:
    """(level, integer prefix) of a region-code prefix string, None if malformed (cached: codes repeat)."""
    if len(code) not in LEVELS or not (code.isdigit() or code == ""):
        return None
    return LEVELS.index(len(code)), int(code) if code else 0


def _region_int(code: str, kind: str, rid: Id) -> tuple[int, int]:
    """(level, integer prefix) of a region-code prefix string."""
    parsed = _region_code(code) if isinstance(code, str) else None
    if parsed is None:
        raise ValueError(f"{kind} {rid!r}: region code {code!r} must be 0, 2, 4, 6, 9 or 12 digits")
    return parsed


def _floats(values: Iterable[float | None]) -> np.ndarray:
    """Floats with None as NaN."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


@dataclass
class Indexed:
    """The records as arrays (indices instead of ids)."""

    needs: Sequence[NeedRecord]
    offers: Sequence[OfferRecord]
    orgs: Sequence[OrganizationRecord]
    stations: Sequence[StationRecord]
    need_index: dict[Id, int]
    offer_index: dict[Id, int]
    org_index: dict[Id, int]
    station_index: dict[Id, int]
    need_station: np.ndarray
    need_type: np.ndarray
    need_qty: np.ndarray
    need_prio: np.ndarray
    need_split: np.ndarray
    need_domain: np.ndarray
    need_start: np.ndarray
    need_end: np.ndarray
    st_region: np.ndarray
    st_lat: np.ndarray
    st_lon: np.ndarray
    org_rating: np.ndarray
    org_feedback: np.ndarray
    org_limit: np.ndarray
    org_lat: np.ndarray
    org_lon: np.ndarray
    org_domains: np.ndarray  # sorted codes org * n_domains + domain
    offer_org: np.ndarray
    offer_active: np.ndarray
    offer_start: np.ndarray
    offer_end: np.ndarray
    offer_maxdist: np.ndarray
    offer_cap: np.ndarray
    offer_primary: np.ndarray
    ot_offer: np.ndarray  # flattened (offer, type)
    ot_type: np.ndarray
    oa_offer: np.ndarray  # flattened (offer, area prefix)
    oa_level: np.ndarray
    oa_prefix: np.ndarray
    n_types: int
    n_domains: int
    type_index: dict[str, int] = field(default_factory=dict)  # service type -> code (need_type, ot_type)
    domain_index: dict[str, int] = field(default_factory=dict)  # domain -> code (need_domain, org_domains)


def _need_arrays(
    needs: Sequence[NeedRecord], station_index: dict[Id, int], types: dict[str, int], domains: dict[str, int]
) -> dict[str, np.ndarray]:
    """The needs' columns of `Indexed` (types and domains numbered in `types` / `domains`, new ones appended)."""
    for n in needs:
        if n.quantity <= 0:
            raise ValueError(f"need {n.id!r}: quantity must be > 0")
    start = np.array([n.window[0].toordinal() for n in needs], np.int64)
    end = np.array([n.window[1].toordinal() for n in needs], np.int64)
    _check_windows(needs, start, end, "need")
    return {
        "need_station": _lookup_all(station_index, map(operator.attrgetter("station_id"), needs), "station"),
        "need_type": np.array([types.setdefault(n.service_type, len(types)) for n in needs], np.int64),
        "need_qty": np.array([n.quantity for n in needs], np.int64),
        "need_prio": np.array([n.priority for n in needs], np.float64),
        "need_split": np.array([n.splittable for n in needs], bool),
        "need_domain": np.array(
            [-1 if n.domain is None else domains.setdefault(n.domain, len(domains)) for n in needs], np.int64
        ),
        "need_start": start,
        "need_end": end,
    }


def _check_windows(records: Sequence, start: np.ndarray, end: np.ndarray, kind: str) -> None:
    """Reject a window that ends before it starts (it would overlap every window around it)."""
    bad = np.flatnonzero(end < start)
    if bad.size:
        r = records[int(bad[0])]
        raise ValueError(f"{kind} {r.id!r}: window ends ({r.window[1]}) before it starts ({r.window[0]})")


NEED_COLUMNS = (
    "need_station",
    "need_type",
    "need_qty",
    "need_prio",
    "need_split",
    "need_domain",
    "need_start",
    "need_end",
)


def index_records(
    needs: Sequence[NeedRecord],
    offers: Sequence[OfferRecord],
    orgs: Sequence[OrganizationRecord],
    stations: Sequence[StationRecord],
) -> Indexed:
    """Validate references and convert records to arrays."""
    need_index, offer_index = _ids(needs, "need"), _ids(offers, "offer")
    org_index, station_index = _ids(orgs, "organization"), _ids(stations, "station")
    types: dict[str, int] = {}
    domains: dict[str, int] = {}
    need_cols = _need_arrays(needs, station_index, types, domains)
    ot_pairs = [
        (k, types.setdefault(t, len(types))) for k, o in enumerate(offers) for t in dict.fromkeys(o.service_types)
    ]
    org_dom = [(g, domains.setdefault(d, len(domains))) for g, o in enumerate(orgs) for d in o.domains]
    oa = [(k, *_region_int(a, "offer", o.id)) for k, o in enumerate(offers) for a in o.area]
    org_active = np.array([o.active for o in orgs], bool)
    offer_org = _lookup_all(org_index, map(operator.attrgetter("organization_id"), offers), "organization")
    nd = max(len(domains), 1)
    offer_start = np.array([o.window[0].toordinal() for o in offers], np.int64)
    offer_end = np.array([o.window[1].toordinal() for o in offers], np.int64)
    _check_windows(offers, offer_start, offer_end, "offer")
    # Snapshots, not the caller's lists: a later run compares its records with these (`reindex_needs`), and a list
    # edited in place between runs would otherwise compare equal to itself.
    return Indexed(
        tuple(needs),
        tuple(offers),
        tuple(orgs),
        tuple(stations),
        need_index,
        offer_index,
        org_index,
        station_index,
        **need_cols,
        st_region=np.array([_region_int(s.region_code, "station", s.id)[1] for s in stations], np.int64),
        st_lat=_floats(s.lat for s in stations),
        st_lon=_floats(s.lon for s in stations),
        org_rating=_floats(o.rating for o in orgs),
        org_feedback=_floats(o.feedback for o in orgs),
        org_limit=np.array([-1 if o.max_stations is None else o.max_stations for o in orgs], np.int64),
        org_lat=_floats(o.lat for o in orgs),
        org_lon=_floats(o.lon for o in orgs),
        org_domains=np.unique(np.array([g * nd + d for g, d in org_dom], np.int64)),
        offer_org=offer_org,
        offer_active=np.array([o.active for o in offers], bool) & org_active[offer_org]
        if len(offers)
        else np.zeros(0, bool),
        offer_start=offer_start,
        offer_end=offer_end,
        offer_maxdist=_floats(o.max_distance_km for o in offers),
        offer_cap=np.array([o.capacity for o in offers], np.int64),
        offer_primary=np.array(
            [types.get(o.service_types[0], -1) if o.service_types else -1 for o in offers], np.int64
        ),
        ot_offer=np.array([p[0] for p in ot_pairs], np.int64),
        ot_type=np.array([p[1] for p in ot_pairs], np.int64),
        oa_offer=np.array([p[0] for p in oa], np.int64),
        oa_level=np.array([p[1] for p in oa], np.int64),
        oa_prefix=np.array([p[2] for p in oa], np.int64),
        n_types=len(types),
        n_domains=nd,
        type_index=types,
        domain_index=domains,
    )


def _same_records(a: Sequence, b: Sequence) -> bool:
    """Whether two record lists hold equal records in the same order (identity first: unchanged records are usually
    the very same objects)."""
    if len(a) != len(b):
        return False
    return all(map(operator.is_, a, b)) or all(x is y or x == y for x, y in zip(a, b, strict=True))


def reindex_needs(
    prev: Indexed,
    needs: Sequence[NeedRecord],
    offers: Sequence[OfferRecord],
    orgs: Sequence[OrganizationRecord],
    stations: Sequence[StationRecord],
) -> tuple[Indexed, np.ndarray] | None:
    """`index_records` of records that differ from `prev`'s in some needs' fields only (same ids in the same order,
    offers, organizations and stations equal): `prev`'s arrays with the changed needs' rows replaced, and the indices
    of those needs.  None when the change is of another kind (new, removed or reordered needs; a need of a service
    type or domain no record had before; any offer, organization or station changed)."""
    if len(needs) != len(prev.needs):
        return None
    # Identity first, in C (most records are the very objects indexed before); only the others are compared.
    maybe = itertools.compress(range(len(needs)), map(operator.is_not, needs, prev.needs))
    changed = [k for k in maybe if needs[k] != prev.needs[k]]
    if any(needs[k].id != prev.needs[k].id for k in changed):
        return None
    if not (_same_records(offers, prev.offers) and _same_records(orgs, prev.orgs)):
        return None
    if not _same_records(stations, prev.stations):
        return None
    subset = [needs[k] for k in changed]
    types, domains = dict(prev.type_index), dict(prev.domain_index)
    cols = _need_arrays(subset, prev.station_index, types, domains)
    if len(types) != len(prev.type_index) or len(domains) != len(prev.domain_index):
        return None
    idx = np.asarray(changed, np.int64)
    patched = {}
    for name in NEED_COLUMNS:
        column = getattr(prev, name).copy()
        column[idx] = cols[name]
        patched[name] = column
    return replace(prev, needs=tuple(needs), **patched), idx


def _subset(ix: Indexed, rows: np.ndarray) -> Indexed:
    """`ix` restricted to the needs at `rows` (renumbered 0..len(rows)-1; offers, organizations, stations kept)."""
    needs = [ix.needs[k] for k in rows.tolist()]
    return replace(
        ix,
        needs=needs,
        need_index={n.id: k for k, n in enumerate(needs)},
        **{name: getattr(ix, name)[rows] for name in NEED_COLUMNS},
    )


def member(values: np.ndarray, members: np.ndarray, *, presorted: bool = False) -> np.ndarray:
    """`np.isin(values, members)` by binary search (np.isin de-duplicates `values` too, slow for millions)."""
    ref = members if presorted else np.unique(members)
    if ref.size == 0:
        return np.zeros(len(values), bool)
    pos = np.minimum(np.searchsorted(ref, values), ref.size - 1)
    return ref[pos] == values


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """`np.unique` of an int array by sorting (faster than numpy's hash-based unique on millions)."""
    out = np.sort(values)
    return out[np.r_[True, out[1:] != out[:-1]]] if out.size else out


def join(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (i, j) with left[i] == right[j] (a vectorised many-to-many join)."""
    order = np.argsort(right, kind="stable")
    sk = right[order]
    # Binary searches for each distinct key, in order (needs share keys; random probes of a long array miss cache).
    keys, inverse = np.unique(left, return_inverse=True)
    lo_k = np.searchsorted(sk, keys, "left")
    lo, cnt = lo_k[inverse], (np.searchsorted(sk, keys, "right") - lo_k)[inverse]
    total = int(cnt.sum())
    li = np.repeat(np.arange(len(left)), cnt)
    within = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return li, order[np.repeat(lo, cnt) + within]


def _area_pairs(ix: Indexed) -> tuple[np.ndarray, np.ndarray]:
    """(need, offer) pairs where an active offer of the need's type covers the station's region."""
    act = ix.offer_active[ix.oa_offer]
    oa_off, oa_lvl, oa_pre = ix.oa_offer[act], ix.oa_level[act], ix.oa_prefix[act]
    ai, ti = join(oa_off, ix.ot_offer)  # offer areas x offer types
    right = (ix.ot_type[ti] * 8 + oa_lvl[ai]) * _TEN12 + oa_pre[ai]
    region = ix.st_region[ix.need_station]
    n = len(ix.needs)
    left = np.concatenate(
        [(ix.need_type * 8 + li) * _TEN12 + region // 10 ** (12 - lvl) for li, lvl in enumerate(LEVELS)]
    )
    ni, ri = join(left, right)
    return ni % n if n else ni, oa_off[ai[ri]]


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Points on the unit sphere."""
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=1)


def _distance_pairs(ix: Indexed, stations: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(need, offer) pairs where the station lies within the active offer's maximum distance (`stations`: the only
    stations the needs are at, when they are few)."""
    lat, lon = ix.org_lat[ix.offer_org], ix.org_lon[ix.offer_org]
    offers = np.flatnonzero(ix.offer_active & np.isfinite(ix.offer_maxdist) & np.isfinite(lat) & np.isfinite(lon))
    if stations is None:
        stations = np.arange(len(ix.stations))
    stations = stations[np.isfinite(ix.st_lat[stations]) & np.isfinite(ix.st_lon[stations])]
    empty = np.zeros(0, np.int64)
    if offers.size == 0 or stations.size == 0:
        return empty, empty
    tree = cKDTree(_unit_vectors(ix.st_lat[stations], ix.st_lon[stations]))
    chord = 2 * np.sin(np.minimum(ix.offer_maxdist[offers] / EARTH_KM, np.pi) / 2)
    hits = tree.query_ball_point(_unit_vectors(lat[offers], lon[offers]), chord)
    lens = np.fromiter((len(h) for h in hits), np.int64, len(hits))
    st = stations[np.fromiter(itertools.chain.from_iterable(hits), np.int64, int(lens.sum()))]
    off = np.repeat(offers, lens)
    pi, ti = join(off, ix.ot_offer)
    t = max(ix.n_types, 1)
    ni, ri = join(ix.need_station * t + ix.need_type, st[pi] * t + ix.ot_type[ti])
    return ni, off[pi[ri]]


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km (NaN where a coordinate is missing)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def _edge_km(ix: Indexed, st: np.ndarray, org: np.ndarray) -> np.ndarray:
    """`haversine_km` between each edge's station and organization, with the per-point terms computed once per
    station and organization (the same floating-point operations, so the same distances)."""
    p1, p2 = np.radians(ix.st_lat), np.radians(ix.org_lat)
    c1, c2 = np.cos(p1), np.cos(p2)
    a = (
        np.sin((p2[org] - p1[st]) / 2) ** 2
        + c1[st] * c2[org] * np.sin(np.radians(ix.org_lon[org] - ix.st_lon[st]) / 2) ** 2
    )
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


@dataclass
class Candidates:
    """Candidate edges with their score components, plus per-need filter counts for explanations."""

    need: np.ndarray
    offer: np.ndarray
    distance_km: np.ndarray
    components: np.ndarray  # (edges, 7) in COMPONENTS order
    score: np.ndarray
    value: np.ndarray  # per unit (splittable) or for the whole need (unsplittable)
    forced: np.ndarray  # edges added for accepted allocations regardless of filters
    filter_counts: dict[str, np.ndarray]  # candidates left per need after each filter


def _pair_codes(need: np.ndarray, offer: np.ndarray, n_offers: int) -> np.ndarray:
    """One int64 code per (need, offer) pair."""
    return need * max(n_offers, 1) + offer


def build_candidates(
    ix: Indexed,
    weights: Weights,
    pairings: Iterable[tuple[Id, Id]] = (),
    rejected: Iterable[tuple[Id, Id]] = (),
    forced: Iterable[tuple[Id, Id]] = (),
    *,
    stations: np.ndarray | None = None,
) -> Candidates:
    """Apply the hard filters (type, active, area or distance, window, rejection) and score what is left
    (`stations`: the stations of `ix`'s needs, if known to be a few)."""
    n, m = len(ix.needs), len(ix.offers)
    a_n, a_o = _area_pairs(ix)
    d_n, d_o = _distance_pairs(ix, stations)
    codes = sorted_unique(_pair_codes(np.concatenate([a_n, d_n]), np.concatenate([a_o, d_o]), m))
    need, offer = codes // max(m, 1), codes % max(m, 1)
    counts = _type_counts(ix)
    counts["none_in_range"] = np.bincount(need, minlength=n)
    overlap = (ix.need_start[need] <= ix.offer_end[offer]) & (ix.offer_start[offer] <= ix.need_end[need])
    need, offer = need[overlap], offer[overlap]
    counts["none_in_window"] = np.bincount(need, minlength=n)
    rej = np.array(
        [
            _lookup(ix.need_index, a, "need") * len(ix.orgs) + _lookup(ix.org_index, g, "organization")
            for a, g in rejected
        ],
        np.int64,
    )
    keep = ~member(need * len(ix.orgs) + ix.offer_org[offer], rej)
    need, offer = need[keep], offer[keep]
    counts["all_rejected"] = np.bincount(need, minlength=n)
    need, offer, is_forced = _add_forced(ix, need, offer, forced)
    return _score(ix, weights, need, offer, is_forced, counts, pairings)


def _type_counts(ix: Indexed) -> dict[str, np.ndarray]:
    """Offers of each need's type, at all and active only."""
    t = max(ix.n_types, 1)
    all_t = np.bincount(ix.ot_type, minlength=t)
    act_t = np.bincount(ix.ot_type[ix.offer_active[ix.ot_offer]], minlength=t)
    return {"no_offer_of_type": all_t[ix.need_type], "no_active_offer": act_t[ix.need_type]}


def _add_forced(
    ix: Indexed, need: np.ndarray, offer: np.ndarray, forced: Iterable[tuple[Id, Id]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Append accepted pairs that the filters removed (an accepted allocation stays)."""
    m = len(ix.offers)
    pairs = [(_lookup(ix.need_index, a, "need"), _lookup(ix.offer_index, b, "offer")) for a, b in forced]
    f = _pair_codes(np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64), m)
    codes = _pair_codes(need, offer, m)
    uf = np.unique(f)
    extra = uf[~member(uf, codes, presorted=True)]  # codes are sorted and unique
    allc = np.concatenate([codes, extra])
    order = np.argsort(allc, kind="stable")
    allc = allc[order]
    return allc // max(m, 1), allc % max(m, 1), member(allc, f)


def _score(
    ix: Indexed,
    w: Weights,
    need: np.ndarray,
    offer: np.ndarray,
    forced: np.ndarray,
    counts: dict[str, np.ndarray],
    pairings: Iterable[tuple[Id, Id]],
) -> Candidates:
    """Score components, weighted score and integer value of each edge."""
    org, st = ix.offer_org[offer], ix.need_station[need]
    dist = _edge_km(ix, st, org)
    unk = w.unknown
    type_score = np.where(ix.offer_primary[offer] == ix.need_type[need], 1.0, w.secondary_type)
    dom = ix.need_domain[need]
    # Domains per organization as a dense table (organizations x domains), looked up per edge.
    known = np.zeros(max(len(ix.orgs), 1) * ix.n_domains, bool)
    known[ix.org_domains] = True
    has_dom = known[org * ix.n_domains + np.maximum(dom, 0)] & (dom >= 0)
    org_has_any = known.reshape(-1, ix.n_domains).any(axis=1)[org]
    expertise = np.where(has_dom, 1.0, np.where((dom < 0) | ~org_has_any, unk, 0.0))
    distance = np.where(np.isfinite(dist), np.exp(-np.nan_to_num(dist) / w.distance_scale_km), unk)
    rating = np.where(np.isfinite(ix.org_rating[org]), np.clip(ix.org_rating[org] / 5.0, 0, 1), unk)
    feedback = np.where(np.isfinite(ix.org_feedback[org]), np.clip(ix.org_feedback[org], 0, 1), unk)
    pair_codes = np.array(
        [
            _lookup(ix.org_index, g, "organization") * max(len(ix.stations), 1)
            + _lookup(ix.station_index, s, "station")
            for g, s in pairings
        ],
        np.int64,
    )
    # Looked up only for edges of organizations with a pairing (national: 5 k pairings, 1.7 M edges).
    paired = np.zeros(max(len(ix.orgs), 1), bool)
    paired[pair_codes // max(len(ix.stations), 1)] = True
    at = np.flatnonzero(paired[org])
    continuity = np.zeros(len(need))
    continuity[at] = member(org[at] * max(len(ix.stations), 1) + st[at], pair_codes)
    priority = np.clip((ix.need_prio[need] - 1) / 4, 0, 1)
    columns = (type_score, expertise, distance, rating, feedback, continuity, priority)
    comps = np.array(columns).T  # edges x components, column-major: each column written whole, not interleaved
    wv = (w.service_type, w.expertise, w.distance, w.rating, w.feedback, w.continuity, w.priority)
    # Summed component by component in a fixed order, not `comps @ wv`: a matrix product's rounding depends on how
    # many rows it gets, and an edge must score the same whether its need is scored alone (`update_candidates`) or
    # with all of them.
    score = np.zeros(len(need))
    for column, weight in zip(columns, wv, strict=True):
        score = score + column * weight
    per_unit = 1 + np.rint(w.resolution * score).astype(np.int64)
    value = np.where(ix.need_split[need], per_unit, per_unit * ix.need_qty[need])
    return Candidates(need, offer, dist, comps, score, value, forced, counts)


def update_candidates(
    prev: Candidates,
    ix: Indexed,
    changed: np.ndarray,
    weights: Weights,
    pairings: Iterable[tuple[Id, Id]] = (),
    rejected: Iterable[tuple[Id, Id]] = (),
    forced: Iterable[tuple[Id, Id]] = (),
) -> tuple[Candidates, np.ndarray]:
    """`build_candidates` after the needs at `changed` changed (`reindex_needs`), everything else as for `prev`:
    `prev`'s edges of the other needs kept, the changed needs' edges built anew (same filters and scores, so the same
    candidates as a full build).  Also returns, per edge, the index of the same (need, offer) edge in `prev` or -1."""
    if not changed.size:
        return prev, np.arange(len(prev.need))
    m = max(len(ix.offers), 1)
    sub = _subset(ix, changed)
    ids = set(sub.need_index)
    fresh = build_candidates(
        sub,
        weights,
        pairings,
        [(a, g) for a, g in rejected if a in ids],
        [(a, b) for a, b in forced if a in ids],
        stations=np.unique(sub.need_station),
    )
    mask = np.zeros(len(ix.needs), bool)
    mask[changed] = True
    kept = np.flatnonzero(~mask[prev.need])
    prev_codes = prev.need * m + prev.offer
    fresh_codes = changed[fresh.need] * m + fresh.offer  # sorted: `changed` is
    old = np.flatnonzero(mask[prev.need])
    if len(old) == len(fresh_codes) and np.array_equal(prev_codes[old], fresh_codes):
        # The same edges (a change of quantity, priority …): `prev`'s columns, patched only where the values differ.
        edge_map = np.arange(len(prev_codes))

        def merged(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            if np.array_equal(a[old], b, equal_nan=True):
                return a
            out = a.copy()
            out[old] = b
            return out
    else:
        kept = np.flatnonzero(~mask[prev.need])
        # Both parts are sorted by (need, offer): the fresh edges slot in between the kept ones.
        at = np.searchsorted(prev_codes[kept], fresh_codes) + np.arange(len(fresh_codes))
        is_fresh = np.zeros(len(kept) + len(fresh_codes), bool)
        is_fresh[at] = True

        def merged(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            out = np.empty((len(is_fresh), *a.shape[1:]), a.dtype)
            out[is_fresh] = b
            out[~is_fresh] = a[kept]
            return out

        pos = np.minimum(np.searchsorted(prev_codes, fresh_codes), max(len(prev_codes) - 1, 0))
        fresh_map = np.where(prev_codes[pos] == fresh_codes, pos, -1) if len(prev_codes) else np.full(len(pos), -1)
        edge_map = merged(np.arange(len(prev_codes)), fresh_map)
    counts = {}
    for name, column in prev.filter_counts.items():
        column = column.copy()
        column[changed] = fresh.filter_counts[name]
        counts[name] = column
    cand = Candidates(
        merged(prev.need, changed[fresh.need]),
        merged(prev.offer, fresh.offer),
        merged(prev.distance_km, fresh.distance_km),
        merged(prev.components, fresh.components),
        merged(prev.score, fresh.score),
        merged(prev.value, fresh.value),
        merged(prev.forced, fresh.forced),
        counts,
    )
    return cand, edge_map
