"""The exploration slice on every stored score (`current_scores`, `score_history`): `explore`,
whether the lead was sent to sales at random rather than by the policy, and `propensity`, the
probability of the route the model gave it (docs/monitoring.md). Null in scores written before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("current_scores", "score_history")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("explore", sa.Boolean(), nullable=True))
        op.add_column(table, sa.Column("propensity", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:  # SQLite drops columns by copy
            batch_op.drop_column("propensity")
            batch_op.drop_column("explore")
