"""The lead store read back as a `Crm`, the frames `load_crm` gives for an export (same columns,
dtypes and order: leads by lead_id, events by lead and time), so that training from the store
and from files run the same code."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from leadready.features.contract import (
    ACTIVITY_COLUMNS,
    LEAD_COLUMNS,
    TOUCH_COLUMNS,
    Crm,
    closed_by_rule,
    sorted_events,
)
from leadready.features.leadstore.tables import activities, lead_fields, leads, touches

TIMES = ("created_at", "outcome_at", "occurred_at")
NUMBERS = ("company_size", "responded")


def read_crm(engine: sa.Engine, lost_after: int | None = None) -> Crm:
    """Every lead and event of the store, as one consistent snapshot (one transaction); with
    `lost_after` (days), the lost-after rule applied at the store's latest recorded time, as
    `load_crm` applies it at an export's end (leads loaded under a schema's rule are stored
    lost already)."""
    with engine.connect() as connection, connection.begin():
        fields = connection.execute(
            sa.select(lead_fields.c.name, lead_fields.c.kind).order_by(lead_fields.c.position)
        ).all()
        lead_frame = _frame(
            connection, sa.select(*(leads.c[c] for c in LEAD_COLUMNS), leads.c.fields)
        )
        events = {
            name: _frame(connection, sa.select(*(table.c[c] for c in columns)).order_by(table.c.id))
            for name, table, columns in (
                ("activities", activities, ACTIVITY_COLUMNS),
                ("touches", touches, TOUCH_COLUMNS),
            )
        }
    stored = lead_frame.pop("fields")
    for name, kind in fields:
        lead_frame[name] = _field(stored, name, kind)
    order = np.argsort(pd.factorize(lead_frame["lead_id"], sort=True)[0], kind="stable")
    activity_frame = sorted_events(events["activities"], "activities")
    touch_frame = sorted_events(events["touches"], "touches")
    lead_frame, closed = closed_by_rule(
        lead_frame.take(order).reset_index(drop=True), lost_after, activity_frame, touch_frame
    )
    return Crm(
        leads=lead_frame,
        activities=activity_frame,
        touches=touch_frame,
        custom={name: kind for name, kind in fields if kind != "display"},
        display=tuple(name for name, kind in fields if kind == "display"),
        lost_after=lost_after,
        closed_as_lost=closed,
    )


def _rows(connection: sa.Connection, query: sa.Select[Any]) -> tuple[list[str], Sequence[Any]]:
    """A query's column names and rows, straight from the driver's cursor in this transaction,
    skipping SQLAlchemy's per-row processing, which took most of the time (6.3 s -> 1.9 s for
    20,000 leads and 1.3M events in SQLite)."""
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )  # an IN list as one bound parameter per value
    params: Any = compiled.params
    if compiled.positional:  # SQLite's "?" placeholders
        params = tuple(params[name] for name in compiled.positiontup or ())
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return [d[0] for d in cursor.description], cursor.fetchall()
    finally:
        cursor.close()


def _frame(connection: sa.Connection, query: sa.Select[Any]) -> pd.DataFrame:
    """A query's rows with the dtypes `load_crm` decides: text as `str`, times as naive
    datetime64[ns], numbers (and `responded`) as float with NaN where missing.

    The rows come straight from the driver's cursor (`_rows`) into one 2-D object array; times
    then parse as whole columns (SQLite keeps them as ISO text, psycopg gives datetimes)."""
    names, rows = _rows(connection, query)
    table = np.array(rows, dtype=object).reshape(len(rows), len(names))
    frame: dict[str, pd.Series] = {}
    for i, name in enumerate(names):
        values = table[:, i]
        if name in TIMES:
            frame[name] = pd.Series(
                pd.to_datetime(values, format="ISO8601"), dtype="datetime64[ns]"
            )
        elif name in NUMBERS:
            frame[name] = pd.Series(values.astype(float), dtype=float)
        elif name == "fields":
            frame[name] = pd.Series(values, dtype=object)
        else:
            frame[name] = pd.Series(values, dtype="str")
    return pd.DataFrame(frame)


def _field(stored: pd.Series, name: str, kind: str) -> pd.Series:
    """One custom or display column out of the leads' JSON fields, as `load_crm` types it:
    numeric a float (NaN when missing), categorical text (`unknown` when missing), display
    text ('' when missing)."""
    values = [_decoded(f).get(name) for f in stored]
    if kind == "numeric":
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype=float)
    missing = "unknown" if kind == "categorical" else ""
    return pd.Series([missing if v is None else str(v) for v in values], dtype="str")


def _decoded(fields: Any) -> dict[str, Any]:
    """A lead's fields, from JSON text (SQLite) or decoded (psycopg); a null is no fields."""
    decoded = json.loads(fields) if isinstance(fields, str) else fields
    return {} if decoded is None else dict(decoded)


