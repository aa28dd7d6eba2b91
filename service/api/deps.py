"""Request-scoped dependencies: settings, the transaction, the caller, paging and versions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from service.services.common import etag, parse_if_match
from service.services.principals import Principal
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


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


async def get_principal() -> Principal:
    """The caller. Authentication replaces this with token verification."""
    return Principal.local_operator()


SettingsDep = Annotated[Settings, Depends(get_settings)]
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
Actor = Annotated[Principal, Depends(get_principal)]


class PageParams:
    """limit + cursor, with the configured maximum page size."""

    def __init__(
        self,
        request: Request,
        limit: Annotated[int | None, Query(ge=1, le=1000, description="page size (capped by configuration)")] = None,
        cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    ) -> None:
        settings: Settings = request.app.state.settings
        self.limit = min(limit or settings.page_size_default, settings.page_size_max)
        self.cursor = cursor


Paging = Annotated[PageParams, Depends()]
IfMatch = Annotated[str | None, Header(description='ETag of the version you read, e.g. "3"')]
RegionQuery = Annotated[
    str | None, Query(pattern=r"^[0-9]{2,12}$", description="region code prefix, e.g. 420500 (a city) or 420502")
]


def expected_version(if_match: IfMatch = None) -> int:
    return parse_if_match(if_match)


ExpectedVersion = Annotated[int, Depends(expected_version)]


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)
