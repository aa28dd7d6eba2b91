"""Needs (点单): single and whole-list submission, all-or-nothing, search, versioned edits, cancellation."""

from __future__ import annotations

import sqlalchemy as sa

from service.db.session import Database
from tests import factories as f


async def count_needs(backend) -> int:
    db = Database.from_settings(backend.settings())
    async with db.engine.connect() as conn:
        n = (await conn.execute(sa.text("SELECT count(*) FROM needs"))).scalar_one()
    await db.dispose()
    return n


async def test_a_need_carries_its_domain_and_unit_from_the_catalog(client):
    station = await f.create_station(client)
    need = await f.create_need(client, station["id"])
    assert (need["domain"], need["unit"], need["status"], need["version"]) == ("elderly_care", "person", "open", 1)


async def test_a_whole_need_list_is_stored_in_one_request(client):
    station = await f.create_station(client)
    items = [
        f.need(),
        f.free_clinic_need(),
        f.need(
            service_type="child_welfare.tutoring",
            title="留守儿童周末学业辅导",
            quantity=24,
            beneficiary_group="left_behind_children",
            beneficiary_count=12,
        ),
    ]
    response = await client.post(f"/api/v1/stations/{station['id']}/needs", json={"items": items})
    assert response.status_code == 201, response.text
    assert [n["title"] for n in response.json()] == ["独居老人每月探访", "社区慢病义诊", "留守儿童周末学业辅导"]
    listed = (await client.get(f"/api/v1/stations/{station['id']}/needs")).json()
    assert len(listed["items"]) == 3


async def test_one_bad_item_stores_nothing_and_every_bad_item_is_reported(client, backend):
    station = await f.create_station(client)
    items = [
        f.need(),
        f.need(quantity=0),  # schema error
        f.need(service_type="elderly_care.teleportation"),  # unknown type
        f.need(window_start="2026-06-01", window_end="2026-05-01"),  # window reversed
        f.free_clinic_need(),
    ]
    response = await client.post(f"/api/v1/stations/{station['id']}/needs", json={"items": items})
    assert response.status_code == 422
    reported = [(e["index"], e["field"]) for e in response.json()["errors"]]
    assert reported == [(1, "quantity"), (3, "window_end")]
    assert await count_needs(backend) == 0
    # the schema is fine now, but one service type is unknown: still nothing stored, reported by index
    items[1]["quantity"], items[3]["window_end"] = 5, "2026-07-01"
    response = await client.post(f"/api/v1/stations/{station['id']}/needs", json={"items": items})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "pointer": "/items/2/service_type",
            "code": "unknown_service_type",
            "index": 2,
            "field": "service_type",
            "message": "unknown service type 'elderly_care.teleportation'",
        }
    ]
    assert await count_needs(backend) == 0


async def test_errors_speak_chinese_when_asked(client):
    station = await f.create_station(client)
    response = await client.post(
        f"/api/v1/stations/{station['id']}/needs",
        json={"items": [f.need(quantity="很多", beneficiary_group="aliens")]},
        headers={"Accept-Language": "zh-CN"},
    )
    body = response.json()
    assert body["title"] == "输入数据无效"
    messages = {e["field"]: e["message"] for e in body["errors"]}
    assert messages["quantity"] == "应为整数"
    assert messages["beneficiary_group"].startswith("取值必须是以下之一")


async def test_beneficiary_personal_data_has_nowhere_to_go(client):
    station = await f.create_station(client)
    response = await client.post(
        "/api/v1/needs", json={"station_id": station["id"], **f.need(beneficiary_names=["张三"], id_number="4205")}
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"beneficiary_names", "id_number"}


async def test_a_need_list_for_an_unknown_station_is_404(client):
    response = await client.post("/api/v1/stations/424242/needs", json={"items": [f.need()]})
    assert response.status_code == 404


async def test_strings_and_lists_are_bounded(client):
    station = await f.create_station(client)
    too_long = await client.post("/api/v1/needs", json={"station_id": station["id"], **f.need(title="探" * 101)})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["code"] == "string_too_long"
    empty = await client.post(f"/api/v1/stations/{station['id']}/needs", json={"items": []})
    assert empty.status_code == 422 and empty.json()["errors"][0]["code"] == "too_short"


async def test_needs_are_searched_by_region_domain_type_and_status(client):
    xiling = await f.create_station(client)
    zigui = await f.create_station(client, name="秭归县茅坪镇社工站", region_code="420527101")
    await f.create_need(client, xiling["id"])
    clinic = await f.create_need(client, xiling["id"], **f.free_clinic_need())
    await f.create_need(
        client,
        zigui["id"],
        service_type="child_welfare.tutoring",
        title="学业辅导",
        quantity=10,
        beneficiary_group="left_behind_children",
    )
    await client.delete(f"/api/v1/needs/{clinic['id']}")

    async def titles(**params):
        return [n["title"] for n in (await client.get("/api/v1/needs", params=params)).json()["items"]]

    assert await titles(region="420502") == ["独居老人每月探访", "社区慢病义诊"]
    assert await titles(region="420500", domain="child_welfare") == ["学业辅导"]
    assert await titles(service_type="elderly_care.free_clinic") == ["社区慢病义诊"]
    assert await titles(status="open") == ["独居老人每月探访", "学业辅导"]
    assert await titles(status="cancelled", region="420502") == ["社区慢病义诊"]
    bad = await client.get("/api/v1/needs", params={"status": "lost"})
    assert bad.status_code == 422


async def test_a_need_is_edited_with_if_match_and_a_stale_write_changes_nothing(client):
    station = await f.create_station(client)
    need = await f.create_need(client, station["id"])
    path = f"/api/v1/needs/{need['id']}"
    grown = await client.patch(path, json={"quantity": 55}, headers={"If-Match": '"1"'})
    assert grown.status_code == 200 and grown.json()["quantity"] == 55 and grown.json()["version"] == 2
    stale = await client.patch(path, json={"quantity": 1}, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    reversed_window = await client.patch(path, json={"window_end": "2025-12-31"}, headers={"If-Match": '"2"'})
    assert reversed_window.status_code == 422
    after = (await client.get(path)).json()
    assert (after["quantity"], after["version"], after["window_end"]) == (55, 2, "2026-12-31")


async def test_a_cancelled_need_cannot_be_edited_but_stays_on_record(client):
    station = await f.create_station(client)
    need = await f.create_need(client, station["id"])
    cancelled = await client.delete(f"/api/v1/needs/{need['id']}")
    assert cancelled.json()["status"] == "cancelled"
    again = await client.delete(f"/api/v1/needs/{need['id']}")
    assert again.status_code == 200 and again.json()["version"] == cancelled.json()["version"]
    edit = await client.patch(
        f"/api/v1/needs/{need['id']}", json={"quantity": 3}, headers={"If-Match": f'"{cancelled.json()["version"]}"'}
    )
    assert edit.status_code == 409
    assert edit.json()["current_status"] == "cancelled"


async def test_a_write_is_visible_to_the_very_next_read(client):
    station = await f.create_station(client)
    for i in range(5):
        need = await f.create_need(client, station["id"], title=f"第 {i} 项")
        assert (await client.get(f"/api/v1/needs/{need['id']}")).status_code == 200
