"""Command line: `jiedui serve | migrate | demo` (run as `python -m service.cli …`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from service.db import migrate
from service.db.session import Database
from service.settings import Settings, get_settings


async def _migrate(settings: Settings) -> None:
    db = Database.from_settings(settings)
    try:
        await migrate.upgrade(db.engine)
    finally:
        await db.dispose()


async def _load_demo_if_empty(settings: Settings) -> dict[str, int] | None:
    from service import demo

    db = Database.from_settings(settings)
    try:
        async with db.sessionmaker() as session, session.begin():
            if not await demo.is_empty(session):
                return None
            return await demo.load(session)
    finally:
        await db.dispose()


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def cmd_migrate(settings: Settings) -> None:
    asyncio.run(_migrate(settings))
    print(f"database at head ({_safe_url(settings)})")


def cmd_demo(settings: Settings) -> None:
    asyncio.run(_migrate(settings))
    created = asyncio.run(_load_demo_if_empty(settings))
    print(f"demo data loaded: {created}" if created else "database not empty: demo data not loaded")


def cmd_serve(settings: Settings, *, with_demo: bool) -> None:
    import uvicorn

    asyncio.run(_migrate(settings))
    if with_demo and settings.load_demo_data:
        created = asyncio.run(_load_demo_if_empty(settings))
        if created:
            print(f"demo data loaded: {created}")
    base = f"http://{settings.host}:{settings.port}"
    print(f"database: {_safe_url(settings)}")
    print(f"OpenAPI docs: {base}/docs   (spec: {base}/openapi.json)", flush=True)
    uvicorn.run("service.app:create_app", factory=True, host=settings.host, port=settings.port, log_level="info")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jiedui", description="结对帮扶 matching service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate, then serve the API")
    serve.add_argument("--demo", action="store_true", help="load demo data when the database is empty")
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("demo", help="migrate and load demo data into an empty database")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "serve":
        cmd_serve(settings, with_demo=args.demo)
    elif args.command == "migrate":
        cmd_migrate(settings)
    elif args.command == "demo":
        cmd_demo(settings)


if __name__ == "__main__":
    sys.exit(main())
