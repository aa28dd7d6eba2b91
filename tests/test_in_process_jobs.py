"""On the embedded default the API process runs the jobs itself: a change is re-matched without anyone asking."""

from __future__ import annotations

import asyncio

from tests import factories as f
from tests.apps import with_client


async def test_a_changed_need_is_rematched_by_the_in_process_worker(app, backend):
    settings = backend.settings(in_process_worker=True, rematch_debounce_s=0)

    async def act(http) -> list[dict]:
        station = await f.create_station(http)
        _org, _offer = await f.create_volunteers(http, capacity=60)
        need = await f.create_need(http, station["id"])
        first = await http.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})
        assert first.json()["proposals"][0]["quantity"] == 40
        await http.patch(f"/api/v1/needs/{need['id']}", json={"quantity": 50}, headers={"If-Match": '"1"'})
        for _ in range(150):  # the periodic re-match runs every 5 s; allow for a loaded machine
            runs = (await http.get("/api/v1/match-runs")).json()["items"]
            if any(r["trigger"] == "rematch" and r["status"] == "succeeded" for r in runs):
                return runs
            await asyncio.sleep(0.2)
        return runs

    runs = await with_client(settings, act)
    rematched = [r for r in runs if r["trigger"] == "rematch"]
    assert rematched and rematched[0]["status"] == "succeeded"
    assert rematched[0]["counts"]["proposals_added"] == 1 and rematched[0]["counts"]["proposals_superseded"] == 1
