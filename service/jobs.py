"""Background jobs on procrastinate: a PostgreSQL-backed queue that any number of worker processes share.

On PostgreSQL, jobs live in procrastinate's tables (created by our Alembic migrations) and `python -m service.cli
worker` processes run them, on as many hosts as needed. On the embedded SQLite default the same tasks run
in-process on procrastinate's in-memory connector, started by the API's lifespan.

Tasks: `run_match` (a queued match run, retried with backoff), and periodic `rematch` (debounced re-matching of
changed regions), `expire` (needs and offers past their window, unanswered proposals), `deliver_webhooks` (signed
event POSTs with backoff) and `retry_stalled`
(jobs of workers that died, e.g. by SIGKILL).
"""

from __future__ import annotations

import logging
from typing import Any

import procrastinate
from procrastinate.testing import InMemoryConnector
from sqlalchemy.engine import make_url

from service.db.base import utcnow
from service.db.session import Database
from service.settings import Settings

log = logging.getLogger(__name__)
STALLED_AFTER_S = 30


# croniter's six-field form puts seconds LAST: "* * * * * */5" is every 5 seconds.


def libpq_url(database_url: str) -> str:
    """procrastinate speaks psycopg: drop the SQLAlchemy driver suffix."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def build_app(settings: Settings) -> procrastinate.App:
    """The procrastinate app for these settings, with every task registered."""
    if settings.is_sqlite:
        connector: Any = InMemoryConnector()
    else:
        # min_size=0: the API starts (and /readyz can answer 503) even while the database is down.
        connector = procrastinate.PsycopgConnector(
            conninfo=libpq_url(settings.database_url),
            min_size=0,
            max_size=settings.jobs_pool_size,
            kwargs={"application_name": f"{settings.application_name}-jobs"},
        )
    app = procrastinate.App(connector=connector)
    _register(app)
    return app


def _context(context: procrastinate.JobContext) -> tuple[Database, Settings]:
    extra = context.additional_context or {}
    return extra["db"], extra["settings"]


def _register(app: procrastinate.App) -> None:
    @app.task(
        name="run_match",
        pass_context=True,
        queue="runs",
        retry=procrastinate.RetryStrategy(max_attempts=3, exponential_wait=5),
    )
    async def run_match(context: procrastinate.JobContext, run_id: int) -> None:
        from service.services import runs as run_service

        db, settings = _context(context)
        await run_service.execute(db, settings, run_id=run_id)

    @app.periodic(cron="* * * * * */5", periodic_id="rematch")
    @app.task(name="rematch", pass_context=True, queue="periodic", queueing_lock="rematch")
    async def rematch(context: procrastinate.JobContext, timestamp: int) -> None:
        from service.services import rematch as rematch_service

        db, settings = _context(context)
        await rematch_service.process(db, settings)

    @app.periodic(cron="* * * * *", periodic_id="expire")
    @app.task(name="expire", pass_context=True, queue="periodic", queueing_lock="expire")
    async def expire(context: procrastinate.JobContext, timestamp: int) -> None:
        from service.services import expiry

        db, _ = _context(context)
        async with db.sessionmaker() as session, session.begin():
            counts = await expiry.run(session, now=utcnow())
        if any(counts.values()):
            log.info("expired %s", counts)

    @app.periodic(cron="* * * * * */15", periodic_id="retry_stalled")
    @app.task(name="retry_stalled", pass_context=True, queue="periodic", queueing_lock="retry_stalled")
    async def retry_stalled(context: procrastinate.JobContext, timestamp: int) -> None:
        for job in await context.app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_S):
            log.warning("retrying job %s of a worker that stopped answering", job.id)
            await context.app.job_manager.retry_job(job)

    @app.periodic(cron="* * * * * */5", periodic_id="deliver_webhooks")
    @app.task(name="deliver_webhooks", pass_context=True, queue="periodic", queueing_lock="deliver_webhooks")
    async def deliver_webhooks(context: procrastinate.JobContext, timestamp: int) -> None:
        from service.services import webhooks

        db, settings = _context(context)
        await webhooks.dispatch(db, settings)


async def defer_run(app: procrastinate.App, run_id: int) -> None:
    """Queue a match run for the workers."""
    await app.configure_task("run_match", queueing_lock=f"run-{run_id}").defer_async(run_id=run_id)


async def run_worker(
    app: procrastinate.App,
    db: Database,
    settings: Settings,
    *,
    concurrency: int = 2,
    install_signal_handlers: bool = True,
) -> None:
    """Work until stopped (SIGTERM finishes the jobs in hand first)."""
    await app.run_worker_async(
        concurrency=concurrency,
        additional_context={"db": db, "settings": settings},
        install_signal_handlers=install_signal_handlers,
        shutdown_graceful_timeout=60,
        update_heartbeat_interval=5,
        stalled_worker_timeout=STALLED_AFTER_S,
    )
