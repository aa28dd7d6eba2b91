"""The busiest requests answered without FastAPI's per-request machinery: the same use cases, checks and bodies.

Listing needs, reading a proposal, posting a need and accepting a proposal are nearly all of the API's traffic
(bench/LOAD.md). For each, FastAPI spends more CPU than the use case itself: routing, solving the dependency graph
(token, guard, session, paging), validating every query parameter through pydantic, validating the returned model
again, and an exit stack and exception middleware around it all. This middleware sits inside the request-id,
metrics/access-log and body-size middlewares and answers those four requests itself when they are in their
ordinary shape, by calling what the routes call:

- the caller from `deps.principal_for` (token, rate limit) and `deps.require_role` with the route's own roles;
- the use case in `services/`: reads straight from the pool (`Database.fetch`, no session), writes in a session
  from the same factory, committed before the response;
- the body rendered by the route's own response field (`serialize_json`), headers as FastAPI writes them;
- a domain error rendered by the same problem+json handler; `scope["route"]` set to the route, so metrics and
  the access log carry the same route label.

Anything out of the ordinary (a query parameter that needs FastAPI's validation or its 422, a body that does not
validate, a non-JSON body, an export format) is handed to FastAPI untouched before anything has been done, so the
answer is exactly FastAPI's. The OpenAPI document is FastAPI's: the routes stay declared there.
`MATCH_HOT_ROUTES=false` turns this off (every request through FastAPI).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.datastructures import Headers, QueryParams
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import deps, needs, problems, proposals
from service.db.models.common import MAX_ID
from service.db.models.needs import NeedStatus
from service.errors import DomainError
from service.services import needs as need_service
from service.services import proposals as proposal_service
from service.services.common import etag
from service.services.principals import Role

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
_REGION = re.compile(deps.REGION_PATTERN)
_STATUSES = frozenset(NeedStatus)
_MAX_ID_DIGITS = len(str(MAX_ID))  # larger ids go to FastAPI, whose path and query types refuse them (422)


def _roles(route: APIRoute) -> tuple[Role, ...]:
    """The roles of the route's `allow(...)` guard, so the hot path admits exactly whom the route admits."""
    return next(d.call.roles for d in route.dependant.dependencies if hasattr(d.call, "roles"))


def _route(router: Any, path: str, method: str) -> APIRoute:
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path == path and method in route.methods:
            return route
    raise LookupError(f"{method} {path}")


def _digits(text: str) -> int | None:
    """An id the routes' types accept (up to MAX_ID), or None (FastAPI then answers)."""
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_ID_DIGITS):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


class _Delegate(Exception):
    """The request needs FastAPI (its validation errors, a shape the hot path does not take)."""


