"""Writing a validated CRM export (`load_crm`'s `Crm`) into the lead store, in one transaction:
a failure or an interrupt leaves the store as it was.

Leads are upserted by `lead_id`: a new lead is inserted (status `new`), a known one whose
contract fields, custom fields or outcome differ is updated, an identical one left alone.
Events are inserted once, by `event_id`. A row of an export has no id of its own, so its id is
derived from what it says:

    activities:<lead_id>:<occurred_at, Unix seconds>:<type>:<n>
    touches:<lead_id>:<occurred_at, Unix seconds>:<channel>:<team>:<responded 1, 0 or empty>:<n>

where `n` counts the earlier rows of the same export with the same id (0 for the first), so
two identical rows stay two events. Loading an export again, or a later export that repeats
older events, adds nothing; file order plays no part. The fields after the lead id are digits
and vocabulary values, never colons, so an id cannot be read two ways even when a lead id holds
colons. A row whose values change (a corrected `responded`) is a new event.

Rows go in bulk: SQLite through the driver's executemany, PostgreSQL through COPY into a
temporary table and one INSERT ... SELECT ... ON CONFLICT DO NOTHING per chunk.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute
import pyarrow.csv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from leadready.features.contract import LEAD_COLUMNS, Crm
from leadready.features.leadstore.database import StoreError
from leadready.features.leadstore.tables import EVENT_TABLES, lead_fields, leads

CHUNK_ROWS = 50_000
"""Rows written per statement (and progress step)."""
LEAD_DATA = (*LEAD_COLUMNS, "fields")
"""The columns of `leads` an export sets: the contract's, and the custom fields."""
EVENT_VALUES = {"activities": ("type",), "touches": ("channel", "team", "responded")}

Progress = Callable[[int, int], None]
"""Called with the rows written so far and the rows to write."""


@dataclass(frozen=True)
class LoadSummary:
    leads_new: int
    leads_updated: int
    leads_unchanged: int
    events_added: dict[str, int] = field(default_factory=dict)
    events_known: dict[str, int] = field(default_factory=dict)
    """Events of the export the store already had, by table."""


def event_ids(table: str, events: pd.DataFrame) -> pd.Series:
    """The ids of an export's event rows (see the module docstring), in the frame's order."""
    if events.empty:
        return pd.Series([], index=events.index, dtype="str")
    seconds = events["occurred_at"].to_numpy().astype("datetime64[s]").astype(np.int64)
    parts: list[Any] = [pa.scalar(table), _text(events["lead_id"]), _digits(seconds)]
    for column in EVENT_VALUES[table]:
        if column == "responded":
            known = events[column].notna().to_numpy()
            flags = _digits(
                np.where(known, events[column].fillna(0).to_numpy(), 0).astype(np.int64)
            )
            parts.append(pa.compute.if_else(pa.array(known), flags, pa.scalar("")))
        else:
            parts.append(_text(events[column]))
    base = pa.compute.binary_join_element_wise(*parts, ":")
    codes, _ = pd.factorize(pd.Series(base, dtype="str"))
    nth = pd.Series(codes).groupby(codes, sort=False).cumcount().to_numpy()
    ids = pa.compute.binary_join_element_wise(base, _digits(nth), ":")
    return pd.Series(ids, index=events.index, dtype="str")


def _text(series: pd.Series) -> pa.Array:
    """A text column as an arrow string array (without a copy when pandas holds it in arrow)."""
    return pa.array(series, from_pandas=True).cast(pa.string())


def _digits(numbers: np.ndarray) -> pa.Array:
    return pa.compute.cast(pa.array(numbers), pa.string())


def load_export(
    engine: sa.Engine, crm: Crm, now: datetime, progress: Progress | None = None
) -> LoadSummary:
    """Write `crm` into the store in one transaction; `now` (naive UTC) stamps new and changed
    leads. A `StoreError` when the export's custom fields contradict the store's."""
    report = progress or (lambda done, total: None)
    frames = {"activities": crm.activities, "touches": crm.touches}
    total = len(crm.leads) + sum(len(f) for f in frames.values())
    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        report(done, total)

    report(0, total)
    with engine.begin() as connection:
        writer = _Writer.of(connection)
        _record_fields(connection, crm)
        new, updated = writer.upsert_leads(_lead_rows(crm), now, advance)
        added, known = {}, {}
        for name, events in frames.items():
            added[name] = writer.insert_events(name, _event_rows(name, events), advance)
            known[name] = len(events) - added[name]
    return LoadSummary(new, updated, len(crm.leads) - new - updated, added, known)


