"""Request-scoped dependencies: settings, the transaction, the caller, paging and versions."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import limits
from fastapi import Depends, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.api.exports import EXPORT_MAX_ROWS
from service.db.session import Database
from service.errors import RateLimited, Unauthenticated
from service.services.common import etag, parse_if_match
from service.services.policy import Forbidden
from service.services.principals import Principal, Role
from service.services.tokens import TokenError, Verifier
from service.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    """For use cases that are jobs and own their transactions (match runs)."""
    return request.app.state.db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request is the transaction: commit when the handler returns, roll back when it raises.

    Used with scope="function", so the commit happens before the response is sent: a client never sees a 2xx for
    a write that did not commit.
    """
    async with request.app.state.db.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for a read-only request: autocommit, so no BEGIN/COMMIT round trips (see Database)."""
    async with request.app.state.db.read_sessionmaker() as session:
        yield session


async def get_read_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    """The read-session factory, for the busiest reads to open their session in the handler (`async with`).

    A yield dependency (ReadSession) costs FastAPI an exit stack and a shielded cancel scope on every request:
    about 0.1 ms of CPU, a tenth of reading one proposal (bench/LOAD.md).
    """
    return request.app.state.db.read_sessionmaker


class RateLimit:
    """A sliding-window limit per principal, on the storage the settings name (memory, or redis for a fleet).

    The sliding window counter keeps two counters per key and weights the previous window by its overlap: O(1)
    memory and work per hit. The moving window it replaces kept one entry per request (up to the limit) and trimmed
    them in a thread: 29 µs per hit against 5–7 µs (limits 5.8, in-memory storage).
    """

    def __init__(self, settings: Settings) -> None:
        uri = settings.rate_limit_storage
        storage = storage_from_string(uri if uri.startswith("async+") else f"async+{uri}")
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.item = limits.parse(settings.rate_limit)

    async def check(self, key: str) -> None:
        if not await self.limiter.hit(self.item, key):
            stats = await self.limiter.get_window_stats(self.item, key)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(
                f"Rate limit {self.item} exceeded; retry in {retry_after} s",
                f"请求过于频繁（限制 {self.item}），请 {retry_after} 秒后重试",
                headers={"Retry-After": str(retry_after)},
            )


_bearer = HTTPBearer(auto_error=False, description="JWT from `python -m service.cli token` or the bureau's IdP")


def _unauthenticated(reason: str) -> Unauthenticated:
    return Unauthenticated(
        f"Bearer token required ({reason})",
        f"需要有效的访问令牌（{reason}）",
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'},
    )


async def principal_for(state: Any, token: str | None, request_id: str | None) -> Principal:
    """The caller named by a bearer token (None: no usable Authorization header), within its rate limit; `state`
    is the app's. Shared by the `authenticate` dependency and the hot routes (api/hot.py)."""
    if token is None:
        raise _unauthenticated("missing")
    verifier: Verifier = state.verifier
    try:
        if verifier.uses_network:
            principal = await asyncio.to_thread(verifier.verify, token)
        else:
            principal = verifier.verify(token)
    except TokenError as exc:
        raise _unauthenticated(exc.reason) from None
    await state.rate_limit.check(f"{principal.role}:{principal.subject}")
    return principal.with_request(request_id)


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller named by a valid bearer token, within its rate limit."""
    token = None if credentials is None else credentials.credentials
    return await principal_for(request.app.state, token, getattr(request.state, "request_id", None))


def require_role(principal: Principal, roles: tuple[Role, ...]) -> Principal:
    """The principal, if its role is one of `roles`; 403 otherwise."""
    if principal.role not in roles:
        raise Forbidden(
            f"The {principal.role} role cannot do this",
            f"{principal.role} 角色无权执行此操作",
            code="role_not_allowed",
        )
    return principal


def allow(*roles: Role) -> Any:
    """A dependency type admitting only the given roles (403 for the others)."""

    async def guard(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        return require_role(principal, roles)

    guard.roles = roles  # type: ignore[attr-defined]  # for the hot routes, which check the same roles

    guard.__name__ = "allow_" + "_".join(roles)
    return Annotated[Principal, Depends(guard)]


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
ReadSessions = Annotated[async_sessionmaker[AsyncSession], Depends(get_read_sessions)]
Actor = Annotated[Principal, Depends(authenticate)]
# Who may call what (object-level checks follow in the service layer's policy).
BureauStaff = allow(Role.admin, Role.coordinator)
StationSideReader = allow(Role.admin, Role.coordinator, Role.auditor, Role.station)
StationSideEditor = allow(Role.admin, Role.coordinator, Role.station)
OrganizationSideReader = allow(Role.admin, Role.coordinator, Role.auditor, Role.organization)
OrganizationSideEditor = allow(Role.admin, Role.coordinator, Role.organization)
AuditReader = allow(Role.admin, Role.coordinator, Role.auditor)


@dataclass(frozen=True, slots=True)
class PageParams:
    """limit + cursor, with the configured maximum page size."""

    limit: int
    cursor: str | None
    format: str = "json"  # csv / xlsx: a download of up to EXPORT_MAX_ROWS rows instead of a page


# Dependencies are async on purpose: FastAPI runs sync ones in a thread pool, a hop per request.
async def page_params(
    request: Request,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="page size (capped by configuration)")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    format: Annotated[Literal["json", "csv", "xlsx"], Query(description="json page, or a csv/xlsx download")] = "json",
) -> PageParams:
    settings: Settings = request.app.state.settings
    if format != "json":
        return PageParams(EXPORT_MAX_ROWS, cursor, format)
    return PageParams(min(limit or settings.page_size_default, settings.page_size_max), cursor)


Paging = Annotated[PageParams, Depends(page_params)]
IfMatch = Annotated[str | None, Header(description='ETag of the version you read, e.g. "3"')]
REGION_PATTERN = r"^[0-9]{2,12}$"
RegionQuery = Annotated[
    str | None, Query(pattern=REGION_PATTERN, description="region code prefix, e.g. 420500 (a city) or 420502")
]
RequiredRegion = Annotated[str, Query(pattern=REGION_PATTERN)]


async def expected_version(if_match: IfMatch = None) -> int:
    return parse_if_match(if_match)


ExpectedVersion = Annotated[int, Depends(expected_version)]


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)
