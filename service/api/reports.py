"""Reports for the bureau: monthly dispatch (月调度), quarterly supervision (季督导), year-end ranking (通报表扬)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from service.api import exports
from service.api.deps import AuditReader, RequiredRegion, Session
from service.api.problems import problem_responses
from service.services import reports as report_service

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], responses=problem_responses(401, 403, 429))


@router.get(
    "/monthly-dispatch",
    response_model=report_service.MonthlyDispatch,
    responses={
        **problem_responses(404, 422),
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"},
    },
    summary="月调度: a region's figures for a month as of the 25th",
)
async def monthly_dispatch(
    session: Session,
    actor: AuditReader,
    region: RequiredRegion,
    month: Annotated[str, Query(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")],
    unanswered_days: Annotated[int, Query(ge=1, le=365)] = 7,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> report_service.MonthlyDispatch | Response:
    report = await report_service.monthly_dispatch(
        session, actor=actor, region=region, month=month, unanswered_days=unanswered_days
    )
    if format == "xlsx":
        return exports.attachment(report_service.to_xlsx(report), f"dispatch-{region}-{month}.xlsx")
    if format == "csv":
        return exports.attachment(report_service.to_csv(report), f"dispatch-{region}-{month}.csv")
    return report


@router.get(
    "/quarterly-supervision",
    response_model=report_service.QuarterlySupervision,
    responses=problem_responses(404, 422),
    summary="季督导: per pairing, agreed vs delivered, last activity, rating and flags",
)
async def quarterly_supervision(
    session: Session,
    actor: AuditReader,
    region: RequiredRegion,
    quarter: Annotated[str, Query(pattern=r"^20[0-9]{2}-Q[1-4]$")],
) -> report_service.QuarterlySupervision:
    return await report_service.quarterly_supervision(session, actor=actor, region=region, quarter=quarter)


@router.get(
    "/year-ranking",
    response_model=report_service.YearRanking,
    responses=problem_responses(404, 422),
    summary="年底通报表扬: organizations ranked by a documented score, components shown",
)
async def year_ranking(
    session: Session,
    actor: AuditReader,
    region: RequiredRegion,
    year: Annotated[int, Query(ge=2000, le=2100)],
) -> report_service.YearRanking:
    return await report_service.year_ranking(session, actor=actor, region=region, year=year)
