"""The live lead API on the lead store: `PUT /v1/leads/{lead_id}`, `POST /v1/events`,
`GET /v1/leads/{lead_id}` and `GET /v1/queue`, behind the same API key as `/v1/score`.

Bodies are read as `/v1/score` reads them: the champion's schema (`serving.mapping`) first,
then the same validation (`schemas`), with errors in the same 422 style. Every change is one
transaction: its events or fields, the lead's new score (`serving.live.rescore`, the API's
scoring path), its history point and the webhook deliveries it announces. Handlers are plain
`def`: they wait on the database, in the thread pool.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from leadready.features.contract import quoted
from leadready.features.leadstore.database import StoreError, open_store
from leadready.features.leadstore.tables import LEAD_STATUSES, current_scores, leads, score_history
from leadready.features.leadstore.writing import add_events, put_lead
from leadready.serving.api import EngineDep, FastJSON, field_errors, printable, require_key
from leadready.serving.engine import Engine
from leadready.serving.live import LivePolicy, lock_leads, naive, rescore, sla_state
from leadready.serving.mapping import MappingError
from leadready.serving.schemas import (
    ErrorResponse,
    EventIn,
    EventsAnswer,
    EventsRequest,
    LeadAnswer,
    LeadPutAnswer,
    Message,
    QueueAnswer,
    ScoreRequest,
    id_text,
)

log = logging.getLogger("leadready.serve")
router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], tags=["leads"])
EVENTS_PATH = "/v1/events"
HISTORY_POINTS = 500
"""The most recent history points `GET /v1/leads/{id}` returns (oldest first)."""


class LeadStore:
    """This worker's lead store, opened (and migrated) on first use, then kept: a server that
    never serves the lead API never creates one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()

    def engine(self) -> sa.Engine:
        with self._lock:
            if self._engine is None:
                self._engine = open_store(self.url)
            return self._engine

    def existing(self) -> sa.Engine | None:
        """The store when it may hold leads: None for a SQLite store not created yet (the
        scheduled sweep then has nothing to do, and creates nothing)."""
        url = sa.make_url(self.url)
        database = url.database or ":memory:"
        sqlite = url.get_backend_name() == "sqlite"
        if (
            self._engine is None
            and sqlite
            and (database == ":memory:" or not os.path.exists(database))
        ):
            return None
        return self.engine()

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


NO_STORE = "the lead store cannot be opened (the server log says why); try again later"
STORE_REFUSED = (
    "the lead store refused the change, which was rolled back (the server log says why); "
    "send it again"
)


def get_store(request: Request) -> sa.Engine:
    """This worker's store; 503 when it cannot be opened. The reason names the database, so
    it goes to the server log only."""
    try:
        return request.app.state.leadstore.engine()
    except StoreError as exc:
        log.error("the lead store cannot be opened: %s", exc)
        raise HTTPException(503, NO_STORE) from None


@contextmanager
def transaction(store: sa.Engine) -> Iterator[sa.Connection]:
    """One change (or one consistent read), in one transaction; 503 when the database refuses
    it (a lock held too long, a connection lost): nothing of it is written."""
    try:
        with store.begin() as connection:
            yield connection
    except sa.exc.DBAPIError as exc:
        log.error("the lead store refused a change: %s", exc)
        raise HTTPException(503, STORE_REFUSED) from None


def get_policy(request: Request) -> LivePolicy:
    return request.app.state.server.settings.policy()


StoreDep = Annotated[sa.Engine, Depends(get_store)]
PolicyDep = Annotated[LivePolicy, Depends(get_policy)]
LeadIdPath = Annotated[str, Path(min_length=1, max_length=200)]
STORE_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": Message, "description": "No champion is loaded, or no lead store"},
}


def unprocessable(errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=422)


def _now() -> datetime:
    return datetime.now(UTC)


