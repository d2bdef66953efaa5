"""What training and serving both say about the model registry: the registered names and
aliases, where the store is, the hold-out a version was tested on, and loading a registered
scorer. Training registers and promotes (`training.registry`), serving loads the champion
(`serving.store`); both take their names and their loading from here.

Without `MLFLOW_TRACKING_URI`, the embedded store is a SQLite database under the models folder
(`models/mlflow.db`), the default `leadready train` writes to and `leadready serve` reads.
MLflow is imported inside the functions that use it: serving's command line starts without it.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from leadready.features.model import LeadScorer

MODEL_NAME = "sales-readiness"
FLAT_MODEL_NAME = "sales-readiness-flat"
"""Flat-table models (docs/flat-mode.md) are registered under their own name, so a registry
holds a champion of each kind: the API scores CRM exports, the workspace also flat files."""
CHAMPION = "champion"
CHALLENGER = "challenger"
"""Every new version becomes `challenger`; `champion` moves only on promotion."""

COMPLETE_TAG = "model_kind"
"""The version tag that says `leadready train` published a version to the end. `train` creates
a version with all its tags in one call (one transaction in the SQL store), so a version it
registered has them all or does not exist; before that, it registered the version first and set
the tags one by one, `model_kind` last, so a version of a training run without it was cut off."""
TRAIN_RUN_TAG = "data.sha256"
"""The run tag every `leadready train` run has (the data fingerprint): a version registered from
another run, or from none, is not one of train's and is taken as it is."""

HOLDOUT = "holdout/holdout.parquet"
"""The run artifact holding the hold-out a version was tested on."""
HOLDOUT_ROWS = "holdout/rows.parquet"
"""A flat model's hold-out rows as the table had them (every column, as text), in the order of
HOLDOUT: a version that reads other columns than the tested one scores them with its own."""
TRAINED_IDS = "holdout/trained_ids.parquet"
"""The ids (`__lead`) of every row a flat model was fitted on: its refit takes its hold-out too,
so a comparison can tell which rows a version has seen."""
HOLDOUT_EXTRA = ["__ready", "__lead", "__readiness"]
"""Hold-out columns besides the features: label, lead id, and the readiness the tested model
gave (a flat model is refitted on all rows afterwards, so only these scores are unseen ones)."""

OLD_PACKAGES = frozenset({"features", "training", "serving"})
"""Top-level names of the folders before they installed as one package, `leadready`: versions
registered then reference `features.model.LeadScorer` and the like in their pickles."""


def model_name(flat: bool) -> str:
    """The registered model name of a mode: flat tables or CRM exports."""
    return FLAT_MODEL_NAME if flat else MODEL_NAME


class NoChampionError(RuntimeError):
    """The registry has no version behind the champion alias."""


# mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI to the environment; the URIs we
# set ourselves must not later pass for a tracking server the user asked for.
_SET_HERE: set[str] = set()


def embedded_uri(models_dir: Path) -> str:
    return f"sqlite:///{(models_dir / 'mlflow.db').resolve()}"


def tracking_uri(models_dir: Path) -> str:
    """The user's `MLFLOW_TRACKING_URI` when set, else the embedded store in `models_dir`."""
    external = os.environ.get("MLFLOW_TRACKING_URI")
    return external if external and external not in _SET_HERE else embedded_uri(models_dir)


def redacted(uri: str) -> str:
    """A tracking URI as messages and logs show it: a user name and password in it (a remote
    server's `https://user:secret@host`) are replaced by `***`."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1***@", uri, flags=re.IGNORECASE)


def use_store(models_dir: Path) -> str:
    """Point MLflow's client at the store for `models_dir`; returns its URI."""
    import mlflow

    uri = tracking_uri(models_dir)
    if uri == embedded_uri(models_dir):
        _SET_HERE.add(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def is_complete(client: MlflowClient, version: ModelVersion) -> bool:
    """Whether a registered version is whole: not one a `train` cut off while publishing
    (COMPLETE_TAG). Only a version without the tag costs a look at its run."""
    from mlflow.exceptions import MlflowException

    if COMPLETE_TAG in (version.tags or {}) or not version.run_id:
        return True
    try:
        run = client.get_run(version.run_id)
    except MlflowException:
        return True
    return TRAIN_RUN_TAG not in run.data.tags


def load_holdout(run_id: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray | None]:
    """(feature columns, ready labels, lead ids, the tested model's readiness or None for
    runs logged before it was kept) of a run's hold-out, from the current store."""
    import mlflow

    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=HOLDOUT)
    frame = pd.read_parquet(path)
    tested = frame["__readiness"].to_numpy() if "__readiness" in frame else None
    return (
        frame.drop(columns=HOLDOUT_EXTRA, errors="ignore"),
        frame["__ready"].to_numpy(),
        frame["__lead"].to_numpy(),
        tested,
    )


def load_run_frame(run_id: str, artifact: str) -> pd.DataFrame | None:
    """A parquet artifact of a run (HOLDOUT_ROWS, TRAINED_IDS), or None for a run logged before
    it was kept."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact)
    except (MlflowException, OSError):
        return None
    return pd.read_parquet(path)


class _LeadreadyUnpickler(pickle.Unpickler):
    """Resolves the pre-package module names (`features.model`, ...) to `leadready.*` for this
    one load. Aliasing them in `sys.modules` instead would hide another installed distribution
    named `features`."""

    def find_class(self, module: str, name: str) -> Any:
        if module.partition(".")[0] in OLD_PACKAGES:
            module = f"leadready.{module}"
        return super().find_class(module, name)


def load_scorer(name: str, version: str) -> LeadScorer:
    """A registered version's scorer, from the current store.

    The sklearn flavor's pickle is read here rather than by `mlflow.sklearn.load_model`, so
    versions registered before the package was named `leadready` still load, and the code
    logged with the model is not put on `sys.path`: this process uses the installed leadready."""
    import mlflow
    from mlflow.models import Model

    with tempfile.TemporaryDirectory() as folder:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=folder
            )
        )
        flavor = Model.load(local).flavors.get("sklearn", {})
        saved_as = flavor.get("serialization_format")
        if saved_as not in ("pickle", "cloudpickle"):
            kind = f"a scikit-learn model saved as {saved_as}" if saved_as else "no scorer"
            raise ValueError(
                f"version {version} of '{name}' is {kind}, which leadready does not load; "
                "retrain it with `leadready train`"
            )
        with open(local / flavor["pickled_model"], "rb") as file:
            scorer = _LeadreadyUnpickler(file).load()
    from leadready.features.model import LeadScorer

    if not isinstance(scorer, LeadScorer):
        raise ValueError(
            f"version {version} of '{name}' is a pickled {type(scorer).__name__}, not a "
            "leadready scorer; retrain it with `leadready train`"
        )
    return scorer
