"""Needs and offers past their window expire and leave matching; unanswered proposals expire after the deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.services import expiry
from tests import factories as f


async def test_lists_past_their_window_and_stale_proposals_expire(app, client):
    station = await f.create_station(client)
    _org, offer = await f.create_volunteers(client, capacity=60)
    autumn = await f.create_need(
        client, station["id"], title="秋季探访", window_start="2026-09-01", window_end="2026-11-30"
    )
    winter = await f.create_need(
        client, station["id"], title="冬季探访", window_start="2026-12-01", window_end="2027-02-28"
    )
    run = (await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-11"})).json()
    assert {p["need_id"] for p in run["proposals"]} == {autumn["id"]}

    async with app.state.db.sessionmaker() as session, session.begin():
        counts = await expiry.run(session, now=datetime(2026, 12, 2, tzinfo=UTC))
    assert counts == {"needs": 1, "offers": 0, "proposals": 0}
    assert (await client.get(f"/api/v1/needs/{autumn['id']}")).json()["status"] == "expired"
    assert (await client.get(f"/api/v1/needs/{winter['id']}")).json()["status"] == "open"
    proposal = (await client.get("/api/v1/proposals", params={"need_id": autumn["id"]})).json()["items"][0]
    assert proposal["status"] == "withdrawn"  # it left with its need

    december = (await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})).json()
    pending = december["proposals"][0]
    deadline = (await client.get(f"/api/v1/proposals/{pending['id']}")).json()["expires_at"]
    later = datetime.fromisoformat(deadline) + timedelta(seconds=1)
    async with app.state.db.sessionmaker() as session, session.begin():
        counts = await expiry.run(session, now=later)
    assert counts["proposals"] == 1
    assert (await client.get(f"/api/v1/proposals/{pending['id']}")).json()["status"] == "expired"
    assert (await client.get(f"/api/v1/offers/{offer['id']}")).json()["status"] == "active"
