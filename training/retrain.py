"""`leadready retrain`: train when the data changed, and promote only what passes the gate.

Before training, the data's fingerprint (`pipeline.fingerprint`, sha256 of the three tables)
is compared with the one the champion and the newest registered version were trained on (their
`data.sha256` tags): when it is either one, nothing is trained. Otherwise the recipe is the
champion's (its horizon, snapshot step and routing policy), the challenger is published as
`train` publishes it, and the drift gate (`gate`) can hold it back from promotion whatever the
promotion rule says. docs/operations.md has the rules and the exit statuses.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from leadready.features.contract import Crm
from leadready.features.drift import drift_problems, input_drift, lead_inputs
from leadready.features.evaluation import worse_than
from leadready.features.metadata import ModelInfo
from leadready.features.registry import CHAMPION, TRAIN_RUN_TAG, is_complete, load_scorer
from leadready.features.registry import model_name as registered_name
from leadready.training.pipeline import TrainConfig
from leadready.training.result import TrainResult


@dataclass(frozen=True)
class Previous:
    """What the registry holds before a retrain: the champion (its version and metadata) and
    the data fingerprint each of the champion and the newest complete version was trained on."""

    champion: str | None
    info: ModelInfo | None
    trained_on: dict[str, str]
    """version -> data sha256, for the champion and the newest complete version."""

    def unchanged_since(self, sha256: str) -> str | None:
        """The version already trained on data with this fingerprint, champion first."""
        return next((v for v, sha in self.trained_on.items() if sha == sha256), None)

    def recipe(self, seed: int, search_seconds: float) -> TrainConfig:
        """The champion's horizon, snapshot step and routing policy (defaults without one)."""
        defaults = TrainConfig(seed=seed, search_seconds=search_seconds)
        if self.info is None or self.info.crm is None:
            return defaults
        return TrainConfig(
            step_days=self.info.crm.step_days,
            horizon_days=self.info.crm.horizon_days,
            policy=self.info.policy,
            seed=seed,
            search_seconds=search_seconds,
        )


def previous(client: MlflowClient) -> Previous:
    """The registry's champion of 'sales-readiness' and the fingerprints of the data it and the
    newest complete version were trained on; the store must be configured (`configure`). A
    champion that cannot be loaded has no metadata here: no gate, `train`'s defaults."""
    name = registered_name(flat=False)
    try:
        champion: str | None = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        champion = None
    found = client.search_model_versions(f"name='{name}'")
    complete = {str(v.version): v for v in found if is_complete(client, v)}
    newest = max(complete, key=int, default=None)
    trained_on = {
        number: (complete[number].tags or {}).get(TRAIN_RUN_TAG, "")
        for number in dict.fromkeys((champion, newest))
        if number in complete
    }
    try:
        info = load_scorer(name, champion).info if champion is not None else None
    except (ValueError, MlflowException):
        info = None  # a champion that cannot be loaded: the promotion rule keeps it anyway
    return Previous(champion, info, trained_on)


def gate(previous: Previous, crm: Crm, result: TrainResult) -> list[str]:
    """Why the challenger must not become champion automatically (none: it may, by the
    promotion rule): the lead inputs of its own hold-out drifted beyond `leadready monitor`'s
    thresholds from the data the champion was fitted on (its profile), or its hold-out ROC AUC
    or calibration is worse than the champion's beyond both 95% intervals. Nothing to compare
    without a champion; no drift check against a champion without a profile."""
    champion, info = previous.champion, previous.info
    if champion is None or info is None:
        return []
    against = f"what champion v{champion} was trained on"
    problems = []
    if info.profile is not None:
        inputs = lead_inputs(crm.leads, result.scorer.info.custom)
        rows = pd.Index(crm.leads["lead_id"]).get_indexer(pd.Index(result.test_groups))
        holdout = {name: (kind, values[rows]) for name, (kind, values) in inputs.items()}
        problems += drift_problems(input_drift(info.profile, holdout), len(rows), against)
    mine, theirs = result.intervals.get("readiness", {}), info.intervals.get("readiness", {})
    if all(metric in ci for ci in (mine, theirs) for metric in ("roc_auc", "ece")):
        problems += worse_than(
            mine["roc_auc"],
            mine["ece"],
            theirs["roc_auc"],
            theirs["ece"],
            "its hold-out",
            f"champion v{champion}'s",
        )
    return problems
