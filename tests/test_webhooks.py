"""Webhooks: parties hear about proposals through signed POSTs, retried with backoff; SSRF targets are refused."""

from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.db.base import utcnow
from service.services import webhooks
from service.services.principals import Role
from tests import factories as f
from tests.conftest import token


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it is sent and can fail on purpose."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0

    async def endpoint(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        if self.fail_next:
            self.fail_next -= 1
            return Response(status_code=503)
        return Response(status_code=204)


@asynccontextmanager
async def receiver():
    rec = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/hook", rec.endpoint, methods=["POST"])]), log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to await for "listening")
        await asyncio.sleep(0.01)
    try:
        yield rec, f"http://127.0.0.1:{port}/hook"
    finally:
        server.should_exit = True
        await task


async def city(client):
    station = await f.create_station(client)
    org, _offer = await f.create_volunteers(client, capacity=60)
    await f.create_need(client, station["id"])
    return station, org


def as_(app, role, scope):
    return {"Authorization": f"Bearer {token(app, role, scope)}"}


async def test_a_new_proposal_and_the_answers_reach_the_subscribers_signed(app, client, anonymous):
    app.state.settings.webhook_allow_private = True  # the receiver lives on 127.0.0.1
    station, org = await city(client)
    async with receiver() as (rec, url):
        org_hook = await anonymous.post(
            "/api/v1/webhooks", json={"url": url}, headers=as_(app, Role.organization, org["id"])
        )
        assert org_hook.status_code == 201, org_hook.text
        secret = org_hook.json()["secret"]
        station_hook = await anonymous.post(
            "/api/v1/webhooks", json={"url": url}, headers=as_(app, Role.station, station["id"])
        )
        run = (await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})).json()
        proposal = run["proposals"][0]
        assert await webhooks.dispatch(app.state.db, app.state.settings) == 2
        headers, body = next((h, b) for h, b in rec.received if h["x-jiedui-event"] == "proposal.created")
        assert webhooks.verify(secret, headers["x-jiedui-signature"], body, now=time.time()) or webhooks.verify(
            station_hook.json()["secret"], headers["x-jiedui-signature"], body, now=time.time()
        )
        assert b'"proposal.created"' in body
        # the station accepts: the organization (the other side) hears of it, the station does not hear of itself
        await anonymous.post(
            f"/api/v1/proposals/{proposal['id']}/accept", headers=as_(app, Role.station, station["id"])
        )
        rec.received.clear()
        assert await webhooks.dispatch(app.state.db, app.state.settings) == 1
        headers, body = rec.received[0]
        assert headers["x-jiedui-event"] == "proposal.answered"
        assert webhooks.verify(secret, headers["x-jiedui-signature"], body, now=time.time())
        # a replayed delivery with an old timestamp fails verification
        assert not webhooks.verify(secret, headers["x-jiedui-signature"], body, now=time.time() + 3600)
        deliveries = (
            await anonymous.get(
                f"/api/v1/webhooks/{org_hook.json()['id']}/deliveries", headers=as_(app, Role.organization, org["id"])
            )
        ).json()["items"]
        assert [(d["event_type"], d["status"]) for d in deliveries] == [
            ("proposal.created", "delivered"),
            ("proposal.answered", "delivered"),
        ]


async def test_failed_deliveries_are_retried_with_backoff(app, client, anonymous):
    app.state.settings.webhook_allow_private = True
    _station, org = await city(client)
    async with receiver() as (rec, url):
        await anonymous.post("/api/v1/webhooks", json={"url": url}, headers=as_(app, Role.organization, org["id"]))
        await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})
        rec.fail_next = 1
        assert await webhooks.dispatch(app.state.db, app.state.settings) == 0
        assert await webhooks.dispatch(app.state.db, app.state.settings) == 0  # not due yet: backing off
        assert len(rec.received) == 1
        later = utcnow() + timedelta(minutes=5)
        assert await webhooks.dispatch(app.state.db, app.state.settings, now=later) == 1
        assert len(rec.received) == 2
        assert rec.received[0][0]["x-jiedui-delivery"] == rec.received[1][0]["x-jiedui-delivery"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "ftp://ngo.example.cn/hook",
    ],
)
async def test_loopback_private_and_link_local_targets_are_refused(app, anonymous, client, url):
    station, _ = await city(client)
    response = await anonymous.post(
        "/api/v1/webhooks", json={"url": url}, headers=as_(app, Role.station, station["id"])
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "url"


async def test_subscriptions_belong_to_their_owner(app, anonymous, client):
    app.state.settings.webhook_allow_private = True
    station, org = await city(client)
    mine = await anonymous.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=as_(app, Role.organization, org["id"])
    )
    other_station = as_(app, Role.station, station["id"])
    assert (await anonymous.get("/api/v1/webhooks", headers=other_station)).json()["items"] == []
    assert (await anonymous.delete(f"/api/v1/webhooks/{mine.json()['id']}", headers=other_station)).status_code == 404
    listed = (await anonymous.get("/api/v1/webhooks", headers=as_(app, Role.organization, org["id"]))).json()
    assert [w["id"] for w in listed["items"]] == [mine.json()["id"]]
    assert "secret" not in listed["items"][0] or listed["items"][0]["secret"] is None


