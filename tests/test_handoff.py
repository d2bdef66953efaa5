"""The hand-off end to end, with real processes: a `leadready serve` on a real lead store
(SQLite, and a PostgreSQL server the tests start) and a real webhook receiver on 127.0.0.1.
A lead warmed up by events over HTTP reaches sales and the receiver gets one signed
`lead.route_changed`, the one the outbox holds; the same events sent again announce nothing."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest
from test_live_leads import outbox, warm_up
from test_server import AUTH, start, stop
from webhook_receiver import Receiver

pytestmark = pytest.mark.server

SECRET = "handoff-test-secret"


def test_a_warmed_up_lead_reaches_sales_and_the_signed_webhook_arrives_once(
    store_url, champion_dir, tmp_path, monkeypatch
):
    models = tmp_path / "models"
    shutil.copytree(champion_dir, models)
    receiver = Receiver().start()
    monkeypatch.setenv("LEADREADY_DATABASE_URL", store_url)
    monkeypatch.setenv("LEADREADY_WEBHOOK_URLS", receiver.url)
    monkeypatch.setenv("LEADREADY_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("LEADREADY_SWEEP_MINUTES", "0")
    server = start(models, tmp_path / "audit.db")
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            lead = {"created_at": "2026-01-05T09:00:00Z", "source": "webinar", "company_size": 200}
            assert client.put("/v1/leads/H-1", json=lead).status_code == 200
            sent = time.monotonic()
            answer = client.post("/v1/events", json={"events": warm_up("H-1")})
            assert answer.status_code == 200, answer.text
            assert answer.json()["leads"]["H-1"]["route"] == "sales"
            got = receiver.wait_for(1, 10)
            latency_ms = (got[0].at - sent) * 1000
            again = client.post("/v1/events", json={"events": warm_up("H-1")})
            assert {r["status"] for r in again.json()["results"]} == {"duplicate"}
            time.sleep(1.5)  # past the dispatcher's poll: anything more would have arrived
            lead_now = client.get("/v1/leads/H-1").json()
    finally:
        assert stop(server) in (0, 130)
        receiver.stop()
    print(f"\n[hand-off] POST /v1/events -> webhook received: {latency_ms:.1f} ms")
    assert len(receiver.got) == 1
    delivery = receiver.got[0]
    assert delivery.signed_by(SECRET)
    body = delivery.payload
    assert body["type"] == "lead.route_changed" and body["lead_id"] == "H-1"
    assert body["route"] == "sales" and body["previous_route"] in (None, "nurture")
    assert delivery.headers["x-leadready-delivery"] == body["delivery_id"]
    stored = outbox(store_url, "lead.route_changed")
    assert [d["delivery_id"] for d in stored] == [body["delivery_id"]]
    assert lead_now["score"]["route"] == "sales"
