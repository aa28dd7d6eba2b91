"""Match runs, proposals, pairings, re-match requests; committed units on needs and offers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 11:04:13.667874
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "match_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column(
            "weights", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("coverage_first", sa.Boolean(), nullable=False),
        sa.Column("time_limit_s", sa.Float(), nullable=False),
        sa.Column("solver_status", sa.String(length=12), nullable=True),
        sa.Column("objective", sa.BigInteger(), nullable=True),
        sa.Column("bound", sa.BigInteger(), nullable=True),
        sa.Column(
            "timings", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "counts", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "churn", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "unmatched", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued','running','succeeded','failed')", name=op.f("ck_match_runs_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_runs")),
    )
    with op.batch_alter_table("match_runs", schema=None) as batch_op:
        batch_op.create_index("ix_match_runs_scope", ["region_code", "period", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_match_runs_status"), ["status"], unique=False)

    op.create_table(
        "rematch_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("object_type", sa.String(length=20), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rematch_requests")),
    )
    with op.batch_alter_table("rematch_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rematch_requests_region_code"), ["region_code"], unique=False)

    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("station_answer", sa.String(length=10), nullable=True),
        sa.Column("organization_answer", sa.String(length=10), nullable=True),
        sa.Column("reject_reason", sa.String(length=500), nullable=True),
        sa.Column(
            "explanation", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('proposed','accepted','rejected','withdrawn','expired','superseded')",
            name=op.f("ck_proposals_status_known"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_proposals_quantity_positive")),
        sa.ForeignKeyConstraint(["need_id"], ["needs.id"], name=op.f("fk_proposals_need_id_needs")),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"], name=op.f("fk_proposals_offer_id_offers")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_proposals_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["match_runs.id"], name=op.f("fk_proposals_run_id_match_runs")),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_proposals_station_id_stations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
    )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.create_index("ix_proposals_need_status", ["need_id", "status"], unique=False)
        batch_op.create_index("ix_proposals_offer_status", ["offer_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposals_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposals_region_code"), ["region_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposals_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposals_station_id"), ["station_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposals_status"), ["status"], unique=False)

    op.create_table(
        "pairings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("first_proposal_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["first_proposal_id"], ["proposals.id"], name=op.f("fk_pairings_first_proposal_id_proposals")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_pairings_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_pairings_station_id_stations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pairings")),
    )
    with op.batch_alter_table("pairings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pairings_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pairings_region_code"), ["region_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_pairings_station_id"), ["station_id"], unique=False)
        batch_op.create_index(
            "uq_pairings_active",
            ["organization_id", "station_id"],
            unique=True,
            sqlite_where=sa.text("ended_on IS NULL"),
            postgresql_where=sa.text("ended_on IS NULL"),
        )

    # Accepted units live next to what they consume, so a CHECK can refuse over-commitment under any race.
    with op.batch_alter_table("needs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("committed", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_check_constraint(
            op.f("ck_needs_committed_within_quantity"), "committed >= 0 AND committed <= quantity"
        )

    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("committed", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_check_constraint(
            op.f("ck_offers_committed_within_capacity"), "committed >= 0 AND committed <= capacity"
        )


def downgrade() -> None:

    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_offers_committed_within_capacity"), type_="check")
        batch_op.drop_column("committed")

    with op.batch_alter_table("needs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_needs_committed_within_quantity"), type_="check")
        batch_op.drop_column("committed")

    with op.batch_alter_table("pairings", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_pairings_active", sqlite_where=sa.text("ended_on IS NULL"), postgresql_where=sa.text("ended_on IS NULL")
        )
        batch_op.drop_index(batch_op.f("ix_pairings_station_id"))
        batch_op.drop_index(batch_op.f("ix_pairings_region_code"))
        batch_op.drop_index(batch_op.f("ix_pairings_organization_id"))

    op.drop_table("pairings")
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposals_status"))
        batch_op.drop_index(batch_op.f("ix_proposals_station_id"))
        batch_op.drop_index(batch_op.f("ix_proposals_run_id"))
        batch_op.drop_index(batch_op.f("ix_proposals_region_code"))
        batch_op.drop_index(batch_op.f("ix_proposals_organization_id"))
        batch_op.drop_index("ix_proposals_offer_status")
        batch_op.drop_index("ix_proposals_need_status")

    op.drop_table("proposals")
    with op.batch_alter_table("rematch_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rematch_requests_region_code"))

    op.drop_table("rematch_requests")
    with op.batch_alter_table("match_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_match_runs_status"))
        batch_op.drop_index("ix_match_runs_scope")

    op.drop_table("match_runs")
