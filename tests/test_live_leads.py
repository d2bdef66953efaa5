"""The live lead API on a real lead store (SQLite and a real PostgreSQL server): leads and
events in, rescoring through the API's scoring path, hand-offs to sales announced in the
outbox once, per-event errors, the SLA and take-backs on a clock the test controls (the sweep's
`now`), a sales capacity, `sales_owned`, and a real server restarted without losing anything."""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_api import requests_for
from test_server import AUTH, start, stop
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.contract import load_crm
from leadready.features.leadstore.database import default_url, open_store
from leadready.features.leadstore.loading import load_export
from leadready.features.leadstore.tables import (
    activities,
    current_scores,
    deliveries,
    leads,
    sales_handoffs,
    sweeps,
    touches,
)
from leadready.features.routing import lead_draws
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.batch import latest_time
from leadready.serving.engine import Engine
from leadready.serving.live import LivePolicy, Standing, claim_sweep, decide, sweep
from leadready.serving.store import load_champion

runner = CliRunner()
DATABASES = ["sqlite", "postgresql"]
KEY = AUTH["Authorization"].removeprefix("Bearer ")
NOW = datetime.now(UTC).replace(microsecond=0)


def client_for(champion_dir, tmp_path, url: str, **settings) -> TestClient:
    return TestClient(
        create_app(
            ServeSettings(
                models_dir=champion_dir,
                api_keys=KEY,
                audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                database_url=url,
                sweep_minutes=0,
                **settings,
            )
        )
    )


@pytest.fixture
def client(champion_dir, tmp_path, store_url):
    with client_for(champion_dir, tmp_path, store_url) as c:
        c.store_url = store_url
        yield c


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def put(client, lead_id: str, code: int = 200, **fields) -> dict:
    body = {"created_at": iso(NOW - timedelta(days=30)), "source": "webinar", **fields}
    answer = client.put(f"/v1/leads/{lead_id}", json=body, headers=AUTH)
    assert answer.status_code == code, answer.text
    return answer.json()


