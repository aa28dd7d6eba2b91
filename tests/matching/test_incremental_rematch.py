"""A re-match given the previous MatchResult reuses its candidates and explanations when only some needs changed
(增量重算), and its answer is exactly the one a re-match without them gives."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from bench.generate import generate
from service.matching import (
    MatchResult,
    NeedRecord,
    OfferRecord,
    OrganizationRecord,
    StationRecord,
    Weights,
    match,
    solver,
)
from service.matching.candidates import build_candidates, index_records


def _edit(need: NeedRecord, kind: int, others: list[NeedRecord]) -> NeedRecord:
    """One realistic edit of a need: more or fewer units, a new priority or window, moved to another station,
    (un)splittable, another service type or domain that some other need already has."""
    other = others[(kind * 7919) % len(others)]
    match kind % 7:
        case 0:
            return replace(need, quantity=need.quantity + 2)
        case 1:
            return replace(need, quantity=max(1, need.quantity - 1))
        case 2:
            return replace(need, priority=5 if need.priority < 5 else 1)
        case 3:
            start, end = need.window
            return replace(need, window=(start + timedelta(days=45), end + timedelta(days=90)))
        case 4:
            return replace(need, station_id=other.station_id)
        case 5:
            return replace(need, splittable=not need.splittable)
        case _:
            return replace(need, service_type=other.service_type, domain=other.domain)


@pytest.fixture(autouse=True)
def _cpsat_to_the_end(monkeypatch) -> None:
    """Both re-matches of a comparison let CP-SAT run until it proves its answer (the city's one component): with
    the default stall window (0.3 s of wall time without a better answer) a loaded machine can stop one of them
    earlier than the other, and their answers then differ by timing, not by reuse (seen with three sessions'
    processes on two cores)."""
    monkeypatch.setattr(solver, "STALL_MIN_S", 10.0)


def _kw(inst) -> dict:
    return dict(pairings=inst.pairings, rejected=inst.rejected, time_limit_s=10.0, gap_tolerance=0.001)


def _units(result: MatchResult) -> dict[tuple, int]:
    return {(a.need_id, a.offer_id): a.units for a in result.allocations}


def _without_reuse(inst, needs, offers, previous: MatchResult) -> MatchResult:
    """A re-match from `previous`'s allocations and engine solution only (no reused candidates or explanations)."""
    return match(
        needs,
        offers,
        inst.orgs,
        inst.stations,
        previous=previous.allocations,
        previous_solution=previous.solution,
        **_kw(inst),
    )


def _assert_exact(inst, needs, first: MatchResult, again: MatchResult, offers=None) -> None:
    """`again` (a re-match from `first`) is what a re-match without reuse gives: the same answer quality (a
    multi-worker CP-SAT may pick another of equal value), the explanations a full explanation of `again`'s answer
    gives, and the churn between the two answers."""
    offers = inst.offers if offers is None else offers
    plain = _without_reuse(inst, needs, offers, first)
    assert "needs_changed_in_place" not in plain.stats
    assert (again.status, again.objective, again.bound) == (plain.status, plain.objective, plain.bound)
    # The same answer explained from scratch: every component is reused as is, nothing re-solved.
    same = _without_reuse(inst, needs, offers, again)
    assert same.stats["components_reused"] == same.stats["components"]
    before, after = _units(first), _units(again)
    # An allocation's value is net of the change penalty (1 per unit moved) against the run it re-matched.
    net = [replace(a, value=a.value + abs(a.units - before.get((a.need_id, a.offer_id), 0))) for a in again.allocations]
    assert net == same.allocations
    assert again.unmatched == same.unmatched
    assert again.utilisation == same.utilisation
    assert set(again.churn.added) == {(a, b, u) for (a, b), u in after.items() if (a, b) not in before}
    assert set(again.churn.removed) == {(a, b, u) for (a, b), u in before.items() if (a, b) not in after}
    assert set(again.churn.changed) == {
        (a, b, before[a, b], u) for (a, b), u in after.items() if (a, b) in before and before[a, b] != u
    }


@pytest.mark.parametrize("seed", range(12))
def test_a_rematch_after_some_needs_changed_equals_a_rematch_from_scratch(seed: int) -> None:
    inst = generate("city", seed=seed)
    first = match(inst.needs, inst.offers, inst.orgs, inst.stations, pairings=inst.pairings, rejected=inst.rejected)
    rng = np.random.default_rng(seed)
    needs = list(inst.needs)
    for kind, k in enumerate(rng.choice(len(needs), size=12, replace=False).tolist()):
        needs[k] = _edit(needs[k], kind + seed, inst.needs)
    again = match(needs, inst.offers, inst.orgs, inst.stations, previous=first, **_kw(inst))
    assert again.stats["needs_changed_in_place"] == sum(a != b for a, b in zip(needs, inst.needs, strict=True)) > 6
    _assert_exact(inst, needs, first, again)
    assert again.churn.added or again.churn.removed or again.churn.changed


def test_a_province_rematch_after_one_percent_of_needs_grew_equals_a_rematch_from_scratch() -> None:
    inst = generate("province")
    first = match(inst.needs, inst.offers, inst.orgs, inst.stations, pairings=inst.pairings, rejected=inst.rejected)
    grown = set(range(0, len(inst.needs), 100))
    needs = [replace(n, quantity=n.quantity + 1) if k in grown else n for k, n in enumerate(inst.needs)]
    again = match(needs, inst.offers, inst.orgs, inst.stations, previous=first, **_kw(inst))
    assert again.stats["needs_changed_in_place"] == len(grown)
    _assert_exact(inst, needs, first, again)
    # A second step from the incremental result: chains of re-matches stay exact.
    needs2 = [replace(n, priority=1) if k % 100 == 1 else n for k, n in enumerate(needs)]
    again2 = match(needs2, inst.offers, inst.orgs, inst.stations, previous=again, **_kw(inst))
    assert again2.stats["needs_changed_in_place"] > 0
    _assert_exact(inst, needs2, again, again2)


def test_other_changes_take_the_full_path_with_the_same_answer() -> None:
    inst = generate("city", seed=5)
    first = match(inst.needs, inst.offers, inst.orgs, inst.stations, pairings=inst.pairings, rejected=inst.rejected)
    added = [*inst.needs, replace(inst.needs[0], id="n-new", quantity=3)]
    new_type = [replace(inst.needs[0], service_type="家庭教育指导"), *inst.needs[1:]]
    offers = [replace(inst.offers[0], capacity=inst.offers[0].capacity + 5), *inst.offers[1:]]
    for needs, offer_list in ((added, None), (new_type, None), (inst.needs, offers)):
        again = match(needs, offer_list or inst.offers, inst.orgs, inst.stations, previous=first, **_kw(inst))
        assert "needs_changed_in_place" not in again.stats
        _assert_exact(inst, needs, first, again, offer_list)


def test_the_previous_result_is_left_as_it_was() -> None:
    inst = generate("city", seed=7)
    first = match(inst.needs, inst.offers, inst.orgs, inst.stations, pairings=inst.pairings, rejected=inst.rejected)
    before = (list(first.allocations), list(first.unmatched), first.solution.edge_units.copy())
    needs = [replace(n, quantity=n.quantity + 3) if k % 5 == 0 else n for k, n in enumerate(inst.needs)]
    again = match(needs, inst.offers, inst.orgs, inst.stations, pairings=inst.pairings, previous=first)
    assert again.stats["needs_changed_in_place"] == 10
    assert (first.allocations, first.unmatched) == before[:2]
    assert np.array_equal(first.solution.edge_units, before[2])


YEAR = (date(2026, 1, 1), date(2026, 12, 31))
STATIONS = [StationRecord("s1", "420106001000", 30.55, 114.30), StationRecord("s2", "420106002000", 30.57, 114.33)]


def _records(limit: int | None = None) -> tuple[list[OfferRecord], list[OrganizationRecord]]:
    """汉阳 county: 爱心家园 offers home visits (3 units) and tutoring (2 units) to any station in 420106."""
    orgs = [OrganizationRecord("爱心家园", rating=4.5, lat=30.56, lon=114.31, max_stations=limit)]
    offers = [
        OfferRecord("home-visits", "爱心家园", ("elder_visit",), 3, YEAR, ("420106",)),
        OfferRecord("tutoring", "爱心家园", ("tutoring",), 2, YEAR, ("420106",)),
    ]
    return offers, orgs


def test_a_changed_need_gets_a_new_explanation_even_when_its_units_and_value_stay() -> None:
    offers, orgs = _records()
    needs = [NeedRecord("visits", "s1", "elder_visit", 2, YEAR, priority=3.0)]
    first = match(needs, offers, orgs, STATIONS)
    # A priority change too small to move the integer value still changes the score components shown.
    nudged = [replace(needs[0], priority=3.001)]
    again = match(nudged, offers, orgs, STATIONS, previous=first)
    assert again.stats["needs_changed_in_place"] == 1
    assert again.allocations[0].value == first.allocations[0].value
    assert again.allocations[0].components.priority > first.allocations[0].components.priority


def test_an_organization_freed_from_its_station_limit_changes_the_reason_of_another_stations_need() -> None:
    offers, orgs = _records(limit=1)
    needs = [
        NeedRecord("visits", "s1", "elder_visit", 3, YEAR),
        NeedRecord("tutoring-4", "s2", "tutoring", 4, YEAR, splittable=False),  # more than the 2 units on offer
        NeedRecord("legal", "s2", "legal_aid", 1, YEAR),  # nobody offers legal aid
    ]
    first = match(needs, offers, orgs, STATIONS)
    assert {u.need_id: u.filter for u in first.unmatched} == {
        "tutoring-4": "station_limit",
        "legal": "no_offer_of_type",
    }
    # s1 now asks for another kind of help: the organization serves no station, so the limit no longer binds.
    changed = [replace(needs[0], service_type="legal_aid"), *needs[1:]]
    again = match(changed, offers, orgs, STATIONS, previous=first)
    assert again.stats["needs_changed_in_place"] == 1
    assert {u.need_id: u.filter for u in again.unmatched} == {
        "visits": "no_offer_of_type",
        "tutoring-4": "does_not_fit",
        "legal": "no_offer_of_type",
    }


def test_a_list_edited_in_place_between_runs_is_seen_as_changed() -> None:
    offers, orgs = _records()
    needs = [NeedRecord("visits", "s1", "elder_visit", 2, YEAR)]
    first = match(needs, offers, orgs, STATIONS)
    needs[0] = replace(needs[0], quantity=3)  # the caller's own list, edited
    offers[0] = replace(offers[0], capacity=1)
    again = match(needs, offers, orgs, STATIONS, previous=first)
    assert [(a.need_id, a.units) for a in again.allocations] == [("visits", 1)]
    assert again.utilisation[0].capacity == 1


def test_runs_with_no_candidate_edge_before_or_after_a_change() -> None:
    offers, orgs = _records()
    outside = [NeedRecord("visits", "s3", "elder_visit", 2, YEAR)]  # 汉南 station: outside 汉阳's offers
    stations = [*STATIONS, StationRecord("s3", "420113001000")]
    first = match(outside, offers, orgs, stations)
    assert [u.filter for u in first.unmatched] == ["none_in_range"]
    inside = [replace(outside[0], station_id="s1")]
    second = match(inside, offers, orgs, stations, previous=first)
    assert second.stats["needs_changed_in_place"] == 1
    assert second.churn.added == (("visits", "home-visits", 2),)
    third = match(outside, offers, orgs, stations, previous=second)  # and out of range again
    assert third.churn.removed == (("visits", "home-visits", 2),)
    assert [u.filter for u in third.unmatched] == ["none_in_range"]


def test_an_edge_scores_the_same_whether_its_need_is_scored_alone_or_with_all() -> None:
    # An organization without a rating and with little feedback, stations without coordinates: a score whose
    # weighted sum, rounded differently, would put 1 + 100 * score on the other side of .5.
    orgs = [OrganizationRecord("夕阳红服务中心", rating=None, feedback=0.03, domains=("elderly",))]
    offers = [OfferRecord("visits", "夕阳红服务中心", ("elder_visit",), 1000, YEAR, ("420106",))]
    needs = [NeedRecord(f"n{k}", "s1", "elder_visit", 2, YEAR, priority=4, domain="elderly") for k in range(40)]
    stations = [StationRecord("s1", "420106001000")]
    first = match(needs, offers, orgs, stations)
    edited = [replace(needs[0], quantity=3), *needs[1:]]
    again = match(edited, offers, orgs, stations, previous=first)
    plain = match(edited, offers, orgs, stations, previous=first.allocations, previous_solution=first.solution)
    assert again.stats["needs_changed_in_place"] == 1
    assert again.objective == plain.objective
    assert [(a.score, a.value) for a in again.allocations] == [(a.score, a.value) for a in plain.allocations]


def test_pairings_and_rejections_may_come_as_lists() -> None:
    offers, orgs = _records()
    needs = [NeedRecord("visits", "s1", "elder_visit", 2, YEAR), NeedRecord("tutor", "s2", "tutoring", 1, YEAR)]
    first = match(needs, offers, orgs, STATIONS, pairings=[["爱心家园", "s1"]], rejected=[["tutor", "爱心家园"]])
    assert first.allocations[0].components.continuity == 1.0
    assert [u.filter for u in first.unmatched] == ["all_rejected"]
    again = match(
        [replace(needs[0], quantity=3), needs[1]],
        offers,
        orgs,
        STATIONS,
        pairings=[["爱心家园", "s1"]],
        rejected=[["tutor", "爱心家园"]],
        previous=first,
    )
    assert again.stats["needs_changed_in_place"] == 1


def test_allocations_the_caller_dropped_from_the_previous_result_are_not_kept() -> None:
    inst = generate("city", seed=3)
    first = match(inst.needs, inst.offers, inst.orgs, inst.stations, pairings=inst.pairings, rejected=inst.rejected)
    dropped = first.allocations[:5]
    first.allocations = first.allocations[5:]  # e.g. proposals the stations turned down
    needs = list(inst.needs)
    needs[1] = replace(needs[1], priority=5 if needs[1].priority < 5 else 1)
    again = match(needs, inst.offers, inst.orgs, inst.stations, pairings=inst.pairings, previous=first)
    assert "needs_changed_in_place" not in again.stats  # the kept units are no longer the previous answer
    added = set(again.churn.added) | {(a, b, new) for a, b, _, new in again.churn.changed}
    kept = {(a.need_id, a.offer_id, a.units) for a in again.allocations}
    assert {(a.need_id, a.offer_id, a.units) for a in dropped} & kept <= added


TYPES = ("elder_visit", "tutoring", "free_clinic", "rehab")
DOMAINS = (None, "elderly", "children")


def _small_world(rng: np.random.Generator):
    """A random district of 汉阳 (420106): a few stations (some without coordinates), organizations with and
    without ratings, station limits and domains, offers by area or by distance, needs of four kinds."""
    stations = [
        StationRecord(f"s{k}", f"4201060{k % 3:02d}000", *((None, None) if rng.random() < 0.2 else (30.5, 114.3)))
        for k in range(int(rng.integers(1, 6)))
    ]
    orgs = [
        OrganizationRecord(
            f"g{g}",
            rating=None if rng.random() < 0.3 else float(rng.integers(1, 6)),
            max_stations=None if rng.random() < 0.5 else int(rng.integers(0, 3)),
            lat=None if rng.random() < 0.2 else 30.55,
            lon=114.35,
            domains=tuple(d for d in DOMAINS[1:] if rng.random() < 0.5),
            active=bool(rng.random() < 0.9),
        )
        for g in range(int(rng.integers(1, 5)))
    ]
    offers = []
    for f in range(int(rng.integers(0, 7))):
        start = YEAR[0] + timedelta(days=int(rng.integers(0, 200)))
        offers.append(
            OfferRecord(
                f"f{f}",
                orgs[int(rng.integers(0, len(orgs)))].id,
                tuple(rng.choice(TYPES[:3], size=int(rng.integers(1, 3)), replace=False).tolist()),
                int(rng.integers(0, 8)),
                (start, start + timedelta(days=int(rng.integers(30, 300)))),
                () if rng.random() < 0.3 else (("42", "4201", "420106", "420106001")[int(rng.integers(0, 4))],),
                None if rng.random() < 0.5 else float(rng.integers(1, 40)),
                bool(rng.random() < 0.9),
            )
        )
    needs = [
        NeedRecord(
            f"n{k}",
            stations[int(rng.integers(0, len(stations)))].id,
            TYPES[int(rng.integers(0, 4))],
            int(rng.integers(1, 6)),
            (YEAR[0] + timedelta(days=int(rng.integers(0, 120))), YEAR[1]),
            int(rng.integers(1, 6)),
            bool(rng.random() < 0.6),
            DOMAINS[int(rng.integers(0, 3))],
        )
        for k in range(int(rng.integers(1, 12)))
    ]
    rejected = [(needs[0].id, orgs[0].id)] if rng.random() < 0.3 else []
    return needs, offers, orgs, stations, rejected


@pytest.mark.parametrize("seed", range(300))
def test_random_small_worlds_rematch_exactly_as_without_reuse(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    needs, offers, orgs, stations, rejected = _small_world(rng)
    first = match(needs, offers, orgs, stations, rejected=rejected, time_limit_s=5.0)
    edited = list(needs)
    for kind, k in enumerate(rng.choice(len(needs), size=int(rng.integers(1, len(needs) + 1)), replace=False)):
        edited[int(k)] = _edit(edited[int(k)], kind + seed, needs)
    again = match(edited, offers, orgs, stations, rejected=rejected, time_limit_s=5.0, previous=first)
    fresh = build_candidates(index_records(edited, offers, orgs, stations), Weights(), (), rejected)
    for name in ("need", "offer", "distance_km", "components", "score", "value", "forced"):
        assert np.array_equal(getattr(again.reusable.cand, name), getattr(fresh, name), equal_nan=True), name
    plain = match(
        edited,
        offers,
        orgs,
        stations,
        rejected=rejected,
        time_limit_s=5.0,
        previous=first.allocations,
        previous_solution=first.solution,
    )
    assert (again.status, again.objective, again.bound) == (plain.status, plain.objective, plain.bound)
    if _units(again) == _units(plain):  # a multi-worker CP-SAT may pick another answer of equal value
        assert (again.allocations, again.unmatched, again.utilisation, again.churn) == (
            plain.allocations,
            plain.unmatched,
            plain.utilisation,
            plain.churn,
        )


def test_an_unknown_id_among_several_is_reported_in_the_callers_order() -> None:
    offers, orgs = _records()
    needs = [NeedRecord("visits", "s1", "elder_visit", 2, YEAR)]
    for first, second in (("ghost-a", "ghost-b"), ("ghost-b", "ghost-a")):
        with pytest.raises(ValueError, match=f"unknown need id '{first}'"):
            match(needs, offers, orgs, STATIONS, rejected=[(first, "爱心家园"), (second, "爱心家园")])
