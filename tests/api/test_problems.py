"""Every error is problem+json: unknown routes, bad JSON, oversized bodies, each with a request id."""

from __future__ import annotations

import pytest

from tests import factories as f


async def test_unknown_routes_are_problem_json(client):
    response = await client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


async def test_malformed_json_is_a_422_with_a_clear_code(client):
    response = await client.post("/api/v1/stations", content=b'{"name": ', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "json_invalid"


async def test_oversized_bodies_are_refused_before_parsing(client, app):
    limit = app.state.settings.max_body_bytes
    station = await f.create_station(client)
    items = [f.need(description="探" * 600)] * (limit // 600)
    response = await client.post(
        f"/api/v1/stations/{station['id']}/needs", json={"items": items}, headers={"Accept-Language": "zh-CN"}
    )
    assert response.status_code == 413
    assert response.json()["title"] == "请求体过大"
    listed = await client.get(f"/api/v1/stations/{station['id']}/needs")
    assert listed.json()["items"] == []


async def test_every_response_carries_a_request_id_and_echoes_the_callers(client):
    mine = await client.get("/healthz", headers={"X-Request-ID": "bureau-42"})
    assert mine.headers["x-request-id"] == "bureau-42"
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32


async def test_the_openapi_document_describes_problems_and_examples(client):
    spec = (await client.get("/openapi.json")).json()
    patch = spec["paths"]["/api/v1/needs/{need_id}"]["patch"]
    assert {"412", "428", "422"} <= set(patch["responses"])
    assert "application/problem+json" in patch["responses"]["412"]["content"]
    assert spec["components"]["schemas"]["NeedItem"]["examples"][0]["service_type"] == "elderly_care.home_visit"


BEYOND_64_BITS = str(2**63)  # no id column can hold it
BEYOND_32_BITS = str(2**31)  # one more than a PostgreSQL INTEGER id


@pytest.mark.parametrize("big", [BEYOND_32_BITS, BEYOND_64_BITS])
async def test_ids_beyond_what_an_id_column_holds_are_a_422_naming_the_field_not_a_server_error(client, big):
    station = await f.create_station(client)
    for path, field in [
        (f"/api/v1/proposals/{big}", "path:proposal_id"),
        (f"/api/v1/needs/{big}", "path:need_id"),
        (f"/api/v1/stations/{big}/needs", "path:station_id"),
        (f"/api/v1/needs?station_id={big}", "query:station_id"),
        (f"/api/v1/proposals?need_id={big}", "query:need_id"),
    ]:
        response = await client.get(path)
        assert response.status_code == 422, path
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == [field], path
    posted = await client.post("/api/v1/needs", json={**f.need(), "station_id": int(big)})
    assert posted.status_code == 422
    assert [e["field"] for e in posted.json()["errors"]] == ["station_id"]
    # The largest id still names no row: 404, as any unknown id.
    assert (await client.get(f"/api/v1/needs/{2**31 - 1}")).status_code == 404
    assert (await client.get(f"/api/v1/stations/{station['id']}")).status_code == 200
