"""Organizations: credit-code checks, service areas, kinds, versioned edits, archiving."""

from __future__ import annotations

from tests import factories as f


async def test_an_organization_is_registered_with_a_valid_credit_code(client):
    response = await client.post("/api/v1/organizations", json=f.organization())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "social_service_agency"
    assert body["service_area"] == ["420500"]
    assert body["expertise"] == ["child_welfare", "social_affairs"]


async def test_a_wrong_check_character_is_refused_per_gb_32100(client):
    code = f.credit_code()
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    response = await client.post(
        "/api/v1/organizations",
        json=f.organization(credit_code=wrong),
        headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"},
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "credit_code" and error["code"] == "credit_code_check_digit"
    assert error["message"] == "校验码不正确（GB 32100-2015）"


async def test_the_same_credit_code_cannot_register_twice(client):
    org = await f.create_organization(client)
    response = await client.post("/api/v1/organizations", json=f.organization(credit_code=org["credit_code"]))
    assert response.status_code == 409
    assert response.json()["organization_id"] == org["id"]


async def test_service_area_defaults_to_home_region_and_bad_codes_are_reported_by_index(client):
    org = await f.create_organization(client, service_area=None, home_region_code="420527")
    assert org["service_area"] == ["420527"]
    response = await client.post(
        "/api/v1/organizations",
        json=f.organization(service_area=["420502", "429999", "420502001"], expertise=["elderly_care", "astrology"]),
    )
    assert response.status_code == 422
    errors = {(e["pointer"], e["code"]) for e in response.json()["errors"]}
    assert errors == {("/service_area/1", "unknown"), ("/expertise/1", "unknown_domain")}


async def test_unknown_kind_and_rating_are_refused(client):
    response = await client.post("/api/v1/organizations", json=f.organization(kind="company", rating="6A"))
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"kind", "rating"}


async def test_organizations_are_listed_by_region_and_kind(client):
    await f.create_organization(
        client,
        name="宜昌市志愿者协会",
        kind="social_group",
        credit_code=f.credit_code("1", "420500"),
        home_region_code="420500",
    )
    await f.create_organization(
        client,
        name="宜昌市慈善基金会",
        kind="foundation",
        credit_code=f.credit_code("3", "420500"),
        home_region_code="420500",
    )
    await f.create_organization(
        client,
        name="秭归县邻里互助协会",
        kind="social_group",
        credit_code=f.credit_code("1", "420527"),
        home_region_code="420527",
    )
    groups = (await client.get("/api/v1/organizations", params={"kind": "social_group"})).json()
    assert [o["name"] for o in groups["items"]] == ["宜昌市志愿者协会", "秭归县邻里互助协会"]
    zigui = (await client.get("/api/v1/organizations", params={"region": "420527"})).json()
    assert [o["name"] for o in zigui["items"]] == ["秭归县邻里互助协会"]


async def test_an_edit_is_versioned_and_identity_fields_are_fixed(client):
    org = await f.create_organization(client)
    path = f"/api/v1/organizations/{org['id']}"
    ok = await client.patch(
        path, json={"max_stations": 8, "service_area": ["420502", "420503"]}, headers={"If-Match": '"1"'}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["max_stations"] == 8 and ok.json()["service_area"] == ["420502", "420503"]
    renamed = await client.patch(path, json={"name": "另一个名字"}, headers={"If-Match": '"2"'})
    assert renamed.status_code == 422 and renamed.json()["errors"][0]["code"] == "extra_forbidden"
    stale = await client.patch(path, json={"max_stations": 1}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert (await client.get(path)).json()["max_stations"] == 8


async def test_an_organization_with_live_offers_cannot_be_archived(client):
    org = await f.create_organization(client)
    offer = await f.create_offer(client, org["id"])
    assert (await client.delete(f"/api/v1/organizations/{org['id']}")).status_code == 409
    assert (await client.delete(f"/api/v1/offers/{offer['id']}")).json()["status"] == "withdrawn"
    assert (await client.delete(f"/api/v1/organizations/{org['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/organizations/{org['id']}")).status_code == 404
