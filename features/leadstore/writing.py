"""Writing single leads and events into the lead store as a CRM sends them (the live API), in
the caller's transaction. Exports go in bulk through `loading`; both keep the same rows: the
contract's lead columns, custom fields in `leads.fields`, events once by `event_id`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from leadready.features.contract import LEAD_COLUMNS
from leadready.features.leadstore.reading import IN_CHUNK
from leadready.features.leadstore.tables import EVENT_TABLES, lead_fields, leads

CONTRACT_DATA = tuple(c for c in LEAD_COLUMNS if c not in ("lead_id", "outcome", "outcome_at"))
"""The lead columns a CRM sets through the API (outcomes come from exports and /v1/outcomes)."""


def put_lead(
    connection: sa.Connection,
    lead: Mapping[str, Any],
    fields: Mapping[str, Any],
    kinds: Mapping[str, str],
    status: str | None,
    now: datetime,
) -> bool:
    """Create or update one lead: `lead` has `lead_id` and the CONTRACT_DATA columns as the
    contract reads them, `fields` its custom fields (`kinds`: each one's kind, recorded in
    `lead_fields` when the store does not know it yet); `status` None keeps the lead's. True
    when the lead is new."""
    _record_kinds(connection, kinds)
    values = {c: lead[c] for c in CONTRACT_DATA}
    known = connection.execute(
        sa.select(leads.c.fields).where(leads.c.lead_id == lead["lead_id"])
    ).first()
    if known is None:
        connection.execute(
            leads.insert().values(
                lead_id=lead["lead_id"],
                **values,
                outcome="open",
                fields=dict(fields) or None,
                status=status or "new",
                stored_at=now,
                updated_at=now,
            )
        )
        return True
    merged = {**(known.fields or {}), **fields}
    changes: dict[str, Any] = {**values, "fields": merged or None, "updated_at": now}
    if status is not None:
        changes["status"] = status
    connection.execute(sa.update(leads).where(leads.c.lead_id == lead["lead_id"]).values(changes))
    return False


def _record_kinds(connection: sa.Connection, kinds: Mapping[str, str]) -> None:
    if not kinds:
        return
    known = set(connection.execute(sa.select(lead_fields.c.name)).scalars())
    start = len(known)
    added = [name for name in kinds if name not in known]
    if added:
        connection.execute(
            lead_fields.insert(),
            [
                {"name": name, "kind": kinds[name], "position": start + i}
                for i, name in enumerate(added)
            ],
        )


def add_events(connection: sa.Connection, events: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Insert events (each with `event_id`, `lead_id`, `occurred_at` and either `type` for an
    activity or `channel`, `team`, `responded` for a touch); per event, True when it was added,
    False when the store (or an earlier event of the same call) already had its event_id."""
    ids = [e["event_id"] for e in events]
    seen: set[str] = set()
    for table in EVENT_TABLES.values():
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            seen.update(
                connection.execute(
                    sa.select(table.c.event_id).where(table.c.event_id.in_(chunk))
                ).scalars()
            )
    added: list[bool] = []
    rows: dict[str, list[Mapping[str, Any]]] = {name: [] for name in EVENT_TABLES}
    for event in events:
        new = event["event_id"] not in seen
        seen.add(event["event_id"])
        added.append(new)
        if new:
            rows["activities" if "type" in event else "touches"].append(event)
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    for name, table_rows in rows.items():
        if table_rows:
            connection.execute(
                insert(EVENT_TABLES[name]).on_conflict_do_nothing(index_elements=["event_id"]),
                list(table_rows),
            )
    return added