def post(client, events: list) -> dict:
    answer = client.post("/v1/events", json={"events": events}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()


def activity(event_id: str, lead_id: str, kind: str, ago: timedelta) -> dict:
    return {
        "event_id": event_id,
        "lead_id": lead_id,
        "occurred_at": iso(NOW - ago),
        "activity": kind,
    }


def warm_up(lead_id: str) -> list[dict]:
    """A lead reading pricing pages, then asking for a demo (a hand-raise)."""
    views = [
        activity(f"{lead_id}-view-{i}", lead_id, "pricing_page_view", timedelta(hours=30 - i))
        for i in range(4)
    ]
    return [*views, activity(f"{lead_id}-demo", lead_id, "demo_request", timedelta(minutes=5))]


def outbox(url: str, kind: str | None = None) -> list[dict]:
    store = open_store(url)
    try:
        with store.connect() as connection:
            query = sa.select(deliveries.c.type, deliveries.c.payload).order_by(
                deliveries.c.created_at
            )
            rows = connection.execute(query).all()
    finally:
        store.dispose()
    return [payload for type_, payload in rows if kind is None or type_ == kind]


def count(url: str, table: sa.Table) -> int:
    store = open_store(url)
    try:
        with store.connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    finally:
        store.dispose()


@pytest.mark.api
def test_a_lead_warmed_up_by_events_reaches_sales_once_and_a_repeat_announces_nothing(client):
    put(client, "W-1", industry="Software", company_size=200)
    answer = post(client, warm_up("W-1"))
    assert [r["status"] for r in answer["results"]] == ["stored"] * 5
    assert answer["leads"]["W-1"]["route"] == "sales"
    handed = [d for d in outbox(client.store_url, "lead.route_changed") if d["route"] == "sales"]
    assert len(handed) == 1
    body = handed[0]
    assert set(body) == {
        "type",
        "delivery_id",
        "lead_id",
        "route",
        "previous_route",
        "readiness",
        "route_reason",
        "reasons",
        "context",
        "model",
        "occurred_at",
    }
    assert body["lead_id"] == "W-1" and body["context"]["activities_by_type_90d"] == {
        "pricing_page_view": 4,
        "demo_request": 1,
    }

    again = post(client, warm_up("W-1"))
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 5
    assert again["leads"] == {}
    assert len(outbox(client.store_url, "lead.route_changed")) == len(outbox(client.store_url))
    assert [d for d in outbox(client.store_url) if d["route"] == "sales"] == handed

    shown = client.get("/v1/leads/W-1", headers=AUTH).json()
    assert shown["score"]["route"] == "sales" and shown["sales"]["sla_state"] == "waiting"
    assert shown["score"]["model"]["name"] == "sales-readiness"
    assert [p["route"] for p in shown["history"]][-1] == "sales"
    queue = client.get("/v1/queue", params={"route": "sales"}, headers=AUTH).json()
    assert [lead["lead_id"] for lead in queue["leads"]] == ["W-1"]
    assert queue["total"] == 1 and queue["leads"][0]["waiting_hours"] >= 0


@pytest.mark.api
def test_stored_leads_score_as_the_stateless_api_scores_them_with_their_whole_history(
    client, champion_dir, small_export
):
    """The store's rescoring reads its rows straight into the engine's arrays: every open
    lead of an export, loaded and swept, has the scores, reasons and context `POST
    /v1/score/batch` gives the same leads sent with all their events at the same time."""
    crm = load_crm(small_export)
    moment = datetime.fromtimestamp(latest_time(crm), UTC)  # the export's end: fresh leads
    store = open_store(client.store_url)
    try:
        load_export(store, crm, NOW.replace(tzinfo=None))
        engine = Engine(load_champion(champion_dir))
        done = sweep(store, engine, moment, LivePolicy(), chunk=70)
        with store.connect() as connection:
            stored = {
                row.lead_id: row._asdict() for row in connection.execute(sa.select(current_scores))
            }
    finally:
        store.dispose()
    assert done.leads == len(stored) == (crm.leads.outcome == "open").sum() == 240
    ids = sorted(stored)
    bodies = requests_for(crm, ids, pd.Timestamp(moment))
    for body in bodies:  # stored times are UTC: sent as such, the context shows them alike
        for event in body["activities"] + body["touches"]:
            event["occurred_at"] += "+00:00"
    answers = []
    for first in range(0, len(bodies), 60):
        reply = client.post(
            "/v1/score/batch", json={"leads": bodies[first : first + 60]}, headers=AUTH
        )
        assert reply.status_code == 200, reply.text
        answers += reply.json()["results"]
    compared = ("readiness", "potential", "route", "route_reason", "reasons", "context", "model")
    for lead_id, answer in zip(ids, answers, strict=True):
        assert answer["lead_id"] == lead_id
        assert {k: stored[lead_id][k] for k in compared} == {k: answer[k] for k in compared}
    assert {a["route"] for a in answers} >= {"sales", "nurture"}
    assert any(a["context"]["last_interactions"] for a in answers)


@pytest.mark.api
def test_bad_events_get_errors_in_place_and_only_the_good_ones_are_stored(client):
    put(client, "B-1")
    good = activity("ok-1", "B-1", "Web Visit", timedelta(hours=1))
    events = [
        good,
        {**activity("bad-type", "B-1", "visit", timedelta(hours=1))},
        {
            "event_id": "bad-both",
            "lead_id": "B-1",
            "occurred_at": iso(NOW),
            "activity": "chat",
            "touch": {"channel": "call", "team": "sales"},
        },
        {
            "event_id": "bad-team",
            "lead_id": "B-1",
            "occurred_at": iso(NOW),
            "touch": {"channel": "call", "team": "finance"},
        },
        {"event_id": "no-time", "lead_id": "B-1", "activity": "chat"},
        "not an event",
        {
            "event_id": "ok-2",
            "lead_id": "B-1",
            "occurred_at": iso(NOW - timedelta(hours=2)),
            "touch": {"channel": "email", "team": "marketing", "responded": True},
        },
    ]
    answer = post(client, events)
    statuses = [(r["index"], r["status"]) for r in answer["results"]]
    assert statuses == [
        (0, "stored"),
        (1, "error"),
        (2, "error"),
        (3, "error"),
        (4, "error"),
        (5, "error"),
        (6, "stored"),
    ]
    errors = {r["event_id"]: r["errors"] for r in answer["results"] if r["status"] == "error"}
    assert errors["bad-type"][0]["field"] == "activity"
    assert "'web_visit'" in errors["bad-type"][0]["message"]
    assert "exactly one of activity" in errors["bad-both"][0]["message"]
    assert errors["bad-team"][0]["field"] == "touch.team"
    assert "'marketing'" in errors["bad-team"][0]["message"]
    assert errors["no-time"][0]["field"] == "occurred_at"
    assert errors[None][0]["message"] == "expected an event object"
    assert count(client.store_url, activities) == 1 and count(client.store_url, touches) == 1
    assert answer["leads"]["B-1"]["route"] in ("nurture", "disqualify", "sales")

    # A lead that fails validation writes nothing at all.
    wrong = put(client, "B-2", 422, source="fax", created_at="soon")
    assert {e["field"] for e in wrong["detail"]} == {"source", "created_at"}
    assert client.get("/v1/leads/B-2", headers=AUTH).status_code == 404
    assert count(client.store_url, leads) == 1
    too_many = client.post("/v1/events", json={"events": [good] * 5001}, headers=AUTH)
    assert too_many.status_code == 422


@pytest.mark.api
def test_events_before_their_lead_wait_for_it_and_count_once_it_is_put(client):
    answer = post(client, warm_up("E-1"))
    assert [r["status"] for r in answer["results"]] == ["stored"] * 5
    assert answer["leads"] == {}
    assert client.get("/v1/leads/E-1", headers=AUTH).status_code == 404
    created = put(client, "E-1")
    assert created["created"] is True and created["score"]["route"] == "sales"
    shown = client.get("/v1/leads/E-1", headers=AUTH).json()
    assert shown["score"]["context"]["activities_90d"] == 5


def sweep_at(url: str, champion_dir, moment: datetime, *env: str) -> str:
    result = runner.invoke(
        app,
        [
            "store",
            "sweep",
            "--now",
            iso(moment),
            "--database-url",
            url,
            "--models-dir",
            str(champion_dir),
        ],
        env=dict(pair.split("=", 1) for pair in env),
    )
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # as said, without the terminal's line breaks


@pytest.mark.api
def test_an_untouched_lead_breaches_its_sla_once_then_is_taken_back(client, champion_dir):
    put(client, "S-1")
    post(client, warm_up("S-1"))
    url = client.store_url
    assert "1 lead.sla_breached" not in sweep_at(url, champion_dir, NOW + timedelta(hours=47))
    said = sweep_at(url, champion_dir, NOW + timedelta(hours=49))
    assert "1 lead.sla_breached" in said
    breached = outbox(url, "lead.sla_breached")
    assert len(breached) == 1 and breached[0]["sla_state"] == "at_risk"
    sweep_at(url, champion_dir, NOW + timedelta(hours=60))
    assert len(outbox(url, "lead.sla_breached")) == 1

    said = sweep_at(url, champion_dir, NOW + timedelta(days=14, hours=1))
    assert "1 lead.taken_back" in said
    (back,) = outbox(url, "lead.taken_back")
    assert back["route"] == "nurture" and back["previous_route"] == "sales"
    assert back["route_reason"].startswith("taken back from sales: no sales touch in 14 days")
    shown = client.get("/v1/leads/S-1", headers=AUTH).json()
    assert shown["score"]["route"] == "nurture" and shown["sales"]["sla_state"] == "taken_back"
    assert client.get("/v1/queue", headers=AUTH).json()["total"] == 0
    # It stays taken back: a later sweep leaves it in nurture and announces nothing more.
    sweep_at(url, champion_dir, NOW + timedelta(days=15))
    assert len(outbox(url, "lead.taken_back")) == 1


@pytest.mark.api
def test_a_sales_touch_meets_the_sla_and_sales_owned_leads_are_never_taken_back(
    client, champion_dir
):
    put(client, "T-1")
    post(client, warm_up("T-1"))
    touch = {"channel": "call", "team": "sales", "responded": True}
    called = iso(datetime.now(UTC))  # after the lead was routed to sales
    post(
        client, [{"event_id": "T-1-call", "lead_id": "T-1", "occurred_at": called, "touch": touch}]
    )
    put(client, "O-1")
    owned = put(client, "O-1", status="sales_owned")
    assert owned["status"] == "sales_owned" and owned["score"]["route"] == "sales"
    assert owned["score"]["route_reason"].startswith("status sales_owned")
    url = client.store_url
    sweep_at(url, champion_dir, NOW + timedelta(hours=49))
    assert outbox(url, "lead.sla_breached") == [
        d for d in outbox(url, "lead.sla_breached") if d["lead_id"] == "O-1"
    ]
    assert client.get("/v1/leads/T-1", headers=AUTH).json()["sales"]["sla_state"] == "met"
    sweep_at(url, champion_dir, NOW + timedelta(days=15))
    shown = client.get("/v1/leads/O-1", headers=AUTH).json()
    assert shown["score"]["route"] == "sales" and shown["status"] == "sales_owned"
    assert [d["lead_id"] for d in outbox(url, "lead.taken_back")] == ["T-1"]


@pytest.mark.data
def test_a_sales_capacity_admits_the_highest_readiness_and_never_holds_back_a_hand_raise(
    store_url, small_export, champion_dir, tmp_path
):
    assert (
        runner.invoke(
            app, ["store", "load", "--data", str(small_export), "--database-url", store_url]
        ).exit_code
        == 0
    )
    engine = Engine(load_champion(champion_dir))
    store = open_store(store_url)
    with store.connect() as connection:
        latest = max(
            connection.execute(sa.select(sa.func.max(table.c[column]))).scalar_one()
            for table, column in ((activities, "occurred_at"), (leads, "created_at"))
        )
    end = latest.replace(tzinfo=UTC)
    free_url = default_url(tmp_path / "free")
    assert (
        runner.invoke(
            app, ["store", "load", "--data", str(small_export), "--database-url", free_url]
        ).exit_code
        == 0
    )
    free = open_store(free_url)
    sweep(free, engine, end, LivePolicy())
    with free.connect() as connection:
        raised = connection.execute(
            sa.select(sa.func.count()).where(sales_handoffs.c.hand_raise)
        ).scalar_one()
        wanted = connection.execute(
            sa.select(sa.func.count()).where(~sales_handoffs.c.hand_raise)
        ).scalar_one()
    assert wanted >= 3, "the sample should have leads routed to sales by readiness alone"
    capacity = raised + 2
    sweep(store, engine, end, LivePolicy(sales_capacity=capacity))
    with store.connect() as connection:
        handoffs = connection.execute(
            sa.select(sales_handoffs.c.lead_id, sales_handoffs.c.hand_raise)
        ).all()
        scores = {row.lead_id: row for row in connection.execute(sa.select(current_scores))}
    assert sum(1 for h in handoffs if h.hand_raise) == raised
    admitted = [scores[h.lead_id].readiness for h in handoffs if not h.hand_raise]
    assert len(handoffs) == capacity and len(admitted) == 2
    held = [s for s in scores.values() if s.route_reason.startswith("sales capacity reached")]
    assert len(held) == wanted - 2
    assert min(admitted) >= max(s.readiness for s in held)
    assert all(s.route == "nurture" for s in held)
    # Later sweeps within the 7 days admit nobody else.
    sweep(store, engine, end + timedelta(hours=1), LivePolicy(sales_capacity=capacity))
    with store.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(sales_handoffs)).scalar_one()
            == capacity
        )
    store.dispose()
    free.dispose()


