"""Offers (接单): units shared by the service types, whole supply lists, search, pause/resume, withdrawal."""

from __future__ import annotations

from tests import factories as f


async def test_an_offer_covers_several_service_types_with_one_unit(client):
    org = await f.create_organization(client)
    offer = await f.create_offer(client, org["id"])
    assert offer["service_types"] == ["child_welfare.safety_education", "child_welfare.parent_child_activity"]
    assert offer["unit"] == "session" and offer["status"] == "active"


async def test_service_types_counted_in_different_units_cannot_share_a_capacity(client):
    org = await f.create_organization(client)
    response = await client.post(
        "/api/v1/offers",
        json={
            "organization_id": org["id"],
            **f.offer(service_types=["child_welfare.safety_education", "child_welfare.tutoring"]),
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "mixed_units"


async def test_a_supply_list_is_all_or_nothing_with_errors_by_index(client):
    org = await f.create_organization(client)
    items = [
        f.offer(),
        f.offer(service_types=["social_affairs.legal_aid"], title="法律援助", service_area=["000000"]),
        f.offer(service_types=["child_welfare.tutoring", "child_welfare.tutoring"]),
    ]
    response = await client.post(f"/api/v1/organizations/{org['id']}/offers", json={"items": items})
    assert response.status_code == 422
    # shape errors are reported first (item 2 repeats a type) ...
    assert [(e["index"], e["code"]) for e in response.json()["errors"]] == [(2, "invalid")]
    items[2] = f.offer(service_types=["child_welfare.tutoring"], title="学业辅导", capacity=60)
    response = await client.post(f"/api/v1/organizations/{org['id']}/offers", json={"items": items})
    # ... then reference-data errors (item 1 names a region that does not exist)
    assert response.status_code == 422
    assert [(e["pointer"], e["code"]) for e in response.json()["errors"]] == [("/items/1/service_area/0", "unknown")]
    assert (await client.get(f"/api/v1/organizations/{org['id']}/offers")).json()["items"] == []
    legal_aid = f.offer(
        service_types=["social_affairs.legal_aid"], title="法律援助", capacity=40, service_area=["420581", "420582001"]
    )
    items = [items[0], legal_aid]
    stored = await client.post(f"/api/v1/organizations/{org['id']}/offers", json={"items": items})
    assert stored.status_code == 201, stored.text
    assert stored.json()[1]["service_area"] == ["420581", "420582001"]


async def test_offers_are_searched_by_type_domain_region_and_status(client):
    sanxia = await f.create_organization(client)
    zigui = await f.create_organization(
        client,
        name="秭归县邻里互助协会",
        kind="social_group",
        credit_code=f.credit_code("1", "420527"),
        home_region_code="420527",
    )
    await f.create_offer(client, sanxia["id"])
    await f.create_offer(
        client,
        zigui["id"],
        service_types=["community_governance.neighbourhood_mutual_aid"],
        title="邻里互助活动",
        capacity=8,
    )

    async def titles(**params):
        return [o["title"] for o in (await client.get("/api/v1/offers", params=params)).json()["items"]]

    assert await titles(service_type="child_welfare.parent_child_activity") == ["留守儿童安全教育与亲子活动"]
    assert await titles(domain="community_governance") == ["邻里互助活动"]
    assert await titles(region="420527") == ["邻里互助活动"]
    assert await titles(organization_id=sanxia["id"], status="active") == ["留守儿童安全教育与亲子活动"]


async def test_an_offer_is_paused_and_resumed_with_if_match_and_withdrawn_for_good(client):
    org = await f.create_organization(client)
    offer = await f.create_offer(client, org["id"])
    path = f"/api/v1/offers/{offer['id']}"
    paused = await client.patch(path, json={"status": "paused", "capacity": 6}, headers={"If-Match": '"1"'})
    assert paused.status_code == 200 and (paused.json()["status"], paused.json()["capacity"]) == ("paused", 6)
    retyped = await client.patch(
        path,
        json={"service_types": ["child_welfare.parent_child_activity", "child_welfare.safety_education"]},
        headers={"If-Match": '"2"'},
    )
    assert retyped.status_code == 200, retyped.text
    assert retyped.json()["service_types"] == ["child_welfare.parent_child_activity", "child_welfare.safety_education"]
    withdraw_by_patch = await client.patch(path, json={"status": "withdrawn"}, headers={"If-Match": '"3"'})
    assert withdraw_by_patch.status_code == 422
    withdrawn = await client.delete(path)
    assert withdrawn.json()["status"] == "withdrawn"
    resumed = await client.patch(
        path, json={"status": "active"}, headers={"If-Match": f'"{withdrawn.json()["version"]}"'}
    )
    assert resumed.status_code == 409 and resumed.json()["code"] == "offer_not_editable"


async def test_an_offer_for_an_unknown_organization_is_404(client):
    response = await client.post("/api/v1/offers", json={"organization_id": 31337, **f.offer()})
    assert response.status_code == 404
