"""The workspace's Monitor page through FastAPI's TestClient, on the models folder of
`test_monitor` (the sample in a real lead store, swept by the session's champion): nothing
before the first check, then every `leadready monitor` check of the champion from its MLflow
run, newest first, and the latest report as the command wrote it."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from test_monitor import inject_drift, iso, runner, swept  # noqa: F401  (swept: a fixture)
from test_ui_queue import text

from leadready.cli import app
from leadready.serving.app import ServeSettings, create_app

pytestmark = pytest.mark.api


def check(models, now) -> int:
    """`leadready monitor` with its default report, in the models folder."""
    result = runner.invoke(
        app, ["monitor", "--since", "2d", "--now", iso(now), "--models-dir", str(models)]
    )
    return result.exit_code


def test_the_monitor_page_lists_every_check_newest_first_and_opens_the_latest_report(
    swept,  # noqa: F811  (the fixture imported above)
    tmp_path,
):
    models = tmp_path / "models"
    shutil.copytree(swept[0], models)
    end = swept[1]
    client = TestClient(
        create_app(
            ServeSettings(
                models_dir=models,
                audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
                sample_dir=tmp_path / "none",
                sweep_minutes=0,
            )
        )
    )
    with client:
        before = client.get("/ui/monitor")
        assert before.status_code == 200
        assert "has not been checked yet" in text(before.text)
        assert client.get("/ui/monitor/report").status_code == 404

        assert check(models, end + timedelta(hours=1)) == 0
        inject_drift(models, end)
        assert check(models, end + timedelta(hours=2)) == 3

        page = client.get("/ui/monitor")
        assert page.status_code == 200
        words = text(page.text)
        assert "Latest check The leads changed" in words
        assert "Checks so far 2" in words
        rows = page.text.split('id="checks"')[1]
        assert rows.index("the leads changed") < rows.index("healthy")  # newest first
        assert "company_size, source" in text(rows)
        assert "How much each lead field shifted" in page.text and "<svg" in page.text
        assert "--" not in words  # no CLI flag on a marketer's page

        report = client.get("/ui/monitor/report")
        assert report.status_code == 200
        assert "The leads changed: source, company_size drifted" in report.text
