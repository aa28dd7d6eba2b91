"""CSV and XLSX downloads of any list, with Chinese column headers where the field has a common name."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import Response
from openpyxl import Workbook
from pydantic import BaseModel

from service.services.spreadsheets import XLSX

EXPORT_MAX_ROWS = 10_000
LABELS = {
    "id": "编号",
    "name": "名称",
    "region_code": "区划代码",
    "county_name": "所属区县",
    "title": "标题",
    "description": "描述",
    "quantity": "数量",
    "committed": "已承诺",
    "status": "状态",
    "station_id": "社工站编号",
    "organization_id": "社会组织编号",
    "service_type": "服务类型",
    "service_types": "服务类型",
    "domain": "服务领域",
    "unit": "计量单位",
    "beneficiary_group": "受益群体",
    "beneficiary_count": "受益人数",
    "priority": "优先级",
    "window_start": "开始日期",
    "window_end": "结束日期",
    "splittable": "可拆分",
    "mode": "方式",
    "capacity": "月服务量",
    "service_area": "服务范围",
    "credit_code": "统一社会信用代码",
    "kind": "组织类型",
    "home_region_code": "注册地区划",
    "rating": "评估等级",
    "max_stations": "最多结对站数",
    "need_id": "需求编号",
    "offer_id": "供给编号",
    "run_id": "匹配批次",
    "started_on": "结对日期",
    "ended_on": "结束日期",
    "occurred_on": "活动日期",
    "units_delivered": "服务量",
    "people_served": "服务人数",
    "volunteers": "志愿者人数",
    "volunteer_hours": "志愿服务时长",
    "contact_phone": "联系电话",
    "address": "地址",
    "version": "版本",
    "created_at": "创建时间",
    "updated_at": "更新时间",
}

ExportFormat = Annotated[Literal["json", "csv", "xlsx"], Query(description="json (paged), or a csv/xlsx download")]


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return str(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date | int | float | str) or value is None:
        return value
    return str(value)


def _table(rows: Sequence[BaseModel], model: type[BaseModel]) -> tuple[list[str], list[list[Any]]]:
    fields = [name for name in model.model_fields if name not in ("explanation", "before", "after", "payload")]
    return [LABELS.get(f, f) for f in fields], [[_cell(getattr(r, f)) for f in fields] for r in rows]


def attachment(body: bytes | str, filename: str) -> Response:
    """A file download; CSV gets a BOM so that spreadsheet programs read the Chinese headers as UTF-8."""
    if filename.endswith(".csv"):
        return Response(
            "\ufeff" + str(body),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return Response(body, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def download(rows: Sequence[BaseModel], model: type[BaseModel], *, format: str, name: str) -> Response:
    """The rows as a CSV (UTF-8 with BOM, for spreadsheet programs) or XLSX attachment."""
    headers, table = _table(rows, model)
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(headers)
        writer.writerows([["" if v is None else v for v in row] for row in table])
        return attachment(out.getvalue(), f"{name}.csv")
    wb = Workbook()
    ws = wb.active
    ws.title = name[:31]
    ws.append(headers)
    for row in table:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return attachment(buffer.getvalue(), f"{name}.xlsx")


def respond(page: Any, paging: Any, model: type[BaseModel], name: str) -> Any:
    """The page as JSON, or every row (up to the export cap) as a download when the caller asked for one."""
    if paging.format == "json":
        return page
    return download(page.items, model, format=paging.format, name=name)