def lead_frame(
    connection: sa.Connection, lead_ids: Sequence[str], custom: Mapping[str, str]
) -> pd.DataFrame:
    """The stored leads among `lead_ids`, by lead id: their contract columns and the custom
    features of `custom` (name -> kind), typed as `read_crm` types them."""
    ids = list(lead_ids)
    query = sa.select(*(leads.c[c] for c in LEAD_COLUMNS), leads.c.fields)
    frame = pd.concat(
        [
            _frame(connection, query.where(leads.c.lead_id.in_(ids[start : start + IN_CHUNK])))
            for start in range(0, max(len(ids), 1), IN_CHUNK)
        ],
        ignore_index=True,
    )
    stored = frame.pop("fields")
    for name, kind in custom.items():
        frame[name] = _field(stored, name, kind)
    return frame.sort_values("lead_id", ignore_index=True)


@dataclass(frozen=True)
class StoredLeads:
    """Stored leads with their events, as columns for scoring them, without a DataFrame (a
    rescore of one lead must stay cheap): `leads` has the contract's lead columns, `status`
    and `fields` (each lead's custom and display values, decoded) as lists, a lead per entry in
    the order asked, `created_at` as int64 microseconds since the Unix epoch (naive UTC);
    `activities` and `touches` have their contract columns as arrays, `occurred_at` in
    microseconds, `responded` a float (NaN when not known), and `lead`, the position of their
    lead in `leads`; each lead's events in time order."""

    leads: dict[str, Any]
    activities: dict[str, np.ndarray]
    touches: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.leads["lead_id"])


STORED_LEAD_COLUMNS = (*LEAD_COLUMNS, "status", "fields")


def stored_leads(connection: sa.Connection, lead_ids: Sequence[str]) -> StoredLeads:
    """The stored leads among `lead_ids` with their events (ids the store has no lead of are
    left out: their events wait for it). Times are read as text on both databases (ISO text
    parses as a whole column in numpy; psycopg's datetimes would convert one by one)."""
    asked = list(dict.fromkeys(lead_ids))
    found: list[Any] = []
    events: dict[str, list[Any]] = {"activities": [], "touches": []}
    for start in range(0, len(asked), IN_CHUNK):
        chunk = asked[start : start + IN_CHUNK]
        query = sa.select(*(_as_text(leads.c[c]) for c in STORED_LEAD_COLUMNS))
        found += _rows(connection, query.where(leads.c.lead_id.in_(chunk)))[1]
        for name, table, columns in (
            ("activities", activities, ACTIVITY_COLUMNS),
            ("touches", touches, TOUCH_COLUMNS),
        ):
            query = (
                sa.select(*(_as_text(table.c[c]) for c in columns))
                .where(table.c.lead_id.in_(chunk))
                .order_by(table.c.lead_id, table.c.occurred_at, table.c.id)
            )
            events[name] += _rows(connection, query)[1]
    place = {lead_id: i for i, lead_id in enumerate(asked)}
    found.sort(key=lambda row: place[row[0]])
    lead_columns: dict[str, Any] = dict(
        zip(STORED_LEAD_COLUMNS, _columns(found, len(STORED_LEAD_COLUMNS)), strict=True)
    )
    lead_columns["created_at"] = _micros(lead_columns["created_at"])
    lead_columns["fields"] = [_decoded(f) for f in lead_columns["fields"]]
    position = {lead_id: i for i, lead_id in enumerate(lead_columns["lead_id"])}
    read: dict[str, dict[str, np.ndarray]] = {}
    for name, columns in (("activities", ACTIVITY_COLUMNS), ("touches", TOUCH_COLUMNS)):
        # Events of an id the store has no lead of wait for it: not scored.
        rows = [row for row in events[name] if row[0] in position]
        values = dict(zip(columns, _columns(rows, len(columns)), strict=True))
        arrays = {c: np.array(v, dtype=object) for c, v in values.items() if c != "lead_id"}
        arrays["lead"] = np.array([position[i] for i in values["lead_id"]], dtype=np.int64)
        arrays["occurred_at"] = _micros(values["occurred_at"])
        if "responded" in arrays:
            arrays["responded"] = np.array(values["responded"], dtype=np.float64)
        read[name] = arrays
    return StoredLeads(lead_columns, read["activities"], read["touches"])


def _as_text(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """A time column as ISO text ('YYYY-MM-DD HH:MM:SS[.ffffff]'), any other as it is."""
    if isinstance(column.type, sa.DateTime):
        return sa.cast(column, sa.String).label(column.name)
    return column


def _columns(rows: Sequence[Any], width: int) -> list[list[Any]]:
    """Rows as `width` columns (through one object array: zip(*rows) is several times slower
    on many rows)."""
    table = np.array(rows, dtype=object).reshape(len(rows), width)
    return [table[:, i].tolist() for i in range(width)]


def _micros(times: list[str]) -> np.ndarray:
    """ISO times (naive UTC) as int64 microseconds since the Unix epoch."""
    return np.array(times, dtype="datetime64[us]").astype(np.int64)


IN_CHUNK = 5000
"""Lead ids per `IN (...)` list: well under SQLite's 32,766 bound parameters."""
