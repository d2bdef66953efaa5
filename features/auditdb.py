"""The audit database: every score the API gave (`scores`), the shadow challenger's scores of the
same requests (`shadow_scores`, one row per request id the challenger scored too) and the won or
lost outcomes of scored leads (`outcomes`).

The server writes it (`serving.audit`, `serving.outcomes`); the workspace's Outcomes page and
`leadready models compare --live` read it. SQLite at `models/audit.db` by default, or any
SQLAlchemy URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

BUSY_SECONDS = 5.0
"""How long a SQLite write waits for another connection's lock before it fails (and is retried)."""

metadata = sa.MetaData()


def _score_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False, index=True),
        sa.Column("lead_id", sa.String(200), nullable=False, index=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("readiness", sa.Float, nullable=False),
        sa.Column("potential", sa.Float, nullable=False),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("scored_at", sa.String(40), nullable=False),
        # Null in rows written before the journal existed; NULLs never collide in a unique index.
        sa.Column("record_key", sa.String(80), nullable=True),
        # The time the lead was scored at (the request's as_of, or now); null in older rows.
        sa.Column("as_of", sa.String(40), nullable=True),
        # In the exploration slice, and the probability of the route given; null in older rows
        # (and in the shadow challenger's, which never explores).
        sa.Column("explore", sa.Boolean, nullable=True),
        sa.Column("propensity", sa.Float, nullable=True),
    )


scores = _score_table("scores")
shadow_scores = _score_table("shadow_scores")
"""The challenger's readiness and route for requests the champion answered, keyed by the same
request id; scored after the answer left, so a request may lack its shadow row."""
TABLES = {"scores": scores, "shadow": shadow_scores}
"""The score tables by the journal's `table` key (a journal row without one is a score)."""
outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("lead_id", sa.String(200), primary_key=True),
    sa.Column("outcome", sa.String(8), nullable=False),
    sa.Column("outcome_at", sa.String(40), nullable=False),
    sa.Column("imported_at", sa.String(40), nullable=False),
)
ADDED_COLUMNS = {
    "record_key": "VARCHAR(80)",
    "as_of": "VARCHAR(40)",
    "explore": "BOOLEAN",
    "propensity": "FLOAT",
}
"""Columns newer than the first audit logs, added on start to a `scores` table that lacks them."""
record_key_indexes = [
    sa.Index(f"ix_{table.name}_record_key", table.c.record_key, unique=True)
    for table in TABLES.values()
]


def default_url(models_dir: Path) -> str:
    return f"sqlite:///{(models_dir / 'audit.db').resolve()}"


def engine_for(url: str) -> sa.Engine:
    """An engine on the audit store, its tables created if missing and brought up to date.

    SQLite runs in WAL mode, so readers (the Outcomes page, an export, a `sqlite3` shell) never
    block the shipper, and with a busy timeout for other writers."""
    is_sqlite = sa.make_url(url).get_backend_name() == "sqlite"
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_SECONDS} if is_sqlite else {})
    if is_sqlite:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    try:
        metadata.create_all(engine)
        _add_columns(engine)
    except sa.exc.DatabaseError:
        # Another worker process created or upgraded the tables between the check and the change.
        inspector = sa.inspect(engine)
        columns = {c["name"] for c in inspector.get_columns(scores.name)}
        if not set(ADDED_COLUMNS) <= columns or not all(map(inspector.has_table, metadata.tables)):
            raise
    return engine


def _add_columns(engine: sa.Engine) -> None:
    """Audit logs written by older versions lack `record_key` (before the journal), `as_of`,
    `explore` or `propensity`: add them, and the record_key indexes."""
    with engine.begin() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns(scores.name)}
        for name, kind in ADDED_COLUMNS.items():
            if name not in columns:
                connection.execute(sa.text(f"ALTER TABLE scores ADD COLUMN {name} {kind}"))
        for index in record_key_indexes:
            index.create(connection, checkfirst=True)


def last_scores_before_outcomes(connection: sa.Connection, shadow: bool = False) -> pd.DataFrame:
    """Each lead with an outcome, with the last score the API gave it at or before the outcome
    (the decision in force when it was won or lost): lead_id, readiness, potential, route,
    model_version, scored_at, outcome, outcome_at (times as UTC timestamps). With `shadow`,
    only scores the challenger scored too count, and its score is beside the champion's:
    shadow_readiness, shadow_route, shadow_version."""
    columns = [*_score_columns(), outcomes.c.outcome, outcomes.c.outcome_at]
    joined = sa.join(scores, outcomes, scores.c.lead_id == outcomes.c.lead_id)
    if shadow:
        columns, joined = _with_shadow(columns, joined)
    frame = _read(connection, sa.select(*columns).select_from(joined))
    return _last_per_lead(frame[frame["scored_at"] <= frame["outcome_at"]])


def last_shadow_pairs(connection: sa.Connection) -> pd.DataFrame:
    """Each lead the shadow challenger scored, with its last pair of scores (the champion's and
    the challenger's of one request): lead_id, readiness, potential, route, model_version,
    scored_at and shadow_readiness, shadow_route, shadow_version."""
    columns, joined = _with_shadow(_score_columns(), scores)
    return _last_per_lead(_read(connection, sa.select(*columns).select_from(joined)))


def _score_columns() -> list[sa.ColumnElement[Any]]:
    c = scores.c
    return [c.lead_id, c.readiness, c.potential, c.route, c.model_version, c.scored_at]


def _with_shadow(
    columns: list[sa.ColumnElement[Any]], joined: sa.FromClause
) -> tuple[list[sa.ColumnElement[Any]], sa.Join]:
    """Scores with the shadow challenger's score of the same request beside them."""
    shadow = [
        shadow_scores.c.readiness.label("shadow_readiness"),
        shadow_scores.c.route.label("shadow_route"),
        shadow_scores.c.model_version.label("shadow_version"),
    ]
    paired = sa.join(joined, shadow_scores, scores.c.request_id == shadow_scores.c.request_id)
    return columns + shadow, paired


def _read(connection: sa.Connection, query: sa.Select[Any]) -> pd.DataFrame:
    frame = pd.read_sql(query, connection)
    for name in ("scored_at", "outcome_at"):
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], format="ISO8601", utc=True)
    return frame


def _last_per_lead(frame: pd.DataFrame) -> pd.DataFrame:
    return (
        frame.sort_values(["lead_id", "scored_at"], kind="stable")
        .drop_duplicates("lead_id", keep="last")
        .reset_index(drop=True)
    )
