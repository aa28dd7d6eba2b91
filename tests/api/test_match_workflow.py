"""A month in the life of a city: lists posted, a run, answers from both sides, changes, re-matches.

Through the API as the bureau (coordinator of 宜昌市), two stations and two organizations would use it.
"""

from __future__ import annotations

import sqlalchemy as sa

from service.db.models.runs import MatchRun
from service.db.session import Database
from service.matching import solver
from service.services import rematch as rematch_service
from service.services.principals import Role
from tests import factories as f
from tests.conftest import token

PERIOD = "2026-12"


def as_(app, role: Role, scope=None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(app, role, scope)}"}


async def city(client):
    """西陵街道 needs home visits (splittable, 40) and a free clinic (whole, 2 sessions); 学院街道 needs home
    visits (20). The volunteers' association offers 50 home visits; the hospital team 3 free-clinic sessions."""
    xiling = await f.create_station(client)
    xueyuan = await f.create_station(
        client, name="西陵区学院街道社工站", region_code="420502002", latitude=30.7152, longitude=111.3038
    )
    volunteers = await f.create_organization(
        client,
        name="宜昌市志愿者协会",
        kind="social_group",
        credit_code=f.credit_code("1", "420500"),
        home_region_code="420500",
        service_area=["420500"],
        expertise=["elderly_care"],
        max_stations=5,
    )
    hospital = await f.create_organization(
        client,
        name="宜昌市第一人民医院义诊志愿服务队",
        kind="social_group",
        credit_code=f.credit_code("1", "420502"),
        home_region_code="420502",
        service_area=["420502"],
        expertise=["elderly_care"],
        max_stations=3,
    )
    visits_offer = await f.create_offer(
        client, volunteers["id"], service_types=["elderly_care.home_visit"], title="志愿者入户探访", capacity=50
    )
    clinic_offer = await f.create_offer(
        client, hospital["id"], service_types=["elderly_care.free_clinic"], title="社区义诊", capacity=3
    )
    visits_a = await f.create_need(client, xiling["id"])
    clinic = await f.create_need(client, xiling["id"], **f.free_clinic_need())
    visits_b = await f.create_need(client, xueyuan["id"], quantity=20, beneficiary_count=20, title="高龄老人探访")
    return locals()


async def run(client, **extra) -> dict:
    response = await client.post("/api/v1/match-runs", json={"region_code": "420500", "period": PERIOD, **extra})
    assert response.status_code in (200, 201), response.text
    return response.json()


async def rematch(app) -> list[int]:
    app.state.settings.rematch_debounce_s = 0
    run_ids = await rematch_service.process(app.state.db, app.state.settings)
    async with app.state.db.engine.connect() as conn:
        for run_id in run_ids:
            status = await conn.scalar(sa.text("SELECT status FROM match_runs WHERE id = :id"), {"id": run_id})
            assert status == "succeeded", f"re-match run {run_id} {status}"
    return run_ids


async def test_a_run_proposes_explained_allocations_within_capacity(client):
    c = await city(client)
    result = await run(client)
    assert result["status"] == "succeeded" and result["solver_status"] == "optimal"
    assert result["objective"] == result["bound"]
    got = {(p["need_id"], p["offer_id"]): p["quantity"] for p in result["proposals"]}
    # 60 home visits wanted, 50 offered: the offer is used to the full; the clinic need is served whole
    assert sum(q for (n, o), q in got.items() if o == c["visits_offer"]["id"]) == 50
    assert got[(c["clinic"]["id"], c["clinic_offer"]["id"])] == 2
    explanation = result["proposals"][0]["explanation"]
    assert set(explanation["components"]) == {
        "service_type",
        "expertise",
        "distance",
        "rating",
        "feedback",
        "continuity",
        "priority",
    }
    assert explanation["distance_km"] is not None
    short = [u for u in result["unmatched"] if u["reason"] == "capacity_taken"]
    assert short and short[0]["units_missing"] == 10
    assert result["counts"]["proposals_added"] == len(result["proposals"])


