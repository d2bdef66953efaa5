"""A check both training modes' end-to-end tests share: hold-out metrics have one source."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from leadready.features.metadata import ModelInfo
from leadready.features.registry import use_store


def assert_one_source_of_metrics(models: Path, name: str, output: str) -> None:
    """The champion's hold-out metrics as logged to MLflow, kept in its metadata and printed by
    `train` are the same numbers: each value is the point of its bootstrap interval."""
    use_store(models)
    client = MlflowClient()
    champion = client.get_model_version_by_alias(name, "champion")
    metrics = client.get_run(champion.run_id).data.metrics
    info = ModelInfo.model_validate(
        mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/model_info.json")
    )
    assert set(info.intervals) >= {"readiness", "frequency_score"}
    for model, intervals in info.intervals.items():
        for metric, (value, _, _) in intervals.items():
            key = f"test_{model}_{metric}"
            assert metrics[key] == value and info.metrics[key] == value, key
    shown = " ".join(output.split())
    for metric, (value, low, _) in info.intervals["readiness"].items():
        # A narrow terminal cuts long metric names and wraps the rest of the cell.
        cell = f"{value:.3f} [{low:.3f},"
        assert re.search(rf"{re.escape(metric[:12])}\w*\W+{re.escape(cell)}", shown), cell
