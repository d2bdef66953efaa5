"""The lead store's tables, as SQLAlchemy 2 Core metadata; the migrations (`migrations/`) build
exactly these (a test compares them).

Columns follow the data contract (docs/data-contract.md) with its names and the dtypes
`load_crm` decides: vocabulary values as text, times as timezone-naive UTC, `company_size` a
float, `responded` a boolean (null when not known). A schema's custom features and display
columns live in one JSON object per lead (`leads.fields`); `lead_fields` says what each of them
is, so reading the store back gives the same frames an export gives. Table names do not clash
with the audit log's (`scores`, `outcomes`) or MLflow's, so one PostgreSQL database can hold
them all.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

VERSION_TABLE = "leadstore_alembic_version"
"""Alembic's revision table for the store (not `alembic_version`, which MLflow's store uses)."""

LEAD_STATUSES = ("new",)
"""`leads.status`: how far leadready's handling of a lead has gone; every loaded lead is `new`
(later: taken by sales, and so on)."""
FIELD_KINDS = ("numeric", "categorical", "display")
"""`lead_fields.kind`: a schema's custom feature (numeric or categorical) or display column."""
DELIVERY_STATUSES = ("pending", "delivered", "dead")

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
"""JSON text in SQLite; JSONB in PostgreSQL, which (unlike json) compares for equality, as a
reload's "did this lead change" test needs."""
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A surrogate key: SQLite makes only INTEGER PRIMARY KEY its rowid (and so autoincrementing)."""

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

leads = sa.Table(
    "leads",
    metadata,
    sa.Column("lead_id", sa.String(), primary_key=True),
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
    sa.Column("fields", Json, nullable=True),  # custom features and display columns
    sa.Column("status", sa.String(), nullable=False, server_default=LEAD_STATUSES[0]),
    sa.Column("stored_at", sa.DateTime(), nullable=False),  # first written to the store
    sa.Column("updated_at", sa.DateTime(), nullable=False),  # last changed in the store
)

lead_fields = sa.Table(
    "lead_fields",
    metadata,
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),  # the order of the columns
)


def _event_columns() -> list[sa.Column[Any]]:
    """The columns every event has. `lead_id` has no foreign key: events may reach the store
    before their lead does (a CRM's webhooks keep no order across objects), and the check cost
    about 40% of a bulk load's time in PostgreSQL; exports are checked by the contract."""
    return [
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(), nullable=False, unique=True),
        sa.Column("lead_id", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
    ]


activities = sa.Table(
    "activities",
    metadata,
    *_event_columns(),
    sa.Column("type", sa.String(), nullable=False),
    sa.Index(None, "lead_id", "occurred_at"),
)

touches = sa.Table(
    "touches",
    metadata,
    *_event_columns(),
    sa.Column("channel", sa.String(), nullable=False),
    sa.Column("team", sa.String(), nullable=False),
    sa.Column("responded", sa.Boolean(), nullable=True),
    sa.Index(None, "lead_id", "occurred_at"),
)

EVENT_TABLES = {"activities": activities, "touches": touches}


def _score_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("readiness", sa.Float(), nullable=False),
        sa.Column("potential", sa.Float(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("route_reason", sa.String(), nullable=False),
        sa.Column("reasons", Json, nullable=True),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
    ]


current_scores = sa.Table(
    "current_scores",
    metadata,
    sa.Column("lead_id", sa.String(), sa.ForeignKey(leads.c.lead_id), primary_key=True),
    *_score_columns(),
    sa.Index(None, "readiness"),
)
"""The latest score of each lead (one row per lead)."""

score_history = sa.Table(
    "score_history",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("lead_id", sa.String(), sa.ForeignKey(leads.c.lead_id), nullable=False),
    *_score_columns(),
    sa.Index(None, "lead_id", "scored_at"),
)
"""Every score a lead was given, for its trend."""

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(), primary_key=True),
    sa.Column("type", sa.String(), nullable=False),
    sa.Column("lead_id", sa.String(), sa.ForeignKey(leads.c.lead_id), nullable=True, index=True),
    sa.Column("payload", Json, nullable=False),
    sa.Column("status", sa.String(), nullable=False, server_default=DELIVERY_STATUSES[0]),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("delivered_at", sa.DateTime(), nullable=True),
    # A dispatcher sending this delivery now: others leave it alone until then (a lease, so a
    # dispatcher killed mid-send does not keep it forever).
    sa.Column("claimed_until", sa.DateTime(), nullable=True),
    # Set by `leadready deliveries retry`: a requeued dead letter's retry window starts here.
    sa.Column("requeued_at", sa.DateTime(), nullable=True),
    sa.Index(None, "status", "next_attempt_at"),
)
"""The outbox of webhook deliveries: written in the transaction that decides them, sent and
retried by a dispatcher (`pending` until `delivered`, or `dead` after the last attempt)."""

delivery_receipts = sa.Table(
    "delivery_receipts",
    metadata,
    sa.Column(
        "delivery_id",
        sa.String(),
        sa.ForeignKey(deliveries.c.delivery_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("url", sa.String(), primary_key=True),
    sa.Column("status_code", sa.Integer(), nullable=False),
    sa.Column("delivered_at", sa.DateTime(), nullable=False),
)
"""Each webhook URL that accepted a delivery (a 2xx answer): with several URLs, a retry goes only
to those that have not."""
