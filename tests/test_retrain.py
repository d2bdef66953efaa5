"""`leadready retrain`: nothing trained when the data has not changed, a challenger on drifted
data held back from promotion by the drift gate, and one MLflow run per retrain tagged with
its decision and reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.drift import MIN_ROWS, drift_problems, field_profile, input_drift
from leadready.features.metadata import Profile

runner = CliRunner()


def retrain(data: Path, models: Path):
    return runner.invoke(
        app,
        ["retrain", "--data", str(data), "--models-dir", str(models), "--search-seconds", "0"],
    )


def client(models: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{models / 'mlflow.db'}")


def registry(models: Path) -> tuple[list[str], str]:
    """The versions of sales-readiness, oldest first, and the one the champion alias names."""
    c = client(models)
    versions = sorted(
        (v.version for v in c.search_model_versions("name='sales-readiness'")), key=int
    )
    return [str(v) for v in versions], str(
        c.get_model_version_by_alias("sales-readiness", "champion").version
    )


def runs(models: Path) -> list[dict[str, str]]:
    """The tags of the experiment's top-level runs, newest first."""
    c = client(models)
    experiment = c.get_experiment_by_name("leadready")
    found = c.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    return [r.data.tags for r in found if "mlflow.parentRunId" not in r.data.tags]


@pytest.mark.model
def test_retrain_twice_on_the_same_data_promotes_nothing_the_second_time(sample_dir, tmp_path):
    models = tmp_path / "models"
    first = retrain(sample_dir, models)
    assert first.exit_code == 0, first.output
    assert registry(models) == (["1"], "1")
    assert runs(models)[0]["decision"] == "promoted"
    assert runs(models)[0]["reason"] == "no champion yet"

    second = retrain(sample_dir, models)
    assert second.exit_code == 0, second.output
    assert "nothing to do: the data has not changed since version 1" in second.output
    assert registry(models) == (["1"], "1")
    skipped, trained = runs(models)
    assert skipped["decision"] == "skipped"
    assert skipped["reason"].startswith("the data has not changed since version 1")
    assert skipped["data.sha256"] == trained["data.sha256"]


@pytest.mark.model
def test_the_drift_gate_holds_back_a_challenger_trained_on_drifted_data(
    champion_dir, sample_dir, tmp_path
):
    models = tmp_path / "models"
    shutil.copytree(champion_dir, models)
    drifted = tmp_path / "drifted"
    shutil.copytree(sample_dir, drifted)
    leads = pd.read_csv(drifted / "leads.csv", dtype=str, keep_default_na=False)
    leads.loc[leads.index % 5 != 0, "source"] = "chat"  # 6% of the champion's leads: 80% now
    leads.to_csv(drifted / "leads.csv", index=False)

    gated = retrain(drifted, models)
    assert gated.exit_code == 3, gated.output
    assert registry(models) == (["1", "2"], "1")
    tags = runs(models)[0]
    assert tags["decision"] == "gated"
    assert tags["reason"].startswith(
        "held back by the drift gate: 'source' drifted from what champion v1 was trained on"
    )
    assert "held back by the drift gate" in " ".join(gated.output.split())
    report = (models / "reports" / "sales-readiness-v2.html").read_text()
    assert "was <strong>held back</strong> by the drift gate" in report
    assert "drifted from what champion v1 was trained on" in report

    again = retrain(drifted, models)  # the newest version was trained on this data
    assert again.exit_code == 0, again.output
    assert "nothing to do: the data has not changed since version 2" in again.output
    assert registry(models) == (["1", "2"], "1")


@pytest.mark.unit
def test_retrain_needs_exactly_one_source_of_data(tmp_path):
    neither = runner.invoke(app, ["retrain", "--models-dir", str(tmp_path)])
    assert neither.exit_code == 2
    assert "give --data DIR (a CRM export folder) or --from-store" in neither.output
    both = runner.invoke(
        app, ["retrain", "--data", str(tmp_path), "--from-store", "--models-dir", str(tmp_path)]
    )
    assert both.exit_code == 2
    assert "--data and --from-store exclude each other" in both.output
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.unit
def test_the_gate_names_a_drifted_field_and_judges_none_on_too_few_rows():
    seen = np.array(["web_form", "referral"] * 100, dtype=object)
    profile = Profile(
        inputs={"source": field_profile("categorical", seen)},
        readiness=field_profile("numeric", np.linspace(0, 1, 200)),
        readiness_mean=0.5,
        fit_rows=200,
        holdout_rows=200,
    )
    moved = np.array(["chat"] * MIN_ROWS, dtype=object)
    drift = input_drift(profile, {"source": ("categorical", moved), "other": ("numeric", moved)})
    assert list(drift) == ["source"]
    (problem,) = drift_problems(drift, MIN_ROWS, "v1's data")
    assert problem.startswith("'source' drifted from v1's data: PSI ")
    assert "100% unseen values" in problem
    assert drift_problems(drift, MIN_ROWS - 1, "v1's data") == []
    same = input_drift(profile, {"source": ("categorical", seen)})
    assert drift_problems(same, len(seen), "v1's data") == []
