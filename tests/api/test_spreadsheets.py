"""Stations live in spreadsheets: a template with drop-downs, all-or-nothing uploads, exports that import back."""

from __future__ import annotations

import io

from openpyxl import Workbook, load_workbook

from service.services.spreadsheets import CATALOG_SHEET, NEED_COLUMNS, NEED_SHEET, XLSX
from tests import factories as f

HEADERS = [h for h, _ in NEED_COLUMNS]


def workbook(rows: list[list], *, sheet: str = NEED_SHEET, headers: list[str] = HEADERS) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(headers)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def row(**overrides) -> list:
    values = {
        "service_type": "elderly_care.home_visit",
        "title": "独居老人每月探访",
        "description": "每月上门一次",
        "quantity": 40,
        "beneficiary_group": "elderly_living_alone",
        "beneficiary_count": 40,
        "priority": 3,
        "window_start": "2026-12-01",
        "window_end": "2026-12-31",
        "splittable": "是",
        "mode": "输血",
    }
    values |= overrides
    return [values[field] for _, field in NEED_COLUMNS]


async def upload(client, station_id: int, body: bytes, **headers):
    return await client.post(
        f"/api/v1/stations/{station_id}/needs/import", content=body, headers={"content-type": XLSX, **headers}
    )


async def test_the_template_has_chinese_headers_drop_downs_and_the_catalog(client):
    response = await client.get("/api/v1/catalog/templates/need-list.xlsx")
    assert response.headers["content-type"] == XLSX
    wb = load_workbook(io.BytesIO(response.content))
    assert wb.sheetnames == [NEED_SHEET, CATALOG_SHEET]
    assert [c.value for c in wb[NEED_SHEET][1]] == HEADERS
    assert len(wb[NEED_SHEET].data_validations.dataValidation) == 5
    assert wb[CATALOG_SHEET].max_row == 31  # header + 30 service types


async def test_an_uploaded_list_is_stored_whole(client):
    station = await f.create_station(client)
    body = workbook(
        [
            row(),
            row(
                service_type="elderly_care.free_clinic",
                title="社区义诊",
                quantity=2,
                beneficiary_group="elderly",
                beneficiary_count=150,
                splittable="否",
            ),
        ]
    )
    response = await upload(client, station["id"], body)
    assert response.status_code == 201, response.text
    assert [(n["title"], n["splittable"]) for n in response.json()] == [("独居老人每月探访", True), ("社区义诊", False)]


async def test_bad_rows_are_reported_by_sheet_row_and_column_and_nothing_is_stored(client):
    station = await f.create_station(client)
    body = workbook(
        [
            row(),
            row(quantity="很多"),
            row(beneficiary_group="外星人"),
            row(quantity="=10*4"),
            row(service_type="elderly_care.teleportation"),
        ]
    )
    response = await upload(client, station["id"], body, **{"Accept-Language": "zh-CN"})
    assert response.status_code == 422
    cells = {(e["sheet"], e["row"], e["column"]) for e in response.json()["errors"]}
    assert cells == {(NEED_SHEET, 3, "D"), (NEED_SHEET, 4, "E"), (NEED_SHEET, 5, "D"), (NEED_SHEET, 6, "A")}
    messages = " ".join(e["message"] for e in response.json()["errors"])
    assert "第 3 行“数量”列" in messages and "不接受公式" in messages
    assert (await client.get(f"/api/v1/stations/{station['id']}/needs")).json()["items"] == []


async def test_files_that_are_not_the_template_get_clear_errors(client):
    station = await f.create_station(client)
    cases = [
        (b"PK\x03\x04 not really a zip", "not_a_workbook"),
        (b"hello", "not_a_workbook"),
        (workbook([row()], sheet="Sheet1"), "wrong_sheet"),
        (workbook([row()], headers=["编码", "标题"]), "wrong_header"),
        (workbook([]), "empty_sheet"),
    ]
    for body, code in cases:
        response = await upload(client, station["id"], body)
        assert response.status_code == 422, code
        assert response.json()["code"] == code
    huge = await upload(client, station["id"], b"PK" + b"0" * 3_000_000)
    assert huge.status_code == 413


