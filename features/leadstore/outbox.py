"""Writing webhook events into the outbox (`tables.deliveries`).

A delivery is written in the same transaction as the change it announces (a route change, an
SLA breach, a take-back), so neither exists without the other; a dispatcher on the serving side
sends `pending` deliveries, retries them and marks them `delivered` or `dead`. The payload is
the event's JSON body as receivers get it, `delivery_id` included, so they deduplicate on it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from leadready.features.leadstore.tables import deliveries

EVENT_TYPES = ("lead.route_changed", "lead.sla_breached", "lead.taken_back")


def enqueue(
    connection: sa.Connection,
    event_type: str,
    lead_id: str | None,
    body: dict[str, Any],
    now: dt.datetime,
) -> str:
    """Add one delivery of `event_type` (with `body`, to which its type and delivery_id are
    added) to the outbox inside the caller's transaction, due at once; its delivery_id."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}; one of {EVENT_TYPES}")
    delivery_id = str(uuid.uuid4())
    payload = {"type": event_type, "delivery_id": delivery_id, **body}
    connection.execute(
        sa.insert(deliveries).values(
            delivery_id=delivery_id,
            type=event_type,
            lead_id=lead_id,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return delivery_id
