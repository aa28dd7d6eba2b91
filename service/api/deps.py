"""Request-scoped dependencies: settings, the transaction, the caller, paging and versions."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import limits
from fastapi import Depends, Header, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.api.exports import EXPORT_MAX_ROWS
from service.db.models.common import MAX_ID
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


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits when the block ends and rolls back when it raises."""
    async with db.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request is the transaction: commit when the handler returns, roll back when it raises.

    Used with scope="function", so the commit happens before the response is sent: a client never sees a 2xx for
    a write that did not commit.
    """
    async with transaction(request.app.state.db) as session:
        yield session


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
    them in a thread: 29 µs per hit against 5–7 µs (limits 5.8, in-memory storage). On `memory://` the same counter
    is kept by `LocalWindows` (limits' in-memory storage starts an expiry task on every hit).
    """

    def __init__(self, settings: Settings) -> None:
        uri = settings.rate_limit_storage
        self.item = limits.parse(settings.rate_limit)
        self.local = LocalWindows(self.item) if uri.removeprefix("async+").startswith("memory://") else None
        if self.local is None:
            storage = storage_from_string(uri if uri.startswith("async+") else f"async+{uri}")
            self.limiter = SlidingWindowCounterRateLimiter(storage)

    async def _hit(self, key: str) -> float | None:
        """None if the hit is within the limit, else the time the window next frees a request."""
        if self.local is not None:
            return self.local.hit(key, time.time())
        if await self.limiter.hit(self.item, key):
            return None
        return (await self.limiter.get_window_stats(self.item, key)).reset_time

    async def check(self, key: str) -> None:
        reset_time = await self._hit(key)
        if reset_time is not None:
            retry_after = max(1, math.ceil(reset_time - time.time()))
            raise RateLimited(
                f"Rate limit {self.item} exceeded; retry in {retry_after} s",
                f"请求过于频繁（限制 {self.item}），请 {retry_after} 秒后重试",
                headers={"Retry-After": str(retry_after)},
            )


class LocalWindows:
    """limits' sliding window counter (SlidingWindowCounterRateLimiter over its async MemoryStorage, limits 5.8) for
    one process, with the same arithmetic: a counter per key and window of `expiry` seconds, living twice the window
    from its first hit; a hit is refused when floor(previous × its remaining share of the window + current) plus the
    hit exceeds the limit; the reset time is as `get_window_stats` computes it. Expired counters are swept at most
    once per window instead of by a task started on every hit.
    """

    def __init__(self, item: limits.RateLimitItem) -> None:
        self.amount, self.expiry = item.amount, item.get_expiry()
        self.counters: dict[tuple[str, int], tuple[int, float]] = {}  # (key, window) → (count, expires at)
        self.swept = 0.0

    def _count(self, key: tuple[str, int], now: float) -> int:
        hit = self.counters.get(key)
        if hit is None:
            return 0
        if hit[1] <= now:
            del self.counters[key]
            return 0
        return hit[0]

    def _window(self, key: str, now: float) -> tuple[int, float, tuple[str, int], int]:
        """The previous window's count and remaining time, the current window's key and count (as limits keys them)."""
        expiry = self.expiry
        previous_key, current_key = (key, int((now - expiry) / expiry)), (key, int(now / expiry))
        previous, current = self._count(previous_key, now), self._count(current_key, now)
        previous_ttl = 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
        return previous, previous_ttl, current_key, current

    def hit(self, key: str, now: float) -> float | None:
        """Count one hit at `now`: None if allowed, else the reset time (`WindowStats.reset_time`)."""
        if now - self.swept > self.expiry:
            self.swept = now
            self.counters = {k: v for k, v in self.counters.items() if v[1] > now}
        previous, previous_ttl, current_key, current = self._window(key, now)
        if math.floor(previous * previous_ttl / self.expiry + current) + 1 > self.amount:
            return self._reset_time(previous, previous_ttl, current, now)
        expires = self.counters[current_key][1] if current else now + 2 * self.expiry
        self.counters[current_key] = (current + 1, expires)
        return None

    def _reset_time(self, previous: int, previous_ttl: float, current: int, now: float) -> float:
        if not (previous or current):
            return now
        expiry = self.expiry
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        previous_reset_in = previous_ttl % (expiry / previous) if previous else math.inf
        current_reset_in = current_ttl % expiry if current else math.inf
        return now + min(previous_reset_in, current_reset_in)


bearer = HTTPBearer(auto_error=False, description="JWT from `python -m service.cli token` or the bureau's IdP")


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
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
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

    guard.roles = roles  # type: ignore[attr-defined]  # for the hot routes, which read them off the route

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


PAGE_LIMIT_MAX = 1000  # the largest `limit` a request may ask for (configuration caps the page further)
CURSOR_MAX_LENGTH = 200


def page_size(settings: Settings, limit: int | None) -> int:
    """The rows of a page: the asked `limit`, or the default, within the configured maximum."""
    return min(limit or settings.page_size_default, settings.page_size_max)


# Dependencies are async on purpose: FastAPI runs sync ones in a thread pool, a hop per request.
async def page_params(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, le=PAGE_LIMIT_MAX, description="page size (capped by configuration)")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=CURSOR_MAX_LENGTH, description="next_cursor of the previous page")
    ] = None,
    format: Annotated[Literal["json", "csv", "xlsx"], Query(description="json page, or a csv/xlsx download")] = "json",
) -> PageParams:
    if format != "json":
        return PageParams(EXPORT_MAX_ROWS, cursor, format)
    return PageParams(page_size(request.app.state.settings, limit), cursor)


Paging = Annotated[PageParams, Depends(page_params)]
IfMatch = Annotated[str | None, Header(description='ETag of the version you read, e.g. "3"')]
REGION_PATTERN = r"^[0-9]{2,12}$"
RegionQuery = Annotated[
    str | None, Query(pattern=REGION_PATTERN, description="region code prefix, e.g. 420500 (a city) or 420502")
]
RequiredRegion = Annotated[str, Query(pattern=REGION_PATTERN)]
# An object's id in a path, or a filter by id: a number beyond an INTEGER id column (MAX_ID) names no row (422, not a
# driver's overflow).
ObjectId = Annotated[int, Path(le=MAX_ID)]
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]


async def expected_version(if_match: IfMatch = None) -> int:
    return parse_if_match(if_match)


ExpectedVersion = Annotated[int, Depends(expected_version)]


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)