async def test_an_exported_list_imports_elsewhere_as_the_same_items(client):
    xiling = await f.create_station(client)
    await f.create_need(client, xiling["id"])
    await f.create_need(client, xiling["id"], **f.free_clinic_need(mode="capacity_building"))
    exported = await client.get(f"/api/v1/stations/{xiling['id']}/needs/export.xlsx")
    assert exported.status_code == 200
    xueyuan = await f.create_station(client, name="西陵区学院街道社工站", region_code="420502002")
    imported = await upload(client, xueyuan["id"], exported.content)
    assert imported.status_code == 201, imported.text
    fields = (
        "service_type",
        "title",
        "description",
        "quantity",
        "beneficiary_group",
        "beneficiary_count",
        "priority",
        "window_start",
        "window_end",
        "splittable",
        "mode",
    )
    original = (await client.get(f"/api/v1/stations/{xiling['id']}/needs")).json()["items"]
    assert [{k: n[k] for k in fields} for n in imported.json()] == [{k: n[k] for k in fields} for n in original]


async def test_every_list_downloads_as_csv_or_xlsx_with_all_visible_rows(app, client, anonymous):
    from service.services.principals import Role
    from tests.conftest import token

    xiling = await f.create_station(client)
    zigui = await f.create_station(client, name="秭归县茅坪镇社工站", region_code="420527101")
    for title in ("探访一", "探访二", "探访三"):
        await f.create_need(client, xiling["id"], title=title)
    await f.create_need(client, zigui["id"], title="秭归探访")
    csv_response = await client.get("/api/v1/needs", params={"format": "csv", "limit": 1})
    assert csv_response.headers["content-type"].startswith("text/csv")
    lines = csv_response.text.lstrip("\ufeff").splitlines()
    assert lines[0].split(",")[:3] == ["编号", "社工站编号", "服务类型"]
    assert len(lines) == 5  # header + every need, not one page
    station_staff = {"Authorization": f"Bearer {token(app, Role.station, xiling['id'])}"}
    mine = await anonymous.get("/api/v1/needs", params={"format": "xlsx"}, headers=station_staff)
    sheet = load_workbook(io.BytesIO(mine.content)).active
    assert sheet.max_row == 4 and "秭归探访" not in [c.value for c in sheet["E"]]
    for path in (
        "/api/v1/stations",
        "/api/v1/organizations",
        "/api/v1/offers",
        "/api/v1/proposals",
        "/api/v1/pairings",
        "/api/v1/activities",
    ):
        response = await client.get(path, params={"format": "xlsx"})
        assert response.status_code == 200 and response.headers["content-type"] == XLSX, path


async def test_a_supply_list_round_trips_and_bad_cells_are_pinned_down(client):
    from service.services.spreadsheets import OFFERS

    sanxia = await f.create_organization(client)
    await f.create_offer(client, sanxia["id"])
    await f.create_offer(
        client,
        sanxia["id"],
        service_types=["social_affairs.legal_aid"],
        title="法律援助",
        capacity=40,
        service_area=["420581", "420582001"],
    )
    exported = await client.get(f"/api/v1/organizations/{sanxia['id']}/offers/export.xlsx")
    sheet = load_workbook(io.BytesIO(exported.content))[OFFERS.sheet]
    assert [c.value for c in sheet[1]] == OFFERS.headers
    other = await f.create_organization(
        client,
        name="秭归县邻里互助协会",
        kind="social_group",
        credit_code=f.credit_code("1", "420527"),
        home_region_code="420527",
    )
    imported = await client.post(
        f"/api/v1/organizations/{other['id']}/offers/import", content=exported.content, headers={"content-type": XLSX}
    )
    assert imported.status_code == 201, imported.text
    fields = ("service_types", "title", "description", "capacity", "service_area", "window_start", "window_end")
    original = (await client.get(f"/api/v1/organizations/{sanxia['id']}/offers")).json()["items"]
    assert [{k: o[k] for k in fields} for o in imported.json()] == [{k: o[k] for k in fields} for o in original]

    template = await client.get("/api/v1/catalog/templates/supply-list.xlsx")
    wb = load_workbook(io.BytesIO(template.content))
    ws = wb[OFFERS.sheet]
    ws.append(["child_welfare.tutoring", None, None, "学业辅导", "", 60, "429999", "2026-12-01", "2026-12-31"])
    ws.append(["elderly_care.levitation", None, None, "未知服务", "", 5, None, "2026-12-01", "2026-12-31"])
    ws.append([None, None, None, "缺服务类型", "", -1, None, "2026-12-01", "2026-12-31"])
    body = io.BytesIO()
    wb.save(body)
    bad = await client.post(
        f"/api/v1/organizations/{other['id']}/offers/import", content=body.getvalue(), headers={"content-type": XLSX}
    )
    assert bad.status_code == 422
    cells = {(e["row"], e["column"]) for e in bad.json()["errors"]}
    assert {(3, "A"), (4, "A"), (4, "F")} <= cells
    assert len((await client.get(f"/api/v1/organizations/{other['id']}/offers")).json()["items"]) == 2
