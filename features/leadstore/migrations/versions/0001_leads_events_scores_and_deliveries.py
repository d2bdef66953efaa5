"""The first lead store: leads, their fields, activities and touches, current and past scores,
and the outbox of deliveries.

Revision ID: 0001
Revises: -
Create Date: 2026-12-03 13:27:17.905424
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_fields",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_lead_fields")),
    )
    op.create_table(
        "leads",
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("industry", sa.String(), nullable=False),
        sa.Column("company_size", sa.Float(), nullable=True),
        sa.Column("country", sa.String(), nullable=False),
        sa.Column("budget", sa.String(), nullable=False),
        sa.Column("authority", sa.String(), nullable=False),
        sa.Column("need", sa.String(), nullable=False),
        sa.Column("timeframe", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("outcome_at", sa.DateTime(), nullable=True),
        sa.Column(
            "fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("status", sa.String(), server_default="new", nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_leads")),
    )
    op.create_table(
        "activities",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
        sa.UniqueConstraint("event_id", name=op.f("uq_activities_event_id")),
    )
    op.create_index(
        op.f("ix_activities_lead_id_occurred_at"),
        "activities",
        ["lead_id", "occurred_at"],
        unique=False,
    )

    op.create_table(
        "current_scores",
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("readiness", sa.Float(), nullable=False),
        sa.Column("potential", sa.Float(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("route_reason", sa.String(), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.lead_id"], name=op.f("fk_current_scores_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_current_scores")),
    )
    op.create_index(
        op.f("ix_current_scores_readiness"), "current_scores", ["readiness"], unique=False
    )

    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("lead_id", sa.String(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.lead_id"], name=op.f("fk_deliveries_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_deliveries")),
    )
    op.create_index(op.f("ix_deliveries_lead_id"), "deliveries", ["lead_id"], unique=False)
    op.create_index(
        op.f("ix_deliveries_status_next_attempt_at"),
        "deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )

    op.create_table(
        "score_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("readiness", sa.Float(), nullable=False),
        sa.Column("potential", sa.Float(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("route_reason", sa.String(), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.lead_id"], name=op.f("fk_score_history_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_history")),
    )
    op.create_index(
        op.f("ix_score_history_lead_id_scored_at"),
        "score_history",
        ["lead_id", "scored_at"],
        unique=False,
    )

    op.create_table(
        "touches",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("responded", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_touches")),
        sa.UniqueConstraint("event_id", name=op.f("uq_touches_event_id")),
    )
    op.create_index(
        op.f("ix_touches_lead_id_occurred_at"), "touches", ["lead_id", "occurred_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_touches_lead_id_occurred_at"), table_name="touches")

    op.drop_table("touches")
    op.drop_index(op.f("ix_score_history_lead_id_scored_at"), table_name="score_history")

    op.drop_table("score_history")
    op.drop_index(op.f("ix_deliveries_status_next_attempt_at"), table_name="deliveries")
    op.drop_index(op.f("ix_deliveries_lead_id"), table_name="deliveries")

    op.drop_table("deliveries")
    op.drop_index(op.f("ix_current_scores_readiness"), table_name="current_scores")

    op.drop_table("current_scores")
    op.drop_index(op.f("ix_activities_lead_id_occurred_at"), table_name="activities")

    op.drop_table("activities")
    op.drop_table("leads")
    op.drop_table("lead_fields")
