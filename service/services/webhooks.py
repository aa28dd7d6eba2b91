"""Webhooks (通知): subscribe, emit events into an outbox with the change, deliver signed POSTs with backoff.

Signature: header `X-Jiedui-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. Receivers
recompute it and refuse a timestamp older than a few minutes, which stops replays.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models.common import Page
from service.db.models.webhooks import (
    DeliveryRead,
    DeliveryStatus,
    Owner,
    WebhookCreate,
    WebhookDelivery,
    WebhookRead,
    WebhookSubscription,
)
from service.db.reads import insert_in_transaction
from service.db.session import Database
from service.errors import ErrorCollector, NotFound
from service.services import audit, policy
from service.services.common import fetch_page
from service.services.principals import Principal, Role
from service.settings import Settings

log = logging.getLogger(__name__)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance_s: int = 300) -> bool:
    """What a receiver does: check the MAC and refuse stale timestamps."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance_s and hmac.compare_digest(expected, parts.get("v1", ""))


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified


async def check_target(url: str, *, allow_private: bool) -> str | None:
    """Why a URL may not receive webhooks (server-side request forgery guard), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "only http(s) URLs with a host"
    if parts.scheme == "http" and not allow_private:
        return "https is required"
    if allow_private:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError:
        return "the host name does not resolve"
    if any(_blocked(info[4][0]) for info in infos):
        return "loopback, private and link-local addresses are not allowed"
    return None


def _read(sub: WebhookSubscription) -> WebhookRead:
    """The public view: the secret is never shown again after creation."""
    return WebhookRead.model_validate(sub).model_copy(update={"secret": None})


def _owner(actor: Principal, region: str | None) -> tuple[Owner, int | None, str]:
    if actor.role == Role.station:
        return Owner.station, actor.station_id, ""
    if actor.role == Role.organization:
        return Owner.organization, actor.organization_id, ""
    scope = region or actor.region
    if not scope:
        raise policy.Forbidden("Say which region to follow", "请指定关注的区域", code="region_required")
    policy.authorize_new(actor, policy.Ownership(region_code=scope), what_en="region", what_zh="区域")
    return Owner.region, None, scope


async def subscribe(session: AsyncSession, settings: Settings, *, actor: Principal, data: WebhookCreate) -> WebhookRead:
    """Register a URL; the secret is returned once."""
    errors = ErrorCollector()
    why = await check_target(str(data.url), allow_private=settings.webhook_allow_private)
    if why:
        errors.add("/url", "url_not_allowed", why, "不允许的回调地址（仅限公网 https 地址）")
    errors.raise_if_any()
    owner, owner_id, region = _owner(actor, data.region_code)
    sub = WebhookSubscription(
        owner_type=owner,
        owner_id=owner_id,
        region_code=region,
        url=str(data.url),
        secret=secrets.token_urlsafe(32),
        created_by=actor.subject,
    )
    session.add(sub)
    await session.flush()
    read = _read(sub)
    await audit.record(
        session,
        actor=actor,
        action="create",
        object_type="webhook",
        object_id=sub.id,
        region_code=region or "",
        after=read,
    )
    return read.model_copy(update={"secret": sub.secret})


def _mine(actor: Principal) -> Any:
    match actor.role:
        case Role.admin:
            return sa.true()
        case Role.station:
            return sa.and_(
                WebhookSubscription.owner_type == Owner.station, WebhookSubscription.owner_id == actor.station_id
            )
        case Role.organization:
            return sa.and_(
                WebhookSubscription.owner_type == Owner.organization,
                WebhookSubscription.owner_id == actor.organization_id,
            )
    return sa.and_(
        WebhookSubscription.owner_type == Owner.region,
        WebhookSubscription.region_code.like(policy.region_prefix(actor.region or "-") + "%"),
    )


async def _load(session: AsyncSession, actor: Principal, webhook_id: int) -> WebhookSubscription:
    sub = await session.scalar(sa.select(WebhookSubscription).where(WebhookSubscription.id == webhook_id, _mine(actor)))
    if sub is None:
        raise NotFound(f"No webhook with id {webhook_id}", f"回调 {webhook_id} 不存在")
    return sub


async def list_(session: AsyncSession, *, actor: Principal, limit: int, cursor: str | None) -> Page[WebhookRead]:
    stmt = sa.select(WebhookSubscription).where(_mine(actor), WebhookSubscription.active.is_(True))
    rows, next_cursor = await fetch_page(session, stmt, WebhookSubscription.id, limit=limit, cursor=cursor)
    return Page[WebhookRead](items=[_read(r) for r in rows], next_cursor=next_cursor, limit=limit)


async def unsubscribe(session: AsyncSession, *, actor: Principal, webhook_id: int) -> None:
    sub = await _load(session, actor, webhook_id)
    sub.active = False
    await audit.record(
        session,
        actor=actor,
        action="delete",
        object_type="webhook",
        object_id=sub.id,
        region_code=sub.region_code,
        before=_read(sub),
    )


async def deliveries(
    session: AsyncSession, *, actor: Principal, webhook_id: int, limit: int, cursor: str | None
) -> Page[DeliveryRead]:
    await _load(session, actor, webhook_id)
    stmt = sa.select(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id)
    rows, next_cursor = await fetch_page(session, stmt, WebhookDelivery.id, limit=limit, cursor=cursor)
    return Page[DeliveryRead](
        items=[DeliveryRead.model_validate(r) for r in rows], next_cursor=next_cursor, limit=limit
    )


def _payload(event: str, p: Any) -> dict[str, Any]:
    return {
        "event": event,
        "occurred_at": utcnow().isoformat(),
        "proposal": {
            "id": p.id,
            "run_id": p.run_id,
            "need_id": p.need_id,
            "offer_id": p.offer_id,
            "station_id": p.station_id,
            "organization_id": p.organization_id,
            "quantity": p.quantity,
            "status": p.status,
            "station_answer": p.station_answer,
            "organization_answer": p.organization_answer,
        },
    }


async def emit_many(session: AsyncSession, event: str, proposals: Sequence[Any], *, to: tuple[str, ...]) -> int:
    """`emit` for many proposals at once (a run's new proposals, thousands for a province; `Proposal` rows or records
    with the same attributes): the active subscriptions are read once and the deliveries written in one batch,
    instead of one INSERT … SELECT per proposal."""
    if not proposals:
        return 0
    subs = (
        await session.execute(
            sa.select(
                WebhookSubscription.id,
                WebhookSubscription.owner_type,
                WebhookSubscription.owner_id,
                WebhookSubscription.region_code,
            ).where(WebhookSubscription.active.is_(True))
        )
    ).all()
    owned: dict[tuple[str, int | None], list[int]] = {}
    regional: list[tuple[int, str]] = []
    for sub_id, owner_type, owner_id, region_code in subs:
        owned.setdefault((owner_type, owner_id), []).append(sub_id)
        if owner_type == Owner.region:
            regional.append((sub_id, region_code))
    rows: list[dict[str, Any]] = []
    for p in proposals:
        # The same subscribers as `emit`'s OR of conditions: each subscription once per proposal.
        ids: set[int] = set()
        if "station" in to:
            ids.update(owned.get((Owner.station, p.station_id), ()))
        if "organization" in to:
            ids.update(owned.get((Owner.organization, p.organization_id), ()))
        if "region" in to:
            ids.update(sub_id for sub_id, code in regional if policy.in_region(code, p.region_code))
        if ids:
            payload = _payload(event, p)
            rows.extend({"subscription_id": i, "event_type": event, "payload": payload} for i in sorted(ids))
    if rows:
        await session.execute(sa.insert(WebhookDelivery.__table__), rows)
    return len(rows)


async def emit(session: AsyncSession, event: str, p: Any, *, to: tuple[str, ...]) -> None:
    """Queue `event` about a proposal (a `Proposal`, or its `ProposalRead`) for its station's, its organization's and
    its region's subscribers."""
    now = utcnow()
    params: dict[str, Any] = {
        "event_type": event,
        "payload": _payload(event, p),
        "status": DeliveryStatus.pending,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }
    if "station" in to:
        params["station_id"] = p.station_id
    if "organization" in to:
        params["organization_id"] = p.organization_id
    if "region" in to:
        regions = policy.enclosing_regions(p.region_code)
        params |= {f"region_{i}": regions[min(i, len(regions) - 1)] for i in range(_REGION_SLOTS)}
    await insert_in_transaction(session, _emit_statement(to), params)


