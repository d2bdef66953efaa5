"""The workspace at /ui through FastAPI's TestClient and real servers, no browser: sessions and
the login throttle, uploads scored by the loaded champions, ten thousand leads paged on the
server, a flat-table-only server, and sessions shared by several worker processes."""

from __future__ import annotations

import io
import re
import shlex
import shutil

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from typer.testing import CliRunner
from workspace_server import KEY, running_server, train_flat

from leadready.cli import app as cli
from leadready.features.contract import load_crm
from leadready.features.routing import Thresholds
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.explain import THEMES
from leadready.serving.schemas import EXAMPLE_REQUEST
from leadready.serving.throttle import FOLDER, MAX_FAILURES, WINDOW, KeyThrottle
from leadready.serving.ui.exports import build_export

PAGES = ("/ui/model", "/ui/leads", "/ui/leads/L1", "/ui/outcomes", "/ui/queue", "/ui/leads.csv")


def open_settings(models, tmp_path, **extra) -> ServeSettings:
    """A server on `models` with no API keys (the workspace is open) and no sample folder."""
    return ServeSettings(
        models_dir=models,
        audit_url=f"sqlite:///{tmp_path / 'a.db'}",
        sample_dir=tmp_path / "none",
        **extra,
    )


@pytest.mark.api
def test_pages_send_a_client_without_a_session_to_the_login_form(champion_dir, tmp_path):
    settings = open_settings(champion_dir, tmp_path, api_keys=KEY)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        for path in PAGES:
            answer = client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/ui/login?next=%2Fui%2F")
        client.cookies.set("leadready_session", "e30.AAAA")
        assert client.get("/ui/model").status_code == 303  # a cookie this server did not sign
        client.cookies.clear()
        login = client.post("/ui/login", data={"key": KEY, "next": "/ui/model"})
        assert login.status_code == 303 and login.headers["location"] == "/ui/model"
        assert client.get("/ui/model").status_code == 200
        # A form posted after the session ended starts over at the Leads page.
        client.cookies.clear()
        posted = client.post("/ui/leads/sample")
        assert posted.headers["location"] == "/ui/login?next=%2Fui%2Fleads"


@pytest.mark.api
def test_static_files_come_from_the_package(champion_dir, tmp_path):
    settings = open_settings(champion_dir, tmp_path, api_keys=KEY)
    with TestClient(create_app(settings)) as client:
        for name, kind in (("workspace.css", "text/css"), ("workspace.js", "javascript")):
            answer = client.get(f"/ui/static/{name}")
            assert answer.status_code == 200 and kind in answer.headers["content-type"]
        page = client.get("/ui/login")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "http" not in page.text.replace("http://testserver", "").split("<body>")[0]
        # The API's docs page too: Swagger UI's assets ship in a package (fastapi-offline).
        docs = client.get("/docs").text
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs)
        assert {"/docs-assets/swagger-ui.css", "/docs-assets/swagger-ui-bundle.js"} <= set(assets)
        assert all(url.startswith("/") for url in assets) and "cdn" not in docs
        for name, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
            answer = client.get(f"/docs-assets/{name}")
            assert answer.status_code == 200 and kind in answer.headers["content-type"]


