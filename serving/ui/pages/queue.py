"""The Queue page: what the live lead store holds for sales now, in plain words. Leads waiting
for sales (longest first) with their waiting time and SLA state, those past the SLA, those
taken back to nurture, and the messages to the CRM (the webhook outbox: sent, waiting to be
retried, failed for good). Its queries and SLA states are the lead API's own
(`leads_api.queued`, `leads_api.sales_state`, `outbox.recent`); a store that does not exist yet
is not created. `lead_trend` draws a stored lead's score history for the Lead page."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from leadready.features.leadstore import outbox
from leadready.features.leadstore.database import StoreError
from leadready.features.leadstore.tables import current_scores, deliveries, score_history
from leadready.features.routing import Route
from leadready.serving.leads_api import HISTORY_POINTS, queued, sales_state
from leadready.serving.live import naive
from leadready.serving.ui.auth import SessionDep
from leadready.serving.ui.charts import INK, ROUTE_COLORS, line_chart
from leadready.serving.ui.formatting import when
from leadready.serving.ui.web import PREFIX, render

SHOWN = 100
"""Leads listed per section, and deliveries in the recent and dead lists."""
DELIVERY_WORDS = {
    "delivered": "sent",
    "pending": "waiting to be sent or retried",
    "dead": "failed for good",
}
EVENT_WORDS = {
    "lead.route_changed": "route changed",
    "lead.sla_breached": "past the promise to call",
    "lead.taken_back": "taken back to nurture",
}

UNREADABLE = "The leads leadready follows cannot be read right now; try again in a moment."

log = logging.getLogger("leadready.serve")
router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _store(request: Request) -> sa.Engine | None:
    """The lead store when it exists; None when the store was never used (nothing is created)."""
    return request.app.state.leadstore.existing()


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, session: SessionDep) -> Response:
    try:
        store = _store(request)
        context = None if store is None else _queue(store, request)
    except (StoreError, sa.exc.DBAPIError) as exc:  # the reason names the database: log only
        log.error("the Queue page cannot read the lead store: %s", exc)
        return render(
            request, "error.html", {"page": "queue", "message": UNREADABLE}, session, status=503
        )
    if context is None:
        return render(request, "queue.html", {"page": "queue", "store": False}, session)
    return render(request, "queue.html", context, session)


def _queue(store: sa.Engine, request: Request) -> dict[str, Any]:
    """What the Queue page shows, read in one connection."""
    policy = request.app.state.server.settings.policy()
    c = current_scores.c
    with store.connect() as connection:
        total, rows = queued(connection, Route.SALES, SHOWN, 0)
        back_total = connection.execute(
            sa.select(sa.func.count()).where(c.sla_state == "taken_back")
        ).scalar_one()
        back = connection.execute(
            sa.select(current_scores)
            .where(c.sla_state == "taken_back")
            .order_by(c.taken_back_at.desc(), c.lead_id)
            .limit(SHOWN)
        ).all()
        counts = outbox.backlog(connection)
        sent = connection.execute(
            sa.select(sa.func.count())
            .select_from(deliveries)
            .where(deliveries.c.status == "delivered")
        ).scalar_one()
        recent = outbox.recent(connection, None, SHOWN)
        dead = outbox.recent(connection, "dead", SHOWN)
    now = naive(datetime.now(UTC))
    waiting = [
        {"lead_id": r.lead_id, "readiness": r.readiness, **sales_state(r._mapping, now, policy)}
        for r in rows
    ]
    return {
        "page": "queue",
        "store": True,
        "policy": policy,
        "total": total,
        "waiting": [w for w in waiting if w["sla_state"] != "at_risk"],
        "at_risk": [w for w in waiting if w["sla_state"] == "at_risk"],
        "back_total": back_total,
        "taken_back": back,
        "sent": sent,
        "pending": counts.pending,
        "dead_total": counts.dead,
        "recent": recent,
        "dead": dead,
        "delivery_words": DELIVERY_WORDS,
        "event_words": EVENT_WORDS,
    }


def lead_trend(request: Request, lead_id: str) -> Markup | None:
    """A stored lead's readiness over time (its score history, up to the latest
    HISTORY_POINTS), with each change of route marked in the route's colour; None when the
    lead is not in the store (or there is no store)."""
    h = score_history.c
    try:
        store = _store(request)
        if store is None:
            return None
        with store.connect() as connection:
            latest = connection.execute(
                sa.select(h.scored_at, h.readiness, h.route)
                .where(h.lead_id == lead_id)
                .order_by(h.scored_at.desc(), h.id.desc())
                .limit(HISTORY_POINTS)
            ).all()
    except (StoreError, sa.exc.DBAPIError) as exc:  # the page still shows the export's lead
        log.error("the Lead page cannot read the lead store: %s", exc)
        return None
    if not latest:
        return None
    points = list(reversed(latest))
    start, end = points[0].scored_at, points[-1].scored_at
    span = (end - start).total_seconds() or 1.0

    def x(at: datetime) -> float:
        return (at - start).total_seconds() / span

    changes: dict[str, list[tuple[float, float | None]]] = {}
    previous = None
    for p in points:
        if p.route != previous:
            changes.setdefault(p.route, []).append((x(p.scored_at), p.readiness))
        previous = p.route
    series: list[dict[str, Any]] = [
        {
            "name": "readiness",
            "points": [(x(p.scored_at), p.readiness) for p in points],
            "color": INK,
        },
        *(
            {
                "name": f"to {route}",
                "points": marks,
                "color": ROUTE_COLORS.get(route, "#718096"),
                "markers": True,
                "line": False,
            }
            for route, marks in changes.items()
        ),
    ]
    ticks = [(0.0, when(start)), (1.0, when(end))] if end > start else [(0.0, when(start))]
    return line_chart(
        series,
        f"Readiness of lead {lead_id} over time",
        "time (UTC)",
        "readiness",
        x_ticks=ticks,
        width=720,
        height=280,
    )
