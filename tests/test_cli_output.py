"""What `leadready` prints where a person or a pipe reads it: no MLflow log lines or pickle
warnings unless --verbose, and --help as plain text without a terminal."""

from __future__ import annotations

import os
import subprocess

import mlflow
import pytest
from conftest import make_table, write
from workspace_server import LEADREADY

NOISE = ("INFO mlflow", "WARNING mlflow", "pickle", "Downloading artifacts")


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A `leadready` process with stdout and stderr piped (no terminal), COLUMNS unset."""
    environment = {
        k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "COLUMNS")
    }
    return subprocess.run(
        [LEADREADY, *args],
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.model
def test_train_prints_no_mlflow_log_lines_unless_verbose_and_its_experiment_opens_on_runs(
    tmp_path,
):
    table = write(make_table(), tmp_path)
    models = tmp_path / "models"
    trained = run(
        "train", "--table", str(table), "--id", "lead", "--label", "converted",
        "--positive", "yes", "--models-dir", str(models),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    said = trained.stdout + trained.stderr
    assert "Registered sales-readiness-flat version 1" in " ".join(said.split())
    assert not [line for line in said.splitlines() if any(n in line for n in NOISE)]
    # MLflow 3's UI opens a "custom model development" experiment on its runs.
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{models / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("leadready")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    link = f"/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    assert link in "".join(said.split())

    verbose = run("--verbose", "models", "list", "--models-dir", str(tmp_path / "fresh"))
    assert "INFO mlflow" in verbose.stderr  # a new store's set-up, shown on request


@pytest.mark.unit
def test_help_without_a_terminal_is_plain_text(tmp_path):
    for env in ({}, {"TERM": "dumb"}):
        shown = run("train", "--help", **env)
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout
        assert "\x1b[" not in text and not set("╭─│╰┃━") & set(text)
        assert max(len(line) for line in text.splitlines()) <= 80
        # Paragraphs are rewrapped, not cut where the docstring's source lines end.
        assert any("evaluated on a time-split test set" in line for line in text.splitlines())
        assert "--verbose" in run("--help", **env).stdout
