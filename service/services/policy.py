"""Authorization, in one place (权限): who may see and change which object.

Objects outside a principal's scope are reported as absent (404) so their existence does not leak; visible
objects the principal may not change answer 403. Lists are filtered with the same rules in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service.errors import DomainError, FieldError, NotFound
from service.reference.regions import prefix_of
from service.services.principals import Principal, Role


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title_en = "Not allowed"
    title_zh = "无权操作"


@dataclass(frozen=True, slots=True)
class Ownership:
    """Where an object sits: its region, and the station or organization it belongs to."""

    region_code: str
    station_id: int | None = None
    organization_id: int | None = None


def region_prefix(region: str) -> str:
    """The code prefix a scope region covers ('420500' → '4205')."""
    return prefix_of(region) if len(region) == 6 else region


def in_region(region: str, code: str) -> bool:
    return code.startswith(region_prefix(region))


def enclosing_regions(code: str) -> tuple[str, ...]:
    """The region codes `code` lies in, as scopes are written ('420502001000' → '420000', '420500', '420502',
    '420502001', '420502001000'): `in_region(r, code)` for each, so SQL can match scopes with IN."""
    found = [code[:2] + "0000", code[:4] + "00", code[:6], code[:9], code]
    return tuple(dict.fromkeys(r for r in found if len(r) <= len(code) and in_region(r, code)))


def can_see(principal: Principal, own: Ownership) -> bool:
    match principal.role:
        case Role.admin:
            return True
        case Role.coordinator | Role.auditor:
            return in_region(principal.region or "-", own.region_code)
        case Role.station:
            return own.station_id is not None and own.station_id == principal.station_id
        case Role.organization:
            return own.organization_id is not None and own.organization_id == principal.organization_id
    return False


def can_change(principal: Principal, own: Ownership) -> bool:
    return principal.role != Role.auditor and can_see(principal, own)


def authorize(principal: Principal, own: Ownership, *, write: bool, what_en: str, what_zh: str, object_id: Any) -> None:
    """Raise 404 for an object the principal cannot see, 403 for one it may see but not change."""
    if not can_see(principal, own):
        raise NotFound(f"No {what_en} with id {object_id}", f"{what_zh} {object_id} 不存在")
    if write and not can_change(principal, own):
        raise Forbidden(f"You may read this {what_en} but not change it", f"您可以查看该{what_zh}，但无权修改")


def authorize_new(principal: Principal, own: Ownership, *, what_en: str, what_zh: str) -> None:
    """Creating something: it must fall inside the principal's scope."""
    if not can_change(principal, own):
        raise Forbidden(f"This {what_en} is outside your scope", f"该{what_zh}不在您的管理范围内", code="outside_scope")


def visible(
    principal: Principal, *, region_column: Any, station_column: Any = None, organization_column: Any = None
) -> Any:
    """SQL condition selecting the rows a principal may see."""
    kind, value = visibility(principal)
    return visible_where(
        kind,
        value,
        region_column=region_column,
        station_column=station_column,
        organization_column=organization_column,
    )


def visibility(principal: Principal) -> tuple[str, Any]:
    """What a principal sees, as a kind and the one value the kind's condition compares with.

    Split from `visible` so that a hot list can build its statement once per kind (with a bound parameter in place
    of the value) and reuse it for every caller of that kind.
    """
    match principal.role:
        case Role.admin:
            return "all", None
        case Role.coordinator | Role.auditor:
            return "region", region_prefix(principal.region or "-") + "%"
        case Role.station:
            return "station", principal.station_id
        case Role.organization:
            return "organization", principal.organization_id
    return "none", None


def visible_where(
    kind: str, value: Any, *, region_column: Any, station_column: Any = None, organization_column: Any = None
) -> Any:
    """The condition of `visibility`'s kind; `value` is the value or a bind parameter standing for it."""
    match kind:
        case "all":
            return sa.true()
        case "region":
            return region_column.like(value)
        case "station" if station_column is not None:
            return station_column == value
        case "organization" if organization_column is not None:
            return organization_column == value
    return sa.false()


# Fields only the bureau sets: an organization cannot grade itself or move itself into another region.
BUREAU_ONLY_FIELDS = {"organization": {"rating", "home_region_code"}}


def check_fields(principal: Principal, kind: str, fields: set[str]) -> None:
    """Refuse fields this role may not set (property-level authorization)."""
    if principal.role in (Role.admin, Role.coordinator):
        return
    barred = sorted(fields & BUREAU_ONLY_FIELDS.get(kind, set()))
    if barred:
        raise Forbidden(
            f"Your role may not set: {', '.join(barred)}",
            f"您的角色无权设置：{', '.join(barred)}",
            code="field_not_allowed",
            errors=[
                FieldError(f"/{name}", "field_not_allowed", "set by the bureau only", "仅限民政部门设置")
                for name in barred
            ],
        )
