"""Activities: delivered units count against the agreement, a fully delivered need is fulfilled, the station rates,
and ratings feed later runs' scores."""

from __future__ import annotations

from service.services.principals import Role
from tests import factories as f
from tests.conftest import token


def as_(app, role, scope):
    return {"Authorization": f"Bearer {token(app, role, scope)}"}


async def agreed(app, client, anonymous):
    station = await f.create_station(client)
    org, _offer = await f.create_volunteers(client, capacity=60)
    need = await f.create_need(client, station["id"], quantity=20, beneficiary_count=20)
    run = (await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})).json()
    proposal = run["proposals"][0]
    for headers in (as_(app, Role.station, station["id"]), as_(app, Role.organization, org["id"])):
        await anonymous.post(f"/api/v1/proposals/{proposal['id']}/accept", headers=headers)
    pairing = (await client.get("/api/v1/pairings")).json()["items"][0]
    return station, org, need, proposal, pairing


def visit(proposal_id, units, day="2026-12-06"):
    return {
        "proposal_id": proposal_id,
        "service_type": "elderly_care.home_visit",
        "occurred_on": day,
        "units_delivered": units,
        "people_served": units,
        "volunteers": 4,
        "volunteer_hours": 12,
        "description": "上门探访独居老人，检查燃气和用电安全",
    }


async def test_delivering_what_was_agreed_fulfils_the_need(app, client, anonymous):
    _station, org, need, proposal, pairing = await agreed(app, client, anonymous)
    org_staff = as_(app, Role.organization, org["id"])
    first = await anonymous.post(
        f"/api/v1/pairings/{pairing['id']}/activities", json=visit(proposal["id"], 12), headers=org_staff
    )
    assert first.status_code == 201, first.text
    assert (await client.get(f"/api/v1/needs/{need['id']}")).json()["status"] == "matched"
    await anonymous.post(
        f"/api/v1/pairings/{pairing['id']}/activities", json=visit(proposal["id"], 8, "2026-12-20"), headers=org_staff
    )
    assert (await client.get(f"/api/v1/needs/{need['id']}")).json()["status"] == "fulfilled"


async def test_an_activity_must_belong_to_the_pairing_and_its_parties(app, client, anonymous):
    _station, _org, _need, proposal, pairing = await agreed(app, client, anonymous)
    other = await f.create_station(client, name="秭归县茅坪镇社工站", region_code="420527101")
    stranger = as_(app, Role.station, other["id"])
    response = await anonymous.post(
        f"/api/v1/pairings/{pairing['id']}/activities", json=visit(proposal["id"], 1), headers=stranger
    )
    assert response.status_code == 404
    wrong = await client.post(f"/api/v1/pairings/{pairing['id']}/activities", json=visit(999, 1))
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["code"] == "not_an_accepted_allocation"


async def test_the_station_rates_once_and_ratings_feed_the_next_run(app, client, anonymous):
    station, org, _need, proposal, pairing = await agreed(app, client, anonymous)
    activity = (
        await anonymous.post(
            f"/api/v1/pairings/{pairing['id']}/activities",
            json=visit(proposal["id"], 5),
            headers=as_(app, Role.organization, org["id"]),
        )
    ).json()
    station_staff = as_(app, Role.station, station["id"])
    org_staff = as_(app, Role.organization, org["id"])
    assert (
        await anonymous.post(f"/api/v1/activities/{activity['id']}/rating", json={"rating": 5}, headers=org_staff)
    ).status_code == 403
    rated = await anonymous.post(
        f"/api/v1/activities/{activity['id']}/rating",
        json={"rating": 5, "comment": "志愿者耐心细致"},
        headers=station_staff,
    )
    assert rated.status_code == 200 and rated.json()["rating"] == 5
    again = await anonymous.post(
        f"/api/v1/activities/{activity['id']}/rating", json={"rating": 1}, headers=station_staff
    )
    assert again.status_code == 409
    await f.create_need(client, station["id"], title="新增探访", quantity=5, beneficiary_count=5)
    preview = (
        await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12", "dry_run": True})
    ).json()
    # rating (5 − 1)/4 = 1, delivery 5 of 20 accepted = 0.25, answered at once: speed 1 → 0.5 + 0.075 + 0.2
    assert preview["proposals"][0]["explanation"]["components"]["feedback"] == 0.775
