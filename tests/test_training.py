"""End to end: sample CRM -> `leadready train` -> a real MLflow store in a temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from features.build import FEATURES
from serving.store import use_store
from training.cli import app
from training.examples import make_snapshots, split_by_time
from training.sample import write_sample

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


def test_train_registers_a_champion_with_metrics_and_metadata(trained):
    models, output = trained
    client = MlflowClient()
    champion = client.get_model_version_by_alias("sales-readiness", "champion")
    assert str(champion.version) == "1"
    run = client.get_run(champion.run_id)
    for name in ("test_readiness_roc_auc", "test_readiness_ece", "test_potential_roc_auc",
                 "test_bant_scorecard_roc_auc"):
        assert 0.0 <= run.data.metrics[name] <= 1.0
    assert run.data.metrics["test_readiness_roc_auc"] > 0.7
    assert int(run.data.tags["data.leads"]) == 3000
    assert len(run.data.tags["data.sha256"]) == 16
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/cumulative_gains.png",
            "plots/feature_importance.png"} <= artifacts
    assert "version 1" in output and "now champion" in output
    assert (models / "mlflow.db").exists() and (models / "artifacts").is_dir()


def test_the_registered_model_serves_with_mlflow_own_tools(trained, sample):
    model = mlflow.pyfunc.load_model("models:/sales-readiness@champion")
    inputs = model.metadata.get_input_schema().input_names()
    assert inputs == list(FEATURES)
    info = model.metadata.metadata
    assert 0 < info["thresholds"]["sales"] <= 1 and 0 <= info["thresholds"]["disqualify"] < 1
    assert set(info["routes"]) == {"sales", "nurture", "disqualify"}
    assert info["labels"]["activity_pricing_page_view_30d"] == \
        "pricing-page views in the last 30 days"
    folder = Path(mlflow.artifacts.download_artifacts("models:/sales-readiness@champion"))
    example = json.loads((folder / "input_example.json").read_text())
    frame = pd.DataFrame(example["data"], columns=example["columns"])
    proba = np.asarray(model.predict(frame))
    assert proba.shape == (len(frame), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_a_second_run_is_challenger_and_champion_moves_only_when_it_wins(trained, sample):
    models, _ = trained
    result = runner.invoke(app, ["train", "--data", str(sample), "--models-dir", str(models)])
    assert result.exit_code == 0, result.output
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("sales-readiness", "challenger").version) == "2"
    # Same data and seed give the same test AUC, which does not *beat* the champion.
    assert str(client.get_model_version_by_alias("sales-readiness", "champion").version) == "1"
    assert "champion kept" in " ".join(result.output.split())
    forced = runner.invoke(app, ["train", "--data", str(sample), "--models-dir", str(models),
                                 "--promote"])
    assert forced.exit_code == 0, forced.output
    assert str(client.get_model_version_by_alias("sales-readiness", "champion").version) == "3"


def test_too_few_closed_leads_stop_before_anything_is_written(tmp_path):
    data = tmp_path / "small"
    write_sample(data, 150, seed=1)
    result = runner.invoke(app, ["train", "--data", str(data), "--models-dir",
                                 str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "closed (won or lost) leads" in result.stderr
    assert not (tmp_path / "m").exists()


def test_snapshots_follow_the_step_and_the_horizon():
    leads = pd.DataFrame({
        "created_at": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-03-01"]),
        "outcome_at": pd.to_datetime(["2025-06-01", "2025-02-01", pd.NaT]),
        "outcome": ["won", "lost", "open"],
    })
    snaps = make_snapshots(leads, step_days=14, horizon_days=90)
    first = snaps.lead == 0
    # 2025-01-01 .. 2025-06-01 is 151 days: snapshots at day 0, 14, ..., 140 (11 of them).
    assert first.sum() == 11 and (snaps.lead == 1).sum() == 3 and (snaps.lead == 2).sum() == 0
    days_left = (pd.Timestamp("2025-06-01").timestamp() - snaps.as_of[first]) / 86400
    np.testing.assert_array_equal(snaps.ready[first], (days_left <= 90).astype(int))
    assert snaps.potential[first].all() and not snaps.potential[snaps.lead == 1].any()


def test_split_keeps_each_lead_on_one_side_and_tests_the_newest(sample):
    from features.contract import load_crm

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
