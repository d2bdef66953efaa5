"""Everything training says to MLflow: the run, the logged model, the registry and its aliases.

Embedded default: a SQLite tracking store and artifacts under the models folder (`models/`).
With `MLFLOW_TRACKING_URI` set, runs and models go to that server instead and nothing else
changes. Promotion is by alias: every new version becomes `challenger`; `champion` moves to it
only when it beats the current champion on the new test set (or there is none, or on --promote).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

from serving.store import CHAMPION, MODEL_NAME, embedded_uri, tracking_uri, use_store
from training.pipeline import TrainResult
from training.plots import evaluation_figures

EXPERIMENT = "leadready"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Published:
    version: str
    run_id: str
    promoted: bool
    reason: str
    tracking_uri: str
    model_uri: str


def configure(models_dir: Path) -> str:
    """Select the tracking store and experiment; returns the tracking URI in use."""
    embedded = tracking_uri(models_dir) == embedded_uri(models_dir)
    if embedded:
        models_dir.mkdir(parents=True, exist_ok=True)
    use_store(models_dir)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        location = (models_dir / "artifacts").resolve().as_uri() if embedded else None
        mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(EXPERIMENT)
    return mlflow.get_tracking_uri()


def _champion_auc(client: MlflowClient, result: TrainResult) -> tuple[str, float | None] | None:
    """The champion's version and its AUC on the new test set (None if it cannot score it)."""
    try:
        version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except MlflowException:
        return None
    try:
        model = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
        scores = model.predict_proba(result.test_columns)[:, 1]
    except (KeyError, ValueError, AttributeError, ImportError, MlflowException):
        return version.version, None
    return version.version, float(roc_auc_score(result.test_ready, scores))


def publish(result: TrainResult, models_dir: Path, force_promote: bool = False) -> Published:
    """Log the run and model, register a version, set `challenger` and maybe `champion`."""
    tracking_uri = configure(models_dir)
    client = MlflowClient()
    info = result.scorer.info
    example = pd.DataFrame({k: v[:5] for k, v in result.test_columns.items()})
    signature = infer_signature(example, result.scorer.predict_proba(example))
    with mlflow.start_run(run_name=f"train-{info['trained_at']}") as run:
        mlflow.log_params(result.params)
        mlflow.set_tags({f"data.{k}": v for k, v in result.fingerprint.items()})
        mlflow.log_metrics({**result.metrics, **info["leaderboard"],
                            "threshold_sales": info["thresholds"]["sales"],
                            "threshold_disqualify": info["thresholds"]["disqualify"]})
        mlflow.log_dict(info, "model_info.json")
        scores = {"model": result.test_scores["readiness"],
                  "BANT scorecard": result.test_scores["bant_scorecard"]}
        for name, figure in evaluation_figures(
            result.test_ready, scores, info["drivers"], info["labels"]
        ).items():
            mlflow.log_figure(figure, name)
            plt.close(figure)
        logged = mlflow.sklearn.log_model(
            result.scorer, name="model", signature=signature, input_example=example,
            registered_model_name=MODEL_NAME, serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba", metadata=_json_safe(info),
            pip_requirements=_requirements(),
        )
    version = str(logged.registered_model_version)
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, version)
    for key in ("test_readiness_roc_auc", "test_readiness_ece", "test_potential_roc_auc"):
        client.set_model_version_tag(MODEL_NAME, version, key, f"{result.metrics[key]:.4f}")
    promoted, reason = _decide(client, result, force_promote)
    if promoted:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
    return Published(version, run.info.run_id, promoted, reason, tracking_uri,
                     f"models:/{MODEL_NAME}/{version}")


def _decide(client: MlflowClient, result: TrainResult, force: bool) -> tuple[bool, str]:
    auc = result.metrics["test_readiness_roc_auc"]
    if force:
        return True, "promoted on request (--promote)"
    current = _champion_auc(client, result)
    if current is None:
        return True, "no champion yet"
    version, champion_auc = current
    if champion_auc is None:
        return False, (f"champion v{version} cannot score this test set (its features "
                       "differ); champion kept, use --promote to replace it")
    if auc > champion_auc:
        return True, f"test ROC AUC {auc:.4f} beats champion v{version} at {champion_auc:.4f}"
    return False, (f"test ROC AUC {auc:.4f} does not beat champion v{version} at "
                   f"{champion_auc:.4f}; champion kept")


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in
            ("mlflow", "scikit-learn", "lightgbm", "numpy", "pandas", "cloudpickle")]


def _json_safe(value: object) -> object:
    """NaN-free plain types for the MLmodel metadata (YAML)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    return value
