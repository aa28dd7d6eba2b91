"""Spreadsheets (Excel 表格): templates for need and supply lists, all-or-nothing import, re-importable export.

Stations and organizations live in spreadsheets. Each template has Chinese headers and drop-down lists (service
types from a catalog sheet, beneficiary groups, yes/no, mode); an upload is read as values only (formulas are
refused, never evaluated), every bad cell is reported by sheet, row and column, and nothing is stored unless every
row is valid.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation
from pydantic import BaseModel, ValidationError

from service.db.models.needs import BeneficiaryGroup, NeedItem, NeedMode, NeedRead
from service.db.models.offers import OfferItem, OfferRead
from service.errors import ErrorCollector, InvalidInput
from service.services.catalog import Catalog

CATALOG_SHEET = "服务目录"
MAX_ROWS = 2000
MAX_BYTES = 2_000_000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
YES_NO = {"是": True, "否": False}
MODES = {"输血": NeedMode.direct_aid, "造血": NeedMode.capacity_building}
CATALOG_CHOICES = "catalog"  # marker: the drop-down lists the catalog sheet's codes


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Column:
    """One template column: its header, the field it fills, its drop-down, and how values cross over."""

    header: str
    field: str
    choices: str | None = None
    read: Callable[[Any], Any] = _same  # cell → field value
    write: Callable[[Any], Any] = _same  # field value → cell


@dataclass(frozen=True)
class SheetSpec:
    """A list's template: sheet name, columns, the item model, and how cells become an item."""

    sheet: str
    columns: tuple[Column, ...]
    model: type[BaseModel]
    assemble: Callable[[dict[str, Any]], dict[str, Any]] = _same
    explode: Callable[[BaseModel], dict[str, Any]] = field(default=lambda read: read.model_dump())
    type_fields: tuple[str, ...] = ()
    field_columns: dict[str, str] = field(default_factory=dict)  # model field → column field, for error positions

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]


def _codes(value: Any) -> list[str] | None:
    if value is None or str(value).strip() == "":
        return None
    return [c for c in re.split(r"[,，、\s]+", str(value).strip()) if c]


def _offer_cells(values: dict[str, Any]) -> dict[str, Any]:
    types = [values.pop(f"service_type_{i}", None) for i in (1, 2, 3)]
    values["service_types"] = [t for t in types if t]
    return values


def _offer_row(read: BaseModel) -> dict[str, Any]:
    data = read.model_dump()
    types = [*data["service_types"], None, None, None]
    return data | {
        "service_type_1": types[0],
        "service_type_2": types[1],
        "service_type_3": types[2],
        "service_area": ",".join(data["service_area"] or []),
    }


NEEDS = SheetSpec(
    sheet="需求清单",
    model=NeedItem,
    columns=(
        Column("服务类型编码", "service_type", CATALOG_CHOICES),
        Column("标题", "title"),
        Column("描述", "description"),
        Column("数量", "quantity"),
        Column("受益群体", "beneficiary_group", '"' + ",".join(g.value for g in BeneficiaryGroup) + '"'),
        Column("受益人数", "beneficiary_count"),
        Column("优先级(1-4)", "priority", '"1,2,3,4"', write=int),
        Column("开始日期", "window_start"),
        Column("结束日期", "window_end"),
        Column(
            "可拆分(是/否)",
            "splittable",
            '"是,否"',
            read=lambda v: YES_NO.get(str(v).strip(), v),
            write=lambda v: "是" if v else "否",
        ),
        Column(
            "方式(输血/造血)",
            "mode",
            '"输血,造血"',
            read=lambda v: MODES.get(str(v).strip(), v),
            write=lambda v: next(k for k, m in MODES.items() if m == v),
        ),
    ),
    type_fields=("service_type",),
)
OFFERS = SheetSpec(
    sheet="供给清单",
    model=OfferItem,
    columns=(
        Column("服务类型1", "service_type_1", CATALOG_CHOICES),
        Column("服务类型2(可空)", "service_type_2", CATALOG_CHOICES),
        Column("服务类型3(可空)", "service_type_3", CATALOG_CHOICES),
        Column("标题", "title"),
        Column("描述", "description"),
        Column("月服务量", "capacity"),
        Column("服务范围(区划代码，逗号分隔，可空)", "service_area", read=_codes),
        Column("开始日期", "window_start"),
        Column("结束日期", "window_end"),
    ),
    assemble=_offer_cells,
    explode=_offer_row,
    type_fields=("service_types",),
    field_columns={"service_types": "service_type_1"},
)
# kept for callers that name the need sheet directly
NEED_SHEET, NEED_COLUMNS = NEEDS.sheet, [(c.header, c.field) for c in NEEDS.columns]


def _list_validation(formula: str, column: int, prompt: str) -> DataValidation:
    dv = DataValidation(
        type="list", formula1=formula, allow_blank=True, showErrorMessage=True, errorTitle="输入有误", error=prompt
    )
    letter = get_column_letter(column)
    dv.add(f"{letter}2:{letter}{MAX_ROWS + 1}")
    return dv


