"""Live lead operations: a lead's state with sales (SLA) and its last history point on
`current_scores`, with its model and rep's context; the hand-offs a sales capacity counts; the
sweep's claim. `leads.status` gains the value `sales_owned` (text, so no change of type).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 13:55:46.536093
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sweeps")),
    )
    op.create_table(
        "sales_handoffs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("handed_at", sa.DateTime(), nullable=False),
        sa.Column("hand_raise", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.lead_id"], name=op.f("fk_sales_handoffs_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_handoffs")),
    )
    op.create_index(
        op.f("ix_sales_handoffs_handed_at"), "sales_handoffs", ["handed_at"], unique=False
    )
    for column in (
        sa.Column("model", JSON, nullable=True),
        sa.Column("context", JSON, nullable=True),
        sa.Column("routed_to_sales_at", sa.DateTime(), nullable=True),
        sa.Column("last_sales_touch_at", sa.DateTime(), nullable=True),
        sa.Column("sla_state", sa.String(), nullable=True),
        sa.Column("taken_back_at", sa.DateTime(), nullable=True),
        sa.Column("charted_readiness", sa.Float(), nullable=True),
        sa.Column("charted_at", sa.DateTime(), nullable=True),
    ):
        op.add_column("current_scores", column)
    op.create_index(
        op.f("ix_current_scores_route_routed_to_sales_at"),
        "current_scores",
        ["route", "routed_to_sales_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_current_scores_route_routed_to_sales_at"), table_name="current_scores")
    with op.batch_alter_table("current_scores") as batch_op:  # SQLite drops columns by copy
        for name in (
            "charted_at",
            "charted_readiness",
            "taken_back_at",
            "sla_state",
            "last_sales_touch_at",
            "routed_to_sales_at",
            "context",
            "model",
        ):
            batch_op.drop_column(name)
    op.drop_index(op.f("ix_sales_handoffs_handed_at"), table_name="sales_handoffs")
    op.drop_table("sales_handoffs")
    op.drop_table("sweeps")
