"""Command line: `jiedui serve | migrate | demo | token` (run as `python -m service.cli …`)."""

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


def _parse_lifetime(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return int(text[:-1]) * units[text[-1]]
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError("lifetime like 3600, 45m, 8h or 7d")


def cmd_token(settings: Settings, *, role: str, scope: str | None, lifetime_s: int, subject: str | None) -> None:
    from service.services import tokens
    from service.services.principals import Role

    if settings.uses_rs256:
        sys.exit("tokens come from the identity provider when RS256 is configured")
    try:
        token = tokens.issue(
            settings, subject=subject or f"{role}:{scope or 'all'}", role=Role(role), scope=scope, lifetime_s=lifetime_s
        )
    except tokens.TokenError as exc:
        sys.exit(f"cannot issue: {exc.reason}")
    print(token)


def cmd_serve(settings: Settings, *, with_demo: bool, migrate_first: bool = True) -> None:
    import uvicorn

    from service import demo
    from service.services import tokens
    from service.services.principals import Role

    if migrate_first:
        asyncio.run(_migrate(settings))
    if with_demo and settings.load_demo_data:
        created = asyncio.run(_load_demo_if_empty(settings))
        if created:
            print(f"demo data loaded: {created}")
    base = f"http://{settings.host}:{settings.port}"
    print(f"database: {_safe_url(settings)}")
    if with_demo and not settings.uses_rs256:
        token = tokens.issue(
            settings, subject="demo-coordinator", role=Role.coordinator, scope=demo.CITY, lifetime_s=8 * 3600
        )
        print(f"coordinator token for {demo.CITY} (宜昌市), valid 8 h:\n  export TOKEN={token}")
        print(f'  curl -H "Authorization: Bearer $TOKEN" {base}/api/v1/needs')
    print(f"OpenAPI docs: {base}/docs   (spec: {base}/openapi.json)", flush=True)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )


async def _work(settings: Settings, concurrency: int) -> None:
    from service import jobs

    db = Database.from_settings(settings)
    app = jobs.build_app(settings)
    try:
        async with app.open_async():
            await jobs.run_worker(app, db, settings, concurrency=concurrency)
    finally:
        await db.dispose()


def cmd_worker(settings: Settings, *, concurrency: int) -> None:
    if settings.is_sqlite:
        sys.exit("on the embedded SQLite default the API process runs the jobs itself; workers need PostgreSQL")
    print(f"worker on {_safe_url(settings)}, concurrency {concurrency}", flush=True)
    if settings.engine_processes > 1:  # start the engine's worker processes now, not in the first large match
        from service.matching.parallel import warm_up

        print(f"engine processes ready in {warm_up(settings.engine_processes):.2f} s", flush=True)
    asyncio.run(_work(settings, concurrency))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jiedui", description="结对帮扶 matching service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate, then serve the API")
    serve.add_argument("--demo", action="store_true", help="load demo data when the database is empty")
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not migrate at start (deployments where a migrate job owns the schema)",
    )
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("demo", help="migrate and load demo data into an empty database")
    worker = sub.add_parser("worker", help="run background jobs (match runs, re-matching, expiry) from PostgreSQL")
    worker.add_argument("--concurrency", type=int, default=2)
    token = sub.add_parser("token", help="issue a bearer token for local use (HS256)")
    token.add_argument("--role", required=True, choices=["admin", "coordinator", "auditor", "station", "organization"])
    token.add_argument("--scope", help="region code (coordinator, auditor) or station/organization id")
    token.add_argument("--lifetime", type=_parse_lifetime, default=3600, help="e.g. 3600, 45m, 8h, 7d (default 1h)")
    token.add_argument("--subject", help="who the token is for (default: role:scope)")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command in ("serve", "worker"):
        from service.observability import configure_logging

        configure_logging(settings)
    if args.command == "serve":
        cmd_serve(settings, with_demo=args.demo, migrate_first=not args.no_migrate)
    elif args.command == "migrate":
        cmd_migrate(settings)
    elif args.command == "demo":
        cmd_demo(settings)
    elif args.command == "worker":
        cmd_worker(settings, concurrency=args.concurrency)
    elif args.command == "token":
        cmd_token(settings, role=args.role, scope=args.scope, lifetime_s=args.lifetime, subject=args.subject)


if __name__ == "__main__":
    sys.exit(main())