# A region code lies in at most five scopes (province, city, county, township, itself: policy.enclosing_regions);
# the IN list has that many parameters, the last code repeated to fill it, so the statement has no expanding
# parameter and can go straight to the driver (db.reads) like the audit row.
_REGION_SLOTS = 5


@functools.cache
def _emit_statement(to: tuple[str, ...]) -> sa.Insert:
    """emit's INSERT … SELECT for one set of audiences, built once with its values as bound parameters (an
    expression built per answer cost more CPU than its round trip).

    One INSERT … SELECT: a delivery per matching subscription without reading the subscriptions back first (one
    round trip on every answer to a proposal instead of two).
    """
    who = []
    if "station" in to:
        who.append(
            sa.and_(
                WebhookSubscription.owner_type == Owner.station,
                WebhookSubscription.owner_id == sa.bindparam("station_id"),
            )
        )
    if "organization" in to:
        who.append(
            sa.and_(
                WebhookSubscription.owner_type == Owner.organization,
                WebhookSubscription.owner_id == sa.bindparam("organization_id"),
            )
        )
    if "region" in to:
        # a region subscriber hears about proposals under its region (a city's 420500 covers 4205…)
        who.append(
            sa.and_(
                WebhookSubscription.owner_type == Owner.region,
                WebhookSubscription.region_code.in_([sa.bindparam(f"region_{i}") for i in range(_REGION_SLOTS)]),
            )
        )
    deliveries = WebhookDelivery.__table__
    # The columns' Python-side defaults (status, attempts, the two timestamps) come as parameters too, so nothing is
    # computed by SQLAlchemy at execution.
    given = ("event_type", "payload", "status", "attempts", "created_at", "next_attempt_at")
    subscribers = sa.select(
        WebhookSubscription.id, *(sa.bindparam(name, type_=deliveries.c[name].type) for name in given)
    ).where(WebhookSubscription.active.is_(True), sa.or_(*who))
    return sa.insert(deliveries).from_select(
        [deliveries.c.subscription_id, *(deliveries.c[name] for name in given)], subscribers
    )


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2**attempts * 5, 3600))


