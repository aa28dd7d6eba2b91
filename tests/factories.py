"""Realistic request bodies: 宜昌市 stations and organizations, needs and offers as the programmes write them."""

from __future__ import annotations

from typing import Any

import httpx

from service.reference import uscc

YEAR = 2026
WHOLE_YEAR = {"window_start": f"{YEAR}-01-01", "window_end": f"{YEAR}-12-31"}
_serial = iter(range(1, 10**6))


def station(**overrides: Any) -> dict[str, Any]:
    """西陵区西陵街道社工站 unless told otherwise."""
    body = {
        "name": "西陵区西陵街道社工站",
        "region_code": "420502001",
        "latitude": 30.7046,
        "longitude": 111.2950,
        "contact_phone": "0717-6221001",
        "address": "西陵区西陵二路 12 号",
    }
    return body | overrides


def credit_code(kind_digit: str = "2", region: str = "420502") -> str:
    """A valid unified social credit code of a civil-affairs registered organization."""
    return uscc.make(f"5{kind_digit}{region}MJ{next(_serial):07d}")


def organization(**overrides: Any) -> dict[str, Any]:
    """宜昌市三峡社会工作服务中心 unless told otherwise."""
    body = {
        "name": "宜昌市三峡社会工作服务中心",
        "credit_code": credit_code("2", "420502"),
        "kind": "social_service_agency",
        "home_region_code": "420502",
        "service_area": ["420500"],
        "expertise": ["child_welfare", "social_affairs"],
        "rating": "4A",
        "max_stations": 5,
        "contact_phone": "0717-6888123",
    }
    return body | overrides


def need(**overrides: Any) -> dict[str, Any]:
    """A home-visit need for elders living alone."""
    body = {
        "service_type": "elderly_care.home_visit",
        "title": "独居老人每月探访",
        "description": "辖区内 40 位独居老人每月上门探访一次，了解身体和生活情况",
        "quantity": 40,
        "beneficiary_group": "elderly_living_alone",
        "beneficiary_count": 40,
        "priority": 3,
        "splittable": True,
        "mode": "direct_aid",
        **WHOLE_YEAR,
    }
    return body | overrides


def free_clinic_need(**overrides: Any) -> dict[str, Any]:
    return (
        need(
            service_type="elderly_care.free_clinic",
            title="社区慢病义诊",
            description="高血压、糖尿病筛查",
            quantity=2,
            beneficiary_group="elderly",
            beneficiary_count=150,
            splittable=False,
        )
        | overrides
    )


def offer(**overrides: Any) -> dict[str, Any]:
    """Safety education and parent–child activities for left-behind children."""
    body = {
        "service_types": ["child_welfare.safety_education", "child_welfare.parent_child_activity"],
        "title": "留守儿童安全教育与亲子活动",
        "description": "防溺水、防诈骗安全课堂，周末亲子活动",
        "capacity": 10,
        **WHOLE_YEAR,
    }
    return body | overrides


async def create_station(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/stations", json=station(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def create_organization(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/organizations", json=organization(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def create_need(client: httpx.AsyncClient, station_id: int, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/needs", json={"station_id": station_id, **need(**overrides)})
    assert response.status_code == 201, response.text
    return response.json()


async def create_offer(client: httpx.AsyncClient, organization_id: int, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/offers", json={"organization_id": organization_id, **offer(**overrides)})
    assert response.status_code == 201, response.text
    return response.json()


def settings_for(url: str):
    """Settings for a database the test made (jobs and workers need no token secret of their own)."""
    from service.settings import Settings
    from tests.conftest import TEST_JWT_SECRET

    return Settings(database_url=url, jwt_secret=TEST_JWT_SECRET, in_process_worker=False)


async def create_volunteers(client: httpx.AsyncClient, *, capacity: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """宜昌市志愿者协会, serving the whole city, offering `capacity` home visits a month: (organization, offer)."""
    org = await create_organization(
        client,
        name="宜昌市志愿者协会",
        kind="social_group",
        home_region_code="420500",
        credit_code=credit_code("1", "420500"),
        service_area=["420500"],
    )
    offer = await create_offer(
        client, org["id"], service_types=["elderly_care.home_visit"], title="入户探访", capacity=capacity
    )
    return org, offer
