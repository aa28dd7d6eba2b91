"""The service catalog is reference data: six domains, about thirty types, each with a unit; read-only."""

from __future__ import annotations


async def test_domains_come_with_their_service_types_in_catalog_order(client):
    domains = (await client.get("/api/v1/catalog/domains")).json()
    assert [d["code"] for d in domains] == [
        "elderly_care",
        "child_welfare",
        "social_assistance",
        "disability_care",
        "community_governance",
        "social_affairs",
    ]
    assert domains[0]["name_zh"] == "养老服务"
    assert sum(len(d["service_types"]) for d in domains) == 30
    home_visit = domains[0]["service_types"][0]
    assert home_visit == {
        "code": "elderly_care.home_visit",
        "domain_code": "elderly_care",
        "name_zh": "入户探访",
        "name_en": "Home visits to elders living alone",
        "unit": {"code": "person", "name_zh": "人次", "name_en": "person-times"},
    }


async def test_service_types_filter_by_domain_and_read_one_by_code(client):
    child = (await client.get("/api/v1/catalog/service-types", params={"domain": "child_welfare"})).json()
    assert {t["name_zh"] for t in child} >= {"学业辅导", "安全教育", "亲子活动"}
    exam = (await client.get("/api/v1/catalog/service-types/social_affairs.social_worker_exam_materials")).json()
    assert (exam["name_zh"], exam["unit"]["code"]) == ("社工考试辅导资料", "set")
    assert (await client.get("/api/v1/catalog/service-types/nothing.here")).status_code == 404


async def test_the_catalog_cannot_be_written(client):
    response = await client.post("/api/v1/catalog/service-types", json={"code": "x"})
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_units_are_listed_with_labels(client):
    units = {u["code"]: u["name_zh"] for u in (await client.get("/api/v1/catalog/units")).json()}
    assert units == {"person": "人次", "session": "场次", "hour": "小时", "set": "套", "meal": "餐"}