POLICY = LivePolicy(sales_sla_hours=48, take_back_days=14, sales_capacity=5)
T0 = datetime(2026, 3, 1)


def standing(route: str, **changes) -> Standing:
    base = {
        "route": route,
        "readiness": 0.5,
        "routed_to_sales_at": T0 if route == "sales" else None,
        "sla_state": "waiting" if route == "sales" else None,
        "taken_back_at": None,
        "charted_readiness": 0.5,
        "charted_at": T0,
    }
    return Standing(**{**base, **changes})


@pytest.mark.unit
def test_the_live_router_keeps_holds_and_takes_back_as_documented():
    def route(model_route, before, now, hand_raise_at=None, status="new", touch=None, full=False):
        return decide(
            model_route, "model says", hand_raise_at, status, before, touch, now, POLICY, full
        )

    # A lead with sales stays there while the model's route falls, until the take-back.
    kept = route("nurture", standing("sales"), T0 + timedelta(days=3))
    assert kept.route == "sales" and kept.sla_state == "at_risk" and kept.sla_breached
    again = route("nurture", standing("sales", sla_state="at_risk"), T0 + timedelta(days=4))
    assert not again.sla_breached
    touched = route(
        "sales", standing("sales"), T0 + timedelta(days=13), touch=T0 + timedelta(days=1)
    )
    assert touched.sla_state == "met" and touched.route == "sales"
    back = route("sales", standing("sales"), T0 + timedelta(days=14))
    assert back.route == "nurture" and back.taken_back and back.sla_state == "taken_back"
    # Taken back: held in nurture until a new hand-raise.
    held = standing("nurture", taken_back_at=T0)
    assert route("sales", held, T0 + timedelta(days=1)).route == "nurture"
    assert (
        route("sales", held, T0 + timedelta(days=2), hand_raise_at=T0 + timedelta(days=1)).route
        == "sales"
    )
    # A full capacity holds back readiness, never a hand-raise.
    full = route("sales", standing("nurture"), T0, full=True)
    assert full.route == "nurture" and full.route_reason.startswith("sales capacity reached (5")
    assert route("sales", standing("nurture"), T0, hand_raise_at=T0, full=True).handed_off
    # sales_owned: sales whatever the score, never taken back.
    owned = route("disqualify", standing("sales"), T0 + timedelta(days=40), status="sales_owned")
    assert owned.route == "sales" and not owned.taken_back


