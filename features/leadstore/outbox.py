"""Writing webhook events into the outbox (`tables.deliveries`).

A delivery is written in the same transaction as the change it announces (a route change, an
SLA breach, a take-back), so neither exists without the other; a dispatcher on the serving side
sends `pending` deliveries, retries them and marks them `delivered` or `dead`. The payload is
the event's JSON body as receivers get it, `delivery_id` included, so they deduplicate on it.

The dispatcher's side is here too, so every statement on the outbox is in one place: `any_due`
and `claim` the due deliveries, `settle` each attempt, and for people `recent`, `backlog` and
`requeue`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from leadready.features.leadstore.tables import DELIVERY_STATUSES, deliveries, delivery_receipts

EVENT_TYPES = ("lead.route_changed", "lead.sla_breached", "lead.taken_back")


Announcement = tuple[str, str | None, dict[str, Any]]
"""A webhook event to deliver: its type, its lead's id (or None) and its body."""


def enqueue(
    connection: sa.Connection, announcements: Sequence[Announcement], now: dt.datetime
) -> list[str]:
    """Add a delivery per announcement (its body, to which its type and delivery_id are added)
    to the outbox inside the caller's transaction, due at once, in one statement; their
    delivery_ids."""
    rows: list[dict[str, Any]] = []
    for event_type, lead_id, body in announcements:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown webhook event type {event_type!r}; one of {EVENT_TYPES}")
        delivery_id = str(uuid.uuid4())
        rows.append(
            {
                "delivery_id": delivery_id,
                "type": event_type,
                "lead_id": lead_id,
                "payload": {"type": event_type, "delivery_id": delivery_id, **body},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )
    if rows:
        connection.execute(sa.insert(deliveries), rows)
    return [str(row["delivery_id"]) for row in rows]


@dataclass(frozen=True)
class Claimed:
    """A due delivery a dispatcher has claimed: what it sends, and to which URLs it went."""

    delivery_id: str
    payload: dict[str, Any]
    attempts: int
    window_from: dt.datetime
    """Where its retry window starts: its creation, or its requeue (`requeue`)."""
    accepted: frozenset[str]
    """The URLs that accepted it already (`delivery_receipts`)."""


def _due(now: dt.datetime) -> tuple[sa.ColumnElement[bool], ...]:
    """Pending, due at `now`, and held by no dispatcher (or by one whose lease ran out)."""
    return (
        deliveries.c.status == "pending",
        deliveries.c.next_attempt_at <= now,
        sa.or_(deliveries.c.claimed_until.is_(None), deliveries.c.claimed_until < now),
    )


def any_due(connection: sa.Connection, now: dt.datetime) -> bool:
    """Whether `claim` would find something: a read, so that an idle poll takes no write lock
    (run it in a transaction of its own: in SQLite, a transaction that read before it writes
    fails at once when another process wrote meanwhile, instead of waiting its turn)."""
    query = sa.select(deliveries.c.delivery_id).where(*_due(now)).limit(1)
    return connection.execute(query).first() is not None


def claim(
    connection: sa.Connection, now: dt.datetime, lease_until: dt.datetime, limit: int
) -> list[Claimed]:
    """Claim up to `limit` pending deliveries due at `now` that no dispatcher holds, until
    `lease_until`, in one statement (the caller commits at once).

    Two dispatchers never claim one delivery: SQLite runs one write at a time; PostgreSQL locks
    the chosen rows (`FOR UPDATE SKIP LOCKED`, so a second dispatcher takes others instead of
    waiting) and the UPDATE checks the claim again on the row it locked."""
    chosen = (
        sa.select(deliveries.c.delivery_id)
        .where(*_due(now))
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    rows = connection.execute(
        sa.update(deliveries)
        .where(deliveries.c.delivery_id.in_(chosen), *_due(now))
        .values(claimed_until=lease_until)
        .returning(
            deliveries.c.delivery_id,
            deliveries.c.payload,
            deliveries.c.attempts,
            sa.func.coalesce(deliveries.c.requeued_at, deliveries.c.created_at),
        )
    ).all()
    if not rows:
        return []
    accepted: dict[str, set[str]] = {}
    for delivery_id, url in connection.execute(
        sa.select(delivery_receipts.c.delivery_id, delivery_receipts.c.url).where(
            delivery_receipts.c.delivery_id.in_([r[0] for r in rows])
        )
    ):
        accepted.setdefault(delivery_id, set()).add(url)
    return [
        Claimed(
            delivery_id=delivery_id,
            payload=dict(json.loads(payload) if isinstance(payload, str) else payload),
            attempts=attempts,
            window_from=window_from,
            accepted=frozenset(accepted.get(delivery_id, ())),
        )
        for delivery_id, payload, attempts, window_from in rows
    ]


def settle(
    connection: sa.Connection,
    delivery_id: str,
    now: dt.datetime,
    accepted: Mapping[str, int],
    status: str,
    next_attempt_at: dt.datetime | None,
    last_error: str | None,
) -> None:
    """Record one attempt at a claimed delivery and release it: the URLs that accepted it now
    (url -> HTTP status), its new status, when to try again, and the last error (kept)."""
    if status not in DELIVERY_STATUSES:
        raise ValueError(f"unknown delivery status {status!r}; one of {DELIVERY_STATUSES}")
    if accepted:
        connection.execute(
            sa.insert(delivery_receipts),
            [
                {"delivery_id": delivery_id, "url": url, "status_code": code, "delivered_at": now}
                for url, code in accepted.items()
            ],
        )
    values: dict[str, Any] = {
        "status": status,
        "attempts": deliveries.c.attempts + 1,
        "next_attempt_at": next_attempt_at,
        "claimed_until": None,
    }
    if last_error is not None:
        values["last_error"] = last_error
    if status == "delivered":
        values["delivered_at"] = now
    connection.execute(
        sa.update(deliveries).where(deliveries.c.delivery_id == delivery_id).values(**values)
    )


LISTED = (
    "delivery_id",
    "type",
    "lead_id",
    "status",
    "attempts",
    "created_at",
    "next_attempt_at",
    "delivered_at",
    "last_error",
)


def recent(connection: sa.Connection, status: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest deliveries (of one status, or all), newest first, with the LISTED columns."""
    query = sa.select(*(deliveries.c[c] for c in LISTED)).order_by(
        deliveries.c.created_at.desc(), deliveries.c.delivery_id
    )
    if status is not None:
        query = query.where(deliveries.c.status == status)
    return [dict(row._mapping) for row in connection.execute(query.limit(limit))]


@dataclass(frozen=True)
class Backlog:
    pending: int
    dead: int
    oldest_pending: dt.datetime | None


def backlog(connection: sa.Connection) -> Backlog:
    """How many deliveries wait (and since when) and how many are dead letters."""
    counted = connection.execute(
        sa.select(deliveries.c.status, sa.func.count())
        .where(deliveries.c.status.in_(("pending", "dead")))
        .group_by(deliveries.c.status)
    )
    counts = {status: int(count) for status, count in counted}
    oldest = connection.scalar(
        sa.select(sa.func.min(deliveries.c.created_at)).where(deliveries.c.status == "pending")
    )
    return Backlog(counts.get("pending", 0), counts.get("dead", 0), oldest)


class RequeueError(ValueError):
    """A delivery that cannot be requeued (unknown, or delivered already); says which."""


def requeue(connection: sa.Connection, delivery_ids: list[str] | None, now: dt.datetime) -> int:
    """Put dead letters (these ids, or every dead one when None) back as pending, due at
    `now`, with a new retry window from `now`; their last_error is kept until the next attempt.
    A pending id is made due at once too. Returns how many were requeued."""
    query = sa.update(deliveries).values(
        status="pending", next_attempt_at=now, requeued_at=now, claimed_until=None
    )
    if delivery_ids is None:
        return connection.execute(query.where(deliveries.c.status == "dead")).rowcount
    found = dict(
        connection.execute(
            sa.select(deliveries.c.delivery_id, deliveries.c.status).where(
                deliveries.c.delivery_id.in_(delivery_ids)
            )
        ).all()
    )
    unknown = [i for i in delivery_ids if i not in found]
    delivered = [i for i in delivery_ids if found.get(i) == "delivered"]
    if unknown or delivered:
        raise RequeueError(
            "; ".join(
                [f"no delivery {i!r} in the store" for i in unknown]
                + [f"delivery {i!r} was delivered already" for i in delivered]
            )
        )
    return connection.execute(query.where(deliveries.c.delivery_id.in_(delivery_ids))).rowcount
