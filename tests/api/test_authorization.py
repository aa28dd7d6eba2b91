"""Who may do what: every endpoint × every role × an object inside and outside the caller's scope.

The world: station A (西陵街道, 420502) with need a, organization X (based in 420502) with offer x — all inside
the scope of the coordinator and auditor of 西陵区 (420502), of station A's staff and of organization X's staff;
station B (秭归县茅坪镇, 420527) with need b and organization Y (based in 420527) with offer y — outside it.
Outside objects answer 404 (their existence is not revealed); visible ones the role may not change answer 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.services.principals import Role
from tests import factories as f
from tests.conftest import token

ROLES = ["admin", "coordinator", "auditor", "station", "organization"]


@dataclass
class Side:
    station: int
    need: int
    organization: int
    offer: int
    county: str
    run: int | None = None
    proposal: int | None = None
    pairing: int | None = None
    activity: int | None = None


async def build_side(
    client: httpx.AsyncClient,
    *,
    township: str,
    county: str,
    org_name: str,
    with_run: bool = False,
    with_pairing: bool = False,
) -> Side:
    station = await f.create_station(client, name=f"{township}社工站", region_code=township)
    need = await f.create_need(client, station["id"])
    org = await f.create_organization(
        client, name=org_name, home_region_code=county, service_area=[county], credit_code=f.credit_code("2", county)
    )
    offer = await f.create_offer(client, org["id"], service_types=["elderly_care.home_visit"], title="入户探访")
    side = Side(station["id"], need["id"], org["id"], offer["id"], county)
    if with_run:
        run = (await client.post("/api/v1/match-runs", json={"region_code": county, "period": "2026-12"})).json()
        side.run, side.proposal = run["id"], run["proposals"][0]["id"]
    if with_pairing:
        for who in ("station", "organization"):
            await client.post(f"/api/v1/proposals/{side.proposal}/accept", json={"side": who})
        side.pairing = (await client.get("/api/v1/pairings", params={"station_id": side.station})).json()["items"][0][
            "id"
        ]
        activity = await client.post(f"/api/v1/pairings/{side.pairing}/activities", json=ACTIVITY)
        side.activity = activity.json()["id"]
    return side


ACTIVITY = {
    "service_type": "elderly_care.home_visit",
    "occurred_on": "2026-12-06",
    "units_delivered": 4,
    "people_served": 4,
}


def headers_for(app: Any, role: str, inside: Side) -> dict[str, str]:
    scope = {
        "admin": None,
        "coordinator": "420502",
        "auditor": "420502",
        "station": inside.station,
        "organization": inside.organization,
    }[role]
    return {"Authorization": f"Bearer {token(app, Role(role), scope)}"}


V1 = {"If-Match": '"1"'}
# How a role meets an object inside its scope and one outside it:
ALL = "all"  # allowed for both
SCOPED = "scoped"  # allowed inside; outside answers 404 (or 403 where the object is being created)
NO = "no"  # refused for both: 403


def expect(
    ok: int,
    *,
    coordinator: str = SCOPED,
    auditor: str = NO,
    station: str = NO,
    organization: str = NO,
    outside: int = 404,
) -> dict[str, tuple[int, int]]:
    """Expected (inside, outside) statuses per role; admins may always, coordinators by default within their region."""
    statuses = {ALL: (ok, ok), SCOPED: (ok, outside), NO: (403, 403)}
    kinds = {
        "admin": ALL,
        "coordinator": coordinator,
        "auditor": auditor,
        "station": station,
        "organization": organization,
    }
    return {role: statuses[kind] for role, kind in kinds.items()}


EVERYONE = expect(200, coordinator=ALL, auditor=ALL, station=ALL, organization=ALL)
# (name, method, path, body, extra headers, expected statuses)
CASES: list[tuple[str, str, str, Any, dict, dict[str, tuple[int, int]]]] = [
    ("get station", "GET", "/stations/{station}", None, {}, expect(200, auditor=SCOPED, station=SCOPED)),
    (
        "edit station",
        "PATCH",
        "/stations/{station}",
        {"contact_phone": "0717-6000000"},
        V1,
        expect(200, station=SCOPED),
    ),
    ("archive station (has live needs)", "DELETE", "/stations/{station}", None, {}, expect(409)),
    (
        "submit need list",
        "POST",
        "/stations/{station}/needs",
        {"items": [f.free_clinic_need()]},
        {},
        expect(201, station=SCOPED),
    ),
    ("read need list", "GET", "/stations/{station}/needs", None, {}, expect(200, auditor=SCOPED, station=SCOPED)),
    (
        "add need",
        "POST",
        "/needs",
        {"station_id": "{station}", **f.free_clinic_need()},
        {},
        expect(201, station=SCOPED),
    ),
    ("get need", "GET", "/needs/{need}", None, {}, expect(200, auditor=SCOPED, station=SCOPED)),
    ("edit need", "PATCH", "/needs/{need}", {"priority": 4}, V1, expect(200, station=SCOPED)),
    ("cancel need", "DELETE", "/needs/{need}", None, {}, expect(200, station=SCOPED)),
    (
        "get organization",
        "GET",
        "/organizations/{organization}",
        None,
        {},
        expect(200, auditor=SCOPED, organization=SCOPED),
    ),
    (
        "edit organization",
        "PATCH",
        "/organizations/{organization}",
        {"max_stations": 4},
        V1,
        expect(200, organization=SCOPED),
    ),
    ("archive organization (has live offers)", "DELETE", "/organizations/{organization}", None, {}, expect(409)),
    (
        "submit supply list",
        "POST",
        "/organizations/{organization}/offers",
        {"items": [f.offer()]},
        {},
        expect(201, organization=SCOPED),
    ),
    (
        "read supply list",
        "GET",
        "/organizations/{organization}/offers",
        None,
        {},
        expect(200, auditor=SCOPED, organization=SCOPED),
    ),
    (
        "add offer",
        "POST",
        "/offers",
        {"organization_id": "{organization}", **f.offer()},
        {},
        expect(201, organization=SCOPED),
    ),
    ("get offer", "GET", "/offers/{offer}", None, {}, expect(200, auditor=SCOPED, organization=SCOPED)),
    ("edit offer", "PATCH", "/offers/{offer}", {"capacity": 9}, V1, expect(200, organization=SCOPED)),
    ("withdraw offer", "DELETE", "/offers/{offer}", None, {}, expect(200, organization=SCOPED)),
    ("register station", "POST", "/stations", {"new_station": True}, {}, expect(201, outside=403)),
    ("register organization", "POST", "/organizations", {"new_organization": True}, {}, expect(201, outside=403)),
    ("read audit trail", "GET", "/audit-events", None, {}, expect(200, coordinator=ALL, auditor=ALL)),
    ("read catalog", "GET", "/catalog/domains", None, {}, EVERYONE),
    (
        "start run",
        "POST",
        "/match-runs",
        {"region_code": "{county}", "period": "2026-12"},
        {},
        expect(201, outside=403),
    ),
    ("get run", "GET", "/match-runs/{run}", None, {}, expect(200, auditor=SCOPED)),
    (
        "get proposal",
        "GET",
        "/proposals/{proposal}",
        None,
        {},
        expect(200, auditor=SCOPED, station=SCOPED, organization=SCOPED),
    ),
    (
        "accept proposal",
        "POST",
        "/proposals/{proposal}/accept",
        {"side": "station"},
        {},
        expect(200, coordinator=NO, station=SCOPED, organization=SCOPED),
    ),
    (
        "reject proposal",
        "POST",
        "/proposals/{proposal}/reject",
        {"side": "organization", "reason": "本月人手不足"},
        {},
        expect(200, coordinator=NO, station=SCOPED, organization=SCOPED),
    ),
    ("withdraw proposal", "POST", "/proposals/{proposal}/withdraw", None, {}, expect(200)),
    ("list pairings", "GET", "/pairings", None, {}, EVERYONE),
    ("end pairing", "POST", "/pairings/{pairing}/end", None, {}, expect(200)),
    (
        "record activity",
        "POST",
        "/pairings/{pairing}/activities",
        ACTIVITY,
        {},
        expect(201, station=SCOPED, organization=SCOPED),
    ),
    (
        "rate activity",
        "POST",
        "/activities/{activity}/rating",
        {"rating": 4},
        {},
        expect(200, coordinator=NO, station=SCOPED),
    ),
    (
        "monthly dispatch",
        "GET",
        "/reports/monthly-dispatch?region={county}&month=2026-12",
        None,
        {},
        expect(200, auditor=SCOPED),
    ),
    (
        "quarterly supervision",
        "GET",
        "/reports/quarterly-supervision?region={county}&quarter=2026-Q4",
        None,
        {},
        expect(200, auditor=SCOPED),
    ),
    ("year ranking", "GET", "/reports/year-ranking?region={county}&year=2026", None, {}, expect(200, auditor=SCOPED)),
    ("need-list template", "GET", "/catalog/templates/need-list.xlsx", None, {}, EVERYONE),
    (
        "export need list",
        "GET",
        "/stations/{station}/needs/export.xlsx",
        None,
        {},
        expect(200, auditor=SCOPED, station=SCOPED),
    ),
    (
        "export supply list",
        "GET",
        "/organizations/{organization}/offers/export.xlsx",
        None,
        {},
        expect(200, auditor=SCOPED, organization=SCOPED),
    ),
    ("list webhooks", "GET", "/webhooks", None, {}, expect(200, coordinator=ALL, station=ALL, organization=ALL)),
    ("list activities", "GET", "/activities", None, {}, EVERYONE),
    (
        "register webhook",
        "POST",
        "/webhooks",
        {"url": "https://hooks.example.org/jiedui", "region_code": "{county}"},
        {},
        expect(201, station=ALL, organization=ALL, outside=403),
    ),
]


def _fill(value: Any, side: Side) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return getattr(side, value[1:-1])
    return value


def _body(body: Any, side: Side, inside: bool) -> Any:
    if body is None:
        return None
    if body == {"new_station": True}:
        return f.station(name="新设社工站", region_code="420502003" if inside else "420527102")
    if body == {"new_organization": True}:
        county = "420502" if inside else "420527"
        return f.organization(
            name="新登记组织", home_region_code=county, service_area=[county], credit_code=f.credit_code("1", county)
        )
    return {key: _fill(value, side) for key, value in body.items()}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "path", "body", "extra", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_endpoint_by_role_and_scope(app, client, anonymous, role, name, method, path, body, extra, expected):
    app.state.settings.webhook_allow_private = True  # no DNS here; the SSRF guard has specs of its own
    with_pairing = "{pairing}" in path or "{activity}" in path
    with_run = with_pairing or "{run}" in path or "{proposal}" in path
    inside = await build_side(
        client,
        township="420502001",
        county="420502",
        org_name="宜昌市三峡社会工作服务中心",
        with_run=with_run,
        with_pairing=with_pairing,
    )
    outside = await build_side(
        client,
        township="420527101",
        county="420527",
        org_name="秭归县邻里互助协会",
        with_run=with_run,
        with_pairing=with_pairing,
    )
    headers = headers_for(app, role, inside) | extra
    for side, want, is_inside in ((inside, expected[role][0], True), (outside, expected[role][1], False)):
        url = "/api/v1" + path.format(**vars(side))
        response = await anonymous.request(method, url, json=_body(body, side, is_inside), headers=headers)
        assert response.status_code == want, f"{role} {name} {'inside' if is_inside else 'outside'}: {response.text}"
        if want >= 400:
            assert response.headers["content-type"] == "application/problem+json"


async def test_lists_show_only_what_is_in_scope(app, client, anonymous):
    inside = await build_side(client, township="420502001", county="420502", org_name="宜昌市三峡社会工作服务中心")
    outside = await build_side(client, township="420527101", county="420527", org_name="秭归县邻里互助协会")

    async def ids(role: str, path: str) -> set[int]:
        response = await anonymous.get(f"/api/v1/{path}", headers=headers_for(app, role, inside))
        return {item["id"] for item in response.json()["items"]}

    assert await ids("admin", "needs") == {inside.need, outside.need}
    assert await ids("coordinator", "needs") == {inside.need}
    assert await ids("auditor", "stations") == {inside.station}
    assert await ids("station", "stations") == {inside.station}
    assert await ids("station", "needs") == {inside.need}
    assert await ids("organization", "organizations") == {inside.organization}
    assert await ids("organization", "offers") == {inside.offer}
    assert await ids("coordinator", "offers") == {inside.offer}


async def test_a_station_cannot_edit_another_stations_need_even_knowing_its_id(app, client, anonymous):
    inside = await build_side(client, township="420502001", county="420502", org_name="宜昌市三峡社会工作服务中心")
    outside = await build_side(client, township="420527101", county="420527", org_name="秭归县邻里互助协会")
    headers = headers_for(app, "station", inside) | V1
    response = await anonymous.patch(f"/api/v1/needs/{outside.need}", json={"quantity": 1}, headers=headers)
    assert response.status_code == 404
    moved = await anonymous.post("/api/v1/needs", json={"station_id": outside.station, **f.need()}, headers=headers)
    assert moved.status_code == 404
    assert (await client.get(f"/api/v1/needs/{outside.need}")).json()["quantity"] == 40


async def test_an_organization_cannot_grade_itself_but_the_bureau_can(app, client, anonymous):
    inside = await build_side(client, township="420502001", county="420502", org_name="宜昌市三峡社会工作服务中心")
    own = headers_for(app, "organization", inside) | V1
    response = await anonymous.patch(f"/api/v1/organizations/{inside.organization}", json={"rating": "5A"}, headers=own)
    assert response.status_code == 403
    assert response.json()["errors"][0] == {
        "pointer": "/rating",
        "code": "field_not_allowed",
        "field": "rating",
        "message": "set by the bureau only",
    }
    bureau = headers_for(app, "coordinator", inside) | V1
    graded = await anonymous.patch(
        f"/api/v1/organizations/{inside.organization}", json={"rating": "5A"}, headers=bureau
    )
    assert graded.status_code == 200 and graded.json()["rating"] == "5A"
