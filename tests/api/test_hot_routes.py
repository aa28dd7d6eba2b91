"""The hot routes (api/hot.py) answer exactly as FastAPI's routes do: same status, headers and body, errors included.

Each request is sent twice to the same app and database, once with the hot routes on and once with them off
(`settings.hot_routes`, read per request), and the answers are compared byte for byte (the request id aside).
Writes are compared with what FastAPI's own read of the stored row returns, and with a FastAPI write.
"""

from __future__ import annotations

import re

import httpx
import pytest

from service.services.principals import Role
from tests import factories as f
from tests.api.test_match_workflow import as_, city, run
from tests.conftest import token

pytestmark = pytest.mark.slow


def _answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]
    return response.status_code, headers, response.content


async def _both(app, http: httpx.AsyncClient, method: str, url: str, **kw) -> tuple[tuple, tuple]:
    """The answer with the hot routes on, then off."""
    answers = []
    for hot in (True, False):
        app.state.settings.hot_routes = hot
        answers.append(_answer(await http.request(method, url, **kw)))
    app.state.settings.hot_routes = True
    return answers[0], answers[1]


async def test_reads_answer_as_fastapi_does_including_every_error(app, client, anonymous):
    c = await city(client)
    proposals = (await run(client))["proposals"]
    xiling, volunteers = c["xiling"]["id"], c["volunteers"]["id"]
    first_page = await client.get("/api/v1/needs", params={"limit": 1})
    cursor = first_page.json()["next_cursor"]
    assert cursor
    coordinator, county = as_(app, Role.coordinator, "420500"), as_(app, Role.auditor, "420502")
    station, other = as_(app, Role.station, xiling), as_(app, Role.station, c["xueyuan"]["id"])
    organization = as_(app, Role.organization, volunteers)
    expired = {"Authorization": f"Bearer {token(app, Role.admin, lifetime_s=-120)}"}
    cases = [
        ("/api/v1/needs", coordinator),
        ("/api/v1/needs?region=420500&status=open&limit=2", coordinator),
        ("/api/v1/needs?region=420502&status=open&limit=20", county),
        (f"/api/v1/needs?limit=1&cursor={cursor}", coordinator),
        (f"/api/v1/needs?station_id={xiling}&domain=elderly_care", station),
        ("/api/v1/needs?service_type=elderly_care.free_clinic&status=", station),
        ("/api/v1/needs?region=42&region=4205", other),
        ("/api/v1/needs?domain=", other),
        ("/api/v1/needs?limit=0", coordinator),  # 422 from FastAPI's validation, in either mode
        ("/api/v1/needs?limit=1001", coordinator),
        ("/api/v1/needs?limit=2.5", coordinator),
        ("/api/v1/needs?region=42x", coordinator),
        ("/api/v1/needs?region=", coordinator),
        ("/api/v1/needs?station_id=-1", coordinator),
        ("/api/v1/needs?station_id=0", coordinator),
        ("/api/v1/needs?station_id=x", coordinator),
        ("/api/v1/needs?status=nope", coordinator),
        ("/api/v1/needs?format=csv", coordinator),
        ("/api/v1/needs?format=pdf", coordinator),
        ("/api/v1/needs?cursor=forged", coordinator),
        ("/api/v1/needs?cursor=" + "a" * 201, coordinator),
        ("/api/v1/needs", organization),  # 403: the role may not list needs
        ("/api/v1/needs", {**organization, "Accept-Language": "zh-CN"}),
        ("/api/v1/needs", {}),
        ("/api/v1/needs", {"Authorization": "Basic dXNlcjpwYXNz"}),
        ("/api/v1/needs", {"Authorization": "bearer not-a-token"}),
        ("/api/v1/needs", {"Authorization": "Bearer"}),
        ("/api/v1/needs", expired),
        (f"/api/v1/proposals/{proposals[0]['id']}", coordinator),
        (f"/api/v1/proposals/{proposals[0]['id']}", as_(app, Role.station, proposals[0]["station_id"])),
        (f"/api/v1/proposals/{proposals[0]['id']}", organization),
        (f"/api/v1/proposals/{proposals[0]['id']}?ignored=1", county),
        ("/api/v1/proposals/999999", coordinator),
        ("/api/v1/proposals/0999999", {**coordinator, "Accept-Language": "zh-CN"}),
        ("/api/v1/proposals/1x", coordinator),
        (f"/api/v1/proposals/{proposals[0]['id']}", {}),
        (f"/api/v1/proposals/{proposals[0]['id']}", expired),
    ]
    for url, headers in cases:
        hot, plain = await _both(app, anonymous, "GET", url, headers=headers)
        assert hot == plain, url
    statuses = {(await anonymous.get(url, headers=headers)).status_code for url, headers in cases}
    assert statuses == {200, 401, 403, 404, 422}


