"""Run the real app for one test step, for tests that need an app on settings of their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from service.app import create_app
from service.services import tokens
from service.services.principals import Role
from service.settings import Settings

T = TypeVar("T")


async def with_client(settings: Settings, action: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """Start the app (lifespan included) on `settings`, run `action` with a client, stop the app."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    admin = tokens.issue(settings, subject="test-admin", role=Role.admin, scope=None, lifetime_s=600)
    headers = {"Authorization": f"Bearer {admin}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as http,
    ):
        return await action(http)