async def test_a_dry_run_stores_nothing(app, client, backend):
    await city(client)
    preview = await run(client, dry_run=True)
    assert preview["dry_run"] is True and preview["id"] is None and preview["proposals"]
    db = Database.from_settings(backend.settings())
    async with db.engine.connect() as conn:
        for table in ("match_runs", "proposals"):
            assert (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0
    await db.dispose()
    assert (await client.get("/api/v1/match-runs")).json()["items"] == []


async def test_both_sides_accept_in_either_order_and_a_pairing_begins(app, client, anonymous):
    c = await city(client)
    proposals = (await run(client))["proposals"]
    clinic = next(p for p in proposals if p["need_id"] == c["clinic"]["id"])
    station = as_(app, Role.station, c["xiling"]["id"])
    hospital = as_(app, Role.organization, c["hospital"]["id"])
    first = await anonymous.post(f"/api/v1/proposals/{clinic['id']}/accept", headers=hospital)
    assert first.status_code == 200 and first.json()["status"] == "proposed"
    assert first.json()["organization_answer"] == "accepted"
    second = await anonymous.post(f"/api/v1/proposals/{clinic['id']}/accept", headers=station)
    assert second.json()["status"] == "accepted"
    need = (await client.get(f"/api/v1/needs/{c['clinic']['id']}")).json()
    assert (need["committed"], need["status"]) == (2, "matched")
    # what was agreed cannot be edited away
    offer = (await client.get(f"/api/v1/offers/{c['clinic_offer']['id']}")).json()
    shrink = await client.patch(
        f"/api/v1/offers/{offer['id']}", json={"capacity": 1}, headers={"If-Match": f'"{offer["version"]}"'}
    )
    assert shrink.status_code == 409 and shrink.json()["code"] == "below_committed"
    offer = (await client.get(f"/api/v1/offers/{c['clinic_offer']['id']}")).json()
    assert offer["committed"] == 2
    pairings = (await client.get("/api/v1/pairings", params={"station_id": c["xiling"]["id"]})).json()["items"]
    assert [(p["organization_id"], p["ended_on"]) for p in pairings] == [(c["hospital"]["id"], None)]
    again = await anonymous.post(f"/api/v1/proposals/{clinic['id']}/accept", headers=station)
    assert again.status_code == 409 and again.json()["current_status"] == "accepted"


async def test_a_party_answers_only_its_own_proposals(app, client, anonymous):
    c = await city(client)
    proposals = (await run(client))["proposals"]
    clinic = next(p for p in proposals if p["need_id"] == c["clinic"]["id"])
    volunteers = as_(app, Role.organization, c["volunteers"]["id"])
    other_station = as_(app, Role.station, c["xueyuan"]["id"])
    assert (await anonymous.post(f"/api/v1/proposals/{clinic['id']}/accept", headers=volunteers)).status_code == 404
    assert (await anonymous.post(f"/api/v1/proposals/{clinic['id']}/accept", headers=other_station)).status_code == 404
    coordinator = as_(app, Role.coordinator, "420500")
    refused = await anonymous.post(f"/api/v1/proposals/{clinic['id']}/accept", headers=coordinator)
    assert refused.status_code == 403
    outside = as_(app, Role.coordinator, "420527")
    response = await anonymous.post(
        "/api/v1/match-runs", json={"region_code": "420500", "period": PERIOD}, headers=outside
    )
    assert response.status_code == 403


async def test_a_rejection_is_final_for_that_need_and_organization(app, client, anonymous):
    c = await city(client)
    proposals = (await run(client))["proposals"]
    visits = next(p for p in proposals if p["need_id"] == c["visits_a"]["id"])
    station = as_(app, Role.station, c["xiling"]["id"])
    rejected = await anonymous.post(
        f"/api/v1/proposals/{visits['id']}/reject", headers=station, json={"reason": "本月已有其他志愿者安排"}
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["reject_reason"] == "本月已有其他志愿者安排"
    runs = await rematch(app)
    assert len(runs) == 1
    after = (await client.get(f"/api/v1/match-runs/{runs[0]}")).json()
    assert after["trigger"] == "rematch"
    assert all(
        not (p["need_id"] == c["visits_a"]["id"] and p["organization_id"] == c["volunteers"]["id"])
        for p in after["proposals"]
    )
    unmatched = {u["need_id"]: u for u in after["unmatched"]}
    assert unmatched[c["visits_a"]["id"]]["filter"] == "all_rejected"


async def test_untouched_proposals_are_unchanged_after_a_rematch_elsewhere(app, client):
    c = await city(client)
    await run(client)
    before = {
        p["id"]: p for p in (await client.get("/api/v1/proposals", params={"status": "proposed"})).json()["items"]
    }
    clinic_before = next(p for p in before.values() if p["need_id"] == c["clinic"]["id"])
    # 学院街道's home-visit need grows; the free clinic at 西陵街道 has nothing to do with it
    await client.patch(f"/api/v1/needs/{c['visits_b']['id']}", json={"quantity": 25}, headers={"If-Match": '"1"'})
    runs = await rematch(app)
    assert len(runs) == 1
    clinic_after = (await client.get(f"/api/v1/proposals/{clinic_before['id']}")).json()
    assert clinic_after == clinic_before  # byte for byte: same row, same version, same explanation
    run_after = (await client.get(f"/api/v1/match-runs/{runs[0]}")).json()
    assert run_after["counts"]["proposals_kept"] >= 1
    # the free clinic's component was not even solved again: the first run's stored engine state vouched for it
    assert run_after["counts"]["components"] == 2
    assert run_after["counts"]["components_reused"] == 1
    assert "engine_state" not in run_after
    async with app.state.db.engine.connect() as conn:
        states = dict((await conn.execute(sa.select(MatchRun.id, MatchRun.engine_state))).all())
    assert states[runs[0]] is not None  # only the scope's latest run keeps its state
    assert [k for k, v in states.items() if v is not None] == [runs[0]]


async def test_a_rematch_in_a_large_scope_re_solves_only_around_the_changed_need(app, client, monkeypatch):
    # A province's scope holds tens of thousands of candidate pairs; the engine then re-solves a touched component
    # only around the changed needs (thresholds lowered so this city's scope counts as large).
    monkeypatch.setattr(solver, "LOCAL_MIN_EDGES", 0)
    monkeypatch.setattr(solver, "LOCAL_MAX_SHARE", 1.0)
    monkeypatch.setattr(solver, "LOCAL_MAX_GAP", 1e9)
    c = await city(client)
    first = await run(client)
    clinic_id = next(p["id"] for p in first["proposals"] if p["need_id"] == c["clinic"]["id"])
    clinic_before = (await client.get(f"/api/v1/proposals/{clinic_id}")).json()
    await client.patch(f"/api/v1/needs/{c['visits_b']['id']}", json={"quantity": 25}, headers={"If-Match": '"1"'})
    runs = await rematch(app)
    after = (await client.get(f"/api/v1/match-runs/{runs[0]}")).json()
    # the stored state of the first run carried the answer and the per-need hashes: another run could go local
    assert after["counts"]["needs_changed_locally"] == 1
    assert after["counts"]["needs_re_solved_locally"] >= 1
    assert after["solver_status"] == "feasible" and after["bound"] >= after["objective"]
    # the volunteers' 50 visits were already all proposed (40 + 10): the grown need changes nothing that stands
    assert after["churn"] == {"added": 0, "removed": 0, "changed": 0}
    assert after["counts"]["proposals_kept"] == 3 and after["counts"]["proposals_added"] == 0
    assert after["objective"] == (await run(client, dry_run=True))["objective"]  # what a whole re-solve finds
    assert (await client.get(f"/api/v1/proposals/{clinic_id}")).json() == clinic_before
    # 学院街道 turns the volunteers down: that need's standing units leave, and it is re-solved around it again
    visits_b = next(p for p in first["proposals"] if p["need_id"] == c["visits_b"]["id"])
    station = as_(app, Role.station, c["xueyuan"]["id"])
    refused = await client.post(
        f"/api/v1/proposals/{visits_b['id']}/reject", headers=station, json={"reason": "已另行安排"}
    )
    assert refused.status_code == 200, refused.text
    again = (await client.get(f"/api/v1/match-runs/{(await rematch(app))[0]}")).json()
    assert again["counts"]["needs_changed_locally"] >= 1
    assert not any(p["need_id"] == c["visits_b"]["id"] for p in again["proposals"])
    assert (await client.get(f"/api/v1/proposals/{clinic_id}")).json() == clinic_before


async def test_an_operator_may_let_a_large_scope_use_several_engine_processes(app, client, monkeypatch):
    # MATCH_ENGINE_PROCESSES=2: the scope's independent components are solved in two processes (the size threshold
    # lowered so this city's two components count as large), with the answer one process gives.
    monkeypatch.setattr(solver, "PARALLEL_MIN_EDGES", 0)
    await city(client)
    alone = await run(client, dry_run=True)
    app.state.settings.engine_processes = 2
    split = await run(client)
    assert "solve_parallel_split" in split["timings"] and "solve_parallel_split" not in alone["timings"]
    assert (split["objective"], split["bound"]) == (alone["objective"], alone["bound"])
    assert sorted((p["need_id"], p["offer_id"], p["quantity"]) for p in split["proposals"]) == sorted(
        (p["need_id"], p["offer_id"], p["quantity"]) for p in alone["proposals"]
    )


async def test_editing_names_and_titles_keeps_every_component_reusable(client):
    # Names and titles are no input of the engine. (On PostgreSQL an UPDATE moves the row: an unordered read could
    # hand the engine the stations in another order, and every fingerprint would change.)
    c = await city(client)
    await run(client)
    for station in ("xiling",):
        renamed = await client.patch(
            f"/api/v1/stations/{c[station]['id']}",
            json={"name": f"{station}社工站（新址）"},
            headers={"If-Match": '"1"'},
        )
        assert renamed.status_code == 200, renamed.text
    retitled = await client.patch(
        f"/api/v1/needs/{c['visits_a']['id']}",
        json={"title": "独居老人每月探访（含电话问候）"},
        headers={"If-Match": '"1"'},
    )
    assert retitled.status_code == 200, retitled.text
    again = await run(client)
    assert again["counts"]["components_reused"] == again["counts"]["components"] == 2


async def test_an_unreadable_stored_engine_state_costs_the_reuse_not_the_run(app, client):
    await city(client)
    first = await run(client)
    async with app.state.db.sessionmaker() as session, session.begin():
        await session.execute(
            sa.update(MatchRun).where(MatchRun.id == first["id"]).values(engine_state={"fingerprint": ["zz"]})
        )
    again = await run(client)
    assert again["status"] == "succeeded" and again["objective"] == first["objective"]
    assert again["counts"]["components_reused"] == 0


async def test_a_month_in_the_life_of_a_city(app, client, anonymous):
    c = await city(client)
    first = await run(client)
    by_need = {}
    for p in first["proposals"]:
        by_need.setdefault(p["need_id"], []).append(p)
    station_a = as_(app, Role.station, c["xiling"]["id"])
    volunteers = as_(app, Role.organization, c["volunteers"]["id"])
    # 西陵街道 and the volunteers agree on the home visits
    for p in by_need[c["visits_a"]["id"]]:
        for headers in (station_a, volunteers):
            assert (await anonymous.post(f"/api/v1/proposals/{p['id']}/accept", headers=headers)).status_code == 200
    agreed = sum(p["quantity"] for p in by_need[c["visits_a"]["id"]])
    offer = (await client.get(f"/api/v1/offers/{c['visits_offer']['id']}")).json()
    assert offer["committed"] == agreed
    # the volunteers withdraw their other offer capacity? no: they cut capacity to what is agreed, then the need
    # at 学院街道 grows; a re-match must not tear up what was agreed and must not over-commit
    await client.patch(
        f"/api/v1/offers/{c['visits_offer']['id']}",
        json={"capacity": agreed},
        headers={"If-Match": f'"{offer["version"]}"'},
    )
    need_b = (await client.get(f"/api/v1/needs/{c['visits_b']['id']}")).json()
    await client.patch(
        f"/api/v1/needs/{c['visits_b']['id']}", json={"quantity": 30}, headers={"If-Match": f'"{need_b["version"]}"'}
    )
    runs = await rematch(app)
    assert runs
    latest = (await client.get(f"/api/v1/match-runs/{runs[-1]}")).json()
    assert all(p["offer_id"] != c["visits_offer"]["id"] for p in latest["proposals"])
    accepted = (await client.get("/api/v1/proposals", params={"status": "accepted"})).json()["items"]
    assert sum(p["quantity"] for p in accepted) == agreed
    # the hospital withdraws its clinic offer: the clinic proposal no longer stands after the re-match
    await client.delete(f"/api/v1/offers/{c['clinic_offer']['id']}")
    await rematch(app)
    standing = (await client.get("/api/v1/proposals", params={"status": "proposed"})).json()["items"]
    assert all(p["offer_id"] != c["clinic_offer"]["id"] for p in standing)
    pairings = (await client.get("/api/v1/pairings", params={"region": "420502"})).json()["items"]
    assert [(p["organization_id"], p["station_id"]) for p in pairings] == [(c["volunteers"]["id"], c["xiling"]["id"])]
    remaining = (await client.get(f"/api/v1/offers/{c['visits_offer']['id']}")).json()
    assert remaining["capacity"] - remaining["committed"] == 0


async def test_a_pairing_is_ended_by_the_bureau_once(app, client, anonymous):
    c = await city(client)
    clinic = next(p for p in (await run(client))["proposals"] if p["need_id"] == c["clinic"]["id"])
    for headers in (as_(app, Role.station, c["xiling"]["id"]), as_(app, Role.organization, c["hospital"]["id"])):
        await anonymous.post(f"/api/v1/proposals/{clinic['id']}/accept", headers=headers)
    pairing = (await client.get("/api/v1/pairings", params={"active": True})).json()["items"][0]
    station_staff = as_(app, Role.station, c["xiling"]["id"])
    assert (await anonymous.post(f"/api/v1/pairings/{pairing['id']}/end", headers=station_staff)).status_code == 403
    ended = await client.post(f"/api/v1/pairings/{pairing['id']}/end", json={"ended_on": "2026-12-31"})
    assert ended.status_code == 200 and ended.json()["ended_on"] == "2026-12-31"
    again = await client.post(f"/api/v1/pairings/{pairing['id']}/end", json={"ended_on": "2026-12-31"})
    assert again.status_code == 409
    assert (await client.get("/api/v1/pairings", params={"active": True})).json()["items"] == []
