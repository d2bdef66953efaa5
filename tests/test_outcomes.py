"""Outcomes: CSV import (CLI, exit 2 on bad rows), POST /v1/outcomes, and the join with the
audit log behind the workspace's Outcomes page."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadready.cli import app as cli
from leadready.features.auditdb import engine_for, scores
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.outcomes import (
    OutcomeError,
    analyse,
    import_file,
    outcomes,
    read_file,
)
from leadready.serving.schemas import EXAMPLE_REQUEST

KEY = "outcomes-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
runner = CliRunner()


def stored(url: str) -> dict[str, tuple[str, str]]:
    engine = engine_for(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(outcomes.c.lead_id, outcomes.c.outcome, outcomes.c.outcome_at)
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.mark.unit
def test_import_stores_outcomes_in_utc_and_a_second_import_replaces(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    first = tmp_path / "first.csv"
    first.write_text(
        "lead_id,outcome,outcome_at,owner\n"
        "L1,won,2026-03-01,ann\n"
        " L2 ,LOST,2026-03-02T10:00:00+02:00,bob\n"
    )
    result = import_file(first, url)
    assert (result.imported, result.replaced) == (2, 0)
    assert stored(url) == {
        "L1": ("won", "2026-03-01T00:00:00+00:00"),
        "L2": ("lost", "2026-03-02T08:00:00+00:00"),
    }
    second = tmp_path / "second.csv"
    second.write_text("lead_id,outcome,outcome_at\nL2,won,2026-04-01\nL3,lost,2026-04-02\n")
    result = import_file(second, url)
    assert (result.imported, result.replaced) == (2, 1)
    assert stored(url)["L2"] == ("won", "2026-04-01T00:00:00+00:00")
    assert len(stored(url)) == 3


@pytest.mark.unit
def test_every_bad_row_is_named_and_nothing_is_stored(tmp_path):
    path = tmp_path / "outcomes.csv"
    path.write_text(
        "lead_id,outcome,outcome_at\n"
        "L1,won,2026-03-01\n"
        ",lost,2026-03-01\n"
        "L3,maybe,2026-03-01\n"
        "L4,won,next week\n"
        "L5,lost,\n"
        "L1,lost,2026-03-05\n"
        "L7,won,2150-01-01\n"
    )
    with pytest.raises(OutcomeError) as caught:
        read_file(path)
    message = str(caught.value)
    assert "(5 problems)" in message
    assert "column 'lead_id', line 3: empty id" in message
    assert "column 'outcome', line 4: value not allowed ('maybe'); expected won | lost" in message
    assert "column 'outcome_at', lines 5, 6: date that does not parse or is empty" in message
    assert "'next week'" in message
    assert "column 'lead_id', lines 2, 7: lead listed more than once ('L1' in 2 lines)" in message
    assert "column 'outcome_at', line 8: date out of range" in message

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    result = runner.invoke(cli, ["outcomes", "import", str(path), "--audit-url", url])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "value not allowed ('maybe')" in " ".join(result.stderr.split())
    assert stored(url) == {}


@pytest.mark.unit
def test_cli_import_names_missing_columns_and_files(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    path = tmp_path / "outcomes.csv"
    path.write_text("lead,result\nL1,won\n")
    result = runner.invoke(cli, ["outcomes", "import", str(path), "--audit-url", url])
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2
    assert "missing columns 'lead_id', 'outcome', 'outcome_at'" in message
    assert "(found 'lead', 'result')" in message
    result = runner.invoke(
        cli, ["outcomes", "import", str(tmp_path / "none.csv"), "--audit-url", url]
    )
    assert result.exit_code == 2 and "no such file" in result.stderr


@pytest.mark.unit
def test_cli_import_succeeds_and_says_how_many(tmp_path):
    path = tmp_path / "outcomes.csv"
    path.write_text("lead_id,outcome,outcome_at\nL1,won,2026-03-01\nL2,lost,2026-03-02\n")
    models = tmp_path / "models"
    result = runner.invoke(cli, ["outcomes", "import", str(path), "--models-dir", str(models)])
    assert result.exit_code == 0, result.output
    assert "Imported 2 outcomes" in result.output
    assert set(stored(f"sqlite:///{(models / 'audit.db').resolve()}")) == {"L1", "L2"}


def audit_rows(url: str, rows: list[tuple[str, float, float, str, str]]) -> None:
    with engine_for(url).begin() as connection:
        connection.execute(
            scores.insert(),
            [
                {
                    "request_id": f"r{i}",
                    "lead_id": lead,
                    "model_name": "sales-readiness",
                    "model_version": "1",
                    "readiness": r,
                    "potential": p,
                    "route": route,
                    "scored_at": at,
                }
                for i, (lead, r, p, route, at) in enumerate(rows)
            ],
        )


@pytest.mark.unit
def test_analysis_takes_the_last_score_before_each_outcome(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    audit_rows(
        url,
        [
            # A: disqualified in January, sent to sales in March, won in April -> a sales win.
            ("A", 0.01, 0.02, "disqualify", "2026-01-10T10:00:00+00:00"),
            ("A", 0.60, 0.80, "sales", "2026-03-10T10:00:00.123456+00:00"),
            # B: disqualified, won: a missed sale. A score after the outcome does not count.
            ("B", 0.02, 0.03, "disqualify", "2026-01-15T10:00:00+00:00"),
            ("B", 0.90, 0.95, "sales", "2026-06-01T10:00:00+00:00"),
            # C: nurture, lost. D: sales, lost. E: scored, no outcome yet.
            ("C", 0.10, 0.40, "nurture", "2026-02-01T10:00:00+00:00"),
            ("D", 0.50, 0.70, "sales", "2026-02-02T10:00:00+00:00"),
            ("E", 0.30, 0.50, "nurture", "2026-02-03T10:00:00+00:00"),
            # F: only scored after its outcome.
            ("F", 0.30, 0.50, "nurture", "2026-05-03T10:00:00+00:00"),
        ],
    )
    path = tmp_path / "outcomes.csv"
    path.write_text(
        "lead_id,outcome,outcome_at\nA,won,2026-04-01\nB,won,2026-03-01\n"
        "C,lost,2026-04-01\nD,lost,2026-04-01\nF,won,2026-04-01\n"
        "G,won,2026-04-01\n"
    )
    import_file(path, url)
    a = analyse(engine_for(url))
    assert a.matched == 4 and a.outcomes_total == 6 and a.unscored == 2 and a.open_scored == 1
    assert a.won == 2 and a.rate == 0.5
    assert a.route("sales") == {
        "route": "sales",
        "leads": 2,
        "won": 1,
        "rate": 0.5,
        "mean_readiness": pytest.approx(0.55),
    }
    assert a.route("nurture")["rate"] == 0.0 and a.route("disqualify")["rate"] == 1.0
    assert a.missed_total == 1 and list(a.missed["lead_id"]) == ["B"]
    assert [d["leads"] for d in a.by_decile] == [1, 1, 1, 1]
    assert [d["rate"] for d in a.by_decile] == [1.0, 0.0, 0.0, 1.0]  # B, C, D, A
    months = {m["month"]: m for m in a.by_month}
    assert set(months) == {"2026-01", "2026-02", "2026-03"}
    assert months["2026-03"]["sales"] == 1.0 and months["2026-02"]["sales"] == 0.0
    assert months["2026-01"]["disqualify"] == 1.0 and months["2026-01"]["sales"] is None
    # Deciles over time: B (decile 1) was scored in January, C and D in February, A in March.
    assert [d["rate"] for d in months["2026-01"]["deciles"]] == [1.0, None, None, None]
    assert [d["rate"] for d in months["2026-02"]["deciles"]] == [None, 0.0, 0.0, None]
    assert [d["leads"] for d in months["2026-03"]["deciles"]] == [0, 0, 0, 1]


@pytest.mark.unit
def test_analysis_of_an_empty_log(tmp_path):
    a = analyse(engine_for(f"sqlite:///{tmp_path / 'audit.db'}"))
    assert a.matched == 0 and a.rate is None and a.by_decile == [] and a.missed_total == 0
    assert [r["leads"] for r in a.by_route] == [0, 0, 0]


@pytest.fixture
def client(champion_dir, tmp_path):
    settings = ServeSettings(
        models_dir=champion_dir,
        api_keys=KEY,
        audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
        sample_dir=tmp_path / "no-sample",
    )
    with TestClient(create_app(settings)) as c:
        c.audit_url = settings.audit_url
        yield c


@pytest.mark.api
def test_post_outcomes_stores_them_and_the_outcomes_page_counts_them(client):
    scored = client.post("/v1/score", json=EXAMPLE_REQUEST, headers=AUTH)
    assert scored.status_code == 200
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    body = [
        {"lead_id": "L-10442", "outcome": "won", "outcome_at": later},
        {"lead_id": "L-unscored", "outcome": "lost", "outcome_at": "2026-01-05"},
    ]
    answer = client.post("/v1/outcomes", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"imported": 2, "replaced": 0}
    assert client.post("/v1/outcomes", json=body[:1], headers=AUTH).json() == {
        "imported": 1,
        "replaced": 1,
    }
    assert set(stored(client.audit_url)) == {"L-10442", "L-unscored"}
    deadline = time.monotonic() + 10  # the audit log writes in batches every 0.5 s
    engine = client.app.state.audit.engine
    while analyse(engine).matched == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    a = analyse(engine)
    assert a.matched == 1 and a.won == 1 and a.unscored == 1
    route = scored.json()["route"]
    assert a.route(route)["won"] == 1


@pytest.mark.api
def test_post_outcomes_needs_the_key_and_valid_rows(client):
    good = {"lead_id": "L1", "outcome": "won", "outcome_at": "2026-01-05T10:00:00Z"}
    assert client.post("/v1/outcomes", json=[good]).status_code == 401
    cases = [
        ([{**good, "outcome": "open"}], "0.outcome", "'won' or 'lost'"),
        ([good, {**good, "outcome_at": "soon"}], "1.outcome_at", "datetime"),
        ([{**good, "lead_id": "  "}], "0.lead_id", "at least 1 character"),
        ([{**good, "stage": "x"}], "0.stage", "Extra inputs"),
        ([{**good, "outcome_at": "2150-01-01"}], "0.outcome_at", "between 1970"),
        ({"lead_id": "L1"}, "body", "list"),
        ([good, good], "lead_id", "appears more than once"),
    ]
    for body, field, words in cases:
        answer = client.post("/v1/outcomes", json=body, headers=AUTH)
        assert answer.status_code == 422, (body, answer.text)
        detail = answer.json()["detail"]
        assert any(d["field"] == field and words in d["message"] for d in detail), detail
    assert stored(client.audit_url) == {}


@pytest.mark.api
def test_outcomes_endpoint_is_in_the_openapi_schema(client):
    schema = client.get("/openapi.json").json()
    assert "/v1/outcomes" in schema["paths"]
    assert not any(path.startswith("/ui") for path in schema["paths"])


@pytest.mark.unit
def test_outcomes_import_file_accepts_parquet(tmp_path: Path):
    import pandas as pd

    path = tmp_path / "outcomes.parquet"
    pd.DataFrame(
        {
            "lead_id": ["L1"],
            "outcome": ["won"],
            "outcome_at": pd.to_datetime(["2026-02-01T12:00:00"]),
        }
    ).to_parquet(path)
    rows = read_file(path)
    assert rows[0].lead_id == "L1" and rows[0].outcome_at.isoformat().startswith("2026-02-01T12")
