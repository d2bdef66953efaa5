"""Live lead operations on the lead store: rescoring stored leads through the API's scoring
path, the live router (hand-offs to sales, the SLA, take-backs, a sales capacity), score
history, and the webhook deliveries each change writes into the outbox, in its transaction.

A stored lead is scored as `POST /v1/score` scores the same lead sent with its whole history:
its rows become the engine's arrays (`stored_batch`, a `Batch` as a request becomes) and go
through `Engine.score_batch`; there is no second feature or scoring path. The model's route
is then passed through the live policy (`decide`, a pure function), which adds what only a
store knows: how long a lead has been with sales and whether sales touched it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from leadready.features.leadstore import outbox
from leadready.features.leadstore.reading import StoredLeads, stored_leads
from leadready.features.leadstore.tables import (
    current_scores,
    leads,
    sales_handoffs,
    score_history,
    sweeps,
)
from leadready.features.routing import Route
from leadready.serving.engine import (
    ACTIVITY_CODES,
    CHANNEL_CODES,
    CONTRACT_FIELDS,
    TEAM_CODES,
    Batch,
    Engine,
    lead_arrays,
)
from leadready.serving.schemas import unix_seconds

log = logging.getLogger("leadready.live")

CAPACITY_DAYS = 7
"""A sales capacity counts the leads routed to sales in this many rolling days."""
HISTORY_STEP = 0.05
"""A history point is written when readiness moved by more than this since the last one."""
HISTORY_EVERY = timedelta(days=1)
"""... or when the last one is this old (and whenever the route changes)."""
SWEEP_CHUNK = 2000
"""Leads rescored per transaction by a sweep: one batch through the engine each."""
PG_CAPACITY_LOCK = 0x6C65_6164_6361_7061  # "leadcapa": serialises capacity decisions
SWEEP_NAME = "open-leads"


@dataclass(frozen=True)
class LivePolicy:
    """The live router's settings (the server's typed settings, `ServeSettings.policy`)."""

    sales_sla_hours: float = 48.0
    take_back_days: float = 14.0
    sales_capacity: int | None = None
    """Most leads routed to sales per rolling CAPACITY_DAYS; None: no limit."""


@dataclass(frozen=True)
class Standing:
    """What the store says of a lead before it is scored again (its `current_scores` row)."""

    route: str
    readiness: float
    routed_to_sales_at: datetime | None
    sla_state: str | None
    taken_back_at: datetime | None
    charted_readiness: float | None
    charted_at: datetime | None


@dataclass(frozen=True)
class Decision:
    route: str
    route_reason: str
    routed_to_sales_at: datetime | None
    sla_state: str | None
    taken_back_at: datetime | None
    handed_off: bool
    """Routed to sales by this decision (a hand-off the capacity counts)."""
    taken_back: bool
    sla_breached: bool


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def sla_state(
    routed_at: datetime, last_sales_touch: datetime | None, now: datetime, p: LivePolicy
) -> str:
    """`met` once sales touched the lead after it was routed there, `at_risk` when the SLA
    passed without that, else `waiting`."""
    if last_sales_touch is not None and last_sales_touch >= routed_at:
        return "met"
    if now - routed_at >= timedelta(hours=p.sales_sla_hours):
        return "at_risk"
    return "waiting"


def decide(
    model_route: str,
    model_reason: str,
    hand_raise_at: datetime | None,
    status: str,
    before: Standing | None,
    last_sales_touch: datetime | None,
    now: datetime,
    p: LivePolicy,
    capacity_full: bool,
) -> Decision:
    """The live route of a lead the model routes `model_route`:

    - status `sales_owned`: sales, whatever the score; never taken back;
    - with sales already: it stays there until `take_back_days` pass without a sales touch
      (since it was routed or since the last one), then it is taken back to nurture;
    - a lead taken back stays in nurture until a new hand-raise;
    - a lead the model sends to sales goes there, unless the sales capacity is full (a
      hand-raise is never held back);
    - otherwise the model's route."""
    in_sales = before is not None and before.route == Route.SALES
    routed_at = before.routed_to_sales_at if in_sales and before else None
    taken_back_at = before.taken_back_at if before else None

    def sales(reason: str, since: datetime | None) -> Decision:
        start = since or now
        state = sla_state(start, last_sales_touch, now, p)
        breached = state == "at_risk" and (before is None or before.sla_state != "at_risk")
        return Decision(
            Route.SALES, reason, start, state, None, since is None, False, breached and in_sales
        )

    def elsewhere(route: str, reason: str) -> Decision:
        state = "taken_back" if taken_back_at else None
        return Decision(route, reason, None, state, taken_back_at, False, False, False)

    if status == "sales_owned":
        return sales(
            f"status sales_owned: sales keeps this lead whatever the score ({model_reason})",
            routed_at,
        )
    if in_sales and routed_at is not None:
        quiet_since = max(routed_at, last_sales_touch or routed_at)
        if now - quiet_since >= timedelta(days=p.take_back_days):
            reason = (
                f"taken back from sales: no sales touch in {p.take_back_days:g} days since "
                f"{_day(quiet_since)} ({model_reason})"
            )
            return Decision(Route.NURTURE, reason, None, "taken_back", now, False, True, False)
        if model_route == Route.SALES:
            return sales(model_reason, routed_at)
        return sales(
            f"with sales since {_day(routed_at)}: a lead stays with sales until "
            f"{p.take_back_days:g} days pass without a sales touch (the model now says: "
            f"{model_reason})",
            routed_at,
        )
    if model_route != Route.SALES:
        return elsewhere(model_route, model_reason)
    if taken_back_at is not None and (hand_raise_at is None or hand_raise_at <= taken_back_at):
        return elsewhere(
            Route.NURTURE,
            f"taken back from sales on {_day(taken_back_at)}: stays in nurture until a new demo "
            f"or contact request (the model says: {model_reason})",
        )
    if hand_raise_at is None and capacity_full:
        return elsewhere(
            Route.NURTURE,
            f"sales capacity reached ({p.sales_capacity} leads routed to sales in the last "
            f"{CAPACITY_DAYS} days); {model_reason}",
        )
    return sales(model_reason, None)


