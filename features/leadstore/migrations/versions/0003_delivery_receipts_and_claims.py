"""Webhook deliveries per URL, claims and requeues: `delivery_receipts` (each URL that accepted
a delivery), `deliveries.claimed_until` (the lease of the dispatcher sending it) and
`deliveries.requeued_at` (when a dead letter was put back).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 13:55:06.244761
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_receipts",
        sa.Column("delivery_id", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.delivery_id"],
            name=op.f("fk_delivery_receipts_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", "url", name=op.f("pk_delivery_receipts")),
    )
    # Nullable columns without a default: a plain ALTER TABLE ADD COLUMN on both databases.
    op.add_column("deliveries", sa.Column("claimed_until", sa.DateTime(), nullable=True))
    op.add_column("deliveries", sa.Column("requeued_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_table("delivery_receipts")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("requeued_at")
        batch_op.drop_column("claimed_until")
