"""Loading the champion: the one place serving talks to MLflow.

Names, aliases and the store's location are shared with training (`features.registry`); without
`MLFLOW_TRACKING_URI`, that is the SQLite database under the models folder (`models/mlflow.db`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leadready.features.build import FEATURES
from leadready.features.metadata import ModelInfo
from leadready.features.model import LeadScorer
from leadready.features.registry import (
    CHAMPION,
    NoChampionError,
    embedded_uri,
    load_holdout,
    load_scorer,
    model_name,
    redacted,
    tracking_uri,
    use_store,
)
from leadready.features.schema import Schema
from leadready.features.table import MODE


@dataclass(frozen=True)
class LoadedModel:
    scorer: LeadScorer
    name: str
    version: str
    run_id: str

    @property
    def ref(self) -> dict[str, str]:
        """How scores and pages name the model: registered name, version, run, kind."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "kind": self.scorer.info.model_kind.readiness,
        }

    @property
    def lost_after(self) -> int | None:
        """The lost-after rule (days) a CRM-export model was trained with, which scoring an
        export applies too: a lead training would count as lost is not scored as open."""
        crm = self.scorer.info.crm
        return crm.lost_after_days if crm is not None else None

    @property
    def schema(self) -> Schema | None:
        """The schema file a CRM-export model was trained with, which scoring an export applies
        when it is given none; None without one (and for flat models: `features.table`)."""
        crm = self.scorer.info.crm
        if crm is None:
            return None
        source = f"the schema version {self.version} of '{self.name}' was trained with"
        return Schema.from_stored(crm.schema_tables, source)


def load_champion(models_dir: Path, alias: str = CHAMPION, *, flat: bool = False) -> LoadedModel:
    """Resolve the alias to a version once, then load exactly that version.

    `flat=True` loads the flat-table champion (`sales-readiness-flat`, for `score --table` and
    the workspace's flat uploads); otherwise the one trained on CRM exports, which the API and
    `score --data` use."""
    return load_version(models_dir, champion_version(models_dir, alias, flat=flat), flat=flat)


def champion_version(models_dir: Path, alias: str = CHAMPION, *, flat: bool = False) -> str:
    """The version the alias names now, without loading it: what a reload publishes to every
    worker of a server, which then all load that same version."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if (
        tracking_uri(models_dir) == embedded_uri(models_dir)
        and not (models_dir / "mlflow.db").exists()
    ):
        raise NoChampionError(_no_champion(embedded_uri(models_dir), flat))
    uri = use_store(models_dir)
    try:
        version = MlflowClient().get_model_version_by_alias(model_name(flat), alias)
    except MlflowException:
        raise NoChampionError(_no_champion(redacted(uri), flat)) from None
    return str(version.version)


def load_version(models_dir: Path, version: str, *, flat: bool = False) -> LoadedModel:
    """Exactly this registered version of the CRM-export model (or, `flat=True`, of the
    flat-table one), checked against the feature set this leadready builds."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name = model_name(flat)
    use_store(models_dir)
    try:
        run_id = MlflowClient().get_model_version(name, version).run_id
    except MlflowException:
        raise NoChampionError(f"version {version} of '{name}' is not in the registry") from None
    try:
        scorer = load_scorer(name, version)
    except ValueError as exc:
        raise NoChampionError(str(exc)) from None
    except (MlflowException, OSError) as exc:  # its artifacts gone or unreadable
        raise NoChampionError(f"version {version} of '{name}' cannot be read: {exc}") from None
    info = scorer.info
    if (info.mode == MODE) != flat or (
        not flat and {f for f in info.features if f not in info.custom} != set(FEATURES)
    ):
        raise NoChampionError(
            f"version {version} of '{name}' was trained on another "
            "feature set than this leadready builds; retrain it with `leadready train "
            + ("--table FILE`" if flat else "--data DIR`")
        )
    return LoadedModel(scorer, name, version, str(run_id))


def _no_champion(uri: str, flat: bool) -> str:
    how = (
        "`leadready train --table FILE --id COLUMN --label COLUMN --positive VALUE`"
        if flat
        else "`leadready train --data DIR` (or `make demo`)"
    )
    return f"no '{CHAMPION}' version of model '{model_name(flat)}' in {uri}; train one with {how}"


# -------------------------------------------------------- what the workspace's Model page reads


def registry_versions(models_dir: Path, name: str, aliases: tuple[str, ...]) -> dict[str, dict]:
    """The version and run each alias of a registered model points to now (it may have moved
    since the server loaded its champion); aliases not set are left out."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    use_store(models_dir)
    client = MlflowClient()
    out: dict[str, dict] = {}
    for alias in aliases:
        try:
            version = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            continue
        out[alias] = {"version": str(version.version), "run_id": str(version.run_id)}
    return out


def version_info(models_dir: Path, run_id: str) -> ModelInfo | None:
    """The `model_info.json` training logged with a run (metrics, thresholds, routes...), or
    None when the run has none, or one this leadready cannot read."""
    import mlflow
    from mlflow.exceptions import MlflowException

    use_store(models_dir)
    try:
        return ModelInfo.model_validate(
            mlflow.artifacts.load_dict(f"runs:/{run_id}/model_info.json")
        )
    except (MlflowException, OSError, ValueError):  # pydantic's ValidationError is one
        return None


def holdout_scores(models_dir: Path, run_id: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The 0/1 labels of a run's hold-out and the readiness its tested model gave them; None
    when the run kept no hold-out scores (runs logged before they were kept)."""
    from mlflow.exceptions import MlflowException

    use_store(models_dir)
    try:
        _, ready, _, tested = load_holdout(run_id)
    except (MlflowException, OSError, ValueError, KeyError):
        return None
    return None if tested is None else (ready, tested)


MONITOR_STEP_KEY = "monitor_status"
"""The metric every `leadready monitor` logs: its count of points numbers the next run."""


def log_monitoring(models_dir: Path, run_id: str, metrics: dict[str, float], at_ms: int) -> int:
    """Log one monitoring run's figures to the champion's MLflow run, all at time `at_ms` (Unix
    milliseconds) and one step (0 for the first run, then 1, 2...), so each figure is a time
    series in the MLflow UI; returns the step."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    use_store(models_dir)
    client = MlflowClient()
    step = len(client.get_metric_history(run_id, MONITOR_STEP_KEY))
    client.log_batch(
        run_id,
        metrics=[Metric(key, float(value), at_ms, step) for key, value in metrics.items()],
        synchronous=True,
    )
    return step


def monitoring_history(models_dir: Path, run_id: str) -> list[dict[str, float]]:
    """Every `leadready monitor` run logged to a version's run, oldest first: per run (step)
    its `monitor_*` figures by key, with `timestamp` (Unix milliseconds) and `step`."""
    from mlflow.tracking import MlflowClient

    use_store(models_dir)
    client = MlflowClient()
    keys = [key for key in client.get_run(run_id).data.metrics if key.startswith("monitor_")]
    runs: dict[int, dict[str, float]] = {}
    for key in keys:
        for point in client.get_metric_history(run_id, key):
            entry = runs.setdefault(point.step, {"step": point.step, "timestamp": point.timestamp})
            entry[key] = point.value
    return [runs[step] for step in sorted(runs)]
