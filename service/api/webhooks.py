"""Webhooks (通知): stations, organizations and coordinators register URLs for proposal events."""

from __future__ import annotations

from fastapi import APIRouter, status

from service.api.deps import ObjectId, Paging, Session, SettingsDep, allow
from service.api.problems import problem_responses
from service.db.models.common import Page
from service.db.models.webhooks import DeliveryRead, WebhookCreate, WebhookRead
from service.services import webhooks as webhook_service
from service.services.principals import Role

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=problem_responses(401, 403, 429))
Subscriber = allow(Role.admin, Role.coordinator, Role.station, Role.organization)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookRead,
    responses=problem_responses(422),
    summary="Register a URL for proposal events (the signing secret is shown once)",
)
async def subscribe(body: WebhookCreate, session: Session, settings: SettingsDep, actor: Subscriber) -> WebhookRead:
    return await webhook_service.subscribe(session, settings, actor=actor, data=body)


@router.get("", response_model=Page[WebhookRead], summary="Your webhooks")
async def list_webhooks(session: Session, actor: Subscriber, paging: Paging) -> Page[WebhookRead]:
    return await webhook_service.list_(session, actor=actor, limit=paging.limit, cursor=paging.cursor)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404))
async def unsubscribe(webhook_id: ObjectId, session: Session, actor: Subscriber) -> None:
    await webhook_service.unsubscribe(session, actor=actor, webhook_id=webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    responses=problem_responses(404),
    summary="What was sent, when, and how it went",
)
async def list_deliveries(
    webhook_id: ObjectId, session: Session, actor: Subscriber, paging: Paging
) -> Page[DeliveryRead]:
    return await webhook_service.deliveries(
        session, actor=actor, webhook_id=webhook_id, limit=paging.limit, cursor=paging.cursor
    )