@pytest.mark.server
@pytest.mark.parametrize("database", DATABASES)
def test_a_server_restart_loses_no_lead_score_or_delivery(
    database, request, champion_dir, tmp_path, monkeypatch
):
    """Two workers, stopped and started again: the lead, its score, history and delivery are
    all still there, and its events are still known (a repeat is a duplicate)."""
    models = tmp_path / "models"
    shutil.copytree(champion_dir, models)
    url = (
        request.getfixturevalue("postgres_server").create_database(
            f"restart_{uuid.uuid4().hex[:8]}"
        )
        if database == "postgresql"
        else default_url(models)
    )
    monkeypatch.setenv("LEADREADY_DATABASE_URL", url)  # start() passes its environment on
    monkeypatch.setenv("LEADREADY_SWEEP_MINUTES", "0")
    server = start(models, tmp_path / "audit.db", "--workers", "2")
    try:
        lead = {"created_at": iso(NOW - timedelta(days=30)), "source": "webinar"}
        assert httpx.put(f"{server.url}/v1/leads/R-1", json=lead, headers=AUTH).status_code == 200
        answer = httpx.post(
            f"{server.url}/v1/events", json={"events": warm_up("R-1")}, headers=AUTH
        )
        assert answer.json()["leads"]["R-1"]["route"] == "sales"
        before = httpx.get(f"{server.url}/v1/leads/R-1", headers=AUTH).json()
    finally:
        assert stop(server) == 0
    server = start(models, tmp_path / "audit.db", "--workers", "2")
    try:
        after = httpx.get(f"{server.url}/v1/leads/R-1", headers=AUTH).json()
        again = httpx.post(f"{server.url}/v1/events", json={"events": warm_up("R-1")}, headers=AUTH)
        assert {r["status"] for r in again.json()["results"]} == {"duplicate"}
        queue = httpx.get(f"{server.url}/v1/queue", headers=AUTH).json()
    finally:
        assert stop(server) == 0
    assert after["score"] == before["score"] and after["history"] == before["history"]
    assert [lead["lead_id"] for lead in queue["leads"]] == ["R-1"]
    assert len([d for d in outbox(url, "lead.route_changed") if d["route"] == "sales"]) == 1