@router.put(
    "/leads/{lead_id}",
    response_model=LeadPutAnswer,
    responses={422: {"model": ErrorResponse}, **STORE_ERRORS},
)
def put_lead_route(
    lead_id: LeadIdPath,
    body: Annotated[dict[str, Any], Body()],
    engine: EngineDep,
    store: StoreDep,
    policy: PolicyDep,
    request: Request,
) -> JSONResponse:
    """Create or update a lead: its fields in the contract's names and values (or the CRM's,
    read with the champion's schema as `/v1/score` reads them), custom features, and an
    optional `status` (`sales_owned`: sales keeps the lead whatever the score; `new`: back to
    normal routing). The lead is scored at once with the events stored for it."""
    status = body.pop("status", None)
    if status is not None and status not in LEAD_STATUSES:
        return unprocessable(
            [
                {
                    "field": "status",
                    "message": f"value not allowed; got {printable(quoted(str(status)))}; "
                    f"expected one of {', '.join(LEAD_STATUSES)}",
                }
            ]
        )
    sent_id = body.get("lead_id")
    if sent_id is not None and id_text(sent_id) != lead_id:
        return unprocessable(
            [
                {
                    "field": "lead_id",
                    "message": f"differs from the path's lead id {printable(quoted(lead_id))}; "
                    "send the same one or leave it out",
                }
            ]
        )
    try:
        lead, applied = read_lead({**body, "lead_id": lead_id}, engine)
    except _Invalid as exc:
        return unprocessable(exc.errors)
    now = _now()
    fields = {k: v for k, v in lead.custom.items() if k in engine.info.custom}
    row = {
        "lead_id": lead_id,
        "created_at": naive(lead.created_at),
        "source": lead.source,
        "industry": (lead.industry or "unknown").lower(),
        "company_size": lead.company_size,
        "country": lead.country or "",
        **{name: getattr(lead, name) for name in ("budget", "authority", "need", "timeframe")},
    }
    with transaction(store) as connection:
        created = put_lead(
            connection,
            row,
            fields,
            {k: engine.info.custom[k] for k in fields},
            status,
            naive(now),
        )
        scored = rescore(connection, engine, [lead_id], now, policy)
        stored_status = connection.execute(
            sa.select(leads.c.status).where(leads.c.lead_id == lead_id)
        ).scalar_one()
    committed(request, scored)
    return FastJSON(
        {
            "lead_id": lead_id,
            "created": created,
            "status": stored_status,
            "score": scored[lead_id],
            "warnings": [
                f"custom {quoted(k)} is not a custom feature of this model, so it was not stored"
                for k in lead.custom
                if k not in engine.info.custom
            ],
            "schema_applied": applied,
        }
    )


def committed(request: Request, scored: dict[str, dict[str, Any]]) -> None:
    """After a change's commit: its scores counted by route in `/metrics`, as `/v1/score`
    counts them, and the webhook dispatcher woken to send what the change announced at once."""
    metrics = request.app.state.server.metrics
    for score in scored.values():
        metrics.scores.labels(score["route"]).inc()
    if request.app.state.dispatcher is not None:
        request.app.state.dispatcher.wake()


class _Invalid(Exception):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors


def _unprefixed(errors: list[dict[str, str]], prefix: str) -> list[dict[str, str]]:
    return [{**e, "field": e["field"].removeprefix(prefix) or "body"} for e in errors]


def read_lead(fields: dict[str, Any], engine: Engine) -> tuple[Any, dict[str, Any] | None]:
    """A lead's fields read as `/v1/score` reads `lead` (the schema's mapping, then
    validation), with field paths as the client sent them (without `lead.`)."""
    try:
        mapped = engine.mapping.apply({"lead": fields})
    except MappingError as exc:
        raise _Invalid(_unprefixed(exc.errors, "lead.")) from None
    try:
        request = ScoreRequest.model_validate(mapped.body)
    except ValidationError as exc:
        raise _Invalid(
            _unprefixed(field_errors(list(exc.errors()), mapped.sent_as), "lead.")
        ) from None
    return request.lead, mapped.applied


EVENT = TypeAdapter(EventIn)
EVENT_KINDS = {"activity": "activities", "touch": "touches"}


