"""The demo city loads through the same use cases as real data, once, on either database."""

from __future__ import annotations

from service import demo
from service.db.session import Database


async def test_the_demo_city_loads_into_an_empty_database_and_only_then(backend, app, client):
    db = Database.from_settings(backend.settings())
    async with db.sessionmaker() as session, session.begin():
        assert await demo.is_empty(session)
        created = await demo.load(session)
    async with db.sessionmaker() as session:
        assert not await demo.is_empty(session)
    await db.dispose()
    assert created == {"stations": 10, "organizations": 12, "offers": 18, "needs": 20}
    city = (await client.get("/api/v1/stations", params={"region": "420500"})).json()
    assert len(city["items"]) == 10
    kinds = {o["kind"] for o in (await client.get("/api/v1/organizations")).json()["items"]}
    assert kinds == {"social_group", "social_service_agency", "foundation"}
    domains = {n["domain"] for n in (await client.get("/api/v1/needs", params={"limit": 100})).json()["items"]}
    assert len(domains) == 6