def template(spec: SheetSpec, catalog: Catalog, rows: list[BaseModel] | None = None) -> bytes:
    """The list's workbook: headers, drop-downs, the catalog on a second sheet, and optionally rows to export."""
    wb = Workbook()
    ws = wb.active
    ws.title = spec.sheet
    ws.append(spec.headers)
    for read in rows or []:
        data = spec.explode(read)
        ws.append([c.write(data.get(c.field)) if data.get(c.field) is not None else None for c in spec.columns])
    ref = wb.create_sheet(CATALOG_SHEET)
    ref.append(["服务类型编码", "名称", "领域", "计量单位"])
    types = sorted(catalog.types.values(), key=lambda t: t.sort_order)
    for t in types:
        ref.append([t.code, t.name_zh, t.domain_code, t.unit])
    for index, column in enumerate(spec.columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = 18
        if column.choices == CATALOG_CHOICES:
            ws.add_data_validation(
                _list_validation(f"'{CATALOG_SHEET}'!$A$2:$A${len(types) + 1}", index, "请从服务目录中选择")
            )
        elif column.choices:
            ws.add_data_validation(_list_validation(column.choices, index, f"请从下拉列表中选择“{column.header}”"))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def need_template(catalog: Catalog, rows: list[NeedRead] | None = None) -> bytes:
    return template(NEEDS, catalog, rows)


def offer_template(catalog: Catalog, rows: list[OfferRead] | None = None) -> bytes:
    return template(OFFERS, catalog, rows)


def _refuse(en: str, zh: str, code: str) -> InvalidInput:
    return InvalidInput(en, zh, code=code)


def _open(data: bytes) -> Any:
    if len(data) > MAX_BYTES:
        raise _refuse(f"The file is larger than {MAX_BYTES} bytes", f"文件超过 {MAX_BYTES} 字节", "file_too_large")
    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise _refuse("Not an .xlsx workbook", "不是有效的 .xlsx 工作簿", "not_a_workbook") from None


def parse(spec: SheetSpec, data: bytes, known_types: set[str]) -> list[BaseModel]:
    """Every row of the list's sheet as an item; any bad cell anywhere → InvalidInput listing them all."""
    wb = _open(data)
    if spec.sheet not in wb.sheetnames:
        raise _refuse(
            f"The workbook has no sheet named {spec.sheet!r}", f"工作簿中没有名为“{spec.sheet}”的工作表", "wrong_sheet"
        )
    rows = wb[spec.sheet].iter_rows(values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    if header[: len(spec.columns)] != spec.headers:
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
        item = _parse_row(spec, errors, number, row)
        if item is not None and _types_known(spec, errors, number, item, known_types):
            items.append(item)
    errors.raise_if_any(
        f"{len(errors.errors)} cell(s) invalid; nothing was stored",
        f"{len(errors.errors)} 处单元格有误，未保存任何数据",
    )
    if not items:
        raise _refuse("The sheet has no rows", "工作表中没有数据行", "empty_sheet")
    return items


def parse_needs(data: bytes, known_types: set[str]) -> list[NeedItem]:
    return parse(NEEDS, data, known_types)  # type: ignore[return-value]


def parse_offers(data: bytes, known_types: set[str]) -> list[OfferItem]:
    return parse(OFFERS, data, known_types)  # type: ignore[return-value]


def _cell_of(spec: SheetSpec, model_field: str) -> tuple[str, str]:
    """(column letter, header) where a model field's value was typed."""
    name = spec.field_columns.get(model_field, model_field)
    index = next((i for i, c in enumerate(spec.columns) if c.field == name), len(spec.columns) - 1)
    return get_column_letter(index + 1), spec.columns[index].header


def _types_known(spec: SheetSpec, errors: ErrorCollector, number: int, item: BaseModel, known: set[str]) -> bool:
    ok = True
    for name in spec.type_fields:
        value = getattr(item, name)
        for code in value if isinstance(value, list) else [value]:
            if code not in known:
                letter, _ = _cell_of(spec, name)
                errors.add(
                    f"/{spec.sheet}/{number}/{letter}",
                    "unknown_service_type",
                    f"row {number}: unknown service type {code!r}",
                    f"第 {number} 行：服务类型编码 {code} 不在服务目录中",
                )
                ok = False
    return ok


def _parse_row(spec: SheetSpec, errors: ErrorCollector, number: int, row: tuple[Any, ...]) -> BaseModel | None:
    values: dict[str, Any] = {}
    for index, column in enumerate(spec.columns):
        value = row[index] if index < len(row) else None
        if isinstance(value, str) and value.startswith("="):
            errors.add(
                f"/{spec.sheet}/{number}/{get_column_letter(index + 1)}",
                "formula",
                f"row {number}, column {column.header}: formulas are not accepted",
                f"第 {number} 行“{column.header}”列：不接受公式，请填写数值",
            )
            return None
        if isinstance(value, datetime):
            value = value.date()
        if value is not None and value != "":
            values[column.field] = column.read(value)
    try:
        return spec.model.model_validate(spec.assemble(values))
    except ValidationError as exc:
        for err in exc.errors():
            letter, header = _cell_of(spec, str(err["loc"][0]) if err["loc"] else "window_end")
            errors.add(
                f"/{spec.sheet}/{number}/{letter}",
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
        "too_short": "至少填写一项",
        "string_pattern_mismatch": "格式不正确",
        "value_error": "取值有误",
    }
    return kinds.get(err["type"], "取值有误")