def read_events(
    items: list[Any], engine: Engine
) -> tuple[list[dict[str, Any] | None], dict[int, list[dict[str, str]]]]:
    """Each event as the store keeps it (None where it is invalid), and the errors of the
    invalid ones by index. The schema's value maps and date formats apply as they do to a
    `/v1/score` request's activities and touches."""
    errors: dict[int, list[dict[str, str]]] = {}
    shaped: dict[str, list[dict[str, Any]]] = {"activities": [], "touches": []}
    where: dict[str, list[int]] = {"activities": [], "touches": []}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors[i] = [{"field": "body", "message": "expected an event object"}]
            continue
        kinds = [k for k in EVENT_KINDS if k in item]
        if len(kinds) != 1:
            errors[i] = [
                {
                    "field": "body",
                    "message": "expected exactly one of activity (an activity type) or touch "
                    '({"channel", "team", "responded"})',
                }
            ]
            continue
        part = EVENT_KINDS[kinds[0]]
        value = item[kinds[0]]
        record = {"type": value} if part == "activities" else value
        if isinstance(record, dict):
            if "occurred_at" in item:
                record = {**record, "occurred_at": item["occurred_at"]}
            shaped[part].append(record)
            where[part].append(i)
    mapped_body: Any = shaped
    try:
        mapped_body = engine.mapping.apply(shaped).body
    except MappingError as exc:
        mapped_body = exc.body
        for error in exc.errors:
            part, position, *field = error["field"].split(".")
            index = where[part][int(position)]
            name = ".".join(field)
            shown_as = (
                "activity"
                if part == "activities" and name == "type"
                else name
                if name == "occurred_at"
                else f"touch.{name}"
            )
            errors.setdefault(index, []).append({"field": shown_as, "message": error["message"]})
    mapped: dict[int, dict[str, Any]] = {}
    for part, positions in where.items():
        for record, index in zip(mapped_body[part], positions, strict=True):
            mapped[index] = record
    out: list[dict[str, Any] | None] = []
    for i, item in enumerate(items):
        if i in errors:
            out.append(None)
            continue
        event = dict(item)
        record = dict(mapped.get(i, {}))
        if "occurred_at" in record:
            event["occurred_at"] = record.pop("occurred_at")
        if "activity" in event and "type" in record:
            event["activity"] = record["type"]
        elif "touch" in event and isinstance(event["touch"], dict):
            event["touch"] = record or event["touch"]
        try:
            valid = EVENT.validate_python(event)
        except ValidationError as exc:
            errors[i] = field_errors(list(exc.errors()))
            out.append(None)
            continue
        row: dict[str, Any] = {
            "event_id": valid["event_id"],
            "lead_id": valid["lead_id"],
            "occurred_at": naive(valid["occurred_at"]),
        }
        if "activity" in valid:
            row["type"] = valid["activity"]
        else:
            touch = valid["touch"]
            row.update(
                channel=touch["channel"], team=touch["team"], responded=touch.get("responded")
            )
        out.append(row)
    return out, errors


@router.post(
    EVENTS_PATH.removeprefix(router.prefix),
    response_model=EventsAnswer,
    responses={422: {"model": ErrorResponse}, **STORE_ERRORS},
)
def post_events(
    body: EventsRequest, engine: EngineDep, store: StoreDep, policy: PolicyDep, request: Request
) -> JSONResponse:
    """Store up to 5,000 activities and touches, in any order, before or after their lead;
    each event_id once (a repeat is a `duplicate`, which changes nothing); an invalid event
    gets its errors in place and the others are stored. Each lead with a new event is scored
    again at once; events of a lead not stored yet wait for its `PUT`."""
    rows, errors = read_events(body.events, engine)
    valid = [r for r in rows if r is not None]
    now = _now()
    with transaction(store) as connection:
        # Locked first, so a concurrent call with the same events waits, then sees them stored.
        lock_leads(connection, [r["lead_id"] for r in valid], policy)
        added = add_events(connection, valid) if valid else []
        touched = [r["lead_id"] for r, new in zip(valid, added, strict=True) if new]
        scored = rescore(connection, engine, touched, now, policy)
    committed(request, scored)
    statuses = iter(added)
    results: list[dict[str, Any]] = []
    for i, (item, row) in enumerate(zip(body.events, rows, strict=True)):
        if row is None:
            event_id = item.get("event_id") if isinstance(item, dict) else None
            results.append(
                {
                    "index": i,
                    "event_id": printable(str(event_id)) if event_id is not None else None,
                    "status": "error",
                    "errors": errors[i],
                }
            )
        else:
            results.append(
                {
                    "index": i,
                    "event_id": row["event_id"],
                    "status": "stored" if next(statuses) else "duplicate",
                }
            )
    return FastJSON({"results": results, "leads": scored})


