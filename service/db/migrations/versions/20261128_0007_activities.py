"""Activities delivered under pairings, with the station's rating

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 11:49:41.456366
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pairing_id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("service_type_code", sa.String(length=60), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("units_delivered", sa.Integer(), nullable=False),
        sa.Column("people_served", sa.Integer(), nullable=False),
        sa.Column("volunteers", sa.Integer(), nullable=False),
        sa.Column("volunteer_hours", sa.Float(), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("rating_comment", sa.String(length=500), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name=op.f("ck_activities_rating_range")),
        sa.CheckConstraint(
            "units_delivered >= 0 AND people_served >= 0", name=op.f("ck_activities_counts_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_activities_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["pairing_id"], ["pairings.id"], name=op.f("fk_activities_pairing_id_pairings")),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], name=op.f("fk_activities_proposal_id_proposals")),
        sa.ForeignKeyConstraint(
            ["service_type_code"], ["service_types.code"], name=op.f("fk_activities_service_type_code_service_types")
        ),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_activities_station_id_stations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_activities_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_activities_pairing_id"), ["pairing_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_activities_proposal_id"), ["proposal_id"], unique=False)
        batch_op.create_index("ix_activities_region_date", ["region_code", "occurred_on"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index("ix_activities_region_date")
        batch_op.drop_index(batch_op.f("ix_activities_proposal_id"))
        batch_op.drop_index(batch_op.f("ix_activities_pairing_id"))
        batch_op.drop_index(batch_op.f("ix_activities_organization_id"))

    op.drop_table("activities")