async def test_a_need_posted_on_the_hot_path_is_stored_and_answered_as_fastapi_would(app, client, anonymous):
    xiling = (await f.create_station(client))["id"]
    station = as_(app, Role.station, xiling)
    body = f.need(station_id=xiling)
    app.state.settings.hot_routes = True
    hot = await anonymous.post("/api/v1/needs", json=body, headers={**station, "X-Request-ID": "hot-1"})
    assert hot.status_code == 201, hot.text
    need = hot.json()
    assert hot.headers["location"] == f"/api/v1/needs/{need['id']}" and hot.headers["etag"] == '"1"'
    app.state.settings.hot_routes = False
    stored = await client.get(f"/api/v1/needs/{need['id']}")
    assert stored.content == hot.content
    plain = await anonymous.post("/api/v1/needs", json=body, headers=station)
    assert plain.status_code == 201
    assert [k for k, _ in _answer(plain)[1]] == [k for k, _ in _answer(hot)[1]]
    same = {"id", "created_at", "updated_at"}
    assert {k: v for k, v in plain.json().items() if k not in same} == {k: v for k, v in need.items() if k not in same}
    events = (await client.get("/api/v1/audit-events", params={"object_type": "need"})).json()["items"]
    by_need = {e["object_id"]: e for e in events}
    assert by_need[str(need["id"])]["request_id"] == "hot-1"
    assert by_need[str(need["id"])]["after"] == need
    drop = {"id", "occurred_at", "object_id", "request_id", "after"}
    assert {k: v for k, v in by_need[str(plain.json()["id"])].items() if k not in drop} == {
        k: v for k, v in by_need[str(need["id"])].items() if k not in drop
    }


async def test_need_posting_errors_answer_as_fastapi_does(app, client, anonymous):
    xiling = (await f.create_station(client))["id"]
    xueyuan = (await f.create_station(client, name="西陵区学院街道社工站", region_code="420502002"))["id"]
    station = as_(app, Role.station, xiling)
    good = f.need(station_id=xiling)
    cases = [
        {"json": good | {"quantity": 0}, "headers": station},
        {"json": good | {"unknown": 1}, "headers": {**station, "Accept-Language": "zh-CN"}},
        {"json": good | {"service_type": "nope.nothing"}, "headers": station},
        {"json": good | {"station_id": xueyuan}, "headers": station},  # another station's list: 403
        {"json": good | {"station_id": 999999}, "headers": station},
        {"json": good, "headers": as_(app, Role.auditor, "420500")},
        {"json": good, "headers": {}},
        {"json": [good], "headers": station},
        {"content": b'{"station_id": ', "headers": {**station, "content-type": "application/json"}},
        {"content": b"station_id=1", "headers": {**station, "content-type": "application/x-www-form-urlencoded"}},
        {"content": b"", "headers": station},
    ]
    for kw in cases:
        hot, plain = await _both(app, anonymous, "POST", "/api/v1/needs", **kw)
        assert hot == plain, kw
        assert hot[0] >= 400, kw
    assert (await client.get("/api/v1/needs")).json()["items"] == []


async def test_an_accept_on_the_hot_path_is_stored_and_answered_as_fastapi_would(app, client, anonymous):
    c = await city(client)
    proposals = (await run(client))["proposals"]
    clinic = next(p for p in proposals if p["need_id"] == c["clinic"]["id"])
    station = as_(app, Role.station, clinic["station_id"])
    hospital = as_(app, Role.organization, clinic["organization_id"])
    app.state.settings.hot_routes = True
    first = await anonymous.post(f"/api/v1/proposals/{clinic['id']}/accept", headers=station)
    assert first.status_code == 200 and first.json()["station_answer"] == "accepted"
    app.state.settings.hot_routes = False
    assert (await client.get(f"/api/v1/proposals/{clinic['id']}")).content == first.content
    app.state.settings.hot_routes = True
    both = await anonymous.post(f"/api/v1/proposals/{clinic['id']}/accept", headers=hospital)
    assert both.json()["status"] == "accepted"
    app.state.settings.hot_routes = False
    assert (await client.get(f"/api/v1/proposals/{clinic['id']}")).content == both.content
    pairings = (await client.get("/api/v1/pairings")).json()["items"]
    assert [(p["organization_id"], p["station_id"]) for p in pairings] == [
        (clinic["organization_id"], clinic["station_id"])
    ]
    cases = [
        (clinic["id"], station, None),  # 409: no longer open
        (clinic["id"], {**station, "Accept-Language": "zh-CN"}, None),
        (clinic["id"], as_(app, Role.coordinator, "420500"), None),  # 403: not a party
        (clinic["id"], as_(app, Role.station, c["xueyuan"]["id"]), None),  # 404: not its proposal
        (999999, station, None),
        (clinic["id"], {}, None),
        (clinic["id"], client.headers, {"side": "station"}),  # an admin's body: FastAPI's path
        (clinic["id"], client.headers, {"side": "nobody"}),
    ]
    for proposal_id, headers, body in cases:
        url = f"/api/v1/proposals/{proposal_id}/accept"
        hot, plain = await _both(app, anonymous, "POST", url, headers=dict(headers), json=body)
        assert hot == plain, (proposal_id, body)
        assert hot[0] >= 400


async def test_hot_requests_carry_their_route_in_metrics_and_request_ids(app, client, anonymous):
    xiling = (await f.create_station(client))["id"]
    station = as_(app, Role.station, xiling)
    app.state.settings.hot_routes = True
    posted = await anonymous.post("/api/v1/needs", json=f.need(station_id=xiling), headers=station)
    listed = await anonymous.get("/api/v1/needs", headers={**station, "X-Request-ID": "trace-me"})
    missing = await anonymous.get("/api/v1/proposals/77", headers=station)
    assert listed.headers["x-request-id"] == "trace-me"
    assert re.fullmatch(r"[0-9a-f]{32}", posted.headers["x-request-id"])
    metrics = (await anonymous.get("/metrics")).text
    for method, route, status in (("POST", "/api/v1/needs", 201), ("GET", "/api/v1/needs", 200)):
        assert f'method="{method}",route="{route}",status="{status}"' in metrics
    assert missing.status_code == 404
    assert 'method="GET",route="/api/v1/proposals/{proposal_id}",status="404"' in metrics