def stored_batch(stored: StoredLeads, now: datetime, custom: Mapping[str, str]) -> Batch:
    """Stored leads as the engine's `Batch`, scored at `now`: the store holds validated
    contract values, so they are converted, not validated again (a lead may have more events
    than one request may carry)."""
    lead, a, t = stored.leads, stored.activities, stored.touches
    return Batch(
        lead_ids=lead["lead_id"],
        leads=lead_arrays(
            lead["created_at"] // 1_000_000,
            {name: lead[name] for name in CONTRACT_FIELDS},
            lead["fields"],
            custom,
        ),
        activities=np.column_stack(
            (a["lead"], a["occurred_at"] // 1_000_000, _codes(a["type"], ACTIVITY_CODES))
        ),
        touches=np.column_stack(
            (
                t["lead"],
                t["occurred_at"] // 1_000_000,
                _codes(t["channel"], CHANNEL_CODES),
                _codes(t["team"], TEAM_CODES),
                t["responded"],
            )
        ).astype(np.float64),
        as_of=np.full(len(stored), unix_seconds(now), dtype=np.int64),
        shown=lambda touch, row: _stored_time(int((t if touch else a)["occurred_at"][row])),
        warnings=[[] for _ in range(len(stored))],
    )


def _codes(values: np.ndarray, codes: Mapping[str, int]) -> np.ndarray:
    return np.array([codes[v] for v in values], dtype=np.int64)


def _stored_time(micros: int) -> str:
    """A stored time (microseconds since the epoch) as the API shows a UTC time."""
    return (EPOCH + micros * MICRO).isoformat()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)


def last_sales_touches(stored: StoredLeads, now: datetime) -> list[datetime | None]:
    """Each stored lead's latest sales touch up to `now` (naive UTC), None when it has none."""
    t = stored.touches
    times = t["occurred_at"]
    mine = (t["team"] == "sales") & (times <= (now.replace(tzinfo=UTC) - EPOCH) // MICRO)
    latest = np.full(len(stored), -1, dtype=np.int64)
    np.maximum.at(latest, t["lead"][mine], times[mine])
    return [None if us < 0 else (EPOCH + us * MICRO).replace(tzinfo=None) for us in latest.tolist()]


def naive(now: datetime) -> datetime:
    """A time as the store keeps it: naive UTC, whole microseconds."""
    return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now


def lock_leads(connection: sa.Connection, lead_ids: Sequence[str], policy: LivePolicy) -> None:
    """Take the locks a rescore decides under, so two workers rescoring one lead do not both
    announce its route change, nor both fill the last place of a capacity. A rescore takes
    them; a caller takes them first when what it writes before depends on them too. SQLite:
    its one write lock, taken by a write (an UPDATE of no row takes it too). PostgreSQL: the
    leads' rows, and a capacity's advisory lock when there is a capacity."""
    if connection.dialect.name == "sqlite":
        connection.execute(sa.update(sweeps).where(sa.false()).values(name=sweeps.c.name))
        return
    if policy.sales_capacity is not None:
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_CAPACITY_LOCK)))
    for start in range(0, len(lead_ids), 5000):
        chunk = sorted(lead_ids[start : start + 5000])
        connection.execute(
            sa.select(leads.c.lead_id).where(leads.c.lead_id.in_(chunk)).with_for_update()
        )


