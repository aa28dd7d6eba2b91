"""Records in, explained allocations out: filters, scores, reasons, utilisation, stability."""

from __future__ import annotations

import gc
import json
from dataclasses import replace
from datetime import date

import pytest

from service.matching import (
    MatchResult,
    NeedRecord,
    OfferRecord,
    OrganizationRecord,
    StationRecord,
    Weights,
    component_state,
    match,
    solution_from_state,
)

YEAR = (date(2026, 1, 1), date(2026, 12, 31))
SPRING = (date(2026, 3, 1), date(2026, 5, 31))
AUTUMN = (date(2026, 9, 1), date(2026, 11, 30))

STATIONS = [
    StationRecord("s1", "420106001000", 30.55, 114.30),
    StationRecord("s2", "420106002000", 30.57, 114.33),
    StationRecord("s3", "420111001000", 30.50, 114.40),  # another county
    StationRecord("s4", "420106003000"),  # no coordinates
]
ORGS = [
    OrganizationRecord("A", rating=5.0, feedback=0.9, lat=30.55, lon=114.31, domains=("elderly",)),
    OrganizationRecord("B", rating=3.0, lat=30.60, lon=114.20),
    OrganizationRecord("C", rating=4.0, active=False),
]


def _offer(oid: str, org: str, types: tuple[str, ...], cap: int, **kw) -> OfferRecord:
    """An offer covering county 420106 for the whole year unless told otherwise."""
    return OfferRecord(oid, org, types, cap, kw.pop("window", YEAR), kw.pop("area", ("420106",)), **kw)


def _need(nid: str, station: str, stype: str, qty: int, **kw) -> NeedRecord:
    """A need for the whole year unless told otherwise."""
    return NeedRecord(nid, station, stype, qty, kw.pop("window", YEAR), **kw)


def _run(needs, offers, **kw) -> MatchResult:
    """match() with the shared stations and organizations."""
    return match(needs, offers, kw.pop("orgs", ORGS), STATIONS, time_limit_s=5.0, **kw)


def _units(result: MatchResult) -> dict[tuple[str, str], int]:
    """(need, offer) -> units."""
    return {(a.need_id, a.offer_id): a.units for a in result.allocations}


def _reasons(result: MatchResult) -> dict[str, tuple[str, str | None]]:
    """need -> (reason, filter)."""
    return {u.need_id: (u.reason, u.filter) for u in result.unmatched}


def test_each_hard_filter_is_named_when_it_removes_the_last_candidate() -> None:
    offers = [
        _offer("oa", "A", ("elder_care",), 10),
        _offer("oc", "C", ("legal_aid",), 10),
        _offer("ob", "B", ("child_care",), 10, window=SPRING),
    ]
    needs = [
        _need("n_type", "s1", "disability", 2),
        _need("n_active", "s1", "legal_aid", 2),
        _need("n_range", "s3", "elder_care", 2),
        _need("n_window", "s1", "child_care", 2, window=AUTUMN),
        _need("n_rejected", "s2", "elder_care", 2),
        _need("n_ok", "s1", "elder_care", 2),
    ]
    result = _run(needs, offers, rejected=[("n_rejected", "A")])
    assert _reasons(result) == {
        "n_type": ("no_candidate", "no_offer_of_type"),
        "n_active": ("no_candidate", "no_active_offer"),
        "n_range": ("no_candidate", "none_in_range"),
        "n_window": ("no_candidate", "none_in_window"),
        "n_rejected": ("no_candidate", "all_rejected"),
    }
    assert _units(result) == {("n_ok", "oa"): 2}


def test_windows_that_share_only_a_day_overlap() -> None:
    # Windows are whole days, both ends included: a need ending on 31 May meets an offer starting that day, a need
    # starting on 31 August meets it on its last day; needs a day further out do not.
    offers = [_offer("o_summer", "A", ("elder_care",), 10, window=(date(2026, 5, 31), date(2026, 8, 31)))]
    needs = [
        _need("n_spring", "s1", "elder_care", 2, window=SPRING),
        _need("n_autumn", "s1", "elder_care", 2, window=(date(2026, 8, 31), date(2026, 11, 30))),
        _need("n_before", "s2", "elder_care", 2, window=(date(2026, 3, 1), date(2026, 5, 30))),
        _need("n_after", "s2", "elder_care", 2, window=(date(2026, 9, 1), date(2026, 11, 30))),
    ]
    result = _run(needs, offers)
    assert _units(result) == {("n_spring", "o_summer"): 2, ("n_autumn", "o_summer"): 2}
    assert _reasons(result) == {
        "n_before": ("no_candidate", "none_in_window"),
        "n_after": ("no_candidate", "none_in_window"),
    }


def test_maximum_distance_reaches_a_station_outside_the_area() -> None:
    offers = [_offer("oa", "A", ("elder_care",), 10, max_distance_km=15.0)]
    result = _run([_need("n", "s3", "elder_care", 2)], offers)
    (alloc,) = result.allocations
    assert alloc.distance_km == pytest.approx(10.3, abs=0.5)
    assert result.unmatched == []