@pytest.mark.data
def test_one_claim_of_the_scheduled_sweep_wins_per_interval(store_url):
    """Every worker of a fleet tries to claim each sweep; one claim per interval wins."""
    store = open_store(store_url)
    every = timedelta(hours=1)
    try:
        assert claim_sweep(store, T0, every)
        assert not claim_sweep(store, T0, every)
        assert not claim_sweep(store, T0 + timedelta(minutes=59), every)
        assert claim_sweep(store, T0 + timedelta(hours=1), every)
        assert not claim_sweep(store, T0 + timedelta(hours=1, seconds=1), every)
    finally:
        store.dispose()


@pytest.mark.server
def test_the_server_sweeps_on_its_schedule(champion_dir, tmp_path, monkeypatch):
    """A sweep every 3 s (LEADREADY_SWEEP_MINUTES=0.05) rescores a stored lead by itself, and
    each sweep is one worker's: the claims move the sweep's start by at least the interval."""
    models = tmp_path / "models"
    shutil.copytree(champion_dir, models)
    monkeypatch.setenv("LEADREADY_SWEEP_MINUTES", "0.05")
    server = start(models, tmp_path / "audit.db", "--workers", "2")
    url = default_url(models)
    try:
        lead = {"created_at": iso(NOW - timedelta(days=30)), "source": "webinar"}
        put_at = httpx.put(f"{server.url}/v1/leads/P-1", json=lead, headers=AUTH).json()
        first = put_at["score"]["scored_at"]
        deadline = time.monotonic() + 30
        swept = first
        while swept == first and time.monotonic() < deadline:
            time.sleep(0.5)
            shown = httpx.get(f"{server.url}/v1/leads/P-1", headers=AUTH).json()
            swept = shown["score"]["scored_at"]
    finally:
        assert stop(server) == 0
    assert swept != first, "no sweep within 30 s"
    store = open_store(url)
    try:
        with store.connect() as connection:
            started = connection.execute(sa.select(sweeps.c.started_at)).scalar_one()
    finally:
        store.dispose()
    assert started.isoformat() + "Z" >= first


