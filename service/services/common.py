"""Helpers every use case shares: paging by cursor, optimistic versions, loading or 404."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable
from operator import attrgetter, itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.reads import fetch_mappings
from service.db.session import Database
from service.errors import Conflict, ErrorCollector, FieldError, InvalidInput, NotFound, StaleVersion, VersionRequired


def encode_cursor(last_id: int) -> str:
    """An opaque cursor that resumes after `last_id`."""
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor resumes after; a forged or damaged cursor is a 422, not a 500."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        if not isinstance(after, int) or after < 0:
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "The cursor is not one this service issued",
            "分页游标无效",
            errors=[FieldError("query:cursor", "invalid_cursor", "invalid cursor", "分页游标无效")],
        ) from None


def _ordered_page(stmt: sa.Select[Any], id_column: Any, *, limit: int, cursor: str | None) -> sa.Select[Any]:
    """`stmt` after the cursor in id order, one row more than the page (to know whether another page follows)."""
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(id_column > after)
    return stmt.order_by(id_column).limit(limit + 1)


def _cut_page(
    rows: list[Any], limit: int, last_id: Callable[[Any], int] = attrgetter("id")
) -> tuple[list[Any], str | None]:
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(last_id(rows[-1]))
    return rows, None


async def fetch_page(
    session: AsyncSession, stmt: sa.Select[Any], id_column: Any, *, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """Rows of `stmt` after the cursor in id order, and the cursor of the next page."""
    page = _ordered_page(stmt, id_column, limit=limit, cursor=cursor)
    return _cut_page(list((await session.scalars(page)).unique()), limit)


def paged(stmt: sa.Select[Any], id_column: Any, *, after: bool) -> sa.Select[Any]:
    """A prebuilt list statement in id order, bound to `after` (if resuming) and `page_size` (the limit + 1)."""
    if after:
        stmt = stmt.where(id_column > sa.bindparam("after", type_=sa.Integer))
    return stmt.order_by(id_column).limit(sa.bindparam("page_size", type_=sa.Integer))


# Where the hottest reads come from: a read session (FastAPI's routes), or the database itself, whose pool the hot
# routes (api/hot.py) read from without a session (`Database.fetch`).
Reads = AsyncSession | Database


async def fetch_rows(source: Reads, stmt: sa.Select[Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a prebuilt select as dicts, through the driver where db.reads can (see `Reads`)."""
    if isinstance(source, Database):
        return await source.fetch(stmt, params)
    return await fetch_mappings(await source.connection(), stmt, params)


async def fetch_prebuilt_rows(
    source: Reads, stmt: sa.Select[Any], params: dict[str, Any], *, limit: int, after: int | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The rows of a statement built by `paged` as dicts (db.reads: through the driver), and the cursor of the next
    page: only the parameters change from one request to the next."""
    params = params | {"page_size": limit + 1} | ({} if after is None else {"after": after})
    rows = await fetch_rows(source, stmt, params)
    return _cut_page(rows, limit, itemgetter("id"))


def parse_if_match(header: str | None) -> int:
    """The version an If-Match header names; writes without one are refused (428)."""
    if header is None:
        raise VersionRequired(
            "Send If-Match with the ETag you read, so that concurrent edits are not lost",
            "请在 If-Match 中带上读取时的 ETag，以免覆盖他人的修改",
        )
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise StaleVersion("If-Match does not name a version of this resource", "If-Match 与该资源的版本不符")
    return int(tag)


def check_version(current: int, expected: int, *, what: str) -> None:
    """Refuse a write based on an older read (412)."""
    if current != expected:
        raise StaleVersion(
            f"The {what} is at version {current}; you sent {expected}. Read it again and retry.",
            f"该数据当前版本为 {current}，您提交的是 {expected}，请重新读取后再修改。",
            extra={"current_version": current},
        )


def etag(version: int) -> str:
    """The strong ETag of a version."""
    return f'"{version}"'


@functools.cache
def _by_id(model: type[Any], *, core: bool, for_update: bool) -> sa.Select[Any]:
    """The load-by-id statement of a model, built once with a bound parameter.

    Building a SQLAlchemy expression (attribute operators, select, where) and computing its cache key cost more CPU
    than the query's round trip; a statement object that is reused keeps its memoized cache key.
    """
    source = model.__table__ if core else model
    columns = model.__table__.c
    stmt = sa.select(source).where(columns.id == sa.bindparam("object_id"))
    if "archived_at" in columns:
        stmt = stmt.where(columns.archived_at.is_(None))
    return stmt.with_for_update() if for_update else stmt


def _not_found(object_id: int, what_en: str, what_zh: str) -> NotFound:
    return NotFound(f"No {what_en} with id {object_id}", f"{what_zh} {object_id} 不存在")


async def get_or_404(
    session: AsyncSession,
    model: type[Any],
    object_id: int,
    *,
    what_en: str,
    what_zh: str,
    for_update: bool = False,
    options: tuple[Any, ...] = (),
) -> Any:
    """Load one row by id or raise 404; archived rows count as absent."""
    stmt = _by_id(model, core=False, for_update=for_update)
    if options:
        stmt = stmt.options(*options)
    obj = (await session.scalars(stmt, {"object_id": object_id})).first()
    if obj is None:
        raise _not_found(object_id, what_en, what_zh)
    return obj


async def get_row_or_404(
    session: AsyncSession, model: type[Any], object_id: int, *, what_en: str, what_zh: str, for_update: bool = False
) -> sa.Row[Any]:
    """Like get_or_404 when the row is only read: one Core row (attribute access like the model), no ORM instance."""
    stmt = _by_id(model, core=True, for_update=for_update)
    row = (await (await session.connection()).execute(stmt, {"object_id": object_id})).first()
    if row is None:
        raise _not_found(object_id, what_en, what_zh)
    return row


async def get_mapping_or_404(
    source: Reads, model: type[Any], object_id: int, *, what_en: str, what_zh: str
) -> dict[str, Any]:
    """Like get_row_or_404 for the hottest reads: the row as a dict, through the driver (db.reads)."""
    rows = await fetch_rows(source, _by_id(model, core=True, for_update=False), {"object_id": object_id})
    if not rows:
        raise _not_found(object_id, what_en, what_zh)
    return rows[0]


def region_prefix_filter(column: Any, prefix: str | None) -> Any:
    """SQL condition: a region code under `prefix` (a county code '420502' or its trailing-zero form '420500')."""
    if not prefix:
        return sa.true()
    return column.like(region_like(prefix))


def region_like(prefix: str) -> str:
    """The LIKE pattern of region_prefix_filter, for statements that bind it as a parameter."""
    from service.reference.regions import prefix_of

    significant = prefix_of(prefix) if len(prefix) == 6 else prefix
    return significant + "%"


def check_window_change(errors: ErrorCollector, current: Any, changes: dict[str, Any]) -> None:
    """A partial update must not leave the record's window reversed (reported on window_end)."""
    from service.db.models.common import check_window

    try:
        check_window(changes.get("window_start", current.window_start), changes.get("window_end", current.window_end))
    except ValueError as exc:
        en, _, zh = str(exc).partition(" / ")
        errors.add("/window_end", "window_order", en, zh)


def refuse_below_committed(new_total: int, committed: int) -> None:
    """Units promised in accepted proposals cannot be edited away (409)."""
    if new_total < committed:
        raise Conflict(
            f"{committed} units are already committed to accepted proposals",
            f"已有 {committed} 个单位被接受的匹配占用，不能低于此数",
            code="below_committed",
            extra={"committed": committed},
        )
