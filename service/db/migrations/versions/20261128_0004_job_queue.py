"""Job queue: procrastinate's tables and functions (PostgreSQL only; SQLite runs jobs in memory)

The schema SQL is procrastinate's own for the pinned version (procrastinate==3.10.*); upgrading procrastinate
means adding a migration that applies its shipped migration files for the versions in between.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 11:20:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.util import await_

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROP = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, procrastinate_workers,
    procrastinate_version CASCADE;
DO $$ DECLARE f record;
BEGIN
    FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate%' LOOP
        EXECUTE 'DROP FUNCTION IF EXISTS ' || f.sig || ' CASCADE';
    END LOOP;
    FOR f IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = 'public' AND t.typname LIKE 'procrastinate%' AND t.typtype IN ('e', 'c') LOOP
        EXECUTE 'DROP TYPE IF EXISTS ' || quote_ident(f.typname) || ' CASCADE';
    END LOOP;
END $$;
"""


def _run_script(sql: str) -> None:
    # The schema is a multi-statement script with $$ bodies; asyncpg runs such scripts only outside prepared
    # statements, so hand it to the driver connection directly (still inside Alembic's transaction).
    driver = op.get_bind().connection.dbapi_connection
    await_(driver._connection.execute(sql))  # type: ignore[union-attr]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    _run_script(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _run_script(DROP)
