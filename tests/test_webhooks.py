"""Webhook delivery (serving/webhooks.py) against real receivers on 127.0.0.1, on SQLite and a
real PostgreSQL server: deliveries arrive signed, each URL gets each delivery once, a receiver
that was down gets every delivery once it is back, a delivery that keeps failing ends dead and
`leadready deliveries retry` sends it again; and a real `leadready serve` killed with SIGKILL
loses no pending delivery, with two workers never sending one twice."""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import subprocess
import time

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_server import LEADREADY, clean_env, start, stop
from typer.testing import CliRunner
from webhook_receiver import Receiver

from leadready.cli import app
from leadready.features.leadstore.database import open_store
from leadready.features.leadstore.outbox import enqueue
from leadready.features.leadstore.tables import deliveries, delivery_receipts, leads
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.middleware import Metrics
from leadready.serving.webhooks import (
    BACKLOG_SECONDS,
    Dispatcher,
    WebhookConfig,
    WebhookSettingsError,
    body,
    retry_delay,
    signature,
)

runner = CliRunner()
SECRET = "test-webhook-secret"
FAST = {"backoff_seconds": 0.05, "backoff_max_seconds": 0.2, "timeout_seconds": 2.0}


def add_leads(engine: sa.Engine, count: int) -> list[str]:
    now = dt.datetime(2026, 1, 1)
    ids = [f"L{n}" for n in range(count)]
    unknown = dict.fromkeys(("budget", "authority", "need", "timeframe"), "unknown")
    with engine.begin() as connection:
        connection.execute(
            sa.insert(leads),
            [
                {
                    "lead_id": lead_id,
                    "created_at": now,
                    "source": "web_form",
                    "industry": "software",
                    "country": "DE",
                    **unknown,
                    "outcome": "open",
                    "stored_at": now,
                    "updated_at": now,
                }
                for lead_id in ids
            ],
        )
    return ids


def route_changed(engine: sa.Engine, lead_ids: list[str]) -> list[str]:
    """One lead.route_changed delivery per lead, each enqueued in its own transaction."""
    out = []
    for lead_id in lead_ids:
        with engine.begin() as connection:
            body = {
                "lead_id": lead_id,
                "route": "sales",
                "previous_route": "nurture",
                "readiness": 0.81,
                "route_reason": "hand-raise: demo request",
                "reasons": [{"feature": "demo requests", "effect": "up"}],
                "occurred_at": "2026-01-01T00:00:00Z",
            }
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            out += enqueue(connection, [("lead.route_changed", lead_id, body)], now)
    return out


def statuses(engine: sa.Engine) -> dict[str, tuple[str, int, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                deliveries.c.delivery_id,
                deliveries.c.status,
                deliveries.c.attempts,
                deliveries.c.last_error,
            )
        )
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


