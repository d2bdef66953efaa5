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

LEAD_STATUSES = ("new", "sales_owned")
"""`leads.status`: `new` (every loaded lead): leadready routes it; `sales_owned`: the CRM says
sales keeps this lead whatever the score (it is routed to sales and never taken back)."""
SLA_STATES = ("waiting", "met", "at_risk", "taken_back")
"""`current_scores.sla_state` of a lead routed to sales: `waiting` for its first sales touch
within the SLA, `met` (a sales touch came), `at_risk` (none within the SLA); `taken_back`: it
was returned to nurture after too long without one. Null: never routed to sales."""
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
        # The exploration slice (features.routing.Exploration): sent to sales at random, and
        # the probability of the route the model gave; null in scores from before it.
        sa.Column("explore", sa.Boolean(), nullable=True),
        sa.Column("propensity", sa.Float(), nullable=True),
    ]


current_scores = sa.Table(
    "current_scores",
    metadata,
    sa.Column("lead_id", sa.String(), sa.ForeignKey(leads.c.lead_id), primary_key=True),
    *_score_columns(),
    sa.Column("model", Json, nullable=True),  # name, version, run_id, kind
    sa.Column("context", Json, nullable=True),  # the rep's context, as /v1/score gives it
    sa.Column("routed_to_sales_at", sa.DateTime(), nullable=True),  # null: not with sales
    sa.Column("last_sales_touch_at", sa.DateTime(), nullable=True),
    sa.Column("sla_state", sa.String(), nullable=True),  # SLA_STATES
    sa.Column("taken_back_at", sa.DateTime(), nullable=True),
    sa.Column("charted_readiness", sa.Float(), nullable=True),  # the last history point's
    sa.Column("charted_at", sa.DateTime(), nullable=True),
    sa.Index(None, "readiness"),
    sa.Index(None, "route", "routed_to_sales_at", "lead_id"),  # the queue's order
)
"""The latest score of each lead (one row per lead), with its state with sales (the SLA) and
when its last history point was written."""

score_history = sa.Table(
    "score_history",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("lead_id", sa.String(), sa.ForeignKey(leads.c.lead_id), nullable=False),
    *_score_columns(),
    sa.Index(None, "lead_id", "scored_at"),
)
"""Every score a lead was given, for its trend."""

sales_handoffs = sa.Table(
    "sales_handoffs",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("lead_id", sa.String(), sa.ForeignKey(leads.c.lead_id), nullable=False),
    sa.Column("handed_at", sa.DateTime(), nullable=False),
    sa.Column("hand_raise", sa.Boolean(), nullable=False),
    sa.Index(None, "handed_at"),
)
"""Every time a lead was routed to sales: what a sales capacity (leads per rolling 7 days)
counts."""

sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("started_at", sa.DateTime(), nullable=False),
)
"""When the scheduled sweep last started: a worker claims the next one by moving it forward
(an UPDATE only one worker's transaction can make), so one worker of a fleet sweeps."""

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
