"""End to end: sample CRM -> `leadready train` -> a real MLflow store in a temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from holdout_checks import assert_one_source_of_metrics
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.build import FEATURES
from leadready.features.metadata import ModelInfo
from leadready.features.registry import use_store
from leadready.training.examples import make_snapshots, split_by_time
from leadready.training.registry import list_versions
from leadready.training.sample import write_sample

runner = CliRunner()


@pytest.fixture(scope="module")
def sample(sample_dir) -> Path:
    return sample_dir


@pytest.fixture(scope="module")
def trained(sample, tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    result = runner.invoke(app, ["train", "--data", str(sample), "--models-dir", str(models)])
    assert result.exit_code == 0, result.output
    use_store(models)
    return models, result.output


@pytest.mark.model
def test_train_registers_a_champion_with_metrics_and_metadata(trained):
    models, output = trained
    client = MlflowClient()
    champion = client.get_model_version_by_alias("sales-readiness", "champion")
    assert str(champion.version) == "1"
    run = client.get_run(champion.run_id)
    for name in (
        "test_readiness_roc_auc",
        "test_readiness_ece",
        "test_potential_roc_auc",
        "test_bant_scorecard_roc_auc",
    ):
        assert 0.0 <= run.data.metrics[name] <= 1.0
    assert run.data.metrics["test_readiness_roc_auc"] > 0.7
    assert int(run.data.tags["data.leads"]) == 3000
    assert len(run.data.tags["data.sha256"]) == 16
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {
        "plots/roc.png",
        "plots/calibration.png",
        "plots/cumulative_gains.png",
        "plots/feature_importance.png",
    } <= artifacts
    assert "version 1" in output and "now champion" in output
    assert (models / "mlflow.db").exists() and (models / "artifacts").is_dir()
    assert (models / "reports" / "sales-readiness-v1.html").exists()
    leaderboard = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=champion.run_id, artifact_path="leaderboard.json"
            )
        ).read_text()
    )
    candidates = {row[leaderboard["columns"].index("candidate")] for row in leaderboard["data"]}
    assert candidates == {"lightgbm", "logistic_regression", "hist_gradient_boosting"}
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{champion.run_id}'"
    )
    assert len(children) == 6  # three candidates for each of two targets
    assert run.data.metrics["test_frequency_score_roc_auc"] > 0.5


@pytest.mark.model
def test_logged_stored_and_printed_metrics_are_one_computation(trained):
    models, output = trained
    assert_one_source_of_metrics(models, "sales-readiness", output)


@pytest.mark.model
def test_the_registered_model_serves_with_mlflow_own_tools(trained, sample):
    model = mlflow.pyfunc.load_model("models:/sales-readiness@champion")
    inputs = model.metadata.get_input_schema().input_names()
    assert inputs == list(FEATURES)
    info = ModelInfo.model_validate(model.metadata.metadata)
    assert 0 < info.thresholds.sales <= 1 and 0 <= info.thresholds.disqualify < 1
    assert set(info.routes) == {"sales", "nurture", "disqualify"}
    assert info.labels["activity_pricing_page_view_30d"] == "pricing-page views in the last 30 days"
    folder = Path(mlflow.artifacts.download_artifacts("models:/sales-readiness@champion"))
    example = json.loads((folder / "input_example.json").read_text())
    frame = pd.DataFrame(example["data"], columns=example["columns"])
    proba = np.asarray(model.predict(frame))
    assert proba.shape == (len(frame), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.model
def test_a_second_run_is_challenger_and_champion_moves_only_when_it_wins(trained, sample):
    models, _ = trained
    result = runner.invoke(app, ["train", "--data", str(sample), "--models-dir", str(models)])
    assert result.exit_code == 0, result.output
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("sales-readiness", "challenger").version) == "2"
    # Same data and seed give the same model: no significant AUC gain, no better calibration.
    assert str(client.get_model_version_by_alias("sales-readiness", "champion").version) == "1"
    assert "champion kept" in " ".join(result.output.split())
    listed = runner.invoke(app, ["models", "list", "--models-dir", str(models)])
    assert listed.exit_code == 0 and "sales-readiness versions" in listed.output
    rows = {row["version"]: row for row in list_versions(models)}
    assert rows["1"]["aliases"] == "champion" and rows["2"]["aliases"] == "challenger"
    auc = client.get_run(rows_run(client, "1")).data.metrics["test_readiness_roc_auc"]
    assert rows["1"]["test ROC AUC"] == f"{auc:.4f}"
    compared = runner.invoke(app, ["models", "compare", "1", "2", "--models-dir", str(models)])
    assert compared.exit_code == 0, compared.output
    assert "v2 should not replace v1" in " ".join(compared.output.split())
    promoted = runner.invoke(app, ["models", "promote", "2", "--models-dir", str(models)])
    assert promoted.exit_code == 0
    assert str(client.get_model_version_by_alias("sales-readiness", "champion").version) == "2"
    missing = runner.invoke(app, ["models", "promote", "99", "--models-dir", str(models)])
    assert missing.exit_code == 2 and "no version 99" in missing.stderr
    forced = runner.invoke(
        app, ["train", "--data", str(sample), "--models-dir", str(models), "--promote"]
    )
    assert forced.exit_code == 0, forced.output
    assert str(client.get_model_version_by_alias("sales-readiness", "champion").version) == "3"


def rows_run(client: MlflowClient, version: str) -> str:
    return client.get_model_version("sales-readiness", version).run_id


@pytest.mark.data
def test_an_export_without_wins_stops_before_anything_is_written(tmp_path):
    data = tmp_path / "nowins"
    write_sample(data, 300, seed=1)
    leads = pd.read_csv(data / "leads.csv", dtype=str, keep_default_na=False)
    leads.loc[leads["outcome"] == "won", "outcome"] = "lost"
    leads.to_csv(data / "leads.csv", index=False)
    result = runner.invoke(app, ["train", "--data", str(data), "--models-dir", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "no won leads" in result.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.api
def test_cold_start_registers_the_scorecard_and_says_so(tmp_path, sample_dir):
    from fastapi.testclient import TestClient

    from leadready.serving.app import ServeSettings, create_app
    from leadready.serving.schemas import EXAMPLE_REQUEST

    data = tmp_path / "small"
    write_sample(data, 150, seed=1)
    models = tmp_path / "m"
    result = runner.invoke(app, ["train", "--data", str(data), "--models-dir", str(models)])
    assert result.exit_code == 0, result.output
    assert "Cold start" in result.output
    client = MlflowClient()
    version = client.get_model_version_by_alias("sales-readiness", "champion")
    assert version.tags["cold_start"] == "true"
    assert client.get_run(version.run_id).data.tags["cold_start"] == "true"
    settings = ServeSettings(models_dir=models, audit_url=f"sqlite:///{tmp_path / 'a.db'}")
    with TestClient(create_app(settings)) as api:
        answer = api.post("/v1/score", json=EXAMPLE_REQUEST).json()
    assert answer["model"]["kind"] == "bant_scorecard (cold start)"
    reasons = answer["reasons"]
    budget = [r for r in reasons["up"] if r["feature"] == "budget"]
    assert budget and budget[0]["label"] == "Budget confirmed"

    # With enough history, a learned model replaces it by the promotion rule.
    learned = runner.invoke(app, ["train", "--data", str(sample_dir), "--models-dir", str(models)])
    assert learned.exit_code == 0, learned.output
    text = " ".join(learned.output.split())
    assert "now champion" in text and "p = 0.000" in text
    assert (
        client.get_model_version_by_alias("sales-readiness", "champion").tags["cold_start"]
        == "false"
    )


@pytest.mark.unit
def test_snapshots_follow_the_step_and_the_horizon():
    leads = pd.DataFrame(
        {
            "created_at": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-03-01"]),
            "outcome_at": pd.to_datetime(["2025-06-01", "2025-02-01", pd.NaT]),
            "outcome": ["won", "lost", "open"],
        }
    )
    snaps = make_snapshots(leads, step_days=14, horizon_days=90)
    first = snaps.lead == 0
    # 2025-01-01 .. 2025-06-01 is 151 days: snapshots at day 0, 14, ..., 140 (11 of them).
    assert first.sum() == 11 and (snaps.lead == 1).sum() == 3 and (snaps.lead == 2).sum() == 0
    days_left = (pd.Timestamp("2025-06-01").timestamp() - snaps.as_of[first]) / 86400
    np.testing.assert_array_equal(snaps.ready[first], (days_left <= 90).astype(int))
    assert snaps.potential[first].all() and not snaps.potential[snaps.lead == 1].any()


@pytest.mark.data
def test_split_keeps_each_lead_on_one_side_and_tests_the_newest(sample):
    from leadready.features.contract import load_crm

    crm = load_crm(sample)
    snaps = make_snapshots(crm.leads, 14, 90)
    split = split_by_time(snaps)
    sides = [set(snaps.lead[m]) for m in (split.fit, split.validation, split.test)]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert 0.15 < split.test.mean() < 0.25
    assert snaps.created_at[split.test].min() >= snaps.created_at[~split.test].max()
    assert snaps.as_of[split.fit].max() < split.validation_from
    assert snaps.created_at[split.validation].max() < split.test_from
    assert snaps.created_at[split.validation].min() >= snaps.created_at[split.fit].max()