def test_signatures_check_body_and_secret():
    header = webhooks.sign("s3cret", 1_800_000_000, b'{"a":1}')
    assert webhooks.verify("s3cret", header, b'{"a":1}', now=1_800_000_010)
    assert not webhooks.verify("s3cret", header, b'{"a":2}', now=1_800_000_010)
    assert not webhooks.verify("other", header, b'{"a":1}', now=1_800_000_010)


async def test_delivery_never_delays_the_request(app, client, anonymous):
    app.state.settings.webhook_allow_private = True
    _station, org = await city(client)
    # a subscriber that would hang: the request that causes the event does not wait for it
    await anonymous.post(
        "/api/v1/webhooks", json={"url": "http://10.255.255.1/hook"}, headers=as_(app, Role.organization, org["id"])
    )
    started = time.monotonic()
    response = await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})
    assert response.status_code == 201
    assert time.monotonic() - started < 5


async def _region_hooks(client) -> dict[str, int]:
    """Subscriptions of 宜昌市 (420500), 西陵区 (420502) and 伍家岗区 (420503), by region code."""
    hooks = {}
    for region in ("420500", "420502", "420503"):
        made = await client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "region_code": region})
        assert made.status_code == 201, made.text
        hooks[region] = made.json()["id"]
    return hooks


async def test_a_run_s_new_proposals_reach_region_subscribers_under_whose_region_they_fall(app, client, anonymous):
    # 宜昌市 (420500, the city: every code under 4205) and 西陵区 (420502) follow the station's proposals; 伍家岗区
    # (420503) does not hear of them; each subscription hears of each new proposal once.
    app.state.settings.webhook_allow_private = True
    _station, org = await city(client)
    hooks = await _region_hooks(client)
    org_hook = await anonymous.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=as_(app, Role.organization, org["id"])
    )
    run = (await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})).json()
    created = len(run["proposals"])
    assert created >= 1

    async def heard(hook_id: int, headers=None) -> list[str]:
        page = await client.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=headers)
        assert page.status_code == 200, page.text
        return [d["event_type"] for d in page.json()["items"]]

    assert await heard(hooks["420500"]) == ["proposal.created"] * created
    assert await heard(hooks["420502"]) == ["proposal.created"] * created
    assert await heard(hooks["420503"]) == []
    org_headers = as_(app, Role.organization, org["id"])
    assert await heard(org_hook.json()["id"], org_headers) == ["proposal.created"] * created


async def test_an_accepted_proposal_reaches_its_parties_and_the_regions_above_it_once_each(app, client, anonymous):
    # the answer's INSERT … SELECT (webhooks.emit, straight to the driver on PostgreSQL) matches the region scopes
    # with a fixed list of five parameters: 宜昌市 and 西陵区 hear, 伍家岗区 does not, nobody twice
    app.state.settings.webhook_allow_private = True
    station, org = await city(client)
    hooks = await _region_hooks(client)
    station_headers, org_headers = as_(app, Role.station, station["id"]), as_(app, Role.organization, org["id"])
    hooks["station"] = (
        await anonymous.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/s"}, headers=station_headers)
    ).json()["id"]
    hooks["org"] = (
        await anonymous.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/o"}, headers=org_headers)
    ).json()["id"]
    run = (await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})).json()
    proposal = run["proposals"][0]
    before = utcnow()
    assert (
        await anonymous.post(f"/api/v1/proposals/{proposal['id']}/accept", headers=station_headers)
    ).status_code == 200
    assert (await anonymous.post(f"/api/v1/proposals/{proposal['id']}/accept", headers=org_headers)).status_code == 200

    async def answers(name: str) -> list[dict]:
        headers = {"station": station_headers, "org": org_headers}.get(name)
        page = await client.get(f"/api/v1/webhooks/{hooks[name]}/deliveries", headers=headers)
        return [d for d in page.json()["items"] if d["event_type"] != "proposal.created"]

    assert [d["event_type"] for d in await answers("org")] == ["proposal.answered", "proposal.accepted"]
    assert [d["event_type"] for d in await answers("station")] == ["proposal.accepted"]
    assert [d["event_type"] for d in await answers("420500")] == ["proposal.accepted"]
    assert [d["event_type"] for d in await answers("420502")] == ["proposal.accepted"]
    assert await answers("420503") == []
    accepted = (await answers("420500"))[0]
    assert (accepted["status"], accepted["attempts"], accepted["delivered_at"]) == ("pending", 0, None)
    assert accepted["created_at"] == accepted["next_attempt_at"] and accepted["created_at"] >= before.isoformat()
    assert accepted["payload"]["proposal"] | {"status": "accepted"} == accepted["payload"]["proposal"]
    assert accepted["payload"]["proposal"]["id"] == proposal["id"]
