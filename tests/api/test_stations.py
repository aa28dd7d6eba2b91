"""Stations: registration, validation of township codes, listing by region, versioned edits, archiving."""

from __future__ import annotations

from tests import factories as f


async def test_a_station_is_registered_and_read_back(client):
    response = await client.post("/api/v1/stations", json=f.station())
    assert response.status_code == 201
    body = response.json()
    assert body["region_code"] == "420502001000"  # 9-digit code stored in its 12-digit form
    assert body["county_name"] == "西陵区"
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/api/v1/stations/{body['id']}"
    again = await client.get(f"/api/v1/stations/{body['id']}")
    assert again.status_code == 200
    assert again.json() == body


async def test_a_station_without_coordinates_takes_its_countys(client):
    body = await f.create_station(
        client, name="西陵区窑湾乡社工站", region_code="420502200", latitude=None, longitude=None
    )
    assert body["coordinates_source"] == "region"
    assert abs(body["latitude"] - 30.71) < 0.05 and abs(body["longitude"] - 111.29) < 0.05


async def test_region_codes_that_name_no_real_county_are_refused(client):
    response = await client.post("/api/v1/stations", json=f.station(region_code="429999001"))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "pointer": "/region_code",
            "code": "unknown_county",
            "field": "region_code",
            "message": "no county-level division 429999 exists",
        }
    ]


async def test_village_codes_and_malformed_codes_are_refused(client):
    village = await client.post("/api/v1/stations", json=f.station(region_code="420502001201"))
    assert village.status_code == 422
    assert village.json()["errors"][0]["code"] == "not_township"
    malformed = await client.post("/api/v1/stations", json=f.station(region_code="4205020"))
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["code"] == "string_pattern_mismatch"


async def test_half_a_coordinate_is_an_error(client):
    response = await client.post("/api/v1/stations", json=f.station(longitude=None))
    assert response.status_code == 422
    assert "latitude and longitude go together" in response.json()["errors"][0]["message"]


async def test_one_live_station_per_township(client):
    first = await f.create_station(client)
    response = await client.post("/api/v1/stations", json=f.station(name="重复登记的社工站"))
    assert response.status_code == 409
    assert response.json()["code"] == "station_exists"
    assert response.json()["station_id"] == first["id"]


async def test_stations_are_listed_by_region_prefix_and_paged(client):
    for name, code in [
        ("西陵街道", "420502001"),
        ("学院街道", "420502002"),
        ("大公桥街道", "420503001"),
        ("茅坪镇", "420527101"),
    ]:
        await f.create_station(client, name=f"{name}社工站", region_code=code)
    xiling = (await client.get("/api/v1/stations", params={"region": "420502"})).json()
    assert [s["name"] for s in xiling["items"]] == ["西陵街道社工站", "学院街道社工站"]
    city = (await client.get("/api/v1/stations", params={"region": "420500"})).json()
    assert len(city["items"]) == 4
    first = (await client.get("/api/v1/stations", params={"limit": 3})).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = (await client.get("/api/v1/stations", params={"limit": 3, "cursor": first["next_cursor"]})).json()
    assert [s["name"] for s in rest["items"]] == ["茅坪镇社工站"] and rest["next_cursor"] is None


async def test_a_forged_cursor_is_a_clear_error(client):
    response = await client.get("/api/v1/stations", params={"cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid_cursor"


async def test_an_edit_with_the_current_version_succeeds_and_a_stale_one_changes_nothing(client):
    station = await f.create_station(client)
    path = f"/api/v1/stations/{station['id']}"
    ok = await client.patch(path, json={"contact_phone": "0717-6229999"}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["version"] == 2 and ok.headers["etag"] == '"2"'
    stale = await client.patch(path, json={"contact_phone": "0717-0000000"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    assert (await client.get(path)).json()["contact_phone"] == "0717-6229999"


async def test_an_edit_without_if_match_is_refused(client):
    station = await f.create_station(client)
    response = await client.patch(f"/api/v1/stations/{station['id']}", json={"name": "新名称"})
    assert response.status_code == 428
    assert response.json()["code"] == "if_match_required"


async def test_a_station_with_live_needs_cannot_be_archived_until_they_are_cancelled(client):
    station = await f.create_station(client)
    need = await f.create_need(client, station["id"])
    refused = await client.delete(f"/api/v1/stations/{station['id']}")
    assert refused.status_code == 409
    assert refused.json()["code"] == "station_has_live_needs"
    assert (await client.delete(f"/api/v1/needs/{need['id']}")).status_code == 200
    assert (await client.delete(f"/api/v1/stations/{station['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/stations/{station['id']}")).status_code == 404
    # the township is free again for a new station, and the cancelled need is still on record
    assert (await client.post("/api/v1/stations", json=f.station(name="新西陵街道社工站"))).status_code == 201
    assert (await client.get(f"/api/v1/needs/{need['id']}")).json()["status"] == "cancelled"


async def test_unknown_station_is_404_problem(client):
    response = await client.get("/api/v1/stations/999999")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
