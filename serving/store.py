"""Where models live, and loading the champion: the one place serving talks to MLflow.

Without `MLFLOW_TRACKING_URI`, the embedded store is a SQLite database under the models folder
(`models/mlflow.db`), the same default `leadready train` writes to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from features.build import FEATURES
from features.model import LeadScorer

MODEL_NAME = "sales-readiness"
CHAMPION = "champion"


class NoChampionError(RuntimeError):
    """The registry has no version behind the champion alias."""


@dataclass(frozen=True)
class LoadedModel:
    scorer: LeadScorer
    name: str
    version: str
    run_id: str


# mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI to the environment; the URIs we
# set ourselves must not later pass for a tracking server the user asked for.
_SET_HERE: set[str] = set()


def embedded_uri(models_dir: Path) -> str:
    return f"sqlite:///{(models_dir / 'mlflow.db').resolve()}"


def tracking_uri(models_dir: Path) -> str:
    """The user's `MLFLOW_TRACKING_URI` when set, else the embedded store in `models_dir`."""
    external = os.environ.get("MLFLOW_TRACKING_URI")
    return external if external and external not in _SET_HERE else embedded_uri(models_dir)


def use_store(models_dir: Path) -> str:
    """Point MLflow's client at the store for `models_dir`; returns its URI."""
    import mlflow

    uri = tracking_uri(models_dir)
    if uri == embedded_uri(models_dir):
        _SET_HERE.add(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def load_champion(models_dir: Path, alias: str = CHAMPION, *, flat: bool = False
                  ) -> LoadedModel:
    """Resolve the alias to a version once, then load exactly that version.

    `flat=True` asks for a flat-table model (`leadready score --table`); the API and
    `score --data` ask for one trained on a CRM export. The other kind raises NoChampionError
    saying which command scores it."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if tracking_uri(models_dir) == embedded_uri(models_dir) and not (
        models_dir / "mlflow.db"
    ).exists():
        raise NoChampionError(_no_champion(embedded_uri(models_dir)))
    uri = use_store(models_dir)
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException:
        raise NoChampionError(_no_champion(uri)) from None
    scorer = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/{version.version}")
    trained_flat = scorer.info.get("mode") == "flat"
    if trained_flat and not flat:
        raise NoChampionError(
            f"{alias} version {version.version} is a flat-table model; score files with "
            "`leadready score --table FILE`")
    if flat and not trained_flat:
        raise NoChampionError(
            f"{alias} version {version.version} was trained on a CRM export, not a flat table; "
            "score exports with `leadready score --data DIR`, or train a flat model with "
            "`leadready train --table FILE`")
    custom = scorer.info.get("custom", {})
    if not flat and {f for f in scorer.info["features"] if f not in custom} != set(FEATURES):
        raise NoChampionError(
            f"'{alias}' version {version.version} of '{MODEL_NAME}' was trained on another "
            "feature set than this leadready builds; retrain with `leadready train --data DIR`"
        )
    return LoadedModel(scorer, MODEL_NAME, str(version.version), str(version.run_id))


def _no_champion(uri: str) -> str:
    return (f"no '{CHAMPION}' version of model '{MODEL_NAME}' in {uri}; train one with "
            "`leadready train --data DIR` (or `make demo`)")