def wait_until(check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def store(store_url):
    engine = open_store(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def receivers():
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.stop()


def dispatcher(engine: sa.Engine, urls: list[str], **timing: float) -> Dispatcher:
    config = WebhookConfig.parse(",".join(urls), SECRET, **{**FAST, **timing})
    assert config is not None
    return Dispatcher(engine, config, Metrics())


@pytest.mark.unit
def test_signature_retry_schedule_and_settings_are_checked():
    raw = body({"b": 1, "a": "é"})
    assert raw == b'{"a":"\\u00e9","b":1}'
    assert signature(b"k", raw).startswith("sha256=") and len(signature(b"k", raw)) == 71
    config = WebhookConfig(("http://x",), b"k")
    assert [retry_delay(n, config) for n in (1, 2, 3, 13, 30)] == [1, 2, 4, 3600, 3600]
    assert WebhookConfig.parse(" , ", "") is None
    with pytest.raises(WebhookSettingsError, match="LEADREADY_WEBHOOK_SECRET is empty"):
        WebhookConfig.parse("http://127.0.0.1:9/hook", "")
    with pytest.raises(WebhookSettingsError, match="'ftp://h/x' is not an http"):
        WebhookConfig.parse("http://a/b,ftp://h/x", "s")


@pytest.mark.data
def test_deliveries_arrive_signed_and_each_url_gets_each_once(store, receivers):
    good, flaky = Receiver().start(), Receiver(status=503).start()
    receivers += [good, flaky]
    ids = route_changed(store, add_leads(store, 3))
    sender = dispatcher(store, [good.url, flaky.url])
    try:
        sender.wake()
        got = good.wait_for(3, 5)
        for received in got:
            assert received.signed_by(SECRET)
            assert received.headers["x-leadready-event"] == "lead.route_changed"
            assert received.payload["delivery_id"] == received.headers["x-leadready-delivery"]
            assert received.payload["route"] == "sales"
        assert sorted(good.ids()) == sorted(ids)
        wait_until(lambda: flaky.attempts >= 6, 5)  # retried: not accepted yet
        assert {s for s, _, _ in statuses(store).values()} == {"pending"}
        assert "HTTP 503" in next(iter(statuses(store).values()))[2]
        flaky.status = 200
        flaky.wait_for(3, 5)
        wait_until(lambda: {s for s, _, _ in statuses(store).values()} == {"delivered"}, 5)
    finally:
        sender.close()
    assert sorted(good.ids()) == sorted(ids)  # the retries went to the flaky URL only
    assert sorted(flaky.ids()) == sorted(ids)
    with store.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(delivery_receipts)) == 6


@pytest.mark.data
def test_a_receiver_down_for_a_while_gets_every_delivery_once_back(store, receivers):
    receiver = Receiver()
    receivers.append(receiver)
    sender = dispatcher(store, [receiver.url])
    try:
        ids = route_changed(store, add_leads(store, 20))
        sender.wake()
        wait_until(lambda: all(a >= 3 for _, a, _ in statuses(store).values()), 10)
        assert all("ConnectError" in (e or "") for _, _, e in statuses(store).values())
        receiver.start()
        receiver.wait_for(20, 10)
        wait_until(lambda: {s for s, _, _ in statuses(store).values()} == {"delivered"}, 5)
    finally:
        sender.close()
    assert sorted(receiver.ids()) == sorted(ids)


@pytest.mark.data
def test_a_delivery_that_keeps_failing_is_dead_listed_and_retried(store, store_url, receivers):
    receiver = Receiver(status=500).start()
    receivers.append(receiver)
    (dead_id,) = route_changed(store, add_leads(store, 1))
    sender = dispatcher(store, [receiver.url], max_age_seconds=0.5)
    try:
        wait_until(lambda: statuses(store)[dead_id][0] == "dead", 10)
        status, attempts, error = statuses(store)[dead_id]
        assert attempts >= 3 and error == f"{receiver.url}: HTTP 500"
        listed = runner.invoke(
            app, ["deliveries", "list", "--status", "dead", "--database-url", store_url]
        )
        assert listed.exit_code == 0, listed.output
        assert dead_id[:8] in listed.output and "HTTP 500" in listed.output
        none = runner.invoke(
            app, ["deliveries", "list", "--status", "delivered", "--database-url", store_url]
        )
        assert none.exit_code == 0 and "No delivered deliveries" in none.output
        receiver.status = 200
        retried = runner.invoke(app, ["deliveries", "retry", "--dead", "--database-url", store_url])
        assert retried.exit_code == 0, retried.output
        assert "Requeued 1 delivery" in retried.output
        sender.wake()
        receiver.wait_for(1, 5)
        wait_until(lambda: statuses(store)[dead_id][0] == "delivered", 5)
    finally:
        sender.close()
    again = runner.invoke(app, ["deliveries", "retry", dead_id, "--database-url", store_url])
    assert again.exit_code == 2
    assert f"delivery '{dead_id}' was delivered already; nothing was requeued" in again.output


@pytest.mark.data
def test_deliveries_commands_refuse_bad_input(tmp_path):
    models = ["--models-dir", str(tmp_path / "models")]
    missing = runner.invoke(app, ["deliveries", "list", *models])
    assert missing.exit_code == 2 and "no lead store at sqlite:///" in missing.output
    assert not (tmp_path / "models" / "leads.db").exists()
    open_store(f"sqlite:///{tmp_path / 'models' / 'leads.db'}").dispose()
    for args, message in [
        (["list", "--status", "gone"], "--status 'gone': expected one of pending, delivered, dead"),
        (["retry"], "give the delivery ids to retry, or --dead"),
        (["retry", "x", "--dead"], "give DELIVERY_ID... or --dead, not both"),
        (["retry", "nope"], "no delivery 'nope' in the store; nothing was requeued"),
    ]:
        result = runner.invoke(app, ["deliveries", *args, *models])
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), result.output


