"""The workspace's Queue page and the Lead page's readiness trend, through FastAPI's
TestClient on a real lead store (SQLite and a real PostgreSQL server) filled through the live
lead API, with the SLA and take-backs brought about by sweeps on a clock the test controls
(`leadready store sweep --now`); and both pages in Debian's Chromium against a real server."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from test_live_leads import NOW, activity, iso, post, put, sweep_at, warm_up
from workspace_server import AUTH, KEY, running_server

from leadready.serving.app import ServeSettings, create_app


def workspace_client(champion_dir: Path, tmp_path: Path, url: str) -> TestClient:
    """A server with no API keys (the workspace and the API are open) on the store `url`."""
    return TestClient(
        create_app(
            ServeSettings(
                models_dir=champion_dir,
                audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                sample_dir=tmp_path / "none",
                database_url=url,
                sweep_minutes=0,
            )
        )
    )


def text(html: str) -> str:
    """A page's words, without its tags."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def fill(client: TestClient, url: str, champion_dir: Path) -> None:
    """R: asked for a demo 8 days ago, routed to sales by a sweep 6 days ago and never called
    (past the 48-hour promise). T: routed to sales 15 days ago, never called, taken back by a
    sweep an hour ago. W: warmed up now, waiting for sales."""
    put(client, "R-1")
    post(client, [activity("R-1-demo", "R-1", "demo_request", timedelta(days=8))])
    put(client, "T-1")
    post(client, [activity("T-1-demo", "T-1", "demo_request", timedelta(days=16))])
    for ago in (timedelta(days=15, hours=-1), timedelta(days=6), timedelta(hours=1)):
        sweep_at(url, champion_dir, NOW - ago)
    put(client, "W-1", industry="Software", company_size=200)
    post(client, warm_up("W-1"))


@pytest.mark.api
def test_the_queue_page_shows_waiting_late_and_taken_back_leads_and_the_crm_messages(
    champion_dir, tmp_path, store_url
):
    with workspace_client(champion_dir, tmp_path, store_url) as client:
        fill(client, store_url, champion_dir)
        answer = client.get("/ui/queue")
        assert answer.status_code == 200, answer.text
        html = answer.text
        assert '<a href="/ui/queue" aria-current="page">Queue</a>' in html
        words = text(html)
        assert "Waiting for sales 2 sales promises a first call within 48 hours" in words
        assert "Past the 48-hour promise 1 " in words and "Taken back to nurture 1 " in words
        late = text(html.split('id="at-risk"')[1].split("</section>")[0])
        assert "R-1" in late and "6 days" in late and "past the 48-hour promise" in late
        waiting = text(html.split('id="waiting"')[1].split("</section>")[0])
        assert "W-1" in waiting and "under an hour" in waiting
        assert "waiting for a first call" in waiting and "R-1" not in waiting
        back = text(html.split('id="taken-back"')[1].split("</section>")[0])
        assert "T-1" in back and "sales did not call in 14 days" in back
        messages = text(html.split('id="messages"')[1].split("</section>")[0])
        # No webhook URL is set: every message waits to be sent.
        for about in ("route changed", "past the promise to call", "taken back to nurture"):
            assert about in messages
        assert "waiting to be sent or retried" in messages and "failed for good" not in messages
        assert "None: no message has failed for good." in words
        assert 'href="/ui/leads/R-1"' in html
        for jargon in ("sqlite", "postgresql", "--", "log-odds", "sla_state", "at_risk"):
            assert jargon not in html.split("<main")[1].lower(), jargon

        lead = client.get("/ui/leads/T-1")
        assert lead.status_code == 200
        trend = lead.text.split('id="trend"')[1].split("</section>")[0]
        assert "Readiness over time" in trend and "<svg" in trend
        assert "to sales" in trend and "to nurture" in trend  # its route changes, marked
        assert client.get("/ui/leads/NOPE").status_code == 404


@pytest.mark.api
def test_the_queue_page_without_a_lead_store_says_so_and_creates_nothing(champion_dir, tmp_path):
    store = tmp_path / "leads.db"
    with workspace_client(champion_dir, tmp_path, f"sqlite:///{store}") as client:
        answer = client.get("/ui/queue")
        assert answer.status_code == 200
        words = text(answer.text)
        assert "No leads are followed yet" in words
        assert "when your CRM sends them to leadready" in words
        assert client.get("/ui/leads/L-1").status_code == 404
    assert not store.exists()


@pytest.mark.browser
def test_the_queue_page_and_the_trend_chart_draw_in_a_browser_with_no_console_errors(
    browser, served, tmp_path
):
    store = f"sqlite:///{tmp_path / 'leads.db'}"
    with running_server(served["models"], LEADREADY_DATABASE_URL=store) as url:
        api = httpx.Client(base_url=url, headers=AUTH, timeout=30)
        body = {"created_at": iso(NOW - timedelta(days=30)), "source": "webinar"}
        assert api.put("/v1/leads/W-1", json=body).status_code == 200
        assert api.post("/v1/events", json={"events": warm_up("W-1")}).status_code == 200
        context = browser.new_context(base_url=url)
        problems: list[str] = []
        try:
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto("/ui/login?next=%2Fui%2Fqueue")
            page.fill("input[name=key]", KEY)
            page.click("button[type=submit]")
            page.wait_for_url("**/ui/queue")
            assert page.locator("h1").inner_text() == "Queue"
            assert page.locator("#waiting-count").inner_text() == "1"
            page.click("#waiting >> text=W-1")
            page.wait_for_url("**/ui/leads/W-1")
            chart = page.locator("#trend svg.chart")
            box = chart.bounding_box()
            assert box is not None and box["width"] > 50 and box["height"] > 30
            assert chart.locator("polyline, circle").count() > 0
        finally:
            context.close()
    assert problems == []


@pytest.mark.api
def test_a_lead_store_that_cannot_be_read_is_a_plain_503_naming_no_database(champion_dir, tmp_path):
    folder = tmp_path / "not-a-database"
    folder.mkdir()
    with workspace_client(champion_dir, tmp_path, f"sqlite:///{folder}") as client:
        answer = client.get("/ui/queue")
        assert answer.status_code == 503
        assert "cannot be read right now" in answer.text and str(folder) not in answer.text
        assert client.get("/ui/leads/L-1").status_code == 404  # the Lead page still answers