class HotRoutes:
    """ASGI middleware answering the four busiest requests (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.list_needs = _route(needs.router, "/api/v1/needs", "GET")
        self.create_need = _route(needs.router, "/api/v1/needs", "POST")
        self.get_proposal = _route(proposals.router, "/api/v1/proposals/{proposal_id}", "GET")
        self.accept = _route(proposals.router, "/api/v1/proposals/{proposal_id}/accept", "POST")
        self.readers = _roles(self.list_needs)
        self.editors = _roles(self.create_need)
        self.parties = _roles(self.accept)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._handler(scope) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        await handler(scope, receive, send)

    def _handler(self, scope: Scope) -> Handler | None:
        path: str = scope["path"]
        if not path.startswith("/api/v1/") or scope.get("root_path") or not scope["app"].state.settings.hot_routes:
            return None
        method = scope["method"]
        if path == "/api/v1/needs":
            return self._list_needs if method == "GET" else self._create_need if method == "POST" else None
        if path.startswith("/api/v1/proposals/"):
            rest = path[len("/api/v1/proposals/") :]
            if method == "GET" and _digits(rest) is not None:
                return self._get_proposal
            if method == "POST" and rest.endswith("/accept") and _digits(rest[: -len("/accept")]) is not None:
                return self._accept
        return None

    # --- the four requests ----------------------------------------------------------------------------------------

    async def _list_needs(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = QueryParams(scope["query_string"])
        try:
            filters, limit, cursor = self._need_filters(scope, query)
        except _Delegate:
            await self.app(scope, receive, send)
            return

        async def run(state: Any) -> tuple[bytes, list[tuple[bytes, bytes]], int]:
            actor = deps.require_role(await self._principal(scope, state), self.readers)
            page = await need_service.list_(state.db, actor=actor, **filters, limit=limit, cursor=cursor)
            return self.list_needs.response_field.serialize_json(page), [], 200

        await self._answer(scope, receive, send, self.list_needs, run)

    def _need_filters(self, scope: Scope, query: QueryParams) -> tuple[dict[str, Any], int, str | None]:
        """The list's query parameters as the route would have them, or _Delegate when FastAPI must judge them."""
        settings = scope["app"].state.settings
        region, station, status = query.get("region"), query.get("station_id"), query.get("status")
        limit_text, cursor, format_ = query.get("limit"), query.get("cursor"), query.get("format")
        if region is not None and not _REGION.match(region):
            raise _Delegate
        station_id = None if station is None else _digits(station)
        if station is not None and not station_id:  # not an id, or 0 (the filter's ge=1)
            raise _Delegate
        if status is not None and status not in _STATUSES:
            raise _Delegate
        if format_ not in (None, "json") or (cursor is not None and len(cursor) > deps.CURSOR_MAX_LENGTH):
            raise _Delegate
        limit = None if limit_text is None else _digits(limit_text)
        if limit_text is not None and (limit is None or not 1 <= limit <= deps.PAGE_LIMIT_MAX):
            raise _Delegate
        filters = {
            "region": region,
            "station_id": station_id,
            "domain": query.get("domain"),
            "service_type": query.get("service_type"),
            "status": status,
        }
        return filters, deps.page_size(settings, limit), cursor

    async def _get_proposal(self, scope: Scope, receive: Receive, send: Send) -> None:
        proposal_id = int(scope["path"][len("/api/v1/proposals/") :])

        async def run(state: Any) -> tuple[bytes, list[tuple[bytes, bytes]], int]:
            actor = await self._principal(scope, state)
            read = await proposal_service.get(state.db, actor=actor, proposal_id=proposal_id)
            return self.get_proposal.response_field.serialize_json(read), [], 200

        await self._answer(scope, receive, send, self.get_proposal, run)

    async def _create_need(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        data = self._need_create(scope, body)
        if data is None:
            await self.app(scope, _replay(body, receive), send)
            return

        async def run(state: Any) -> tuple[bytes, list[tuple[bytes, bytes]], int]:
            actor = deps.require_role(await self._principal(scope, state), self.editors)
            async with deps.transaction(state.db) as session:
                need = await need_service.create(session, actor=actor, data=data)
            headers = [(b"etag", etag(need.version).encode()), (b"location", f"/api/v1/needs/{need.id}".encode())]
            return self.create_need.response_field.serialize_json(need), headers, 201

        await self._answer(scope, receive, send, self.create_need, run)

    def _need_create(self, scope: Scope, body: bytes) -> Any:
        """The validated body, or None when FastAPI must answer (not JSON by its content type, invalid)."""
        content_type = Headers(scope=scope).get("content-type")
        if not body or content_type is None or content_type.split(";")[0].strip().lower() != "application/json":
            return None
        try:
            value = json.loads(body)
        except ValueError:
            return None
        data, errors = self.create_need.body_field.validate(value, {}, loc=("body",))
        return None if errors else data

    async def _accept(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body:  # an admin saying which side it answers for: FastAPI validates that body
            await self.app(scope, _replay(body, receive), send)
            return
        proposal_id = int(scope["path"][len("/api/v1/proposals/") : -len("/accept")])

        async def run(state: Any) -> tuple[bytes, list[tuple[bytes, bytes]], int]:
            actor = deps.require_role(await self._principal(scope, state), self.parties)
            async with deps.transaction(state.db) as session:
                read = await proposal_service.accept(session, actor=actor, proposal_id=proposal_id, side=None)
            return self.accept.response_field.serialize_json(read), [], 200

        await self._answer(scope, receive, send, self.accept, run)

    # --- shared -----------------------------------------------------------------------------------------------------

    async def _principal(self, scope: Scope, state: Any) -> Any:
        """As `deps.authenticate`: the route's bearer scheme, then the caller it names."""
        credentials = await deps.bearer(HTTPConnection(scope))
        request_id = scope.get("state", {}).get("request_id")
        return await deps.principal_for(state, None if credentials is None else credentials.credentials, request_id)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: APIRoute,
        run: Callable[[Any], Awaitable[tuple[bytes, list[tuple[bytes, bytes]], int]]],
    ) -> None:
        scope["route"] = route  # the route label of metrics and the access log, as FastAPI sets it
        try:
            body, extra, status = await run(scope["app"].state)
        except DomainError as exc:
            response = await problems.domain_problem(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json"), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for FastAPI after the hot path read the body: the body once, then the connection's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
