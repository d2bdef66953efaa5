"""The workspace at /ui in Debian's Chromium (Playwright), against a real `leadready serve`:
login, every page, an upload, a lead's what-if, the charts; no request leaves localhost, and a
failing test leaves a screenshot in its tmp_path."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
from conftest import make_table, write
from fastapi.testclient import TestClient
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.schemas import EXAMPLE_REQUEST

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "ui-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LEADREADY = str(Path(sys.executable).parent / "leadready")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is missing (.ci/run installs it)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def small_export(sample_dir, tmp_path_factory) -> Path:
    """300 leads of the sample (240 open, 60 closed) with their events, as CSV."""
    out = tmp_path_factory.mktemp("small-export")
    leads = pd.read_csv(sample_dir / "leads.csv", dtype=str, keep_default_na=False)
    chosen = pd.concat(
        [leads[leads.outcome == "open"].head(240), leads[leads.outcome != "open"].head(60)]
    )
    chosen.to_csv(out / "leads.csv", index=False)
    for name in ("activities", "touches"):
        events = pd.read_csv(sample_dir / f"{name}.csv", dtype=str, keep_default_na=False)
        events[events.lead_id.isin(chosen.lead_id)].to_csv(out / f"{name}.csv", index=False)
    return out


FLAT_TRAIN = [
    "train",
    "--table",
    "{table}",
    "--id",
    "lead",
    "--label",
    "converted",
    "--positive",
    "yes",
    "--time",
    "created",
    "--models-dir",
    "{models}",
]


def train_flat(models: Path, folder: Path) -> Path:
    """Register a flat-table champion in `models`, trained on make_table's rows; returns a
    table of new rows (no label) to upload."""
    from leadready.cli import app
    from typer.testing import CliRunner

    table = write(make_table(), folder, "history.csv")
    result = CliRunner().invoke(app, [a.format(table=table, models=models) for a in FLAT_TRAIN])
    assert result.exit_code == 0, result.output
    return write(make_table(seed=4).drop(columns=["converted"]), folder, "new-leads.csv")


@pytest.fixture(scope="module")
def served(champion_dir, tmp_path_factory) -> dict[str, Path]:
    """A models folder with both champions (a copy of the session's CRM-export one, and a
    flat-table one), and a flat table of new leads for it."""
    folder = tmp_path_factory.mktemp("ui-served")
    models = folder / "models"
    shutil.copytree(champion_dir, models)
    return {"models": models, "flat_table": train_flat(models, folder)}


@contextmanager
def running_server(models: Path, *extra: str, **env: str) -> Iterator[str]:
    """`leadready serve` on `models` with the test key, until the block ends (SIGINT)."""
    port = free_port()
    # mlflow.set_tracking_uri in this process exported MLFLOW_TRACKING_URI; the server must use
    # its own --models-dir store.
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    environment.update(
        LEADREADY_API_KEYS=KEY, LEADREADY_AUDIT_URL=f"sqlite:///{models / 'ui-audit.db'}", **env
    )
    process = subprocess.Popen(
        [LEADREADY, "serve", "--port", str(port), "--models-dir", str(models), *extra],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("server did not become ready in 90 s")
        time.sleep(0.2)
    try:
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server(served, sample_dir) -> Iterator[str]:
    with running_server(served["models"], LEADREADY_SAMPLE_DIR=str(sample_dir)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def context(browser, server):
    """One logged-in browser session shared by the tests of this module, in file order."""
    context = browser.new_context(
        base_url=server, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.requests = []
    context.on("request", lambda r: context.requests.append(r.url))
    page = context.new_page()
    page.goto("/ui/login")
    page.fill("input[name=key]", KEY)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/leads")
    page.close()
    yield context
    context.close()


@pytest.fixture
def page(context, request, tmp_path):
    """A page in the logged-in session; a screenshot in tmp_path when the test fails, and no
    request to any host but this machine."""
    page = context.new_page()
    failed_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed_before:
        shot = tmp_path / f"{request.node.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    page.close()
    assert_local(context.requests)


def assert_local(urls: list[str]) -> None:
    foreign = [
        u
        for u in urls
        if urlsplit(u).scheme not in ("data", "about", "blob")
        and urlsplit(u).hostname not in LOCAL_HOSTS
    ]
    assert not foreign, f"requests left localhost: {foreign}"


def assert_charts_drawn(page, minimum: int) -> None:
    """Every chart is an SVG with a non-zero size and drawn marks in it."""
    charts = page.locator("svg.chart")
    assert charts.count() >= minimum
    for i in range(charts.count()):
        chart = charts.nth(i)
        box = chart.bounding_box()
        assert box is not None and box["width"] > 50 and box["height"] > 30, box
        marks = chart.locator("rect, polyline, circle, line").count()
        assert marks > 0, chart.get_attribute("aria-label")


def test_pages_need_a_login_and_wrong_keys_are_refused(server, browser):
    answer = httpx.get(f"{server}/ui/model", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2Fmodel"
    for path in ("/ui/leads", "/ui/leads/L1", "/ui/outcomes", "/ui/leads.csv"):
        assert httpx.get(f"{server}{path}", follow_redirects=False).status_code == 303
    forged = httpx.get(
        f"{server}/ui/model", cookies={"leadready_session": "e30.AAAA"}, follow_redirects=False
    )
    assert forged.status_code == 303

    context = browser.new_context(base_url=server)
    try:
        page = context.new_page()
        page.goto("/ui/outcomes")
        assert "/ui/login" in page.url
        page.fill("input[name=key]", "not-the-key")
        page.click("button[type=submit]")
        assert page.get_by_role("alert").inner_text() == (
            "That key is not one of this server's API keys."
        )
        page.fill("input[name=key]", KEY)
        page.click("button[type=submit]")
        page.wait_for_url("**/ui/outcomes")
        (cookie,) = [c for c in context.cookies() if c["name"] == "leadready_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/ui"
        assert not cookie["secure"]  # plain http on loopback; https sets Secure
        page.click("text=Log out")
        page.wait_for_url("**/ui/login")
        page.goto("/ui/model")
        assert "/ui/login" in page.url
    finally:
        context.close()


def test_model_page_shows_the_champion_and_draws_its_charts(page):
    page.goto("/ui/model")
    assert page.locator("h1").inner_text() == "Champion: sales-readiness version 1"
    metrics = page.locator("table.data").first.inner_text().lower()  # headers are upper-cased
    assert "roc auc" in metrics and "bant scorecard" in metrics
    for title in (
        "Calibration",
        "Cumulative gains",
        "Global drivers",
        "Routing",
        "Champion and challenger",
    ):
        assert page.get_by_role("heading", name=title).is_visible()
    assert_charts_drawn(page, minimum=4)
    drivers = page.locator("svg.chart[aria-label^='Global drivers'] rect.bar")
    assert drivers.count() >= 5
    assert page.locator("svg.chart[aria-label^='Calibration'] polyline").count() == 1
    routes = page.locator("table.data").nth(1).inner_text()
    assert "sales" in routes and "nurture" in routes and "disqualify" in routes
    # Styles and the one script come from the package.
    assert (
        page.evaluate("getComputedStyle(document.querySelector('.badge')).color")
        == "rgb(255, 255, 255)"
    )
    assert page.evaluate("[...document.scripts].map(s => s.src)") == [
        page.url.split("/ui/")[0] + "/ui/static/workspace.js"
    ]


def test_upload_a_small_export_then_filter_search_and_download(page, small_export):
    page.goto("/ui/leads")
    page.set_input_files("input[name=leads]", str(small_export / "leads.csv"))
    page.set_input_files("input[name=activities]", str(small_export / "activities.csv"))
    page.set_input_files("input[name=touches]", str(small_export / "touches.csv"))
    page.get_by_role("button", name="Upload and score").first.click()
    page.wait_for_url("**/ui/leads")
    assert "240 open leads scored" in page.locator(".page-head").inner_text()
    rows = page.locator("table#leads tbody tr")
    assert rows.count() == 50
    values = [float(v) for v in page.locator("td.readiness").all_inner_texts()]
    assert values == sorted(values, reverse=True)
    assert "page 1 of 5" in page.locator(".pager").inner_text()

    page.select_option("select[name=route]", "nurture")  # the script submits on change
    page.wait_for_url("**route=nurture**")
    badges = set(page.locator("table#leads tbody .badge").all_inner_texts())
    assert badges == {"nurture"}
    counts = page.locator(".summary").inner_text()
    nurture = int(page.locator(".route-count.active strong").inner_text().replace(",", ""))
    assert nurture > 0 and "nurture" in counts

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    path = download.value.path()
    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == nurture and {r["route"] for r in table} == {"nurture"}
    assert {"lead_id", "readiness", "route_reason", "budget"} <= set(table[0])

    lead_id = table[0]["lead_id"]
    page.goto("/ui/leads")
    page.fill("input[name=q]", lead_id)
    page.press("input[name=q]", "Enter")
    page.wait_for_url(f"**q={lead_id}**")
    assert page.locator("table#leads tbody tr").count() == 1
    assert page.locator("table#leads tbody a").inner_text() == lead_id


def test_a_bad_upload_is_named_and_keeps_the_last_export(page, small_export, tmp_path):
    bad = tmp_path / "leads.csv"
    text = (small_export / "leads.csv").read_text().splitlines()
    text[2] = text[2].replace(",open,", ",maybe,")
    bad.write_text("\n".join(text) + "\n")
    page.goto("/ui/leads")
    page.locator("details.upload summary").click()
    page.set_input_files("input[name=leads]", str(bad))
    page.set_input_files("input[name=activities]", str(small_export / "activities.csv"))
    page.set_input_files("input[name=touches]", str(small_export / "touches.csv"))
    page.get_by_role("button", name="Upload and score").first.click()
    alert = page.get_by_role("alert").inner_text()
    assert "leads.csv, column 'outcome', line 3: value not allowed ('maybe')" in alert
    assert "/tmp" not in alert  # the server's temporary folder is not shown
    assert page.locator("table#leads tbody tr").count() == 50


def test_lead_page_explains_and_what_if_changes_the_score(page):
    page.goto("/ui/leads?route=nurture")
    page.locator("table#leads tbody a").first.click()
    page.wait_for_url("**/ui/leads/L*")
    lead_id = page.locator("h1").inner_text().removeprefix("Lead ")
    before = float(page.locator("#readiness-now").get_attribute("data-value"))
    assert page.locator(".stat.route .badge").inner_text() == "nurture"
    assert page.locator("#route-reason").inner_text().startswith("Readiness")
    assert_charts_drawn(page, minimum=2)
    bars = page.locator("svg.chart[aria-label^='What pushes'] rect.bar")
    assert bars.count() >= 2
    suggestions = page.locator("ol.suggestions li").all_inner_texts()
    assert 1 <= len(suggestions) <= 3
    assert all(f"{before:.2f} → " in s for s in suggestions)
    assert page.locator("table.timeline tbody tr").count() > 0

    current = page.locator("#whatif-budget").input_value()
    other = "confirmed" if current != "confirmed" else "indicated"
    page.select_option("#whatif-budget", other)  # submits on change
    page.wait_for_url(f"**budget={other}**")
    assert page.locator("#whatif-budget").input_value() == other
    assert page.locator(".whatif-result").inner_text().count("→") >= 1

    page.fill("#whatif-demo_requests", "1")
    page.get_by_role("button", name="Score with these changes").click()
    page.wait_for_url("**demo_requests=1**")
    after = float(page.locator("#readiness-after").get_attribute("data-value"))
    assert after != pytest.approx(before, abs=1e-9)
    # A demo request today is a hand-raise: the lead goes to sales whatever its score.
    assert page.locator("#route-after").get_attribute("data-route") == "sales"
    assert "+1 demo request" in page.locator(".whatif-result").inner_text()
    assert page.locator("h1").inner_text() == f"Lead {lead_id}"

    page.locator("ol.suggestions a").first.click()
    page.wait_for_load_state()
    assert page.locator("#readiness-after").get_attribute("data-value") != str(before)


def test_the_model_page_shows_either_champion(page):
    page.goto("/ui/model")
    tabs = page.get_by_role("navigation", name="Champions")
    assert tabs.locator("a").all_inner_texts() == [
        "trained on CRM exports",
        "trained on flat tables",
    ]
    tabs.get_by_role("link", name="trained on flat tables").click()
    page.wait_for_url("**/ui/model?model=flat")
    assert page.locator("h1").inner_text() == "Champion: sales-readiness-flat version 1"
    head = page.locator(".page-head").inner_text()
    assert "readiness = probability that converted is yes" in head
    metrics = page.locator("table.data").first.inner_text().lower()
    assert "roc auc" in metrics and "potential" not in metrics
    assert "newest by created" in page.locator("section.card").first.inner_text()
    assert_charts_drawn(page, minimum=4)
    rules = page.locator("table.data").nth(1).inner_text()
    assert "readiness ≥" in rules and "hand-raise" not in rules
    sides = page.locator("table.side-by-side").inner_text()
    assert "labelled rows in the training table" in sides and "BANT" not in sides


def test_a_flat_table_upload_is_scored_by_the_flat_champion(page, served):
    page.goto("/ui/leads")
    page.locator("details.upload summary").click()
    page.set_input_files("input[name=table]", str(served["flat_table"]))
    page.get_by_role("button", name="Upload and score").nth(1).click()
    page.wait_for_url("**/ui/leads")
    assert "600 rows of a flat table scored" in page.locator(".page-head").inner_text()
    assert "version 1 of the flat-table champion" in page.locator(".page-head").inner_text()
    values = [float(v) for v in page.locator("td.readiness").all_inner_texts()]
    assert len(values) == 50 and values == sorted(values, reverse=True)
    reasons = page.locator("td.reason").all_inner_texts()
    assert any(": " in r for r in reasons)  # "visits: 7" — the column and its value
    page.get_by_role("link", name="disqualify").first.click()
    page.wait_for_url("**route=disqualify**")
    assert set(page.locator("table#leads tbody .badge").all_inner_texts()) <= {"disqualify"}
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    table = pd.read_csv(download.value.path())
    assert list(table.columns[:4]) == ["lead", "readiness", "potential", "route"]
    assert set(table["route"]) <= {"disqualify"}


def test_a_flat_row_page_explains_and_what_if_changes_the_score(page):
    page.goto("/ui/leads?route=disqualify")  # the flat table uploaded by the test above
    page.locator("table#leads tbody a").first.click()
    page.wait_for_url("**/ui/leads/L*")
    assert "a flat table" in page.locator(".page-head").inner_text()
    before = float(page.locator("#readiness-now").get_attribute("data-value"))
    assert page.locator(".stat.route .badge").inner_text() == "disqualify"
    assert_charts_drawn(page, minimum=1)
    assert page.locator("svg.chart[aria-label^='What pushes'] rect.bar").count() >= 2
    values = page.locator("table#values tbody tr").all_inner_texts()
    assert len(values) == 6 and any(v.startswith("visits\t") for v in values)
    suggestions = page.locator("ol.suggestions li").all_inner_texts()
    assert 1 <= len(suggestions) <= 3
    assert all(f"{before:.2f} → " in s for s in suggestions)

    source = page.locator("select[data-whatif=source]")
    now = source.input_value()
    other = "referral" if now != "referral" else "web"
    source.select_option(other)  # submits on change
    page.wait_for_url(f"**source={other}**")
    assert "source: " + other in page.locator(".whatif-result").inner_text()
    after = float(page.locator("#readiness-after").get_attribute("data-value"))
    assert after != pytest.approx(before, abs=1e-9)

    page.fill("input[data-whatif=visits]", "25")
    page.get_by_role("button", name="Score with these changes").click()
    page.wait_for_url("**visits=25**")
    assert "visits 25" in page.locator(".whatif-result").inner_text()
    assert float(page.locator("#readiness-after").get_attribute("data-value")) > before


def test_the_sample_button_scores_the_sample_folder(page):
    page.goto("/ui/leads")
    page.locator("details.upload summary").click()
    page.click("#use-sample")
    page.wait_for_url("**/ui/leads")
    assert "sample (" in page.locator(".page-head").inner_text()
    assert page.locator("table#leads tbody tr").count() == 50


def test_outcomes_page_compares_scores_with_outcomes(page, server):
    leads = []
    for i in range(12):
        body = {
            **EXAMPLE_REQUEST,
            "lead": {
                **EXAMPLE_REQUEST["lead"],
                "lead_id": f"O-{i}",
                "budget": ("confirmed", "none")[i % 2],
            },
        }
        if i % 3 == 0:
            body["activities"] = []
        leads.append(body)
    answer = httpx.post(f"{server}/v1/score/batch", json={"leads": leads}, headers=AUTH)
    assert answer.status_code == 200
    routes = {r["lead_id"]: r["route"] for r in answer.json()["results"]}
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    outcomes = [
        {"lead_id": f"O-{i}", "outcome": "won" if i % 4 else "lost", "outcome_at": later}
        for i in range(12)
    ]
    assert httpx.post(f"{server}/v1/outcomes", json=outcomes, headers=AUTH).json() == {
        "imported": 12,
        "replaced": 0,
    }
    time.sleep(1.0)  # the audit log writes every 0.5 s
    page.goto("/ui/outcomes")
    stats = page.locator(".grid.stats").inner_text()
    assert "12" in stats and "9" in stats  # 12 leads with an outcome, 9 won
    sales = [lead for lead, route in routes.items() if route == "sales"]
    if sales:
        won = sum(1 for lead in sales if int(lead.split("-")[1]) % 4)
        assert page.locator("#sales-win-rate").inner_text() == f"{won / len(sales):.1%}"
    assert_charts_drawn(page, minimum=3)
    assert page.locator("svg.chart[aria-label^='Conversion rate by route'] rect.bar").count() >= 1
    heat = page.locator("#decile-months")
    assert heat.locator("thead th").all_inner_texts()[1:] == [f"D{k}" for k in range(1, 11)]
    assert heat.locator("tbody tr").count() >= 1
    assert heat.locator("tbody td[title$='leads']").count() >= 1


def test_static_files_come_from_the_package(server):
    for name, kind in (("workspace.css", "text/css"), ("workspace.js", "javascript")):
        answer = httpx.get(f"{server}/ui/static/{name}")
        assert answer.status_code == 200 and kind in answer.headers["content-type"]
    page = httpx.get(f"{server}/ui/login")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace(server, "").split("<body>")[0]


def test_ten_thousand_leads_page_and_filter_quickly(champion_dir, sample_dir, tmp_path):
    """10,000 leads in a session: the server sends 50 rows per page, filters in milliseconds."""
    from leadready.features.contract import load_crm
    from leadready.serving.ui import _build_export

    settings = ServeSettings(
        models_dir=champion_dir,
        audit_url=f"sqlite:///{tmp_path / 'a.db'}",
        sample_dir=tmp_path / "none",
    )  # no keys: the workspace is open
    with TestClient(create_app(settings)) as client:
        first = client.get("/ui/leads")
        assert first.status_code == 200 and "Upload and score" in first.text
        ws = client.app.state.ui
        sid = ws.verify(client.cookies.get("leadready_session"))["sid"]
        export = _build_export(
            "big", load_crm(sample_dir, require_outcome=False), client.app.state.engine, None
        )
        copies = []
        for k in range(-(-10_000 // len(export.table))):
            part = export.table.copy()
            part["lead_id"] = part["lead_id"] + f"-{k}"
            copies.append(part)
        export.table = (
            pd.concat(copies)
            .head(10_000)
            .sort_values("readiness", ascending=False)
            .reset_index(drop=True)
        )
        ws.keep(sid, export)
        for query in (
            "",
            "?route=nurture&budget=unknown",
            "?page=200",
            "?q=L00-3",
            "?source=web_form&need=confirmed&page=2",
        ):
            started = time.perf_counter()
            answer = client.get(f"/ui/leads{query}")
            elapsed = time.perf_counter() - started
            assert answer.status_code == 200
            assert answer.text.count("<tr>") <= 51 and len(answer.text) < 200_000
            assert elapsed < 1.0, (query, elapsed)
        assert "of 10,000" in client.get("/ui/leads?route=sales").text
        assert "page 200 of 200" in client.get("/ui/leads?page=999").text
        csv_text = client.get("/ui/leads.csv").text
        assert len(csv_text.strip().splitlines()) == 10_001


def test_a_server_with_only_a_flat_champion_serves_the_workspace(tmp_path):
    """A flat-table user (no CRM export) gets the workspace; the API says what it lacks."""
    models = tmp_path / "models"
    table = train_flat(models, tmp_path)
    settings = ServeSettings(
        models_dir=models, audit_url=f"sqlite:///{tmp_path / 'a.db'}", sample_dir=tmp_path / "none"
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["model"] is None
        assert ready["flat_model"]["name"] == "sales-readiness-flat"
        answer = client.post("/v1/score", json=EXAMPLE_REQUEST)
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith("no champion of 'sales-readiness' is loaded")
        model = client.get("/ui/model").text
        assert "Champion: sales-readiness-flat version 1" in model and "Champions" not in model
        leads = client.get("/ui/leads").text
        assert (
            "Not available on this server: no &#39;champion&#39; version of model "
            "&#39;sales-readiness&#39;" in leads
        )
        with table.open("rb") as handle:
            uploaded = client.post("/ui/leads/upload", files={"table": ("new.csv", handle)})
        assert uploaded.status_code == 200 and "600 rows of a flat table" in uploaded.text
        crm = client.post(
            "/ui/leads/upload",
            files={
                name: (f"{name}.csv", b"lead_id\n") for name in ("leads", "activities", "touches")
            },
        )
        assert crm.status_code == 422
        assert "no &#39;champion&#39; version of model &#39;sales-readiness&#39;" in crm.text
        # An export naming the columns its own way, mapped by a schema's table section.
        renamed = pd.read_csv(table).rename(columns={"visits": "Site Visits", "source": "Origin"})
        renamed["Origin"] = renamed["Origin"].str.upper()
        mapped = client.post(
            "/ui/leads/upload",
            files={
                "table": ("crm.csv", renamed.to_csv(index=False).encode()),
                "schema": (
                    "map.yaml",
                    b"table:\n  columns: {Site Visits: visits, Origin: source}\n"
                    b"  values:\n    source: {WEB: web, ADS: ads, REFERRAL: "
                    b"referral, EVENT: event, PODCAST: podcast}\n",
                ),
            },
        )
        assert mapped.status_code == 200 and "600 rows of a flat table" in mapped.text
        unmapped = client.post(
            "/ui/leads/upload", files={"table": ("crm.csv", renamed.to_csv(index=False).encode())}
        )
        assert unmapped.status_code == 422
        alert = unmapped.text.split("<pre>", 1)[1].split("</pre>", 1)[0]
        assert alert == (
            "crm.csv: missing columns &#39;visits&#39;, &#39;source&#39; that the "
            "model was trained with (when the export names them differently, give "
            "a schema whose table section renames them: docs/flat-mode.md)"
        )
        assert "600 rows of a flat table" in unmapped.text  # the last good upload stays


def test_with_several_workers_every_worker_serves_the_session(served, small_export, tmp_path):
    """Sessions and uploads are kept on disk: with --workers 2, whichever process answers, the
    cookie is valid and the uploaded export is there (scored again by that worker); /metrics
    adds up the requests of both."""
    models = tmp_path / "models"
    shutil.copytree(served["models"], models)
    workspace = models / "workspace"
    before = {p.name for p in workspace.iterdir()} if workspace.exists() else set()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with running_server(models, "--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as url:
        login = httpx.post(f"{url}/ui/login", data={"key": KEY, "next": "/ui/leads"})
        assert login.status_code == 303
        cookies = {"leadready_session": login.cookies["leadready_session"]}
        files = {
            name: (f"{name}.csv", (small_export / f"{name}.csv").read_bytes())
            for name in ("leads", "activities", "touches")
        }
        upload = httpx.post(f"{url}/ui/leads/upload", files=files, cookies=cookies)
        assert upload.status_code == 303, upload.text
        for _ in range(40):  # a new connection each time: the kernel picks the worker
            page = httpx.get(f"{url}/ui/leads", cookies=cookies)
            assert page.status_code == 200 and "240 open leads scored" in page.text
            lead = page.text.split('href="/ui/leads/', 1)[1].split('"', 1)[0]
            assert httpx.get(f"{url}/ui/leads/{lead}", cookies=cookies).status_code == 200
        # Each worker keeps its metrics in files named by its pid: both answered requests.
        assert len({p.name for p in metrics_dir.glob("counter_*.db")}) == 2
        # /readyz polls, the login, the upload and 80 pages: counted once, whichever worker.
        pages = _requests(httpx.get(f"{url}/metrics").text, "other", "200") + _requests(
            httpx.get(f"{url}/metrics").text, "other", "303"
        )
        assert pages == 80 + 2
    (saved,) = [p for p in workspace.iterdir() if p.is_dir() and p.name not in before]
    assert {p.name for p in saved.iterdir()} == {
        "meta.json",
        "leads.parquet",
        "activities.parquet",
        "touches.parquet",
    }
    assert oct((workspace / "secret").stat().st_mode & 0o777) == "0o600"


def _requests(metrics: str, endpoint: str, status: str) -> float:
    """The request counter of one endpoint and status in Prometheus text."""
    prefix = f'leadready_requests_total{{endpoint="{endpoint}",status="{status}"}}'
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix)
    )


def test_wrong_keys_at_the_login_form_are_throttled(champion_dir, tmp_path):
    from leadready.serving.ui import MAX_FAILED_LOGINS

    settings = ServeSettings(
        models_dir=champion_dir, api_keys=KEY, audit_url=f"sqlite:///{tmp_path / 'a.db'}"
    )
    with TestClient(create_app(settings)) as client:
        for _ in range(MAX_FAILED_LOGINS):
            assert client.post("/ui/login", data={"key": "guess"}).status_code == 401
        refused = client.post("/ui/login", data={"key": KEY}, follow_redirects=False)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 300
        assert "Too many wrong keys from this address: try again in 5 minutes." in refused.text


def test_the_login_throttle_forgets_failures_after_the_window():
    from leadready.serving.ui import LOGIN_WINDOW, MAX_FAILED_LOGINS, LoginThrottle

    throttle = LoginThrottle()
    for i in range(MAX_FAILED_LOGINS):
        assert throttle.wait("10.0.0.1", 100.0 + i) == 0.0
        throttle.failed("10.0.0.1", 100.0 + i)
    assert throttle.wait("10.0.0.1", 110.0) == pytest.approx(LOGIN_WINDOW - 10.0)
    assert throttle.wait("10.0.0.2", 110.0) == 0.0  # another address is not affected
    assert throttle.wait("10.0.0.1", 100.0 + LOGIN_WINDOW) == 0.0  # the oldest has expired
    throttle.failed("10.0.0.1", 100.0 + LOGIN_WINDOW)
    assert throttle.wait("10.0.0.1", 100.0 + LOGIN_WINDOW) > 0  # ten within the window again
    throttle.succeeded("10.0.0.1")
    assert throttle.wait("10.0.0.1", 100.0 + LOGIN_WINDOW) == 0.0