@pytest.mark.api
def test_uploads_and_the_sample_are_scored_by_the_loaded_engine(
    champion_dir, sample_dir, small_export, tmp_path
):
    """Every export is scored by the engine the server loaded and self-tested once: an engine
    built again from the same model would route by the registry's thresholds instead."""
    settings = ServeSettings(
        models_dir=champion_dir, audit_url=f"sqlite:///{tmp_path / 'a.db'}", sample_dir=sample_dir
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/ui/leads").status_code == 200
        client.app.state.engine.thresholds = Thresholds(sales=0.0, disqualify=0.0)
        files = {
            name: (f"{name}.csv", (small_export / f"{name}.csv").read_bytes())
            for name in ("leads", "activities", "touches")
        }
        assert client.post("/ui/leads/upload", files=files).status_code == 200
        table = pd.read_csv(io.StringIO(client.get("/ui/leads.csv").text))
        assert len(table) == 240 and set(table["route"]) == {"sales"}
        # Events tables are optional: the leads alone are scored too.
        assert client.post("/ui/leads/upload", files={"leads": files["leads"]}).status_code == 200
        assert len(pd.read_csv(io.StringIO(client.get("/ui/leads.csv").text))) == 240
        assert client.post("/ui/leads/sample").status_code == 200
        sample = pd.read_csv(io.StringIO(client.get("/ui/leads.csv").text))
        assert len(sample) > 240 and set(sample["route"]) == {"sales"}
        lead = sample["lead_id"].iloc[-1]
        route_card = '<p class="big"><span class="badge badge-sales">sales</span></p>'
        assert route_card in client.get(f"/ui/leads/{lead}").text

        # A schema's leads.display: the first column names each lead (its id beside it), the
        # others are columns, and the search looks in them too.
        leads = pd.read_csv(small_export / "leads.csv", dtype=str, keep_default_na=False)
        leads["Name"] = [f"Person {i}" for i in range(len(leads))]
        leads["Owner"] = [("Anna", "Ben", "Chloe")[i % 3] for i in range(len(leads))]
        named = {
            **files,
            "leads": ("leads.csv", leads.to_csv(index=False).encode()),
            "schema": ("schema.yaml", b"leads: {display: [Name, Owner]}\n"),
        }
        page = client.post("/ui/leads/upload", files=named).text
        table = _csv(client)
        top = table.iloc[0]
        assert len(table) == 240 and {"Name", "Owner"} <= set(table.columns)
        link = f'<a href="/ui/leads/{top["lead_id"]}">{top["Name"]}</a>'
        assert f'{link} <span class="hint">{top["lead_id"]}</span>' in page
        assert '<th scope="col">Owner</th>' in page and "lead id or Name or Owner" in page
        assert f'<td class="display">{top["Owner"]}</td>' in page
        found = _csv(client, "?q=person+12")
        assert len(found) == 11 and found["Name"].str.startswith("Person 12").all()
        assert len(_csv(client, "?q=chloe")) == 80
        lead_page = client.get(f"/ui/leads/{top['lead_id']}").text
        assert f'<h1>{top["Name"]} <span class="muted small">{top["lead_id"]}</span></h1>' in (
            lead_page
        )
        assert f"<strong>Owner</strong> {top['Owner']}" in lead_page


@pytest.mark.api
def test_a_what_if_scores_what_the_api_scores_for_the_changed_lead(
    champion_dir, tiny_crm, tmp_path
):
    """The lead page builds the changed lead's arrays itself; the API, given the same lead with
    the change written into its request, gives the same readiness and route."""
    with TestClient(create_app(open_settings(champion_dir, tmp_path))) as client:
        files = {
            name: (f"{name}.csv", (tiny_crm / f"{name}.csv").read_bytes())
            for name in ("leads", "activities", "touches")
        }
        assert client.post("/ui/leads/upload", files=files).status_code == 200
        page = client.get("/ui/leads/L3?budget=confirmed&demo_requests=2&sales_calls=1").text
        after = float(page.split('id="readiness-after" data-value="', 1)[1].split('"', 1)[0])
        before = float(page.split('id="readiness-now" data-value="', 1)[1].split('"', 1)[0])
        route = page.split('data-route="', 1)[1].split('"', 1)[0]
        as_of = "2025-04-01T12:00:00Z"  # the latest time the export records: L2's outcome
        lead = {
            "lead_id": "L3",
            "created_at": "2025-02-01T00:00:00+01:00",
            "source": "web_form",
            "company_size": 8,
            "budget": "indicated",
            "authority": "user",
            "need": "none",
            "timeframe": "6_12m",
        }
        body = {
            "lead": lead,
            "activities": [{"occurred_at": "2025-02-02T10:00:00", "type": "content_download"}],
            "touches": [],
            "as_of": as_of,
        }
        api_before = client.post("/v1/score", json=body).json()
        changed = {
            "lead": {**lead, "budget": "confirmed"},
            "activities": body["activities"] + [{"occurred_at": as_of, "type": "demo_request"}] * 2,
            "touches": [
                {"occurred_at": as_of, "channel": "call", "team": "sales", "responded": True}
            ],
            "as_of": as_of,
        }
        api_after = client.post("/v1/score", json=changed).json()
    assert before == pytest.approx(api_before["readiness"], abs=1e-12)
    assert after == pytest.approx(api_after["readiness"], abs=1e-12) and after != before
    assert route == api_after["route"] == "sales"  # a demo request today is a hand-raise
    # Reasons by theme, nothing left in an "everything else" bar; the what-if's two sides.
    chart = page.split("What pushes the readiness", 1)[1].split("</svg>", 1)[0]
    assert all(escape(title) in chart for title in THEMES.values())
    assert "All other inputs" not in page and "log-odds" not in page
    us = page.split('<fieldset class="side-us">', 1)[1].split("</fieldset>", 1)[0]
    lead_side = page.split('<fieldset class="side-lead">', 1)[1].split("</fieldset>", 1)[0]
    assert "Marketing emails" in us and "Sales meetings" in us and "Demo requests" not in us
    assert "Demo requests" in lead_side and 'name="budget"' in lead_side
    assert "What sales and marketing can do: the changes" in page
    assert "What the lead would do or tell you: the changes" in page
    meaning = page.split('id="readiness-meaning">', 1)[1].split("<", 1)[0]
    assert meaning.startswith("Of 100 leads scored like this, ")
    assert meaning.endswith(" are won within 90 days.")
    if 1 <= round(before * 100) <= 99:
        assert f"about {round(before * 100)} are won" in meaning


@pytest.mark.api
def test_ten_thousand_leads_are_paged_and_filtered_on_the_server(
    champion_dir, sample_dir, tmp_path
):
    """10,000 leads in a session: the server sends 50 rows per page (bench/workspace.py times
    it)."""
    with TestClient(create_app(open_settings(champion_dir, tmp_path))) as client:
        first = client.get("/ui/leads")
        assert first.status_code == 200 and "Upload and score" in first.text
        ws = client.app.state.ui
        sid = ws.auth.verify(client.cookies.get("leadready_session"))["sid"]
        export = build_export(
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
        ws.exports.keep(sid, export)
        for query in (
            "",
            "?route=nurture&budget=unknown",
            "?page=200",
            "?q=L00-3",
            "?source=web_form&need=confirmed&page=2",
        ):
            answer = client.get(f"/ui/leads{query}")
            assert answer.status_code == 200
            assert answer.text.count("<tr>") <= 51 and len(answer.text) < 200_000
        assert "of 10,000" in client.get("/ui/leads?route=sales").text
        assert "page 200 of 200" in client.get("/ui/leads?page=999").text
        csv_text = client.get("/ui/leads.csv").text
        assert len(csv_text.strip().splitlines()) == 10_001


@pytest.mark.api
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
            "Not available on this server: no model trained on CRM exports is in use on this "
            "server yet" in leads
        )
        assert "sqlite:" not in leads and str(models) not in leads
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
        assert "no model trained on CRM exports is in use on this server yet" in crm.text
        assert "sqlite:" not in crm.text and str(models) not in crm.text
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
        # With a challenger, the Model page gives the command that compares the two, and it
        # runs as shown.
        assert "leadready models compare" not in client.get("/ui/model").text
        train_flat(models, tmp_path)
        client.app.state.ui.model_reads.versions_by_name.clear()
        model = client.get("/ui/model").text
        command = model.split('<code id="compare-command">', 1)[1].split("</code>", 1)[0]
        assert command == f"leadready models compare 1 2 --flat --models-dir {models}"
        result = CliRunner().invoke(cli, shlex.split(command)[1:])
        assert result.exit_code == 0, result.output


@pytest.mark.server
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


@pytest.mark.api
def test_wrong_keys_at_the_login_form_are_throttled(champion_dir, tmp_path):
    # A copy: the block stays in this test's models folder, not the one other tests share; and
    # without the wrong keys other tests counted there (from the same "testclient" address).
    models = tmp_path / "models"
    shutil.copytree(champion_dir, models, ignore=shutil.ignore_patterns(FOLDER))
    settings = ServeSettings(
        models_dir=models, api_keys=KEY, audit_url=f"sqlite:///{tmp_path / 'a.db'}"
    )
    with TestClient(create_app(settings)) as client:
        for _ in range(MAX_FAILURES - 1):
            assert client.post("/ui/login", data={"key": "guess"}).status_code == 401
        # The tenth wrong key is refused at once; then even the right one waits.
        assert client.post("/ui/login", data={"key": "guess"}).status_code == 429
        refused = client.post("/ui/login", data={"key": KEY}, follow_redirects=False)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 300
        assert "Too many wrong keys from this address: try again in 5 minutes." in refused.text


@pytest.mark.unit
def test_the_key_throttle_forgets_failures_after_the_window(tmp_path):
    throttle = KeyThrottle(tmp_path / "throttle")
    for i in range(MAX_FAILURES - 1):
        assert throttle.failed("10.0.0.1", 100.0 + i) == 0.0
    assert throttle.wait("10.0.0.1", 109.0) == 0.0
    assert throttle.failed("10.0.0.1", 109.0) == pytest.approx(WINDOW - 9.0)
    assert throttle.wait("10.0.0.1", 110.0) == pytest.approx(WINDOW - 10.0)
    assert throttle.wait("10.0.0.2", 110.0) == 0.0  # another address is not affected
    assert throttle.wait("10.0.0.1", 100.0 + WINDOW) == 0.0  # the oldest has expired
    # Nine of the ten are still in the window: one more wrong key blocks again.
    assert throttle.failed("10.0.0.1", 100.0 + WINDOW) > 0
    assert throttle.wait("10.0.0.1", 100.0 + WINDOW) > 0
    assert throttle.wait("10.0.0.1", 109.0 + 2 * WINDOW) == 0.0


def _csv(client: TestClient, query: str = "") -> pd.DataFrame:
    text = client.get(f"/ui/leads.csv{query}").text
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


@pytest.mark.api
def test_flat_pages_show_names_only_open_rows_and_filter_by_any_category(served, tmp_path):
    """The flat champion was trained with workspace_server.FLAT_SCHEMA: its display columns
    travel with it and are no features; rows whose label is filled are no leads to work; every
    categorical input filters; only the inputs marked actionable are suggested."""
    settings = ServeSettings(
        models_dir=served["models"],
        audit_url=f"sqlite:///{tmp_path / 'a.db'}",
        sample_dir=tmp_path / "none",
    )
    new = pd.read_csv(served["flat_table"], dtype=str, keep_default_na=False)
    new["converted"] = ""
    new.loc[:39, "converted"] = "yes"  # 40 leads whose outcome is known already
    with TestClient(create_app(settings)) as client:
        details = client.app.state.flat.details
        assert details.table_mapping.display == ["name", "company"]
        assert details.table_mapping.actionable == ["visits", "source"]
        assert "name" not in details.feature_types and "company" not in details.feature_types
        assert "display" in details.excluded["name"]
        body = new.to_csv(index=False).encode()
        page = client.post("/ui/leads/upload", files={"table": ("new.csv", body)}).text
        assert "560 rows of a flat table" in page
        assert "40 rows of the table already have an outcome (a value in converted)" in page
        table = _csv(client)
        assert len(table) == 560 and not set(table["lead"]) & set(new["lead"][:40])
        assert {"name", "company", "source", "size"} <= set(table.columns)
        top = table.iloc[0]
        link = f'<a href="/ui/leads/{top["lead"]}">{top["name"]}</a> <span class="hint">'
        assert link in page and f'<td class="display">{top["company"]}</td>' in page
        # A filter for each categorical input, with the values of the table.
        assert '<select name="source">' in page and '<select name="size">' in page
        big = _csv(client, "?size=200%2B&source=referral")
        assert len(big) == ((table["size"] == "200+") & (table["source"] == "referral")).sum()
        assert len(big) > 0 and set(big["size"]) == {"200+"}
        found = _csv(client, "?q=company+3")  # the search looks in the display columns too
        assert len(found) and found["company"].str.startswith("Company 3").all()

        lead = client.get(f"/ui/leads/{top['lead']}").text
        assert f"<h1>{top['name']} <span" in lead and f"{top['company']}" in lead
        actionable = lead.split('<fieldset class="flat-actionable">', 1)[1].split("</fieldset>")[0]
        assert 'name="x.visits"' in actionable and 'name="x.source"' in actionable
        assert 'name="x.balance"' not in actionable and 'name="x.balance"' in lead
        low = table.iloc[-1]  # the lowest readiness: something raises it
        suggested = re.findall(
            r'<li><a href="[^"]*#what-if">([^<]*)</a>', client.get(f"/ui/leads/{low['lead']}").text
        )
        assert suggested and all(s.startswith(("visits ", "source: ")) for s in suggested)
        assert client.get(f"/ui/leads/{new['lead'][0]}").status_code == 404  # known outcome

        model = client.get("/ui/model?model=flat").text
        assert "In plain words" in model and "Of 100 leads this model sends to sales" in model
        for jargon in ("--sales-precision", "log-odds", "leadready models compare"):
            assert jargon not in model and jargon not in lead
        assert "sqlite:" not in page


@pytest.mark.api
def test_outcomes_are_imported_on_the_outcomes_page(champion_dir, tmp_path):
    """The code of `leadready outcomes import`: every problem named, nothing stored when one
    row is wrong; a form from another origin is refused."""
    with TestClient(create_app(open_settings(champion_dir, tmp_path))) as client:
        path = "/ui/outcomes/upload"
        bad = b"lead_id,outcome,outcome_at\nA,won,2026-01-02\nB,maybe,\n"
        answer = client.post(path, files={"file": ("crm-outcomes.csv", bad)})
        assert answer.status_code == 422
        alert = answer.text.split("<pre>", 1)[1].split("</pre>", 1)[0]
        assert alert.startswith("The outcomes in crm-outcomes.csv cannot be imported (2 problems)")
        assert (
            "crm-outcomes.csv, column &#39;outcome&#39;, line 3: value not allowed "
            "(&#39;maybe&#39;); expected won | lost" in alert
        )
        assert "line 3: date that does not parse or is empty" in alert and "/tmp" not in alert
        assert "0 outcomes stored" in answer.text
        wrong = client.post(path, files={"file": ("outcomes.xlsx", b"x")})
        assert wrong.status_code == 422 and (
            "outcomes.xlsx: expected a .csv or .parquet file with columns lead_id, outcome, "
            "outcome_at" in wrong.text
        )
        assert "choose a file" in client.post(path, data={"x": "1"}).text
        good = b"lead_id,outcome,outcome_at\nA,won,2026-01-02\nB,lost,2026-01-03T10:00:00Z\n"
        foreign = client.post(
            path, files={"file": ("o.csv", good)}, headers={"Origin": "http://127.0.0.1:9"}
        )
        assert foreign.status_code == 403
        done = client.post(path, files={"file": ("o.csv", good)}, follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"] == "/ui/outcomes?imported=2&replaced=0"
        page = client.get(done.headers["location"]).text
        assert "Imported 2 outcomes." in page and "2 outcomes stored" in page
        again = client.post(path, files={"file": ("o.csv", good.rsplit(b"\n", 2)[0] + b"\n")})
        assert "Imported 1 outcome (1 replaced an earlier one)." in again.text
