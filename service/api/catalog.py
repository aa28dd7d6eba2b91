"""Service catalog (服务目录), read-only."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.api import exports
from service.api.deps import Actor, Session
from service.api.problems import problem_responses
from service.db.models.catalog import UNIT_LABELS, ServiceDomainRead, ServiceTypeRead, UnitRead
from service.services import catalog as catalog_service
from service.services import spreadsheets

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"], responses=problem_responses(401, 429))


@router.get("/domains", response_model=list[ServiceDomainRead], summary="Service domains with their types")
async def list_domains(session: Session, actor: Actor) -> list[ServiceDomainRead]:
    return await catalog_service.list_domains(session)


@router.get("/service-types", response_model=list[ServiceTypeRead], summary="Service types")
async def list_service_types(session: Session, actor: Actor, domain: str | None = None) -> list[ServiceTypeRead]:
    return await catalog_service.list_types(session, domain=domain)


@router.get("/service-types/{code}", response_model=ServiceTypeRead, responses=problem_responses(404))
async def get_service_type(code: str, session: Session, actor: Actor) -> ServiceTypeRead:
    return await catalog_service.get_type(session, code)


@router.get("/units", response_model=list[UnitRead], summary="Units services are counted in")
async def list_units(actor: Actor) -> list[UnitRead]:
    return [UnitRead(code=code, name_zh=zh, name_en=en) for code, (zh, en) in UNIT_LABELS.items()]


@router.get("/templates/need-list.xlsx", response_class=Response, summary="The need-list template (需求清单模板)")
async def need_list_template(session: Session, actor: Actor) -> Response:
    body = spreadsheets.need_template(await catalog_service.load(session))
    return exports.attachment(body, "need-list-template.xlsx")


@router.get("/templates/supply-list.xlsx", response_class=Response, summary="The supply-list template (供给清单模板)")
async def supply_list_template(session: Session, actor: Actor) -> Response:
    body = spreadsheets.offer_template(await catalog_service.load(session))
    return exports.attachment(body, "supply-list-template.xlsx")