@pytest.mark.api
def test_a_stored_lead_in_the_exploration_slice_goes_to_sales_and_stays_in_it(
    champion_dir, tmp_path
):
    url = f"sqlite:///{tmp_path / 'leads.db'}"
    ids = [f"X-{i}" for i in range(40)]
    with client_for(champion_dir, tmp_path, url, explore_share=0.5) as c:
        for lead_id in ids:
            put(c, lead_id)
        first = {i: c.get(f"/v1/leads/{i}", headers=AUTH).json()["score"] for i in ids}
        post(c, [activity(f"{i}-view", i, "pricing_page_view", timedelta(hours=1)) for i in ids])
        again = {i: c.get(f"/v1/leads/{i}", headers=AUTH).json()["score"] for i in ids}
    drawn = dict(zip(ids, lead_draws(ids) < 0.5, strict=True))
    explored = [i for i in ids if first[i]["explore"]]
    assert explored and all(drawn[i] for i in explored)
    for lead_id in explored:
        assert first[lead_id]["route"] == "sales" and first[lead_id]["propensity"] == 0.5
        assert first[lead_id]["route_reason"].startswith("exploration: one of a random 50%")
    for lead_id in set(ids) - set(explored):
        assert first[lead_id]["propensity"] in (0.5, 1.0)
        # A nurture lead not explored drew 0.5 or more; sales and disqualify are never explored.
        assert first[lead_id]["route"] != "nurture" or not drawn[lead_id]
    # Rescored on an event, a lead keeps its place in the slice.
    assert [again[i]["explore"] for i in ids] == [first[i]["explore"] for i in ids]