def _standings(connection: sa.Connection, lead_ids: Sequence[str]) -> dict[str, Standing]:
    c = current_scores.c
    rows = connection.execute(
        sa.select(
            c.lead_id,
            c.route,
            c.readiness,
            c.routed_to_sales_at,
            c.sla_state,
            c.taken_back_at,
            c.charted_readiness,
            c.charted_at,
        ).where(c.lead_id.in_(list(lead_ids)))
    )
    return {row[0]: Standing(*row[1:]) for row in rows}


def _handoffs_since(connection: sa.Connection, since: datetime) -> int:
    return int(
        connection.execute(
            sa.select(sa.func.count()).where(sales_handoffs.c.handed_at > since)
        ).scalar_one()
    )


def rescore(
    connection: sa.Connection,
    engine: Engine,
    lead_ids: Sequence[str],
    now: datetime,
    policy: LivePolicy,
    announced: Counter[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Score the stored leads among `lead_ids` at `now` inside the caller's transaction,
    route them, write their current scores, history points, hand-offs and deliveries (counted
    by type into `announced`); their score summaries by lead id (ids without a stored lead are
    left out)."""
    told = Counter[str]() if announced is None else announced
    moment = naive(now)
    unique = list(dict.fromkeys(lead_ids))
    if not unique:
        return {}
    lock_leads(connection, unique, policy)
    stored = stored_leads(connection, unique)
    if not len(stored):
        return {}
    ids = stored.leads["lead_id"]
    moment_utc = moment.replace(tzinfo=UTC)
    batch = stored_batch(stored, moment_utc, engine.info.custom)
    answers, prediction = engine.score_batch(batch, moment_utc)
    statuses = stored.leads["status"]
    sales_touches = last_sales_touches(stored, moment)
    before = _standings(connection, ids)
    used = (
        _handoffs_since(connection, moment - timedelta(days=CAPACITY_DAYS))
        if policy.sales_capacity is not None
        else 0
    )
    since_hand_raise = prediction.columns["days_since_hand_raise"]
    raised = prediction.columns["hand_raise_7d"] > 0
    # Hand-raises first (never held back), then by readiness: the capacity's order.
    order = sorted(range(len(ids)), key=lambda i: (not raised[i], -answers[i]["readiness"]))
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    handoffs: list[dict[str, Any]] = []
    summaries: dict[str, dict[str, Any]] = {}
    announcements: list[outbox.Announcement] = []
    for i in order:
        lead_id, answer = ids[i], answers[i]
        days = float(since_hand_raise[i])
        hand_raise_at = moment - timedelta(days=days) if raised[i] and np.isfinite(days) else None
        last_sales_touch = sales_touches[i]
        full = policy.sales_capacity is not None and used >= policy.sales_capacity
        prior = before.get(lead_id)
        decision = decide(
            answer["route"],
            answer["route_reason"],
            hand_raise_at,
            statuses[i],
            prior,
            last_sales_touch,
            moment,
            policy,
            full,
        )
        if decision.handed_off:
            used += 1
            handoffs.append(
                {"lead_id": lead_id, "handed_at": moment, "hand_raise": hand_raise_at is not None}
            )
        score = {
            "lead_id": lead_id,
            "readiness": answer["readiness"],
            "potential": answer["potential"],
            "route": str(decision.route),
            "route_reason": decision.route_reason,
            "reasons": answer["reasons"],
            "model_version": answer["model"]["version"],
            "scored_at": moment,
            "explore": answer["explore"],
            "propensity": answer["propensity"],
        }
        previous_route = prior.route if prior else None
        changed = str(decision.route) != (previous_route or Route.NURTURE)
        charted = _charted(prior, score["readiness"], changed, moment)
        row = {
            **score,
            "model": answer["model"],
            "context": answer["context"],
            "routed_to_sales_at": decision.routed_to_sales_at,
            "last_sales_touch_at": last_sales_touch,
            "sla_state": decision.sla_state,
            "taken_back_at": decision.taken_back_at,
            "charted_readiness": score["readiness"],
            "charted_at": moment,
        }
        if not charted and prior is not None:  # the last history point stays the last
            row.update(charted_readiness=prior.charted_readiness, charted_at=prior.charted_at)
        (updates if prior else inserts).append(row)
        if charted:
            history.append(score)
        body = {
            "lead_id": lead_id,
            "route": str(decision.route),
            "previous_route": previous_route,
            "readiness": score["readiness"],
            "route_reason": decision.route_reason,
            "reasons": answer["reasons"],
            "context": answer["context"],
            "model": answer["model"],
            "occurred_at": moment.isoformat() + "Z",
        }
        if decision.taken_back:
            told["lead.taken_back"] += 1
            announcements.append(("lead.taken_back", lead_id, body))
        elif changed:
            told["lead.route_changed"] += 1
            announcements.append(("lead.route_changed", lead_id, body))
        if decision.sla_breached:
            routed = _iso(decision.routed_to_sales_at)
            breach = {**body, "sla_state": "at_risk", "routed_to_sales_at": routed}
            told["lead.sla_breached"] += 1
            announcements.append(("lead.sla_breached", lead_id, breach))
        summaries[lead_id] = summary(row)
    if handoffs:
        connection.execute(sales_handoffs.insert(), handoffs)
    if inserts:
        connection.execute(current_scores.insert(), inserts)
    if updates:
        c = current_scores.c
        connection.execute(
            sa.update(current_scores)
            .where(c.lead_id == sa.bindparam("key"))
            .values({name: sa.bindparam(name) for name in updates[0] if name != "lead_id"}),
            [{**u, "key": u["lead_id"]} for u in updates],
        )
    if history:
        connection.execute(score_history.insert(), history)
    outbox.enqueue(connection, announcements, moment)
    return {i: summaries[i] for i in ids}


def _charted(prior: Standing | None, readiness: float, changed: bool, now: datetime) -> bool:
    """Whether a score is a history point: the lead's first, a route change, a move of
    readiness by more than HISTORY_STEP since the last point, or HISTORY_EVERY after it."""
    if prior is None or changed or prior.charted_at is None or prior.charted_readiness is None:
        return True
    return (
        abs(readiness - prior.charted_readiness) > HISTORY_STEP
        or now - prior.charted_at >= HISTORY_EVERY
    )


def summary(row: Any) -> dict[str, Any]:
    """A current score as the API answers it in short (`POST /v1/events`)."""
    return {
        "readiness": row["readiness"],
        "route": row["route"],
        "route_reason": row["route_reason"],
        "sla_state": row["sla_state"],
        "scored_at": _iso(row["scored_at"]),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"


@dataclass(frozen=True)
class SweepSummary:
    leads: int
    seconds: float
    announced: Counter[str]
    """Deliveries written, by webhook event type."""


def open_lead_ids(connection: sa.Connection) -> list[str]:
    """Leads a sweep rescores: open ones (no outcome yet)."""
    query = sa.select(leads.c.lead_id).where(leads.c.outcome == "open").order_by(leads.c.lead_id)
    return list(connection.execute(query).scalars())


def sweep(
    store: sa.Engine,
    engine: Engine,
    now: datetime,
    policy: LivePolicy,
    chunk: int = SWEEP_CHUNK,
) -> SweepSummary:
    """Rescore every open lead at `now`, `chunk` leads per transaction and engine batch: the
    decay of readiness with time, SLA breaches and take-backs."""
    started = time.perf_counter()
    with store.connect() as connection:
        ids = open_lead_ids(connection)
    announced = Counter[str]()
    # With a capacity, the leads wanting sales are decided in readiness order within a chunk.
    for part in _chunks(ids, chunk):
        with store.begin() as connection:
            rescore(connection, engine, part, now, policy, announced)
    return SweepSummary(len(ids), time.perf_counter() - started, announced)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def claim_sweep(store: sa.Engine, now: datetime, every: timedelta) -> bool:
    """True when this process may run the scheduled sweep now: the last one started at least
    `every` ago (or never), and this process moved its start time forward first. The move is
    one UPDATE (or the first INSERT), which only one worker's transaction can make."""
    moment = naive(now)
    with store.begin() as connection:
        claimed = connection.execute(
            sa.update(sweeps)
            .where(sweeps.c.name == SWEEP_NAME, sweeps.c.started_at <= moment - every)
            .values(started_at=moment)
        ).rowcount
        if claimed:
            return True
        known = connection.execute(
            sa.select(sweeps.c.name).where(sweeps.c.name == SWEEP_NAME)
        ).first()
        if known:
            return False
        try:
            with connection.begin_nested():
                connection.execute(sweeps.insert().values(name=SWEEP_NAME, started_at=moment))
        except sa.exc.IntegrityError:
            return False
        return True


class Sweeper(threading.Thread):
    """A worker's scheduled sweep: every `every`, it claims the sweep (`claim_sweep`) and, when
    its claim wins, rescores every open lead. Errors are logged, never fatal."""

    def __init__(self, run: Any, every: timedelta) -> None:
        super().__init__(name="leadready-sweep", daemon=True)
        self.run_sweep = run
        self.every = every
        self.stopping = threading.Event()

    def run(self) -> None:
        check = min(self.every.total_seconds(), 60.0)
        while not self.stopping.wait(check):
            try:
                self.run_sweep()
            except Exception:  # a sweep that fails is retried at the next claim
                log.exception("the scheduled sweep failed; the next one will try again")
