"""Service catalog (服务目录): domains and the service types under them. Reference data, owned by migrations."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlmodel import Field, SQLModel


class Unit(StrEnum):
    """What a service type is counted in."""

    person = "person"  # 人次
    session = "session"  # 场次
    hour = "hour"  # 小时
    set = "set"  # 套/份
    meal = "meal"  # 餐


UNIT_LABELS: dict[str, tuple[str, str]] = {
    Unit.person: ("人次", "person-times"),
    Unit.session: ("场次", "sessions"),
    Unit.hour: ("小时", "hours"),
    Unit.set: ("套", "sets"),
    Unit.meal: ("餐", "meals"),
}


class ServiceDomain(SQLModel, table=True):
    """A field of work (服务领域), e.g. elderly care 养老服务."""

    __tablename__ = "service_domains"

    code: str = Field(primary_key=True, max_length=40)
    name_zh: str = Field(max_length=40)
    name_en: str = Field(max_length=80)
    sort_order: int = 0


class ServiceType(SQLModel, table=True):
    """A kind of service (服务类型) stations ask for and organizations offer, e.g. free clinic 义诊."""

    __tablename__ = "service_types"

    code: str = Field(primary_key=True, max_length=60)
    domain_code: str = Field(foreign_key="service_domains.code", index=True, max_length=40)
    name_zh: str = Field(max_length=40)
    name_en: str = Field(max_length=80)
    unit: str = Field(max_length=16)
    sort_order: int = 0


class UnitRead(BaseModel):
    code: str
    name_zh: str
    name_en: str


class ServiceTypeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    domain_code: str
    name_zh: str
    name_en: str
    unit: UnitRead


class ServiceDomainRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name_zh: str
    name_en: str
    service_types: list[ServiceTypeRead]