def test_allocation_carries_score_components_and_distance() -> None:
    result = _run(
        [_need("n", "s1", "elder_care", 3, priority=5, domain="elderly")],
        [_offer("oa", "A", ("elder_care",), 10)],
        pairings=[("A", "s1")],
    )
    (a,) = result.allocations
    c = a.components
    assert (c.service_type, c.expertise, c.rating, c.feedback, c.continuity, c.priority) == (1, 1, 1, 0.9, 1, 1)
    assert a.distance_km == pytest.approx(0.96, abs=0.05)
    assert c.distance == pytest.approx(0.96, abs=0.01)
    assert a.organization_id == "A" and a.station_id == "s1" and a.units == 3
    assert a.score == pytest.approx(1 + 1 + c.distance + 0.5 + 0.45 + 1.5 + 2.0)


def test_missing_data_gets_the_neutral_score() -> None:
    (a,) = _run([_need("n", "s4", "elder_care", 1)], [_offer("ob", "B", ("other", "elder_care"), 1)]).allocations
    w = Weights()
    assert a.distance_km is None
    assert (a.components.distance, a.components.feedback, a.components.expertise) == (w.unknown,) * 3
    assert a.components.service_type == w.secondary_type


def test_continuity_wins_the_tie_for_scarce_capacity() -> None:
    needs = [_need("n1", "s1", "elder_care", 2), _need("n2", "s2", "elder_care", 2)]
    offers = [_offer("ob", "B", ("elder_care",), 2)]
    assert _units(_run(needs, offers, pairings=[("B", "s2")])) == {("n2", "ob"): 2}
    assert _units(_run(needs, offers, pairings=[("B", "s1")])) == {("n1", "ob"): 2}


def test_capacity_taken_names_the_higher_value_needs() -> None:
    needs = [_need("urgent", "s1", "elder_care", 4, priority=5), _need("later", "s2", "elder_care", 3, priority=1)]
    result = _run(needs, [_offer("oa", "A", ("elder_care",), 5)])
    assert _units(result) == {("urgent", "oa"): 4, ("later", "oa"): 1}
    (u,) = result.unmatched
    assert (u.need_id, u.reason, u.units_missing, u.candidates, u.taken_by) == (
        "later",
        "capacity_taken",
        2,
        1,
        ("urgent",),
    )


def test_a_partly_served_need_names_three_others_even_when_it_ties_with_them() -> None:
    # Five equal needs share 9 units: one is served in part, at the same value per unit as the four served whole.
    # It names three of those (first by value, then in list order), never itself.
    needs = [_need(f"n{k}", "s1", "elder_care", 2) for k in range(1, 6)]
    result = _run(needs, [_offer("oa", "A", ("elder_care",), 9)])
    (u,) = result.unmatched
    others = [n.id for n in needs if n.id != u.need_id]
    assert (u.reason, u.units_missing, u.taken_by) == ("capacity_taken", 1, tuple(others[:3]))


def test_utilisation_is_reported_for_every_offer() -> None:
    offers = [_offer("oa", "A", ("elder_care",), 5), _offer("ob", "B", ("child_care",), 4)]
    result = _run([_need("n", "s1", "elder_care", 2)], offers)
    usage = {u.offer_id: (u.used, u.capacity, u.utilisation) for u in result.utilisation}
    assert usage == {"oa": (2, 5, 0.4), "ob": (0, 4, 0.0)}


def test_station_limit_spans_all_offers_of_the_organization() -> None:
    orgs = [*ORGS[:2], OrganizationRecord("D", rating=5.0, max_stations=1)]
    offers = [_offer("d1", "D", ("elder_care",), 5), _offer("d2", "D", ("child_care",), 5)]
    needs = [_need("n1", "s1", "elder_care", 2, priority=5), _need("n2", "s2", "child_care", 2)]
    result = _run(needs, offers, orgs=orgs)
    assert _units(result) == {("n1", "d1"): 2}
    assert _reasons(result) == {"n2": ("capacity_taken", "station_limit")}


def test_unsplittable_need_is_served_whole_by_one_offer() -> None:
    offers = [_offer("oa", "A", ("elder_care",), 3), _offer("ob", "B", ("elder_care",), 3)]
    result = _run([_need("n", "s1", "elder_care", 5, splittable=False)], offers)
    assert result.allocations == []
    assert _reasons(result) == {"n": ("capacity_taken", "does_not_fit")}
    split = _run([_need("n", "s1", "elder_care", 5)], offers)
    assert sum(_units(split).values()) == 5


def test_coverage_first_serves_more_stations() -> None:
    needs = [_need("big", "s1", "elder_care", 4, priority=5), _need("small", "s2", "elder_care", 1, priority=1)]
    offers = [_offer("oa", "A", ("elder_care",), 4)]
    assert _units(_run(needs, offers)) == {("big", "oa"): 4}
    assert _units(_run(needs, offers, coverage_first=True)) == {("big", "oa"): 3, ("small", "oa"): 1}


