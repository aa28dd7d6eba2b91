"""Greedy baseline: fixed units, then kept incumbent units, then edges by gain per unit of demand."""

from __future__ import annotations

import functools

import numpy as np

from service.matching.problem import Normalised, station_codes, sub_problem


def edge_gain(norm: Normalised, edges: np.ndarray) -> np.ndarray:
    """Gain of serving an edge from scratch: per unit (splittable) or for the whole need (unsplittable)."""
    split = norm.splittable[norm.e_need[edges]]
    if not norm.has_incumbent:
        return norm.value[edges].astype(np.float64)
    h = norm.incumbent[edges]
    dem = norm.demand[norm.e_need[edges]]
    # Unsplittable: serving costs p*|d-h| instead of the p*h paid when unserved.
    whole = norm.value[edges] - norm.penalty * (np.abs(dem - h) - h)
    per_unit = norm.value[edges] + np.where(h > 0, norm.penalty, -norm.penalty)
    return np.where(split, per_unit, whole).astype(np.float64)


_RUN_CHUNK = 16_384  # positions per chunk of a long pass (see `_State.run`)
_SLOTS_MAX_CELLS = 4_000_000  # organizations x station slots above which a long pass runs one position at a time


class _Slots:
    """The stations each limited organization serves, as numpy rows (organization x up to its limit, or more when
    it came in with more), for a pass run in rounds: one round admits many positions at once, at most one per
    organization."""

    def __init__(self, rows: np.ndarray, count: np.ndarray, limit: np.ndarray) -> None:
        self.rows, self.count, self.start, self.limit = rows, count, count.copy(), limit

    @classmethod
    def of(cls, stations: dict[int, set[int]], org_limit: np.ndarray) -> _Slots | None:
        """The rows for these stations, or None when they would exceed _SLOTS_MAX_CELLS (an organization allowed
        hundreds of stations): the pass then runs one position at a time."""
        width = max([int(org_limit.max(initial=0)), *(len(v) for v in stations.values()), 1])
        if len(org_limit) * width > _SLOTS_MAX_CELLS:
            return None
        rows = np.zeros((len(org_limit), width), np.int64)
        count = np.zeros(len(org_limit), np.int64)
        for g, seen in stations.items():
            rows[g, : len(seen)] = sorted(seen)
            count[g] = len(seen)
        return cls(rows, count, org_limit)

    def admit(self, limited: np.ndarray, org: np.ndarray, station: np.ndarray, take: np.ndarray) -> np.ndarray:
        """Per position (distinct organizations): whether its organization may serve the station (no limit, serves it
        already, or has room); notes the station where the position takes units (`take`) and may."""
        g = org[limited]
        have = self.count[g]
        known = ((self.rows[g] == station[limited][:, None]) & (np.arange(self.rows.shape[1]) < have[:, None])).any(1)
        room = known | (have < self.limit[g])
        out = np.ones(len(org), bool)
        out[limited] = room
        new = room & ~known & take[limited]
        self.rows[g[new], have[new]] = station[limited][new]
        self.count[g[new]] += 1
        return out

    def write_back(self, stations: dict[int, set[int]]) -> None:
        """Add the stations noted during the pass to `stations` (organization -> stations)."""
        for g in np.flatnonzero(self.count > self.start).tolist():
            stations.setdefault(g, set()).update(self.rows[g, : self.count[g]].tolist())