def _field_kinds(crm: Crm) -> dict[str, str]:
    return {**crm.custom, **dict.fromkeys(crm.display, "display")}


def _record_fields(connection: sa.Connection, crm: Crm) -> None:
    """Add the export's custom and display columns to `lead_fields`; a StoreError when one is
    known as another kind (a numeric feature in the store, categorical in this schema)."""
    known = {
        row.name: row.kind
        for row in connection.execute(sa.select(lead_fields.c.name, lead_fields.c.kind))
    }
    clashes = [
        f"'{name}' is {known[name]} in the store but {kind} in this export's schema"
        for name, kind in _field_kinds(crm).items()
        if name in known and known[name] != kind
    ]
    if clashes:
        raise StoreError(
            "the export's custom fields contradict the lead store's: "
            + "; ".join(clashes)
            + "; keep each field's kind (numeric, categorical or display) or use a new store"
        )
    start = len(known)
    added = [name for name in _field_kinds(crm) if name not in known]
    if added:
        kinds = _field_kinds(crm)
        connection.execute(
            lead_fields.insert(),
            [
                {"name": name, "kind": kinds[name], "position": start + i}
                for i, name in enumerate(added)
            ],
        )


def _timestamps(series: pd.Series) -> pa.Array:
    return pa.array(series, from_pandas=True).cast(pa.timestamp("us"), safe=False)


def _lead_rows(crm: Crm) -> pa.Table:
    frame = crm.leads
    columns: dict[str, pa.Array] = {}
    for name in LEAD_COLUMNS:
        if name in ("created_at", "outcome_at"):
            columns[name] = _timestamps(frame[name])
        elif name == "company_size":
            columns[name] = pa.array(frame[name], type=pa.float64(), from_pandas=True)
        else:
            columns[name] = _text(frame[name])
    kinds = _field_kinds(crm)
    if kinds:
        values = [frame[name].to_numpy(dtype=object) for name in kinds]
        columns["fields"] = pa.array(
            [
                json.dumps(dict(zip(kinds, map(_json_value, row), strict=True)))
                for row in zip(*values, strict=True)
            ],
            type=pa.string(),
        )
    else:
        columns["fields"] = pa.nulls(len(frame), type=pa.string())
    return pa.table(columns)