@pytest.mark.api
def test_the_app_starts_a_dispatcher_whose_wake_sends_at_once(
    store_url, champion_dir, tmp_path, receivers
):
    receiver = Receiver().start()
    receivers.append(receiver)
    settings = ServeSettings(
        models_dir=champion_dir,
        audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
        database_url=store_url,
        webhook_urls=receiver.url,
        webhook_secret=SECRET,
        webhook_poll_seconds=30,  # only wake() can send it in time
    )
    with TestClient(create_app(settings)) as client:
        dispatcher = client.app.state.dispatcher
        (delivery_id,) = route_changed(dispatcher.engine, add_leads(dispatcher.engine, 1))
        woken = time.monotonic()
        dispatcher.wake()
        (received,) = receiver.wait_for(1, 5)
        assert received.at - woken < 1.0
        assert received.signed_by(SECRET) and receiver.ids() == [delivery_id]
        wait_until(lambda: statuses(dispatcher.engine)[delivery_id][0] == "delivered", 5)
        time.sleep(BACKLOG_SECONDS)  # the next count
        dispatcher.wake()
        wait_until(lambda: client.get("/readyz").json()["deliveries"]["pending"] == 0, 5)
        assert "leadready_webhooks_delivered_total 1.0" in client.get("/metrics").text
    without = ServeSettings(models_dir=champion_dir, audit_url=settings.audit_url)
    with TestClient(create_app(without)) as client:
        assert client.app.state.dispatcher is None
        assert "deliveries" not in client.get("/readyz").json()


# ------------------------------------------------------------------- a real `leadready serve`


def count_pending(engine: sa.Engine) -> int:
    return sum(s == "pending" for s, _, _ in statuses(engine).values())


@pytest.mark.fault
def test_a_killed_server_loses_no_delivery_and_two_workers_send_each_once(
    store_url, champion_dir, tmp_path, receivers, monkeypatch
):
    models = tmp_path / "models"
    shutil.copytree(champion_dir, models)
    receiver = Receiver()  # down at first
    receivers.append(receiver)
    for name, value in {
        "LEADREADY_DATABASE_URL": store_url,
        "LEADREADY_WEBHOOK_URLS": receiver.url,
        "LEADREADY_WEBHOOK_SECRET": SECRET,
        "LEADREADY_WEBHOOK_BACKOFF_SECONDS": "0.05",
        "LEADREADY_WEBHOOK_BACKOFF_MAX_SECONDS": "0.2",
    }.items():
        monkeypatch.setenv(name, value)
    engine = open_store(store_url)
    lead_ids = add_leads(engine, 60)
    server = start(models, tmp_path / "audit.db")
    try:
        first = route_changed(engine, lead_ids[:30])
        wait_until(lambda: all(a >= 2 for _, a, _ in statuses(engine).values()), 20)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        assert count_pending(engine) == 30
        receiver.start()
        second = route_changed(engine, lead_ids[30:])  # enqueued while no server runs
        server = start(models, tmp_path / "audit.db", "--workers", "2")
        receiver.wait_for(60, 30)
        wait_until(lambda: count_pending(engine) == 0, 10)
        time.sleep(1.5)  # a second poll of both workers: nothing more is sent
        metrics = httpx.get(f"{server.url}/metrics").text
        ready = httpx.get(f"{server.url}/readyz").json()
    finally:
        if server.process.poll() is None:
            assert stop(server) == 0
        engine.dispose()
    assert sorted(receiver.ids()) == sorted(first + second)  # every one, each once
    assert all(r.signed_by(SECRET) for r in receiver.got)
    assert "leadready_webhooks_delivered_total" in metrics
    assert ready["deliveries"]["dead"] == 0


@pytest.mark.server
def test_serve_refuses_bad_webhook_settings(champion_dir):
    env = {**clean_env(), "LEADREADY_WEBHOOK_URLS": "http://127.0.0.1:9/hook"}
    env.pop("LEADREADY_WEBHOOK_SECRET", None)
    result = subprocess.run(
        [LEADREADY, "serve", "--models-dir", str(champion_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "LEADREADY_WEBHOOK_SECRET is empty" in " ".join(result.stderr.split())
    env["LEADREADY_WEBHOOK_SECRET"] = "s"
    env["LEADREADY_WEBHOOK_TIMEOUT_SECONDS"] = "-1"
    result = subprocess.run(
        [LEADREADY, "serve", "--models-dir", str(champion_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "LEADREADY_WEBHOOK_TIMEOUT_SECONDS: Input should be greater than 0" in " ".join(
        result.stderr.split()
    ), result.stderr
