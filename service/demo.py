"""Demo data: 宜昌市 (Yichang, Hubei) with ten township stations and twelve organizations.

County codes and coordinates are real (from the division dataset); township codes follow the national
scheme (001–099 streets, 100–199 towns, 200–399 townships) under those counties and are illustrative.
Loaded through the same use cases as the API, so the demo obeys every rule real data does.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models.needs import NeedItem
from service.db.models.offers import OfferItem
from service.db.models.organizations import OrganizationCreate
from service.db.models.stations import Station, StationCreate
from service.reference import uscc
from service.services import needs as need_service
from service.services import offers as offer_service
from service.services import organizations as organization_service
from service.services import stations as station_service
from service.services.principals import Principal

CITY = "420500"  # 宜昌市
YEAR = date.today().year
SPAN = (date(YEAR, 1, 1), date(YEAR, 12, 31))

STATIONS = [
    ("西陵区西陵街道社工站", "420502001", (30.7046, 111.2950), "0717-6221001"),
    ("西陵区学院街道社工站", "420502002", (30.7152, 111.3038), "0717-6221002"),
    ("西陵区窑湾乡社工站", "420502200", None, "0717-6221003"),
    ("伍家岗区大公桥街道社工站", "420503001", (30.6720, 111.3165), "0717-6531001"),
    ("夷陵区小溪塔街道社工站", "420506001", (30.7662, 111.3265), "0717-7821001"),
    ("夷陵区樟村坪镇社工站", "420506101", (31.1240, 111.0830), "0717-7821002"),
    ("秭归县茅坪镇社工站", "420527101", (30.8280, 110.9770), "0717-2881001"),
    ("长阳土家族自治县龙舟坪镇社工站", "420528101", (30.4720, 111.2070), "0717-5321001"),
    ("宜都市陆城街道社工站", "420581001", (30.3780, 111.4500), "0717-4821001"),
    ("当阳市玉阳街道社工站", "420582001", None, "0717-3221001"),
]

# name, kind, kind digit of the credit code, home region, service area, expertise, rating, max stations, max km
ORGANIZATIONS = [
    (
        "宜昌市志愿者协会",
        "social_group",
        "1",
        "420500",
        ["420500"],
        ["community_governance", "elderly_care"],
        "4A",
        8,
        None,
    ),
    ("宜昌市第一人民医院义诊志愿服务队", "social_group", "1", "420502", ["420500"], ["elderly_care"], "3A", 6, 60.0),
    (
        "夷陵区中医院健康服务中心",
        "social_service_agency",
        "2",
        "420506",
        ["420506", "420502"],
        ["elderly_care"],
        None,
        3,
        None,
    ),
    (
        "宜昌市三峡社会工作服务中心",
        "social_service_agency",
        "2",
        "420502",
        ["420500"],
        ["child_welfare", "social_affairs", "social_assistance"],
        "5A",
        10,
        None,
    ),
    (
        "宜昌市心语心理咨询服务中心",
        "social_service_agency",
        "2",
        "420503",
        ["420502", "420503", "420506"],
        ["social_assistance", "child_welfare"],
        "3A",
        4,
        None,
    ),
    (
        "宜昌市残疾人康复训练基地",
        "social_service_agency",
        "2",
        "420503",
        ["420500"],
        ["disability_care"],
        "4A",
        5,
        80.0,
    ),
    (
        "西陵区阳光幼儿园亲子教育中心",
        "social_service_agency",
        "2",
        "420502",
        ["420502"],
        ["child_welfare"],
        None,
        2,
        None,
    ),
    ("宜昌市湖北商会", "social_group", "1", "420500", ["420500"], ["social_assistance"], "3A", 4, None),
    (
        "宜昌市慈善基金会",
        "foundation",
        "3",
        "420500",
        ["420500"],
        ["social_assistance", "elderly_care"],
        "5A",
        10,
        None,
    ),
    (
        "秭归县邻里互助协会",
        "social_group",
        "1",
        "420527",
        ["420527", "420528"],
        ["community_governance"],
        None,
        2,
        None,
    ),
    (
        "宜都市法律援助志愿者协会",
        "social_group",
        "1",
        "420581",
        ["420581", "420582"],
        ["social_affairs"],
        "2A",
        3,
        None,
    ),
    (
        "宜昌市老年大学助老服务中心",
        "social_service_agency",
        "2",
        "420502",
        ["420502", "420503", "420506"],
        ["elderly_care"],
        "3A",
        4,
        None,
    ),
]

# organization index → offers: (service types, title, capacity per month)
OFFERS = {
    0: [
        (["elderly_care.home_visit"], "志愿者入户探访独居老人", 120),
        (["community_governance.volunteer_training"], "社区志愿者队伍培训", 6),
    ],
    1: [(["elderly_care.free_clinic"], "社区义诊（内科、慢病筛查）", 8)],
    2: [(["elderly_care.free_clinic", "disability_care.rehabilitation"], "中医义诊与康复指导", 6)],
    3: [
        (["child_welfare.safety_education", "child_welfare.parent_child_activity"], "留守儿童安全教育与亲子活动", 10),
        (["social_affairs.social_worker_exam_materials"], "社工职业资格考试辅导资料", 200),
        (["social_assistance.psychological_counselling"], "困境群众心理疏导", 30),
    ],
    4: [
        (
            ["social_assistance.psychological_counselling", "child_welfare.psychological_support"],
            "心理疏导与儿童心理关爱",
            40,
        )
    ],
    5: [(["disability_care.rehabilitation", "disability_care.caregiver_training"], "残疾人康复训练与照护者培训", 12)],
    6: [
        (["child_welfare.parent_child_activity"], "周末亲子阅读与手工", 4),
        (["child_welfare.tutoring"], "学业辅导（小学）", 60),
    ],
    7: [
        (["social_assistance.employment_guidance"], "就业指引与岗位推荐", 50),
        (["social_assistance.material_donation"], "困难家庭物资包", 300),
    ],
    8: [
        (["social_assistance.charity_relief"], "困难群众慈善帮扶", 80),
        (["elderly_care.meal_help"], "老年助餐补贴", 2000),
    ],
    9: [(["community_governance.neighbourhood_mutual_aid"], "邻里互助活动", 8)],
    10: [(["social_affairs.legal_aid"], "法律咨询与援助", 40)],
    11: [(["elderly_care.smart_device_help", "elderly_care.recreation"], "智能手机培训与老年文体活动", 10)],
}

# station index → needs: (service type, title, quantity, group, count, priority, splittable)
NEEDS = {
    0: [
        ("elderly_care.home_visit", "独居老人每月探访", 40, "elderly_living_alone", 40, 3, True),
        ("elderly_care.free_clinic", "社区慢病义诊", 2, "elderly", 150, 2, False),
    ],
    1: [
        ("child_welfare.tutoring", "留守儿童周末学业辅导", 24, "left_behind_children", 12, 2, True),
        ("elderly_care.smart_device_help", "老年人智能手机课堂", 2, "elderly", 40, 1, True),
    ],
    2: [
        ("elderly_care.home_visit", "高龄独居老人探访", 30, "elderly_living_alone", 30, 4, True),
        ("social_assistance.charity_relief", "困难家庭慈善帮扶", 15, "low_income_households", 15, 3, True),
    ],
    3: [
        ("social_affairs.social_worker_exam_materials", "社工考试备考资料", 30, "social_workers", 30, 2, True),
        ("social_assistance.psychological_counselling", "困境群众心理疏导", 10, "low_income_households", 10, 3, True),
    ],
    4: [
        ("child_welfare.safety_education", "暑期防溺水安全教育", 3, "left_behind_children", 200, 4, False),
        ("disability_care.rehabilitation", "残疾人居家康复", 6, "people_with_disabilities", 18, 3, True),
    ],
    5: [
        ("elderly_care.free_clinic", "山区义诊", 1, "elderly", 120, 3, False),
        ("elderly_care.home_visit", "山区留守老人探访", 25, "elderly_living_alone", 25, 3, True),
    ],
    6: [
        ("community_governance.neighbourhood_mutual_aid", "移民社区邻里互助", 3, "residents", 300, 2, True),
        ("child_welfare.parent_child_activity", "亲子活动", 2, "families", 40, 1, False),
    ],
    7: [
        ("social_assistance.employment_guidance", "就业困难人员就业指引", 20, "job_seekers", 20, 3, True),
        ("disability_care.caregiver_training", "残疾人照护者培训", 2, "families", 25, 2, False),
    ],
    8: [
        ("social_affairs.legal_aid", "老年人法律咨询", 10, "elderly", 10, 2, True),
        ("elderly_care.meal_help", "老年食堂助餐", 600, "elderly", 60, 3, True),
    ],
    9: [
        ("social_assistance.material_donation", "冬季困难家庭物资", 50, "low_income_households", 50, 4, True),
        ("child_welfare.psychological_support", "困境儿童心理关爱", 8, "children_in_difficulty", 8, 3, True),
    ],
}


def _credit_code(kind_digit: str, region: str, serial: int) -> str:
    return uscc.make(f"5{kind_digit}{region}MJ{serial:07d}")


async def is_empty(session: AsyncSession) -> bool:
    """Whether no station exists yet (the demo loads only into an empty database)."""
    return (await session.scalar(sa.select(sa.func.count()).select_from(Station))) == 0


async def load(session: AsyncSession) -> dict[str, int]:
    """Create the demo city; returns how many of each thing were created."""
    actor = Principal.system("demo-loader")
    station_ids = []
    for name, code, point, phone in STATIONS:
        lat, lon = point if point else (None, None)
        s = await station_service.create(
            session,
            actor=actor,
            data=StationCreate(
                name=name, region_code=code, latitude=lat, longitude=lon, contact_phone=phone, address=f"{name}办公室"
            ),
        )
        station_ids.append(s.id)
    org_ids = []
    for i, (name, kind, digit, home, area, expertise, rating, max_st, max_km) in enumerate(ORGANIZATIONS):
        o = await organization_service.create(
            session,
            actor=actor,
            data=OrganizationCreate(
                name=name,
                credit_code=_credit_code(digit, home, 1000 + i),
                kind=kind,
                home_region_code=home,
                service_area=area,
                expertise=expertise,
                rating=rating,
                max_stations=max_st,
                max_distance_km=max_km,
            ),
        )
        org_ids.append(o.id)
    n_offers = n_needs = 0
    for i, items in OFFERS.items():
        offers = [
            OfferItem(service_types=t, title=title, capacity=cap, window_start=SPAN[0], window_end=SPAN[1])
            for t, title, cap in items
        ]
        n_offers += len(
            await offer_service.submit_list(
                session, actor=actor, organization_id=org_ids[i], items=offers, max_items=100
            )
        )
    for i, items in NEEDS.items():
        needs = [
            NeedItem(
                service_type=t,
                title=title,
                quantity=q,
                beneficiary_group=g,
                beneficiary_count=c,
                priority=p,
                splittable=split,
                window_start=SPAN[0],
                window_end=SPAN[1],
            )
            for t, title, q, g, c, p, split in items
        ]
        n_needs += len(
            await need_service.submit_list(session, actor=actor, station_id=station_ids[i], items=needs, max_items=100)
        )
    return {"stations": len(station_ids), "organizations": len(org_ids), "offers": n_offers, "needs": n_needs}
