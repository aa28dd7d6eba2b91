"""Test harness: every API test runs against SQLite and against PostgreSQL, through the real ASGI app.

Each backend gets a database of its own, built with `alembic upgrade head`. PostgreSQL comes from
MATCH_TEST_DATABASE_URL (default: the local server, user postgres); when it is unreachable the PostgreSQL
half is skipped with a notice, unless MATCH_TEST_REQUIRE_POSTGRES=1 (as in CI), where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from service.app import create_app
from service.db import migrate
from service.db.session import Database
from service.services import tokens
from service.services.principals import Role
from service.settings import Settings, normalise_database_url

PG_ADMIN_URL = normalise_database_url(
    os.environ.get("MATCH_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
)
REQUIRE_PG = os.environ.get("MATCH_TEST_REQUIRE_POSTGRES", "") not in ("", "0", "false")
DATA_TABLES = (
    "activities",
    "webhook_deliveries",
    "webhook_subscriptions",
    "pairings",
    "proposals",
    "match_runs",
    "rematch_requests",
    "audit_events",
    "offer_service_types",
    "offers",
    "needs",
    "organizations",
    "stations",
)
JOB_TABLES = ("procrastinate_events", "procrastinate_periodic_defers", "procrastinate_jobs", "procrastinate_workers")
# The audit trail is append-only by trigger; only the test harness lifts the guard, to start each test empty.
PG_UNGUARD, PG_GUARD = (f"ALTER TABLE audit_events {verb} TRIGGER USER" for verb in ("DISABLE", "ENABLE"))
SQLITE_GUARD = (
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
)
TEST_JWT_SECRET = "test-secret-for-the-jiedui-suite-only-0123456789"
_pg_notice: list[str] = []


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_pg_database() -> str:
    """A fresh, empty PostgreSQL database for this test session; skipped or failed when no server answers."""
    name = f"jiedui_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: {exc!r}"
        if REQUIRE_PG:
            pytest.fail(f"{message} (MATCH_TEST_REQUIRE_POSTGRES is set)", pytrace=False)
        _pg_notice.append(message)
        pytest.skip(f"PostgreSQL half skipped: {message}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Backend:
    """One database the suite runs against."""

    name: str
    url: str

    def settings(self, **overrides: object) -> Settings:
        defaults: dict[str, object] = {
            "jwt_secret": TEST_JWT_SECRET,
            "rate_limit": "100000/minute",
            "in_process_worker": False,  # specs drive the jobs themselves unless they test the worker
            "gc_freeze": False,  # one process builds hundreds of apps; freezing each one's heap would leak
        }
        return Settings(database_url=self.url, load_demo_data=False, **(defaults | overrides))

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgres"


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backend]:
    """A migrated database on each backend, shared by the session's tests (tables are emptied between tests)."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "jiedui.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = await create_pg_database()
    db = Database.from_settings(Settings(database_url=url))
    await migrate.upgrade(db.engine)
    await db.dispose()
    yield Backend(request.param, url)
    if request.param == "postgres":
        await drop_pg_database(url)


async def empty_tables(backend: Backend) -> None:
    db = Database.from_settings(backend.settings())
    async with db.engine.begin() as conn:
        if backend.is_postgres:
            await conn.execute(sa.text(PG_UNGUARD))
            await conn.execute(sa.text(f"TRUNCATE {', '.join(DATA_TABLES + JOB_TABLES)} RESTART IDENTITY CASCADE"))
            await conn.execute(sa.text(PG_GUARD))
        else:
            await conn.execute(sa.text("DROP TRIGGER audit_events_no_delete"))
            for table in DATA_TABLES:
                await conn.execute(sa.text(f"DELETE FROM {table}"))
            await conn.execute(sa.text(SQLITE_GUARD))
    await db.dispose()


@pytest.fixture
async def app(backend: Backend) -> AsyncIterator[object]:
    """The real FastAPI app on the backend, lifespan running; tables are emptied afterwards."""
    application = create_app(backend.settings())
    async with application.router.lifespan_context(application):
        yield application
    await empty_tables(backend)


@pytest.fixture
async def anonymous(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process over ASGI, with no token."""
    async with _http(app) as http:
        yield http


def _http(app: object, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """A client of the app in-process over ASGI."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://jiedui.test", headers=headers)


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client of its own carrying an admin token, for specs about behaviour, not about permissions (it used to be
    the `anonymous` client with the token added, so a test using both sent the admin token from `anonymous` too)."""
    async with _http(app, {"Authorization": f"Bearer {token(app, Role.admin)}"}) as http:
        yield http


def token(app: object, role: Role, scope: str | int | None = None, lifetime_s: int = 600) -> str:
    """A token the app under test accepts."""
    settings = app.state.settings  # type: ignore[attr-defined]
    return tokens.issue(
        settings,
        subject=f"test-{role}-{scope}",
        role=role,
        scope=None if scope is None else str(scope),
        lifetime_s=lifetime_s,
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _pg_notice:
        terminalreporter.write_sep("!", "PostgreSQL half of the suite was SKIPPED", yellow=True)
        for line in _pg_notice:
            terminalreporter.write_line(line)
