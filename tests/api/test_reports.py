"""The monthly dispatch (月调度) agrees with figures worked out by hand, including the 25th cut-off."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from service.services.principals import Role
from tests import factories as f
from tests.conftest import token


def as_(app, role, scope):
    return {"Authorization": f"Bearer {token(app, role, scope)}"}


async def december_in_xiling(app, client, anonymous):
    """Two of 西陵区's three stations have needs; 西陵街道 agrees to home visits and a free clinic."""
    xiling = await f.create_station(client)
    xueyuan = await f.create_station(client, name="西陵区学院街道社工站", region_code="420502002")
    await f.create_station(client, name="西陵区窑湾乡社工站", region_code="420502200")
    volunteers, _ = await f.create_volunteers(client, capacity=60)
    hospital = await f.create_organization(
        client,
        name="宜昌市第一人民医院义诊志愿服务队",
        kind="social_group",
        credit_code=f.credit_code("1", "420502"),
        home_region_code="420502",
        service_area=["420502"],
    )
    await f.create_offer(
        client, hospital["id"], service_types=["elderly_care.free_clinic"], title="社区义诊", capacity=3
    )
    visits = await f.create_need(client, xiling["id"])
    clinic = await f.create_need(client, xiling["id"], **f.free_clinic_need())
    await f.create_need(client, xueyuan["id"], title="高龄老人探访", quantity=20, beneficiary_count=20)
    run = (await client.post("/api/v1/match-runs", json={"region_code": "420502", "period": "2026-12"})).json()
    agreed = [p for p in run["proposals"] if p["need_id"] in (visits["id"], clinic["id"])]
    for p in agreed:
        for headers in (as_(app, Role.station, xiling["id"]), as_(app, Role.organization, p["organization_id"])):
            assert (await anonymous.post(f"/api/v1/proposals/{p['id']}/accept", headers=headers)).status_code == 200
    visit_proposal = next(p for p in agreed if p["need_id"] == visits["id"])
    pairing = next(
        p for p in (await client.get("/api/v1/pairings")).json()["items"] if p["organization_id"] == volunteers["id"]
    )
    for day, units in (("2026-12-06", 12), ("2026-12-25", 8), ("2026-12-26", 5)):
        response = await client.post(
            f"/api/v1/pairings/{pairing['id']}/activities",
            json={
                "proposal_id": visit_proposal["id"],
                "service_type": "elderly_care.home_visit",
                "occurred_on": day,
                "units_delivered": units,
                "people_served": units,
                "volunteers": 3,
                "volunteer_hours": 9,
            },
        )
        assert response.status_code == 201, response.text
    return {"xueyuan": xueyuan, "hospital": hospital}


async def test_the_december_dispatch_of_xiling_district(app, client, anonymous):
    seen = await december_in_xiling(app, client, anonymous)
    report = (
        await client.get("/api/v1/reports/monthly-dispatch", params={"region": "420502", "month": "2026-12"})
    ).json()
    assert report["cutoff"] == "2026-12-25"
    assert report["active_pairings"] == 2
    # the activities of the 6th and the 25th count; the 26th is after the cut-off
    assert (report["activities"], report["units_delivered"], report["people_served"]) == (2, 20, 20)
    assert report["needs_by_domain"] == [
        {"domain": "elderly_care", "open": 1, "partially_matched": 0, "matched": 2, "fulfilled": 0}
    ]
    assert [o["organization_id"] for o in report["organizations_without_activity"]] == [seen["hospital"]["id"]]
    assert [s["name"] for s in report["stations_without_pairing"]] == ["西陵区学院街道社工站", "西陵区窑湾乡社工站"]
    assert [p["station_id"] for p in report["proposals_unanswered"]] == [seen["xueyuan"]["id"]]


async def test_the_dispatch_as_csv_with_chinese_headers(app, client, anonymous):
    await december_in_xiling(app, client, anonymous)
    response = await client.get(
        "/api/v1/reports/monthly-dispatch", params={"region": "420502", "month": "2026-12", "format": "csv"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.lstrip("\ufeff").splitlines()
    assert lines[0] == "区域,月份,截止日期,在册结对数,活动次数,服务量,服务人数"
    assert lines[1] == "420502,2026-12,2026-12-25,2,2,20,20"
    assert "未结对社工站编号,名称,区划代码" in lines
    xlsx = await client.get(
        "/api/v1/reports/monthly-dispatch", params={"region": "420502", "month": "2026-12", "format": "xlsx"}
    )
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert [c.value for c in sheet[2]] == ["420502", "2026-12", "2026-12-25", 2, 2, 20, 20]


async def test_the_dispatch_is_for_the_bureau_of_the_region(app, client, anonymous):
    await december_in_xiling(app, client, anonymous)
    params = {"region": "420502", "month": "2026-12"}
    other_county = as_(app, Role.coordinator, "420527")
    assert (
        await anonymous.get("/api/v1/reports/monthly-dispatch", params=params, headers=other_county)
    ).status_code == 404
    auditor = as_(app, Role.auditor, "420500")
    assert (await anonymous.get("/api/v1/reports/monthly-dispatch", params=params, headers=auditor)).status_code == 200
    station = as_(app, Role.station, 1)
    assert (await anonymous.get("/api/v1/reports/monthly-dispatch", params=params, headers=station)).status_code == 403


async def test_quarterly_supervision_flags_what_needs_attention(app, client, anonymous):
    seen = await december_in_xiling(app, client, anonymous)
    first = (await client.get("/api/v1/activities")).json()["items"][0]
    await client.post(f"/api/v1/activities/{first['id']}/rating", json={"rating": 2, "comment": "迟到较多"})
    report = (
        await client.get("/api/v1/reports/quarterly-supervision", params={"region": "420502", "quarter": "2026-Q4"})
    ).json()
    assert report["period_end"] == "2026-12-31"
    rows = {r["organization_id"]: r for r in report["pairings"]}
    hospital = rows.pop(seen["hospital"]["id"])
    (volunteers,) = rows.values()
    # volunteers: 40 agreed, 12 + 8 + 5 delivered, last on the 26th, rated 2
    assert (volunteers["agreed_units"], volunteers["delivered_units"], volunteers["delivery_rate"]) == (40, 25, 0.625)
    assert (volunteers["last_activity_on"], volunteers["average_rating"]) == ("2026-12-26", 2.0)
    assert volunteers["flags"] == ["low_rating"]
    # the hospital agreed to 2 clinic sessions and has delivered nothing yet
    assert (hospital["agreed_units"], hospital["delivered_units"]) == (2, 0)
    assert hospital["flags"] == ["no_activity_30_days", "delivery_under_50_percent"]


async def test_the_year_end_ranking_shows_its_components(app, client, anonymous):
    seen = await december_in_xiling(app, client, anonymous)
    first = (await client.get("/api/v1/activities")).json()["items"][0]
    await client.post(f"/api/v1/activities/{first['id']}/rating", json={"rating": 2})
    ranking = (await client.get("/api/v1/reports/year-ranking", params={"region": "420502", "year": 2026})).json()
    assert "0.4 × delivered_units" in ranking["formula"]
    best, last = ranking["organizations"]
    assert (best["rank"], best["name"]) == (1, "宜昌市志愿者协会")
    # 0.4 × 25/25 + 0.2 × 25/25 + 0.2 × 25/40 + 0.2 × (2 − 1)/4
    assert best["components"] == {"delivered_units": 1.0, "people_served": 1.0, "delivery_rate": 0.625, "rating": 0.25}
    assert best["score"] == 0.775
    assert (last["organization_id"], last["score"]) == (seen["hospital"]["id"], 0.0)
