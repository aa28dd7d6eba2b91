"""The busiest reads and the audit and re-match writes go straight to asyncpg with SQL that SQLAlchemy compiled once
(`service.db.reads`): what they read and store is exactly what SQLAlchemy's own execution reads and stores."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from pydantic import BaseModel

from service import demo
from service.db import reads
from service.db.base import utcnow
from service.db.models.audit import AuditEvent
from service.db.models.needs import Need
from service.db.models.offers import Offer
from service.db.models.stations import Station
from service.db.session import Database
from service.services import audit
from service.services.common import paged
from service.services.principals import Principal, Role


class _NeedView(BaseModel):
    title: str
    quantity: int
    window: tuple[date, date]
    tags: list[str]


async def _seeded(backend) -> Database:
    db = Database.from_settings(backend.settings())
    async with db.sessionmaker() as session, session.begin():
        await demo.load(session)  # 宜昌市: stations, organizations, offers, needs and their audit events
    return db


def _typed(rows: list[dict]) -> list[dict]:
    return [{key: (type(value), value) for key, value in row.items()} for row in rows]


async def test_rows_read_through_the_driver_equal_sqlalchemys_in_value_and_type(backend, app) -> None:
    db = await _seeded(backend)
    try:
        async with db.read_sessionmaker() as session:
            conn = await session.connection()
            for model in (Station, Need, Offer, AuditEvent):
                table = model.__table__
                stmt = paged(sa.select(table), table.c.id, after=True)
                params = {"after": 0, "page_size": 1000}
                direct = await reads.fetch_mappings(conn, stmt, params)
                through = [dict(row) for row in (await conn.execute(stmt, params)).mappings()]
                assert direct, model.__name__
                assert _typed(direct) == _typed(through), model.__name__
            if backend.is_postgres:  # the hot tables really take the driver's path there
                assert reads._compile(paged(sa.select(Need.__table__), Need.__table__.c.id, after=True), conn.dialect)
    finally:
        await db.dispose()


async def test_an_audit_event_is_stored_the_same_through_the_driver_or_through_sqlalchemy(backend, app) -> None:
    db = Database.from_settings(backend.settings())
    actor = Principal("夷陵区协调员", Role.coordinator, region="420506", request_id="req-42")
    view = _NeedView(title="独居老人上门探访", quantity=6, window=(date(2026, 3, 1), date(2026, 5, 31)), tags=["养老"])
    event = dict(actor=actor, action="need.update", object_type="need", object_id=7, region_code="420506", after=view)
    try:
        async with db.sessionmaker() as session, session.begin():
            await session.execute(sa.select(1))  # the transaction is open on the server: the driver's path
            await audit.record(session, **event)
        async with db.sessionmaker() as session, session.begin():
            await audit.record(session, **event)  # first statement of its transaction: SQLAlchemy's path
        async with db.sessionmaker() as session:
            rows = (await session.execute(sa.select(AuditEvent.__table__).order_by("id"))).mappings().all()
        first, second = ({k: v for k, v in row.items() if k not in ("id", "occurred_at")} for row in rows)
        assert _typed([first]) == _typed([second])
        assert first["after"] == {
            "title": "独居老人上门探访",
            "quantity": 6,
            "window": ["2026-03-01", "2026-05-31"],
            "tags": ["养老"],
        }
    finally:
        await db.dispose()


async def test_rows_read_from_the_pool_without_a_session_equal_sqlalchemys(backend, app) -> None:
    db = await _seeded(backend)
    try:
        for model in (Station, Need, Offer, AuditEvent):
            table = model.__table__
            stmt = paged(sa.select(table), table.c.id, after=True)
            params = {"after": 0, "page_size": 1000}
            pooled = await db.fetch(stmt, params)
            async with db.read_sessionmaker() as session:
                through = [dict(row) for row in (await session.execute(stmt, params)).mappings()]
            assert pooled, model.__name__
            assert _typed(pooled) == _typed(through), model.__name__
        direct = await reads.fetch_pooled(db.engine, stmt, params)
        assert (direct is not None) == backend.is_postgres  # SQLite reads through a session instead
    finally:
        await db.dispose()


async def test_a_failed_pooled_read_drops_its_connection_and_the_pool_stays_usable(backend, app) -> None:
    if not backend.is_postgres:
        return  # the pooled path is asyncpg's only
    db = Database.from_settings(backend.settings(db_pool_size=1, db_max_overflow=0))
    table = Need.__table__
    failing = sa.select(table).where(
        table.c.id == sa.bindparam("object_id", type_=sa.Integer) / sa.bindparam("zero", type_=sa.Integer)
    )
    try:
        for _ in range(3):  # with one connection in the pool, a connection left checked out would hang here
            try:
                await db.fetch(failing, {"object_id": 1, "zero": 0})
            except Exception as exc:
                assert "division by zero" in str(exc)
            else:
                raise AssertionError("expected the database to refuse the statement")
        assert reads._compile(failing, db.engine.dialect) is not None  # it did take the pooled path
        assert reads._compile(sa.select(table).where(table.c.id == 5), db.engine.dialect) is None
        assert db.engine.pool.checkedout() == 0
        assert await db.fetch(sa.select(table).limit(sa.bindparam("n", type_=sa.Integer)), {"n": 1}) == []
    finally:
        await db.dispose()


async def test_a_need_inserted_through_the_driver_comes_back_as_through_sqlalchemy(backend, app) -> None:
    from service.db.models.needs import NeedItem
    from service.services.needs import _INSERT, _new_need

    db = await _seeded(backend)
    item = NeedItem(
        service_type="elderly_care.home_visit",
        title="独居老人上门探访",
        quantity=6,
        beneficiary_group="elderly_living_alone",
        window_start=date(2026, 3, 1),
        window_end=date(2026, 5, 31),
    )
    values = _new_need(1, item) | {"created_at": utcnow(), "updated_at": utcnow()}
    try:
        async with db.sessionmaker() as session, session.begin():
            await session.execute(sa.select(1))  # the transaction is open on the server: the driver's path
            direct = await reads.insert_returning(session, _INSERT, values)
        async with db.sessionmaker() as session, session.begin():
            through = await reads.insert_returning(session, _INSERT, values)  # first statement: SQLAlchemy's
        assert through["id"] == direct["id"] + 1
        assert _typed([direct | {"id": 0}]) == _typed([through | {"id": 0}])
        async with db.read_sessionmaker() as session:
            stored = (await session.execute(sa.select(Need.__table__).where(Need.id == direct["id"]))).mappings().one()
        assert _typed([dict(stored)]) == _typed([direct])
        if backend.is_postgres:
            assert reads._compile_write(_INSERT, db.engine.dialect, tuple(values)).keys
    finally:
        await db.dispose()