async def _post(
    client: httpx.AsyncClient, sub: WebhookSubscription, delivery: WebhookDelivery, settings: Settings
) -> tuple[int | None, str | None]:
    why = await check_target(sub.url, allow_private=settings.webhook_allow_private)  # DNS may have changed
    if why:
        return None, why
    body = json.dumps({"delivery_id": delivery.id, **delivery.payload}, ensure_ascii=False).encode()
    headers = {
        "content-type": "application/json",
        "x-jiedui-event": delivery.event_type,
        "x-jiedui-delivery": str(delivery.id),
        "x-jiedui-signature": sign(sub.secret, int(time.time()), body),
    }
    try:
        response = await client.post(sub.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}"
    return response.status_code, None if response.is_success else f"HTTP {response.status_code}"


async def dispatch(db: Database, settings: Settings, *, now: datetime | None = None, batch: int = 100) -> int:
    """Send due deliveries; failures are retried with exponential backoff until the attempt limit."""
    now = now or utcnow()
    async with db.sessionmaker() as session:
        due = (
            await session.execute(
                sa.select(WebhookDelivery, WebhookSubscription)
                .join(WebhookSubscription)
                .where(WebhookDelivery.status == DeliveryStatus.pending, WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.id)
                .limit(batch)
            )
        ).all()
    sent = 0
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False) as client:
        for delivery, sub in due:
            code, error = await _post(client, sub, delivery, settings)
            async with db.sessionmaker() as session, session.begin():
                row = await session.get_one(WebhookDelivery, delivery.id, with_for_update=True)
                row.attempts, row.last_status_code, row.last_error = row.attempts + 1, code, error
                if error is None:
                    row.status, row.delivered_at = DeliveryStatus.delivered, utcnow()
                    sent += 1
                elif row.attempts >= settings.webhook_max_attempts:
                    row.status = DeliveryStatus.failed
                else:
                    row.next_attempt_at = utcnow() + _backoff(row.attempts)
    return sent
