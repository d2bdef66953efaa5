"""The workspace at /ui in Debian's Chromium (Playwright), against a real `leadready serve`:
login, every page, an upload, a lead's what-if, the charts; no request leaves localhost, and a
failing test leaves a screenshot in its tmp_path. Without /usr/bin/chromium these tests fail
(they do not skip): the tests that need no browser are in tests/test_ui_pages.py."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
from workspace_server import AUTH, KEY, running_server

from leadready.serving.schemas import EXAMPLE_REQUEST
from leadready.serving.ui.formatting import chance

pytestmark = pytest.mark.browser

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def server(served, sample_dir) -> Iterator[str]:
    with running_server(served["models"], LEADREADY_SAMPLE_DIR=str(sample_dir)) as url:
        yield url


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


def readiness_column(page) -> list[float]:
    cells = page.locator("td.readiness")
    return [float(cells.nth(i).get_attribute("data-value")) for i in range(cells.count())]


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
    values = readiness_column(page)
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
    assert 1 <= len(suggestions) <= 6  # up to three for each side
    assert all(f"{chance(before)} → " in s for s in suggestions)
    assert page.locator("table.timeline tbody tr").count() > 0
    # What sales and marketing can do is apart from what only the lead does.
    us, lead_side = page.locator("fieldset.side-us"), page.locator("fieldset.side-lead")
    assert us.locator("legend").inner_text() == "What sales and marketing can do"
    assert us.locator("#whatif-marketing_emails").is_visible()
    assert lead_side.locator("#whatif-demo_requests").is_visible()
    assert lead_side.locator("#whatif-budget").is_visible()
    assert us.locator("#whatif-demo_requests").count() == 0
    for side in ("us", "lead"):
        heading = page.locator(f".whatif-result .side-{side} h3").inner_text()
        assert heading.endswith("the changes that would raise readiness most")
        texts = page.locator(f".whatif-result .side-{side} li").all_inner_texts()
        hand_raises = [t for t in texts if "demo request" in t or "contact request" in t]
        assert not hand_raises if side == "us" else True
    bars = page.locator("svg.chart[aria-label^='What pushes'] text").all_text_contents()
    assert "BANT (budget, authority, need, timeframe)" in bars
    assert not any(b.startswith("All other inputs") for b in bars)

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
    assert page.locator("section.card").filter(has_text="newest by created").count() == 1
    assert "Of 100 leads this model sends to sales" in page.locator("#plain-words").inner_text()
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
    values = readiness_column(page)
    assert len(values) == 50 and values == sorted(values, reverse=True)
    reasons = page.locator("td.reason").all_inner_texts()
    assert any(": " in r for r in reasons)  # "visits: 7" — the column and its value
    # People by name and company (the schema's display columns), not bare ids.
    names = page.locator("table#leads tbody td.lead a").all_inner_texts()
    assert all(n.startswith("Person 4-") for n in names)
    assert page.locator("table#leads thead th").nth(1).inner_text().lower() == "company"
    assert page.locator("table#leads tbody td.display").first.inner_text().startswith("Company ")
    page.select_option("select[name=size]", "200+")  # a categorical input filters
    page.wait_for_url("**size=200%2B**")
    assert page.locator("table#leads tbody tr").count() > 0
    page.fill("input[name=q]", names[0])
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**q=Person**")
    assert page.locator("table#leads tbody td.lead a").all_inner_texts() in ([names[0]], [])
    page.goto("/ui/leads")
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
    assert all(f"{chance(before)} → " in s for s in suggestions)
    assert all(s.startswith(("visits ", "source: ")) for s in suggestions)  # actionable only
    assert page.locator("fieldset.flat-actionable [data-whatif]").count() == 2
    assert page.locator("fieldset.flat-others [data-whatif=balance]").count() == 1

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


def test_the_sample_button_scores_the_sample_folder(page, sample_dir):
    page.goto("/ui/leads")
    page.locator("details.upload summary").click()
    page.click("#use-sample")
    page.wait_for_url("**/ui/leads")
    head = page.locator(".page-head").inner_text()
    assert "Sample CRM ·" in head and str(sample_dir) not in page.content()
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


def test_outcomes_are_uploaded_on_the_outcomes_page(page, tmp_path):
    bad = tmp_path / "bad-outcomes.csv"
    bad.write_text("lead_id,outcome,outcome_at\nU-1,won,2026-01-02\nU-2,sold,2026-01-02\n")
    page.goto("/ui/outcomes")
    stored = page.locator(".grid.stats .stat").first.inner_text()
    page.locator("#import-outcomes summary").click()
    page.set_input_files("#import-outcomes input[name=file]", str(bad))
    page.get_by_role("button", name="Import").click()
    alert = page.get_by_role("alert").inner_text()
    assert "bad-outcomes.csv, column 'outcome', line 3: value not allowed ('sold')" in alert
    assert page.locator(".grid.stats .stat").first.inner_text() == stored  # nothing stored
    good = tmp_path / "outcomes.csv"
    good.write_text("lead_id,outcome,outcome_at\nU-1,won,2026-01-02\nU-2,lost,2026-01-03\n")
    page.set_input_files("#import-outcomes input[name=file]", str(good))
    page.get_by_role("button", name="Import").click()
    page.wait_for_url("**/ui/outcomes?imported=2**")
    assert page.locator("#imported").inner_text() == "Imported 2 outcomes."


def test_the_api_docs_draw_with_no_internet(browser, server):
    """Swagger UI's script and stylesheet come from the server: with every request to another
    host blocked, /docs still draws the API's operations."""
    context = browser.new_context(base_url=server)
    blocked: list[str] = []

    def only_loopback(route):
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    try:
        page.goto("/docs")
        page.locator(".swagger-ui .info .title").wait_for(timeout=15_000)
        assert "leadready scoring API" in page.locator(".swagger-ui .info .title").inner_text()
        assert page.locator(".opblock-summary-path", has_text="/v1/score").count() >= 1
        assert blocked == []
    finally:
        context.close()
