"""Capacity is never over-committed, however many accepts race for it (on PostgreSQL, as in production)."""

from __future__ import annotations

import asyncio

import pytest

from service.services.principals import Role
from tests import factories as f
from tests.conftest import token

pytestmark = pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


async def test_200_concurrent_accepts_for_one_offers_capacity(app, client, anonymous):
    station = await f.create_station(client)
    org, offer = await f.create_volunteers(client, capacity=200)
    items = [
        f.need(title=f"探访 {i} 号独居老人", quantity=1, beneficiary_count=1, splittable=False) for i in range(200)
    ]
    assert (await client.post(f"/api/v1/stations/{station['id']}/needs", json={"items": items})).status_code == 201
    run = (await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})).json()
    proposals = run["proposals"]
    assert len(proposals) == 200
    # the organization said yes to all of them, then found it can only do 50 this month
    org_headers = {"Authorization": f"Bearer {token(app, Role.organization, org['id'])}"}
    for p in proposals:
        await anonymous.post(f"/api/v1/proposals/{p['id']}/accept", headers=org_headers)
    await client.patch(f"/api/v1/offers/{offer['id']}", json={"capacity": 50}, headers={"If-Match": '"1"'})

    station_headers = {"Authorization": f"Bearer {token(app, Role.station, station['id'])}"}
    responses = await asyncio.gather(
        *[anonymous.post(f"/api/v1/proposals/{p['id']}/accept", headers=station_headers) for p in proposals]
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 50
    assert statuses.count(409) == 150
    losers = [r.json() for r in responses if r.status_code == 409]
    assert {problem["code"] for problem in losers} == {"capacity_exhausted"}
    after = (await client.get(f"/api/v1/offers/{offer['id']}")).json()
    assert (after["capacity"], after["committed"]) == (50, 50)
    accepted = (await client.get("/api/v1/proposals", params={"status": "accepted", "limit": 200})).json()["items"]
    assert len(accepted) == 50