class _State:
    """Residual demand, capacity and organization-station bookkeeping during the greedy pass, as plain lists
    indexed by need and offer (short passes run as tight Python loops over columns gathered with numpy for their
    positions; long ones in chunks, mostly in rounds: `run`)."""

    def __init__(
        self,
        norm: Normalised,
        edges: np.ndarray,
        cap: np.ndarray | None = None,
        opened: dict[int, set[int]] | None = None,
        dem: np.ndarray | None = None,
    ) -> None:
        self.norm = norm
        self.dem = (norm.demand if dem is None else dem).tolist()
        self.cap = (norm.capacity if cap is None else cap).tolist()
        self.stations: dict[int, set[int]] = {g: set(s) for g, s in (opened or {}).items()}
        self.covered: set[int] = set()
        self.e_need, self.e_offer, self.e_usage = norm.e_need[edges], norm.e_offer[edges], norm.usage[edges]
        self.lim_arr = norm.org_limit[norm.org] if len(norm.org_limit) else np.full(norm.n_offers, -1, np.int64)

    # Lists for the one-position-at-a-time loop, made when a pass first runs it (a long pass in rounds reads the
    # arrays: the cold national guard never needs them).
    @functools.cached_property
    def full(self) -> list[int]:
        """Each need's demand."""
        return self.norm.demand.tolist()

    @functools.cached_property
    def station(self) -> list[int]:
        """Each need's station."""
        return self.norm.station.tolist()

    @functools.cached_property
    def org(self) -> list[int]:
        """Each offer's organization."""
        return self.norm.org.tolist()

    @functools.cached_property
    def _scratch(self) -> np.ndarray:
        """A scratch array for `_first`, long enough for need, offer and organization indices."""
        return np.full(max(self.norm.n_needs, self.norm.n_offers, len(self.norm.org_limit), 1), _UNSEEN, np.int64)

    @functools.cached_property
    def _station_codes(self) -> tuple[np.ndarray, int, np.ndarray | None]:
        """`station_codes` for (organization, station) codes; only runs with station limits need them.  They cover
        the stations organizations already serve outside the pass (`opened`): a pass on a sub-problem does not hold
        their needs."""
        known = np.array([b for seen in self.stations.values() for b in seen], np.int64)
        return station_codes(self.norm, known)

    def _pair_codes(self, org: np.ndarray, need: np.ndarray) -> np.ndarray:
        """One code per (organization, station of the need): organization * codes + station code."""
        code, n_codes, _ = self._station_codes
        return org * n_codes + code[need]

    def take_all(self, units: np.ndarray) -> None:
        """Record `units` on this state's positions at once (a feasible set: fixed or start units)."""
        used = np.flatnonzero(units > 0)
        if not used.size:
            return
        need, offer = self.e_need[used], self.e_offer[used]
        served, spent = _use(self.norm, need, offer, self.e_usage[used], units[used])
        self.dem = (np.asarray(self.dem, np.int64) - served).tolist()
        self.cap = (np.asarray(self.cap, np.int64) - spent).tolist()
        self.record(offer, need)

    def take_slack(self, units: np.ndarray, positions: np.ndarray, limits: np.ndarray) -> np.ndarray:
        """`run` at once for the positions no demand, capacity or station limit can stop: those whose need, offer and
        organization could take every position of theirs in full (the incumbent's units of a re-solve, bar around
        the changes).  Any order gives them the same units, so they need no loop; returns which positions were
        taken (the others are left for `run`, in their order)."""
        norm = self.norm
        need, offer, use = self.e_need[positions], self.e_offer[positions], self.e_usage[positions]
        split = norm.splittable[need]
        dem, cap, full = np.asarray(self.dem, np.int64), np.asarray(self.cap, np.int64), norm.demand
        amount = np.where(split, limits, dem[need])  # an unsplittable need is served whole or not at all
        valid = np.where(split, amount > 0, dem[need] == full[need])
        spend = np.where(split, np.maximum(use, 0) * amount, use)
        per_need = np.bincount(need, weights=amount, minlength=norm.n_needs)
        need_ok = per_need <= dem  # an unsplittable need's second position would double its whole demand
        offer_ok = np.bincount(offer, weights=spend, minlength=norm.n_offers) <= cap
        ok = valid & need_ok[need] & offer_ok[offer] & self._orgs_ok(offer, need)
        take = positions[ok]
        x = amount[ok]
        dem -= np.bincount(need[ok], weights=x, minlength=norm.n_needs).astype(np.int64)
        cap -= np.bincount(offer[ok], weights=spend[ok], minlength=norm.n_offers).astype(np.int64)
        self.dem, self.cap = dem.tolist(), cap.tolist()
        units[take] += x
        self.record(offer[ok], need[ok])
        return ok

    def record(self, offer: np.ndarray, need: np.ndarray) -> None:
        """Note the stations served by units on (offer, need) pairs: per limited organization, and covered (only
        coverage-first passes read that)."""
        limited = self.lim_arr[offer] >= 0
        if limited.any():
            _, n_codes, ids = self._station_codes
            codes = np.unique(self._pair_codes(self.norm.org[offer[limited]], need[limited]))
            station = codes % n_codes if ids is None else ids[codes % n_codes]
            stations = self.stations
            for g, b in zip((codes // n_codes).tolist(), station.tolist(), strict=True):
                seen = stations.get(g)
                if seen is None:
                    stations[g] = {b}
                else:
                    seen.add(b)
        if self.norm.coverage_first:
            self.covered.update(np.unique(self.norm.station[need]).tolist())

    def _orgs_ok(self, offer: np.ndarray, need: np.ndarray) -> np.ndarray:
        """Per position: its organization has no station limit, or may serve every station its positions and
        earlier choices open."""
        lim = self.lim_arr[offer]
        limited = lim >= 0
        if not limited.any():
            return np.ones(len(offer), bool)
        norm = self.norm
        _, n_codes, ids = self._station_codes
        g = norm.org[offer[limited]]
        org = np.array([a for a, seen in self.stations.items() for _ in seen], np.int64)
        station = np.array([b for seen in self.stations.values() for b in seen], np.int64)
        opened = org * n_codes + (station if ids is None else np.searchsorted(ids, station))
        pairs = np.unique(np.concatenate([self._pair_codes(g, need[limited]), opened]))
        count = np.bincount(pairs // n_codes, minlength=len(norm.org_limit))
        ok = np.ones(len(offer), bool)
        ok[limited] = count[g] <= norm.org_limit[g]
        return ok

    def run(self, units: np.ndarray, positions: np.ndarray, limits: np.ndarray | int, *, last: bool = False) -> None:
        """Put as many units as allowed on each position in turn (at most `limits`, per position or for all).
        `last`: no pass reads this state after this one, so a pass in rounds leaves it as it is (writing back the
        stations organizations serve cost 0.09 s of a 0.4 s cold national guard).

        Most positions of a long pass are dead by their turn (a cold national pass takes 163k of 1.52 M: the rest
        find their need served or their offer empty), so the pass runs in chunks, and before each chunk drops the
        positions of needs served and offers emptied (for positions that use capacity) in earlier chunks, with
        numpy: those the loop would skip one by one.  Outside coverage-first passes a chunk then runs in rounds
        (`_rounds`).  The same units as one loop over every position."""
        lim = limits if isinstance(limits, np.ndarray) else np.full(len(positions), limits, np.int64)
        if len(positions) <= 2 * _RUN_CHUNK:
            self._loop(units, positions, lim, None)
            return
        dem, cap = np.asarray(self.dem, np.int64), np.asarray(self.cap, np.int64)
        # Rounds (not in a coverage pass: it reads the stations covered so far, one position at a time).
        slots = None if self.norm.coverage_first else _Slots.of(self.stations, self.norm.org_limit)
        need, offer, usage = self.e_need[positions], self.e_offer[positions], self.e_usage[positions]
        for lo in range(0, len(positions), _RUN_CHUNK):
            pos, chunk_lim = positions[lo : lo + _RUN_CHUNK], lim[lo : lo + _RUN_CHUNK]
            chunk = slice(lo, lo + _RUN_CHUNK)
            alive = _alive(dem, cap, need[chunk], offer[chunk], usage[chunk])
            if slots is not None:
                self._rounds(units, pos[alive], chunk_lim[alive], dem, cap, slots)
                continue
            done: tuple[list[int], list[int]] = ([], [])
            self._loop(units, pos[alive], chunk_lim[alive], done)
            dem[done[0]] = 0
            cap[done[1]] = 0
        if slots is not None and not last:
            self.dem, self.cap = dem.tolist(), cap.tolist()
            slots.write_back(self.stations)

    def _rounds(
        self,
        units: np.ndarray,
        positions: np.ndarray,
        limits: np.ndarray,
        dem: np.ndarray,
        cap: np.ndarray,
        slots: _Slots,
    ) -> None:
        """`_loop` over `positions` in rounds, on numpy demand and capacity: each round takes at once every position
        that comes first, among those left, for its need, its offer and (if limited) its organization.  No earlier
        position left shares any of them, so the state it reads is the one the loop would give it (national: at most
        782 rounds for the 215k positions of a cold pass, instead of one Python step each)."""
        e_need, e_offer, e_usage = self.e_need[positions], self.e_offer[positions], self.e_usage[positions]
        split, g_lim = self.norm.splittable[e_need], self.lim_arr[e_offer]
        org = self.norm.org[e_offer]
        full = self.norm.demand
        rest = np.arange(len(positions))
        took: list[np.ndarray] = []
        amounts: list[np.ndarray] = []
        scratch = self._scratch
        while rest.size:
            need, offer = e_need[rest], e_offer[rest]
            ready = _first(need, scratch) & _first(offer, scratch)
            limited = g_lim[rest] >= 0
            if limited.any():
                at = np.flatnonzero(limited)
                ready[at] &= _first(org[rest[at]], scratch)
            k = rest[ready]
            i, j, u, lim = e_need[k], e_offer[k], e_usage[k], limits[k]
            d, c = dem[i], cap[j]
            per = np.where(u <= 0, d, c // np.maximum(u, 1))
            x = np.where(split[k], np.minimum(np.minimum(per, lim), d), d)
            ok = np.where(split[k], x > 0, (d == full[i]) & (c >= u) & (lim >= d) & (d > 0))
            if limited[ready].any():
                ok &= slots.admit(g_lim[k] >= 0, org[k], self.norm.station[i], ok)
            k, i, j, x = k[ok], i[ok], j[ok], x[ok]
            cap[j] -= np.where(split[k], u[ok] * x, u[ok])  # one position per offer in a round
            dem[i] -= x
            took.append(positions[k])
            amounts.append(x)
            rest = rest[~ready]
            rest = rest[_alive(dem, cap, e_need[rest], e_offer[rest], e_usage[rest])]
        if took:
            units[np.concatenate(took)] += np.concatenate(amounts)  # each position at most once per pass

    def _loop(
        self, units: np.ndarray, positions: np.ndarray, limits: np.ndarray, done: tuple[list[int], list[int]] | None
    ) -> None:
        """`run`'s loop; `done`: lists to which it appends the needs it serves in full and the offers it empties."""
        took: list[int] = []
        amounts: list[int] = []
        dem, full, cap, stations, station, org = self.dem, self.full, self.cap, self.stations, self.station, self.org
        covered = self.covered if self.norm.coverage_first else None
        need, offer = self.e_need[positions], self.e_offer[positions]
        cols = (
            positions.tolist(),
            need.tolist(),
            offer.tolist(),
            self.e_usage[positions].tolist(),
            self.lim_arr[offer].tolist(),
            self.norm.splittable[need].tolist(),
            limits.tolist(),
        )
        for pos, i, j, u, g_lim, split, limit in zip(*cols, strict=True):
            d = dem[i]
            if d <= 0:  # served already (the common case late in a pass)
                continue
            if g_lim >= 0:
                seen = stations.get(org[j], ())
                if len(seen) >= g_lim and station[i] not in seen:
                    continue
            c = cap[j]
            if split:
                x = d if u <= 0 else c if u == 1 else c // u
                if limit < x:
                    x = limit
                if d < x:
                    x = d
                if x <= 0:
                    continue
                cap[j] = c - u * x
            else:
                if d != full[i] or c < u or limit < d:
                    continue
                x = d
                cap[j] = c - u
            dem[i] = d - x
            took.append(pos)
            amounts.append(x)
            if done is not None:
                if d == x:
                    done[0].append(i)
                if cap[j] <= 0:
                    done[1].append(j)
            if g_lim >= 0:
                stations.setdefault(org[j], set()).add(station[i])
            if covered is not None:
                covered.add(station[i])
        units[np.asarray(took, np.int64)] += np.asarray(amounts, np.int64)  # each position at most once per pass


def _alive(dem: np.ndarray, cap: np.ndarray, need: np.ndarray, offer: np.ndarray, usage: np.ndarray) -> np.ndarray:
    """Which positions (their need, offer and usage) can still take units: the need is not served, and the offer
    is not empty unless the position uses no capacity (demand and capacity only shrink: dead stays dead)."""
    return (dem[need] > 0) & ~((cap[offer] <= 0) & (usage > 0))


_UNSEEN = np.iinfo(np.int64).max


def _first(keys: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Whether each position is the first of its key (positions in order; keys are indices into `scratch`, which
    holds _UNSEEN everywhere and is left so).  The lowest position per key by `np.minimum.at` into the scratch
    array: 4-15 times faster than `np.unique(return_index=True)` for the 500-16,000 keys of a round."""
    at = np.arange(len(keys))
    np.minimum.at(scratch, keys, at)
    out = scratch[keys] == at
    scratch[keys] = _UNSEEN
    return out


_PART_FACTOR = 4  # a pass over fewer than (needs + offers) / _PART_FACTOR edges runs on its sub-problem


def _short_pass(norm: Normalised, edges: np.ndarray) -> tuple[Normalised, np.ndarray, np.ndarray] | None:
    """For a short pass over a large problem: the sub-problem of its edges' needs and offers, and those needs and
    offers (sorted); else None.  The pass state holds Python lists per need and offer (national re-solve: 43 ms for
    the 3,690 edges of the changed needs); positions, organizations and stations are the same on the sub-problem, so
    the units are too."""
    if not len(edges) or _PART_FACTOR * len(edges) >= norm.n_needs + norm.n_offers:
        return None
    needs, offers = np.unique(norm.e_need[edges]), np.unique(norm.e_offer[edges])
    return sub_problem(norm, needs, offers, edges), needs, offers


def greedy(
    norm: Normalised,
    edges: np.ndarray,
    start: np.ndarray | None = None,
    *,
    cap: np.ndarray | None = None,
    opened: dict[int, set[int]] | None = None,
) -> np.ndarray:
    """Greedy units on `edges` (every edge of their needs); fixed (and `start`) units are taken first (assumed
    feasible). `cap` overrides offer capacities (residual capacity), `opened` lists stations each organization
    already serves outside `edges`."""
    short = _short_pass(norm, edges)
    if short is not None:
        sub, _, offers = short
        return greedy(sub, np.arange(len(edges)), start, cap=None if cap is None else cap[offers], opened=opened)
    st = _State(norm, edges, cap, opened)
    units = norm.fixed[edges] if start is None else np.maximum(norm.fixed[edges], start)
    st.take_all(units)
    split = norm.splittable[st.e_need]
    big = 1 << 62
    if norm.has_incumbent:
        now = units.copy()
        inc = norm.incumbent[edges]
        cand = np.flatnonzero(inc > now)
        gain, density = _gain_and_density(norm, st, edges, split, cand)
        pick, density = cand[gain > 0], density[gain > 0]
        limits = np.where(split[pick], inc[pick] - now[pick], big)
        left = ~st.take_slack(units, pick, limits)  # order-free, so only the positions left need sorting
        order = _density_order(pick[left], density[left])
        st.run(units, pick[left][order], limits[left][order])
    if norm.coverage_first:
        every = np.arange(len(edges))
        for pos in every[_density_order(every, _gain_and_density(norm, st, edges, split, every)[1])].tolist():
            if st.station[int(st.e_need[pos])] not in st.covered:
                st.run(units, np.array([pos]), 1 if split[pos] else big)
    _last_pass(norm, st, edges, split, units)
    return units


def fill(
    norm: Normalised, edges: np.ndarray, units: np.ndarray, *, opened: dict[int, set[int]] | None = None
) -> np.ndarray:
    """`units` on `edges` (a feasible answer; every edge of their needs, every edge of their offers) with what the
    greedy's last pass can still add in the demand, capacity and station room they leave: only units that gain
    (an answer made by rounding leaves some; province: +0.05 % by 7 edges)."""
    out = units.copy()
    used = np.flatnonzero(units > 0)
    u_need, u_offer = norm.e_need[edges[used]], norm.e_offer[edges[used]]
    served, spent = _use(norm, u_need, u_offer, norm.usage[edges[used]], units[used])
    dem, cap = norm.demand - served, norm.capacity - spent
    usage = norm.usage[edges]
    # The last pass looks only at edges of needs left short and offers with room (a few thousand of national's
    # 1.7 M): the state is built for them alone, in the same order, so the answer is the same.
    pos = np.flatnonzero(
        (dem[norm.e_need[edges]] > 0) & ((usage <= 0) | (cap[norm.e_offer[edges]] >= np.maximum(usage, 1)))
    )
    if not pos.size:
        return out
    part_edges = edges[pos]
    # The stations the organizations this pass meets already serve: outside `edges` and with the units in hand.
    serving = {g: set(seen) for g, seen in (opened or {}).items()}
    for g, seen in stations_served(norm, u_offer, u_need, norm.e_offer[part_edges]).items():
        serving.setdefault(g, set()).update(seen)
    run_norm, run_edges = norm, part_edges
    short = _short_pass(norm, part_edges)
    if short is not None:
        run_norm, needs, offers = short
        run_edges, dem, cap = np.arange(len(pos)), dem[needs], cap[offers]
    st = _State(run_norm, run_edges, cap, serving, dem)
    if norm.coverage_first:
        st.covered.update(np.unique(norm.station[u_need]).tolist())
    part = out[pos]
    _last_pass(run_norm, st, run_edges, run_norm.splittable[st.e_need], part)
    out[pos] = part
    return out


def stations_served(
    norm: Normalised, offer: np.ndarray, need: np.ndarray, met: np.ndarray | None = None
) -> dict[int, set[int]]:
    """Per station-limited organization (only those with one of the offers `met`, if given), the stations that units
    on the (offer, need) pairs serve."""
    if not len(norm.org_limit):
        return {}
    org = norm.org[offer]
    keep = norm.org_limit[org] >= 0
    if met is not None:
        here = np.zeros(len(norm.org_limit), bool)
        here[norm.org[met]] = True
        keep &= here[org]
    served: dict[int, set[int]] = {}
    for g, b in set(zip(org[keep].tolist(), norm.station[need[keep]].tolist(), strict=True)):
        served.setdefault(g, set()).add(b)
    return served


def _use(
    norm: Normalised, need: np.ndarray, offer: np.ndarray, usage: np.ndarray, units: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Units served per need and capacity spent per offer by `units` (> 0) on (need, offer) pairs of `usage`."""
    spend = np.where(norm.splittable[need], units * usage, usage)
    served = np.bincount(need, weights=units, minlength=norm.n_needs).astype(np.int64)
    return served, np.bincount(offer, weights=spend, minlength=norm.n_offers).astype(np.int64)


def _gain_and_density(
    norm: Normalised, st: _State, edges: np.ndarray, split: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gain and gain per unit of demand of `positions` (per pass and only for its positions: a re-solve's passes
    see a fraction of the edges)."""
    gain = edge_gain(norm, edges[positions])
    return gain, np.where(split[positions], gain, gain / norm.demand[st.e_need[positions]])


def _density_order(positions: np.ndarray, density: np.ndarray) -> np.ndarray:
    """The order putting `positions` highest density first, ties by position: one total order, so each pass sorts
    only its own positions."""
    key = _radix_key(density)
    if key is not None and bool(np.all(positions[1:] > positions[:-1])):
        # Positions ascending: a stable sort of the density alone keeps ties in position order, and numpy sorts
        # 16-bit keys by radix (national's 1.5 M positions: 0.03 s against 0.23 s for the two-key lexsort).
        return np.argsort(key, kind="stable")
    return np.lexsort((positions, -density))


def _radix_key(density: np.ndarray) -> np.ndarray | None:
    """`density` as an ascending 16-bit key (highest density first), if it is integral and spans fewer than 2**16
    values: without an incumbent every density is a value per unit (national: 86 to 726); else None."""
    if not density.size:
        return None
    hi, lo = density.max(), density.min()
    if not (hi - lo < 2**16 and np.array_equal(density, np.floor(density))):
        return None
    return (hi - density).astype(np.uint16)


def _last_pass(norm: Normalised, st: _State, edges: np.ndarray, split: np.ndarray, units: np.ndarray) -> None:
    """Every position that gains, by density, as many units as demand, capacity and station limits allow."""
    # Demand and capacity only shrink during a pass: edges of needs already served, or of offers already full, would
    # be skipped one by one in the loop (after the incumbent pass, most of a re-solve's edges), so drop them here.
    dem, cap = np.asarray(st.dem, np.int64), np.asarray(st.cap, np.int64)
    usage = st.e_usage
    rest = np.flatnonzero((dem[st.e_need] > 0) & ((usage <= 0) | (cap[st.e_offer] >= np.maximum(usage, 1))))
    gain, density = _gain_and_density(norm, st, edges, split, rest)
    # Units beyond the incumbent gain value - penalty (splittable); unsplittable gains are whole-need gains.
    extra = np.where(split[rest], norm.value[edges[rest]] - (norm.penalty if norm.has_incumbent else 0), gain)
    gaining = rest[extra > 0]
    st.run(units, gaining[_density_order(gaining, density[extra > 0])], 1 << 62, last=True)
