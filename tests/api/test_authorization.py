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
# (name, method, path, body, extra headers, {role: (status inside, status outside)})
CASES: list[tuple[str, str, str, Any, dict, dict[str, tuple[int, int]]]] = [
    (
        "get station",
        "GET",
        "/stations/{station}",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (200, 404),
            "organization": (403, 403),
        },
    ),
    (
        "edit station",
        "PATCH",
        "/stations/{station}",
        {"contact_phone": "0717-6000000"},
        V1,
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (403, 403),
            "station": (200, 404),
            "organization": (403, 403),
        },
    ),
    (
        "archive station (has live needs)",
        "DELETE",
        "/stations/{station}",
        None,
        {},
        {
            "admin": (409, 409),
            "coordinator": (409, 404),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    (
        "submit need list",
        "POST",
        "/stations/{station}/needs",
        {"items": [f.free_clinic_need()]},
        {},
        {
            "admin": (201, 201),
            "coordinator": (201, 404),
            "auditor": (403, 403),
            "station": (201, 404),
            "organization": (403, 403),
        },
    ),
    (
        "read need list",
        "GET",
        "/stations/{station}/needs",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (200, 404),
            "organization": (403, 403),
        },
    ),
    (
        "add need",
        "POST",
        "/needs",
        {"station_id": "{station}", **f.free_clinic_need()},
        {},
        {
            "admin": (201, 201),
            "coordinator": (201, 404),
            "auditor": (403, 403),
            "station": (201, 404),
            "organization": (403, 403),
        },
    ),
    (
        "get need",
        "GET",
        "/needs/{need}",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (200, 404),
            "organization": (403, 403),
        },
    ),
    (
        "edit need",
        "PATCH",
        "/needs/{need}",
        {"priority": 4},
        V1,
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (403, 403),
            "station": (200, 404),
            "organization": (403, 403),
        },
    ),
    (
        "cancel need",
        "DELETE",
        "/needs/{need}",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (403, 403),
            "station": (200, 404),
            "organization": (403, 403),
        },
    ),
    (
        "get organization",
        "GET",
        "/organizations/{organization}",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (403, 403),
            "organization": (200, 404),
        },
    ),
    (
        "edit organization",
        "PATCH",
        "/organizations/{organization}",
        {"max_stations": 4},
        V1,
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (200, 404),
        },
    ),
    (
        "archive organization (has live offers)",
        "DELETE",
        "/organizations/{organization}",
        None,
        {},
        {
            "admin": (409, 409),
            "coordinator": (409, 404),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    (
        "submit supply list",
        "POST",
        "/organizations/{organization}/offers",
        {"items": [f.offer()]},
        {},
        {
            "admin": (201, 201),
            "coordinator": (201, 404),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (201, 404),
        },
    ),
    (
        "read supply list",
        "GET",
        "/organizations/{organization}/offers",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (403, 403),
            "organization": (200, 404),
        },
    ),
    (
        "add offer",
        "POST",
        "/offers",
        {"organization_id": "{organization}", **f.offer()},
        {},
        {
            "admin": (201, 201),
            "coordinator": (201, 404),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (201, 404),
        },
    ),
    (
        "get offer",
        "GET",
        "/offers/{offer}",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (403, 403),
            "organization": (200, 404),
        },
    ),
    (
        "edit offer",
        "PATCH",
        "/offers/{offer}",
        {"capacity": 9},
        V1,
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (200, 404),
        },
    ),
    (
        "withdraw offer",
        "DELETE",
        "/offers/{offer}",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (200, 404),
        },
    ),
    (
        "register station",
        "POST",
        "/stations",
        {"new_station": True},
        {},
        {
            "admin": (201, 201),
            "coordinator": (201, 403),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    (
        "register organization",
        "POST",
        "/organizations",
        {"new_organization": True},
        {},
        {
            "admin": (201, 201),
            "coordinator": (201, 403),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    (
        "read audit trail",
        "GET",
        "/audit-events",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 200),
            "auditor": (200, 200),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    ("read catalog", "GET", "/catalog/domains", None, {}, {role: (200, 200) for role in ROLES}),
    (
        "start run",
        "POST",
        "/match-runs",
        {"region_code": "{county}", "period": "2026-12"},
        {},
        {
            "admin": (201, 201),
            "coordinator": (201, 403),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    (
        "get run",
        "GET",
        "/match-runs/{run}",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    (
        "get proposal",
        "GET",
        "/proposals/{proposal}",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (200, 404),
            "organization": (200, 404),
        },
    ),
    (
        "accept proposal",
        "POST",
        "/proposals/{proposal}/accept",
        {"side": "station"},
        {},
        {
            "admin": (200, 200),
            "coordinator": (403, 403),
            "auditor": (403, 403),
            "station": (200, 404),
            "organization": (200, 404),
        },
    ),
    (
        "reject proposal",
        "POST",
        "/proposals/{proposal}/reject",
        {"side": "organization", "reason": "本月人手不足"},
        {},
        {
            "admin": (200, 200),
            "coordinator": (403, 403),
            "auditor": (403, 403),
            "station": (200, 404),
            "organization": (200, 404),
        },
    ),
    (
        "withdraw proposal",
        "POST",
        "/proposals/{proposal}/withdraw",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    ("list pairings", "GET", "/pairings", None, {}, {role: (200, 200) for role in ROLES}),
    (
        "end pairing",
        "POST",
        "/pairings/{pairing}/end",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (403, 403),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    (
        "record activity",
        "POST",
        "/pairings/{pairing}/activities",
        ACTIVITY,
        {},
        {
            "admin": (201, 201),
            "coordinator": (201, 404),
            "auditor": (403, 403),
            "station": (201, 404),
            "organization": (201, 404),
        },
    ),
    (
        "rate activity",
        "POST",
        "/activities/{activity}/rating",
        {"rating": 4},
        {},
        {
            "admin": (200, 200),
            "coordinator": (403, 403),
            "auditor": (403, 403),
            "station": (200, 404),
            "organization": (403, 403),
        },
    ),
    (
        "monthly dispatch",
        "GET",
        "/reports/monthly-dispatch?region={county}&month=2026-12",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    (
        "quarterly supervision",
        "GET",
        "/reports/quarterly-supervision?region={county}&quarter=2026-Q4",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    (
        "year ranking",
        "GET",
        "/reports/year-ranking?region={county}&year=2026",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (403, 403),
            "organization": (403, 403),
        },
    ),
    ("need-list template", "GET", "/catalog/templates/need-list.xlsx", None, {}, {role: (200, 200) for role in ROLES}),
    (
        "export need list",
        "GET",
        "/stations/{station}/needs/export.xlsx",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (200, 404),
            "organization": (403, 403),
        },
    ),
    (
        "export supply list",
        "GET",
        "/organizations/{organization}/offers/export.xlsx",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 404),
            "auditor": (200, 404),
            "station": (403, 403),
            "organization": (200, 404),
        },
    ),
    (
        "list webhooks",
        "GET",
        "/webhooks",
        None,
        {},
        {
            "admin": (200, 200),
            "coordinator": (200, 200),
            "auditor": (403, 403),
            "station": (200, 200),
            "organization": (200, 200),
        },
    ),
    ("list activities", "GET", "/activities", None, {}, {role: (200, 200) for role in ROLES}),
    (
        "register webhook",
        "POST",
        "/webhooks",
        {"url": "https://hooks.example.org/jiedui", "region_code": "{county}"},
        {},
        {
            "admin": (201, 201),
            "coordinator": (201, 403),
            "auditor": (403, 403),
            "station": (201, 201),
            "organization": (201, 201),
        },
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
