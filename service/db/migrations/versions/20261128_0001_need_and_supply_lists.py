"""Need and supply lists, with the service catalog (服务目录) they refer to

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28 10:45:43.238175
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The catalog as first published. Later changes come as new migrations, so this list never changes.
DOMAINS = [
    ("elderly_care", "养老服务", "Elderly care"),
    ("child_welfare", "儿童关爱", "Child welfare"),
    ("social_assistance", "社会救助", "Social assistance"),
    ("disability_care", "残疾人关爱", "Disability care"),
    ("community_governance", "社区治理", "Community governance"),
    ("social_affairs", "社会事务", "Social affairs"),
]
SERVICE_TYPES = [
    ("elderly_care.home_visit", "入户探访", "Home visits to elders living alone", "person"),
    ("elderly_care.free_clinic", "义诊", "Free clinic", "session"),
    ("elderly_care.meal_help", "助餐", "Meal help", "meal"),
    ("elderly_care.day_care", "日间照料", "Day care", "person"),
    ("elderly_care.recreation", "老年文体活动", "Recreation for elders", "session"),
    ("elderly_care.smart_device_help", "智能技术助老", "Help with smartphones and online services", "session"),
    ("child_welfare.tutoring", "学业辅导", "Tutoring", "hour"),
    ("child_welfare.safety_education", "安全教育", "Safety education", "session"),
    ("child_welfare.parent_child_activity", "亲子活动", "Parent-child activities", "session"),
    ("child_welfare.psychological_support", "儿童心理关爱", "Psychological support for children", "person"),
    ("child_welfare.holiday_care", "假期托管", "Holiday care", "person"),
    ("social_assistance.psychological_counselling", "心理疏导", "Psychological counselling", "person"),
    ("social_assistance.charity_relief", "慈善帮扶", "Charity relief", "person"),
    ("social_assistance.family_tracing", "寻亲返乡", "Family tracing for people sleeping rough", "person"),
    ("social_assistance.employment_guidance", "就业指引", "Employment guidance", "person"),
    ("social_assistance.material_donation", "物资捐赠", "Donations in kind", "set"),
    ("disability_care.rehabilitation", "康复服务", "Rehabilitation", "session"),
    ("disability_care.caregiver_training", "照护者培训", "Caregiver training", "session"),
    ("disability_care.assistive_devices", "辅具适配", "Assistive device fitting", "set"),
    ("disability_care.respite_care", "喘息服务", "Respite care", "hour"),
    ("disability_care.employment_support", "残疾人就业支持", "Employment support for disabled people", "person"),
    ("community_governance.neighbourhood_mutual_aid", "邻里互助", "Neighbourhood mutual aid", "session"),
    ("community_governance.volunteer_training", "志愿者队伍建设", "Volunteer team building", "session"),
    ("community_governance.policy_publicity", "政策宣传", "Policy publicity", "session"),
    ("community_governance.resident_consultation", "居民议事协商", "Resident consultation", "session"),
    ("social_affairs.social_worker_exam_materials", "社工考试辅导资料", "Social worker exam materials", "set"),
    ("social_affairs.social_worker_training", "社工人才培训", "Social worker training", "session"),
    ("social_affairs.legal_aid", "法律援助", "Legal aid", "person"),
    ("social_affairs.marriage_family_counselling", "婚姻家庭辅导", "Marriage and family counselling", "person"),
    ("social_affairs.funeral_reform_publicity", "殡葬改革宣传", "Funeral reform publicity", "session"),
]


def _seed_catalog() -> None:
    domains = sa.table(
        "service_domains", sa.column("code"), sa.column("name_zh"), sa.column("name_en"), sa.column("sort_order")
    )
    types = sa.table(
        "service_types",
        sa.column("code"),
        sa.column("domain_code"),
        sa.column("name_zh"),
        sa.column("name_en"),
        sa.column("unit"),
        sa.column("sort_order"),
    )
    op.bulk_insert(
        domains, [dict(code=c, name_zh=zh, name_en=en, sort_order=i) for i, (c, zh, en) in enumerate(DOMAINS)]
    )
    op.bulk_insert(
        types,
        [
            dict(code=c, domain_code=c.split(".")[0], name_zh=zh, name_en=en, unit=u, sort_order=i)
            for i, (c, zh, en, u) in enumerate(SERVICE_TYPES)
        ],
    )


def upgrade() -> None:

    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("home_region_code", sa.String(length=9), nullable=False),
        sa.Column(
            "service_area",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "expertise", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("max_distance_km", sa.Float(), nullable=True),
        sa.Column("rating", sa.String(length=2), nullable=True),
        sa.Column("max_stations", sa.Integer(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("contact_phone", sa.String(length=24), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "max_distance_km IS NULL OR max_distance_km > 0", name=op.f("ck_organizations_max_distance_positive")
        ),
        sa.CheckConstraint(
            "max_stations IS NULL OR max_stations >= 1", name=op.f("ck_organizations_max_stations_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_organizations_credit_code")),
    )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_organizations_home_region_code"), ["home_region_code"], unique=False)

    op.create_table(
        "service_domains",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.String(length=40), nullable=False),
        sa.Column("name_en", sa.String(length=80), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_service_domains")),
    )
    op.create_table(
        "stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("contact_phone", sa.String(length=24), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
    )
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stations_region_code"), ["region_code"], unique=False)
        batch_op.create_index(
            "uq_stations_live_region_code",
            ["region_code"],
            unique=True,
            sqlite_where=sa.text("archived_at IS NULL"),
            postgresql_where=sa.text("archived_at IS NULL"),
        )

    op.create_table(
        "offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column(
            "service_area", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active','paused','withdrawn','expired')", name=op.f("ck_offers_status_known")),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_offers_capacity_nonnegative")),
        sa.CheckConstraint("window_end >= window_start", name=op.f("ck_offers_window_ordered")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_offers_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
    )
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offers_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index("ix_offers_organization_status", ["organization_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_offers_status"), ["status"], unique=False)

    op.create_table(
        "service_types",
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("domain_code", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.String(length=40), nullable=False),
        sa.Column("name_en", sa.String(length=80), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_code"], ["service_domains.code"], name=op.f("fk_service_types_domain_code_service_domains")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_service_types")),
    )
    with op.batch_alter_table("service_types", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_types_domain_code"), ["domain_code"], unique=False)

    op.create_table(
        "needs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("service_type_code", sa.String(length=60), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("beneficiary_group", sa.String(length=40), nullable=False),
        sa.Column("beneficiary_count", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("splittable", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open','partially_matched','matched','fulfilled','cancelled','expired')",
            name=op.f("ck_needs_status_known"),
        ),
        sa.CheckConstraint("beneficiary_count >= 0", name=op.f("ck_needs_beneficiary_count_nonnegative")),
        sa.CheckConstraint("priority BETWEEN 1 AND 4", name=op.f("ck_needs_priority_range")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_needs_quantity_positive")),
        sa.CheckConstraint("window_end >= window_start", name=op.f("ck_needs_window_ordered")),
        sa.ForeignKeyConstraint(
            ["service_type_code"], ["service_types.code"], name=op.f("fk_needs_service_type_code_service_types")
        ),
        sa.ForeignKeyConstraint(["station_id"], ["stations.id"], name=op.f("fk_needs_station_id_stations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_needs")),
    )
    with op.batch_alter_table("needs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_needs_service_type_code"), ["service_type_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_needs_station_id"), ["station_id"], unique=False)
        batch_op.create_index("ix_needs_station_status", ["station_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_needs_status"), ["status"], unique=False)

    op.create_table(
        "offer_service_types",
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("service_type_code", sa.String(length=60), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_service_types_offer_id_offers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["service_type_code"],
            ["service_types.code"],
            name=op.f("fk_offer_service_types_service_type_code_service_types"),
        ),
        sa.PrimaryKeyConstraint("offer_id", "service_type_code", name=op.f("pk_offer_service_types")),
    )
    with op.batch_alter_table("offer_service_types", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_offer_service_types_service_type_code"), ["service_type_code"], unique=False
        )

    _seed_catalog()


def downgrade() -> None:

    with op.batch_alter_table("offer_service_types", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offer_service_types_service_type_code"))

    op.drop_table("offer_service_types")
    with op.batch_alter_table("needs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_needs_status"))
        batch_op.drop_index("ix_needs_station_status")
        batch_op.drop_index(batch_op.f("ix_needs_station_id"))
        batch_op.drop_index(batch_op.f("ix_needs_service_type_code"))

    op.drop_table("needs")
    with op.batch_alter_table("service_types", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_types_domain_code"))

    op.drop_table("service_types")
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offers_status"))
        batch_op.drop_index("ix_offers_organization_status")
        batch_op.drop_index(batch_op.f("ix_offers_organization_id"))

    op.drop_table("offers")
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_stations_live_region_code",
            sqlite_where=sa.text("archived_at IS NULL"),
            postgresql_where=sa.text("archived_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_stations_region_code"))

    op.drop_table("stations")
    op.drop_table("service_domains")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organizations_home_region_code"))

    op.drop_table("organizations")