def test_accepted_allocation_stays_even_when_a_better_need_appears() -> None:
    needs = [_need("old", "s2", "elder_care", 3, priority=1), _need("new", "s1", "elder_care", 3, priority=5)]
    result = _run(needs, [_offer("oa", "A", ("elder_care",), 3)], accepted=[("old", "oa", 3)])
    assert _units(result) == {("old", "oa"): 3}
    assert result.allocations[0].fixed


def test_resolve_keeps_untouched_components_and_reports_churn() -> None:
    offers = [_offer("oa", "A", ("elder_care",), 6), _offer("ob", "B", ("child_care",), 6, area=("420111",))]
    needs = [_need("e1", "s1", "elder_care", 3), _need("e2", "s2", "elder_care", 3), _need("c1", "s3", "child_care", 4)]
    first = _run(needs, offers)
    # A first run adds every allocation, in the allocations' order, and removes or changes nothing.
    added = tuple((a.need_id, a.offer_id, a.units) for a in first.allocations)
    assert (first.churn.added, first.churn.removed, first.churn.changed) == (added, (), ())
    assert len(added) == 3
    same = _run(needs, offers, previous=first)
    assert _units(same) == _units(first)
    assert (same.churn.added, same.churn.removed, same.churn.changed) == ((), (), ())
    assert same.stats["components_reused"] == 2
    changed = [*needs[:2], replace(needs[2], quantity=6)]
    second = _run(changed, offers, previous=same)
    assert second.stats["components_reused"] == 1
    assert {k: v for k, v in _units(second).items() if k[0] != "c1"} == {("e1", "oa"): 3, ("e2", "oa"): 3}
    assert second.churn.changed == (("c1", "ob", 4, 6),)


def test_a_stored_component_state_lets_another_process_reuse_untouched_components() -> None:
    offers = [_offer("oa", "A", ("elder_care",), 6), _offer("ob", "B", ("child_care",), 6, area=("420111",))]
    needs = [_need("e1", "s1", "elder_care", 3), _need("e2", "s2", "elder_care", 3), _need("c1", "s3", "child_care", 4)]
    accepted = [("e1", "oa", 3)]  # one side said yes before this run
    first = _run(needs, offers, accepted=accepted)
    stored = json.loads(json.dumps(component_state(first.solution)))  # as a service keeps it with the run
    # The next run (another process) knows the standing allocations, the accepted one and the stored state.
    standing = [a for a in first.allocations if not a.fixed]
    changed = [*needs[:2], replace(needs[2], quantity=6)]
    kw = {"previous": standing, "accepted": accepted}
    second = _run(changed, offers, previous_solution=solution_from_state(stored), **kw)
    assert second.stats["components_reused"] == 1
    assert {k: v for k, v in _units(second).items() if k[0] != "c1"} == {("e1", "oa"): 3, ("e2", "oa"): 3}
    cold = _run(changed, offers, **kw)
    assert "components_reused" not in cold.stats and cold.objective == second.objective


def test_unknown_references_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown station id 'nowhere'"):
        _run([_need("n1", "s1", "elder_care", 1), _need("n2", "nowhere", "elder_care", 1)], [])
    with pytest.raises(ValueError, match="unknown organization id 'Z'"):
        _run([], [_offer("oa", "A", ("elder_care",), 1), _offer("oz", "Z", ("elder_care",), 1)])
    with pytest.raises(ValueError, match="duplicate need ids"):
        _run([_need("n1", "s1", "elder_care", 1), _need("n1", "s2", "elder_care", 1)], [])
    with pytest.raises(ValueError, match="region code"):
        _run([], [_offer("oa", "A", ("elder_care",), 1, area=("4201060",))])


def test_a_window_that_ends_before_it_starts_is_a_value_error() -> None:
    backwards = (date(2026, 5, 1), date(2026, 4, 1))
    offers = [_offer("oa", "A", ("elder_care",), 10)]
    with pytest.raises(ValueError, match=r"need 'n2': window ends \(2026-04-01\) before it starts \(2026-05-01\)"):
        _run([_need("n1", "s1", "elder_care", 1), _need("n2", "s1", "elder_care", 1, window=backwards)], offers)
    with pytest.raises(ValueError, match="offer 'ob': window ends"):
        _run([_need("n1", "s1", "elder_care", 1)], [*offers, _offer("ob", "A", ("elder_care",), 1, window=backwards)])
    # A re-match that changes only that need checks it too (the changed needs are indexed apart).
    needs = [_need("n1", "s1", "elder_care", 1), _need("n2", "s1", "elder_care", 1)]
    first = _run(needs, offers)
    with pytest.raises(ValueError, match="need 'n2': window ends"):
        _run([needs[0], replace(needs[1], window=backwards)], offers, previous=first)


def test_the_garbage_collector_is_left_as_the_caller_had_it() -> None:
    needs = [_need("n1", "s1", "elder_daycare", 2)]
    offers = [_offer("o1", "A", ("elder_daycare",), 3)]
    assert gc.isenabled()
    _run(needs, offers)
    assert gc.isenabled()
    gc.disable()
    try:
        _run(needs, offers)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(ValueError):
        _run(needs, [_offer("o1", "nobody", ("elder_daycare",), 3)])
    assert gc.isenabled()
