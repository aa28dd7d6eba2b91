"""The audit trail: every change, with who, what, before, after and request id, committed with the change."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from service.db.models.stations import StationCreate
from service.db.session import Database
from service.services import stations as station_service
from service.services.principals import Principal, Role
from tests import factories as f
from tests.conftest import token


async def events(client, **params) -> list[dict]:
    return (await client.get("/api/v1/audit-events", params={"limit": 200, **params})).json()["items"]


async def test_each_change_is_recorded_with_before_after_and_request_id(client):
    station = await f.create_station(client)
    need = await f.create_need(client, station["id"])
    await client.patch(
        f"/api/v1/needs/{need['id']}",
        json={"quantity": 45},
        headers={"If-Match": '"1"', "X-Request-ID": "req-grow-need"},
    )
    await client.delete(f"/api/v1/needs/{need['id']}")
    trail = await events(client, object_type="need", object_id=str(need["id"]))
    assert [e["action"] for e in trail] == ["create", "update", "cancel"]
    update = trail[1]
    assert (update["before"]["quantity"], update["after"]["quantity"]) == (40, 45)
    assert update["request_id"] == "req-grow-need"
    assert update["actor_role"] == "admin" and update["region_code"] == "420502001000"
    assert trail[2]["after"]["status"] == "cancelled"


async def test_a_failed_request_leaves_no_audit_row(client):
    station = await f.create_station(client)
    before = len(await events(client))
    bad = await client.post(
        f"/api/v1/stations/{station['id']}/needs",
        json={"items": [f.need(), f.need(service_type="elderly_care.nothing")]},
    )
    assert bad.status_code == 422
    stale = await client.patch(f"/api/v1/stations/{station['id']}", json={"name": "改名"}, headers={"If-Match": '"9"'})
    assert stale.status_code == 412
    assert len(await events(client)) == before


async def test_a_rolled_back_transaction_takes_its_audit_rows_with_it(app, backend):
    db = Database.from_settings(backend.settings())
    count = sa.text("SELECT count(*) FROM audit_events")
    try:
        async with db.sessionmaker() as session:
            await station_service.create(session, actor=Principal.system("test"), data=StationCreate(**f.station()))
            assert (await session.execute(count)).scalar_one() == 1  # written, inside the transaction
            await session.rollback()
        async with db.sessionmaker() as session:
            assert (await session.execute(count)).scalar_one() == 0
            assert (await session.execute(sa.text("SELECT count(*) FROM stations"))).scalar_one() == 0
    finally:
        await db.dispose()


async def test_coordinators_see_only_their_regions_events(app, client, anonymous):
    await f.create_station(client)
    await f.create_station(client, name="秭归县茅坪镇社工站", region_code="420527101")
    xiling = {"Authorization": f"Bearer {token(app, Role.coordinator, '420502')}"}
    regions = {e["region_code"] for e in (await anonymous.get("/api/v1/audit-events", headers=xiling)).json()["items"]}
    assert regions == {"420502001000"}


async def test_the_trail_cannot_be_edited_over_http_or_in_the_database(client, backend):
    await f.create_station(client)
    assert (await client.delete("/api/v1/audit-events")).status_code == 405
    assert (await client.put("/api/v1/audit-events", json={})).status_code == 405
    db = Database.from_settings(backend.settings())
    try:
        for statement in ("UPDATE audit_events SET action = 'nothing'", "DELETE FROM audit_events"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                async with db.engine.begin() as conn:
                    await conn.execute(sa.text(statement))
    finally:
        await db.dispose()