@router.get(
    "/leads/{lead_id}",
    response_model=LeadAnswer,
    responses={404: {"model": Message}, **STORE_ERRORS},
)
def get_lead(lead_id: LeadIdPath, store: StoreDep, policy: PolicyDep) -> JSONResponse:
    """A stored lead's current score (readiness, potential, route and its reason, reasons,
    the rep's context, model, when scored), its state with sales (the SLA) and its score
    history (the trend: up to the 500 latest points, oldest first)."""
    c = current_scores.c
    with transaction(store) as connection:
        status = connection.execute(
            sa.select(leads.c.status).where(leads.c.lead_id == lead_id)
        ).scalar_one_or_none()
        if status is None:
            raise HTTPException(
                404,
                f"no lead {printable(quoted(lead_id))} in the lead store; create it with "
                f"PUT /v1/leads/{{lead_id}}",
            )
        current = connection.execute(sa.select(current_scores).where(c.lead_id == lead_id)).first()
        points = connection.execute(
            sa.select(
                score_history.c.scored_at,
                score_history.c.readiness,
                score_history.c.potential,
                score_history.c.route,
            )
            .where(score_history.c.lead_id == lead_id)
            .order_by(score_history.c.scored_at.desc(), score_history.c.id.desc())
            .limit(HISTORY_POINTS)
        ).all()
    now = naive(_now())
    score = None
    sales = None
    if current is not None:
        row = current._mapping
        score = {
            "readiness": row["readiness"],
            "potential": row["potential"],
            "route": row["route"],
            "route_reason": row["route_reason"],
            "explore": row["explore"],
            "propensity": row["propensity"],
            "reasons": row["reasons"],
            "context": row["context"],
            "model": row["model"],
            "scored_at": _iso(row["scored_at"]),
        }
        sales = sales_state(row, now, policy)
    return FastJSON(
        {
            "lead_id": lead_id,
            "status": status,
            "score": score,
            "sales": sales,
            "history": [
                {
                    "scored_at": _iso(p.scored_at),
                    "readiness": p.readiness,
                    "potential": p.potential,
                    "route": p.route,
                }
                for p in reversed(points)
            ],
        }
    )


def sales_state(row: Any, now: datetime, policy: LivePolicy) -> dict[str, Any]:
    """A lead's state with sales now: its SLA state computed at this moment (the stored one is
    as of its last rescore), since when it is with sales, the hours it has waited, its last
    sales touch and when it was taken back."""
    routed = row["routed_to_sales_at"]
    state = row["sla_state"]
    if routed is not None:
        state = sla_state(routed, row["last_sales_touch_at"], now, policy)
    return {
        "sla_state": state,
        "routed_to_sales_at": _iso(routed),
        "waiting_hours": None if routed is None else round((now - routed) / timedelta(hours=1), 2),
        "sla_due_at": None
        if routed is None
        else _iso(routed + timedelta(hours=policy.sales_sla_hours)),
        "last_sales_touch_at": _iso(row["last_sales_touch_at"]),
        "taken_back_at": _iso(row["taken_back_at"]),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"


MAX_PAGE = 500


def queued(
    connection: sa.Connection, route: str, limit: int, offset: int
) -> tuple[int, list[sa.Row[Any]]]:
    """How many leads the live router has on `route` now, and a page of their
    `current_scores` rows, longest with sales first (then by lead id): `GET /v1/queue` and the
    workspace's Queue page."""
    c = current_scores.c
    in_route = c.route == route
    total = connection.execute(
        sa.select(sa.func.count()).select_from(current_scores).where(in_route)
    ).scalar_one()
    order = (c.routed_to_sales_at.asc(), c.lead_id)
    # The page's ids first, from the index alone (route, routed_to_sales_at, lead_id): an
    # OFFSET over whole rows reads every row it skips (a page 1,000 deep of a 1M-lead store was
    # 2.7x slower than of a 10,000-lead one).
    page = (
        sa.select(c.lead_id).where(in_route).order_by(*order).limit(limit).offset(offset)
    ).subquery()
    rows = connection.execute(
        sa.select(current_scores).join(page, page.c.lead_id == c.lead_id).order_by(*order)
    ).all()
    return int(total), list(rows)


@router.get("/queue", response_model=QueueAnswer, responses=STORE_ERRORS)
def queue(
    store: StoreDep,
    policy: PolicyDep,
    route: Annotated[Literal["sales"], Query()] = "sales",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """Leads routed to sales now, longest waiting first, with their waiting time and SLA
    state; paginated by `offset` and `limit` (at most 500), with the `total`."""
    with transaction(store) as connection:
        total, rows = queued(connection, route, limit, offset)
    now = naive(_now())
    return FastJSON(
        {
            "route": route,
            "total": total,
            "offset": offset,
            "limit": limit,
            "leads": [
                {
                    "lead_id": r.lead_id,
                    "readiness": r.readiness,
                    "route_reason": r.route_reason,
                    "scored_at": _iso(r.scored_at),
                    **sales_state(r._mapping, now, policy),
                }
                for r in rows
            ],
        }
    )
