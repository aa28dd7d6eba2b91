"""Spreadsheets (Excel 表格): need-list templates, all-or-nothing import, and export of need lists.

Stations live in spreadsheets. The template has Chinese headers and drop-down lists for service types, beneficiary
groups, yes/no and mode; an upload is read as values only (formulas are refused, not evaluated), every bad cell is
reported by sheet, row and column, and nothing is stored unless every row is valid.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation
from pydantic import ValidationError

from service.db.models.needs import BeneficiaryGroup, NeedItem, NeedMode, NeedRead
from service.errors import ErrorCollector, InvalidInput
from service.services.catalog import Catalog

NEED_SHEET = "需求清单"
CATALOG_SHEET = "服务目录"
MAX_ROWS = 2000
MAX_BYTES = 2_000_000
# column header → NeedItem field
NEED_COLUMNS = [
    ("服务类型编码", "service_type"),
    ("标题", "title"),
    ("描述", "description"),
    ("数量", "quantity"),
    ("受益群体", "beneficiary_group"),
    ("受益人数", "beneficiary_count"),
    ("优先级(1-4)", "priority"),
    ("开始日期", "window_start"),
    ("结束日期", "window_end"),
    ("可拆分(是/否)", "splittable"),
    ("方式(输血/造血)", "mode"),
]
YES_NO = {"是": True, "否": False}
MODES = {"输血": NeedMode.direct_aid, "造血": NeedMode.capacity_building}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _list_validation(formula: str, column: int, prompt: str) -> DataValidation:
    dv = DataValidation(
        type="list", formula1=formula, allow_blank=False, showErrorMessage=True, errorTitle="输入有误", error=prompt
    )
    letter = get_column_letter(column)
    dv.add(f"{letter}2:{letter}{MAX_ROWS + 1}")
    return dv


def need_template(catalog: Catalog, rows: list[NeedRead] | None = None) -> bytes:
    """The need-list workbook: headers, drop-downs, the catalog on a second sheet, and optionally rows to export."""
    wb = Workbook()
    ws = wb.active
    ws.title = NEED_SHEET
    ws.append([header for header, _ in NEED_COLUMNS])
    for read in rows or []:
        ws.append(
            [
                read.service_type,
                read.title,
                read.description,
                read.quantity,
                read.beneficiary_group,
                read.beneficiary_count,
                int(read.priority),
                read.window_start,
                read.window_end,
                "是" if read.splittable else "否",
                next(k for k, v in MODES.items() if v == read.mode),
            ]
        )
    ref = wb.create_sheet(CATALOG_SHEET)
    ref.append(["服务类型编码", "名称", "领域", "计量单位"])
    types = sorted(catalog.types.values(), key=lambda t: t.sort_order)
    for t in types:
        ref.append([t.code, t.name_zh, t.domain_code, t.unit])
    ws.add_data_validation(_list_validation(f"'{CATALOG_SHEET}'!$A$2:$A${len(types) + 1}", 1, "请从服务目录中选择"))
    groups = ",".join(g.value for g in BeneficiaryGroup)
    ws.add_data_validation(_list_validation(f'"{groups}"', 5, "请选择受益群体"))
    ws.add_data_validation(_list_validation('"1,2,3,4"', 7, "1 低 … 4 紧急"))
    ws.add_data_validation(_list_validation('"是,否"', 10, "请选择 是 或 否"))
    ws.add_data_validation(_list_validation('"输血,造血"', 11, "请选择 输血 或 造血"))
    for column in range(1, len(NEED_COLUMNS) + 1):
        ws.column_dimensions[get_column_letter(column)].width = 18
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _refuse(en: str, zh: str, code: str) -> InvalidInput:
    return InvalidInput(en, zh, code=code)


def _open(data: bytes) -> Any:
    if len(data) > MAX_BYTES:
        raise _refuse(f"The file is larger than {MAX_BYTES} bytes", f"文件超过 {MAX_BYTES} 字节", "file_too_large")
    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise _refuse("Not an .xlsx workbook", "不是有效的 .xlsx 工作簿", "not_a_workbook") from None


def _cell_value(column: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if column == "splittable" and isinstance(value, str):
        return YES_NO.get(value.strip(), value)
    if column == "mode" and isinstance(value, str):
        return MODES.get(value.strip(), value)
    return value


def parse_needs(data: bytes, known_types: set[str]) -> list[NeedItem]:
    """Every row of the need sheet as a NeedItem; any bad cell anywhere → InvalidInput listing them all."""
    wb = _open(data)
    if NEED_SHEET not in wb.sheetnames:
        raise _refuse(
            f"The workbook has no sheet named {NEED_SHEET!r}", f"工作簿中没有名为“{NEED_SHEET}”的工作表", "wrong_sheet"
        )
    rows = wb[NEED_SHEET].iter_rows(values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    expected = [h for h, _ in NEED_COLUMNS]
    if header[: len(expected)] != expected:
        raise _refuse(
            "The header row is not the template's; download the template again",
            "表头与模板不一致，请重新下载模板",
            "wrong_header",
        )
    errors, items = ErrorCollector(), []
    for number, row in enumerate(rows, start=2):
        if number > MAX_ROWS + 1:
            raise _refuse(f"At most {MAX_ROWS} rows per upload", f"每次最多上传 {MAX_ROWS} 行", "too_many_rows")
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
            continue
        item = _parse_row(errors, number, row)
        if item is not None and item.service_type not in known_types:
            errors.add(
                f"/{NEED_SHEET}/{number}/A",
                "unknown_service_type",
                f"row {number}: unknown service type {item.service_type!r}",
                f"第 {number} 行：服务类型编码 {item.service_type} 不在服务目录中",
            )
        elif item is not None:
            items.append(item)
    errors.raise_if_any(
        f"{len(errors.errors)} cell(s) invalid; nothing was stored",
        f"{len(errors.errors)} 处单元格有误，未保存任何数据",
    )
    if not items:
        raise _refuse("The sheet has no rows", "工作表中没有数据行", "empty_sheet")
    return items


def _parse_row(errors: ErrorCollector, number: int, row: tuple[Any, ...]) -> NeedItem | None:
    values: dict[str, Any] = {}
    for index, (header, field) in enumerate(NEED_COLUMNS):
        value = row[index] if index < len(row) else None
        where = f"/{NEED_SHEET}/{number}/{get_column_letter(index + 1)}"
        if isinstance(value, str) and value.startswith("="):
            errors.add(
                where,
                "formula",
                f"row {number}, column {header}: formulas are not accepted",
                f"第 {number} 行“{header}”列：不接受公式，请填写数值",
            )
            return None
        if value is not None and value != "":
            values[field] = _cell_value(field, value)
    try:
        return NeedItem.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "window_end"
            index = next((i for i, (_, f) in enumerate(NEED_COLUMNS) if f == field), len(NEED_COLUMNS) - 1)
            header = NEED_COLUMNS[index][0]
            errors.add(
                f"/{NEED_SHEET}/{number}/{get_column_letter(index + 1)}",
                err["type"],
                f"row {number}, column {header}: {err['msg']}",
                f"第 {number} 行“{header}”列：{_zh(err)}",
            )
        return None


def _zh(err: dict[str, Any]) -> str:
    kinds = {
        "missing": "必填",
        "int_parsing": "应为整数",
        "greater_than": "必须大于 0",
        "enum": "取值不在可选范围内",
        "date_parsing": "日期格式应为 YYYY-MM-DD",
        "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
        "bool_parsing": "请填写 是 或 否",
        "string_too_long": "内容过长",
        "value_error": "取值有误",
    }
    return kinds.get(err["type"], "取值有误")