def _json_value(value: Any) -> Any:
    """A field's value as JSON holds it: NaN (a missing number) as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _event_rows(name: str, events: pd.DataFrame) -> pa.Table:
    columns: dict[str, pa.Array] = {
        "event_id": _text(event_ids(name, events)),
        "lead_id": _text(events["lead_id"]),
        "occurred_at": _timestamps(events["occurred_at"]),
    }
    for column in EVENT_VALUES[name]:
        if column == "responded":
            responded = events[column]
            columns[column] = pa.array(responded == 1.0, mask=responded.isna().to_numpy())
        else:
            columns[column] = _text(events[column])
    return pa.table(columns)


def _staging(name: str, like: sa.Table, columns: tuple[str, ...]) -> sa.Table:
    """A temporary table with `columns` of `like` (types and nulls as there, no keys)."""
    return sa.Table(
        f"{name}_staging",
        sa.MetaData(),
        *(sa.Column(c, like.c[c].type, nullable=True) for c in columns),
        prefixes=["TEMPORARY"],
    )


@dataclass
class _Writer:
    """Bulk writes in one transaction, the fastest way each database takes them."""

    connection: sa.Connection

    @staticmethod
    def of(connection: sa.Connection) -> _Writer:
        if connection.dialect.name == "postgresql":
            return _PostgresWriter(connection)
        if connection.dialect.name == "sqlite":
            return _SqliteWriter(connection)
        raise StoreError(
            f"the lead store supports SQLite and PostgreSQL, not {connection.dialect.name}"
        )

    def insert(self, table: sa.Table) -> Any:
        dialect = postgresql if self.connection.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def stage(self, table: sa.Table, rows: pa.Table, advance: Callable[[int], None]) -> None:
        raise NotImplementedError

    def upsert_leads(
        self, rows: pa.Table, now: datetime, advance: Callable[[int], None]
    ) -> tuple[int, int]:
        """Stage the export's leads, update the known ones that differ, insert the new ones;
        returns (new, updated)."""
        staging = _staging("leads", leads, LEAD_DATA)
        staging.create(self.connection)
        self.stage(staging, rows, advance)
        differs = sa.or_(*(leads.c[c].is_distinct_from(staging.c[c]) for c in LEAD_DATA[1:]))
        updated = self.connection.execute(
            leads.update()
            .where(leads.c.lead_id == staging.c.lead_id, differs)
            .values({**{c: staging.c[c] for c in LEAD_DATA[1:]}, "updated_at": now})
            .execution_options(preserve_rowcount=True)
        ).rowcount
        stamp = sa.literal(now, sa.DateTime())
        new = self.connection.execute(
            self.insert(leads)
            .from_select(
                [*LEAD_DATA, "stored_at", "updated_at"],
                sa.select(*staging.c, stamp, stamp).where(sa.true()),
            )
            .on_conflict_do_nothing(index_elements=["lead_id"])
            .execution_options(preserve_rowcount=True)
        ).rowcount
        staging.drop(self.connection)
        return new, updated

    def insert_events(self, name: str, rows: pa.Table, advance: Callable[[int], None]) -> int:
        raise NotImplementedError


class _SqliteWriter(_Writer):
    def _tuples(self, rows: pa.Table) -> list[tuple[Any, ...]]:
        """Rows as the driver takes them: times as SQLAlchemy's SQLite DateTime stores them
        (`YYYY-MM-DD HH:MM:SS.ffffff` text), so that Core reads them back as datetimes."""
        columns = [
            column.cast(pa.string()) if pa.types.is_timestamp(column.type) else column
            for column in rows.columns
        ]
        return list(zip(*(c.to_pylist() for c in columns), strict=True))

    def _executemany(self, sql: str, rows: pa.Table, advance: Callable[[int], None]) -> int:
        written = 0
        for start in range(0, rows.num_rows, CHUNK_ROWS):
            chunk = rows.slice(start, CHUNK_ROWS)
            written += self.connection.exec_driver_sql(sql, self._tuples(chunk)).rowcount
            advance(chunk.num_rows)
        return written

    def stage(self, table: sa.Table, rows: pa.Table, advance: Callable[[int], None]) -> None:
        self._executemany(str(table.insert().compile(self.connection)), rows, advance)

    def insert_events(self, name: str, rows: pa.Table, advance: Callable[[int], None]) -> int:
        table = EVENT_TABLES[name]
        statement = (
            sqlite.insert(table)
            .values({c: sa.bindparam(c) for c in rows.column_names})
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
        return self._executemany(str(statement.compile(self.connection)), rows, advance)


class _PostgresWriter(_Writer):
    def _copy(self, table: sa.Table, rows: pa.Table) -> None:
        """COPY `rows` into `table` as CSV (pyarrow quotes every text and leaves nulls
        unquoted and empty, as PostgreSQL's CSV format reads them)."""
        buffer = io.BytesIO()
        pyarrow.csv.write_csv(rows, buffer, pyarrow.csv.WriteOptions(include_header=False))
        names = ", ".join(f'"{c}"' for c in rows.column_names)
        cursor = self.connection.connection.cursor()
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT csv)') as copy:
            copy.write(buffer.getvalue())

    def stage(self, table: sa.Table, rows: pa.Table, advance: Callable[[int], None]) -> None:
        for start in range(0, rows.num_rows, CHUNK_ROWS):
            chunk = rows.slice(start, CHUNK_ROWS)
            self._copy(table, chunk)
            advance(chunk.num_rows)

    def insert_events(self, name: str, rows: pa.Table, advance: Callable[[int], None]) -> int:
        table = EVENT_TABLES[name]
        staging = _staging(name, table, tuple(rows.column_names))
        staging.create(self.connection)
        insert = (
            postgresql.insert(table)
            .from_select(rows.column_names, sa.select(*staging.c))
            .on_conflict_do_nothing(index_elements=["event_id"])
            .execution_options(preserve_rowcount=True)  # SQLAlchemy keeps it for UPDATE only
        )
        added = 0
        for start in range(0, rows.num_rows, CHUNK_ROWS):
            chunk = rows.slice(start, CHUNK_ROWS)
            self._copy(staging, chunk)
            added += self.connection.execute(insert).rowcount
            self.connection.execute(sa.text(f'TRUNCATE "{staging.name}"'))
            advance(chunk.num_rows)
        staging.drop(self.connection)
        return added
