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


def _frame(connection: sa.Connection, query: sa.Select[Any]) -> pd.DataFrame:
    """A query's rows with the dtypes `load_crm` decides: text as `str`, times as naive
    datetime64[ns], numbers (and `responded`) as float with NaN where missing.

    The rows come straight from the driver's cursor, in this transaction, into one 2-D object
    array, skipping SQLAlchemy's per-row processing, which took most of the time (6.3 s -> 1.9 s
    for 20,000 leads and 1.3M events in SQLite); times then parse as whole columns (SQLite
    keeps them as ISO text, psycopg gives datetimes)."""
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )  # an IN list as one bound parameter per value
    params: Any = compiled.params
    if compiled.positional:  # SQLite's "?" placeholders
        params = tuple(params[name] for name in compiled.positiontup or ())
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        cursor.close()
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
    """Stored leads with their events, as columns for scoring them (`_frame`'s dtypes):
    `leads` has the contract's lead columns, `status` and `fields` (each lead's custom and
    display values, decoded), a row per stored lead in the order asked; `activities` and
    `touches` have their contract columns and `lead`, the row of their lead in `leads`, each
    lead's events in time order."""

    leads: pd.DataFrame
    activities: pd.DataFrame
    touches: pd.DataFrame


def stored_leads(connection: sa.Connection, lead_ids: Sequence[str]) -> StoredLeads:
    """The stored leads among `lead_ids` with their events (ids the store has no lead of are
    left out: their events wait for it), read as `read_crm` reads the whole store."""
    parts: dict[str, list[pd.DataFrame]] = {"leads": [], "activities": [], "touches": []}
    for start in range(0, len(lead_ids), IN_CHUNK):
        chunk = list(lead_ids[start : start + IN_CHUNK])
        lead_columns = (*(leads.c[c] for c in LEAD_COLUMNS), leads.c.status, leads.c.fields)
        parts["leads"].append(
            _frame(connection, sa.select(*lead_columns).where(leads.c.lead_id.in_(chunk)))
        )
        for name, table, columns in (
            ("activities", activities, ACTIVITY_COLUMNS),
            ("touches", touches, TOUCH_COLUMNS),
        ):
            query = (
                sa.select(*(table.c[c] for c in columns))
                .where(table.c.lead_id.in_(chunk))
                .order_by(table.c.lead_id, table.c.occurred_at, table.c.id)
            )
            parts[name].append(_frame(connection, query))
    found = pd.concat(parts["leads"], ignore_index=True)
    asked = pd.Index(list(dict.fromkeys(lead_ids)))
    order = found["lead_id"].map(pd.Series(np.arange(len(asked)), index=asked))
    found = found.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)
    found["fields"] = pd.Series([_decoded(f) for f in found["fields"]], dtype=object)
    position = pd.Index(found["lead_id"])
    events = {}
    for name in ("activities", "touches"):
        frame = pd.concat(parts[name], ignore_index=True)
        events[name] = frame.assign(lead=position.get_indexer(frame["lead_id"]))
    return StoredLeads(found, events["activities"], events["touches"])


IN_CHUNK = 5000
"""Lead ids per `IN (...)` list: well under SQLite's 32,766 bound parameters."""
