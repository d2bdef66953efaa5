"""What both training modes (CRM exports and flat tables) hand to publication, built one way.

A mode fits its models, chooses routing thresholds and scores its hold-out; `assemble` then
measures the hold-out (metrics with bootstrap intervals, route statistics), explains the
readiness model's global drivers, writes the metadata every model carries and returns the
`TrainResult` that `training.registry.publish` logs. Nothing here writes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from leadready.features.drift import reference_profile
from leadready.features.evaluation import bootstrap_intervals
from leadready.features.metadata import (
    CrmDetails,
    FeatureKind,
    FlatDetails,
    ModelInfo,
    Policy,
    Profile,
)
from leadready.features.model import Calibrated, FeatureEncoder, LeadScorer
from leadready.features.registry import model_name
from leadready.features.table import MODE
from leadready.training.evaluate import Chosen, route_statistics

DRIVER_ROWS = 2000
"""Rows the global drivers are averaged over: exact contributions cost about 1 ms a row."""


class TrainingError(ValueError):
    """Data that validates but cannot train a model (too few leads, one class only...)."""


@dataclass
class TrainResult:
    scorer: LeadScorer
    metrics: dict[str, float]
    test_columns: dict[str, np.ndarray]
    test_ready: np.ndarray
    test_scores: dict[str, np.ndarray]
    test_groups: np.ndarray
    intervals: dict[str, dict[str, tuple[float, float, float]]]
    fingerprint: dict[str, str | int]
    params: dict[str, object] = field(default_factory=dict)
    test_table: pd.DataFrame | None = None
    trained_ids: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    """What training skipped or fell back on, and why: one plain sentence each."""


@dataclass(frozen=True)
class Holdout:
    """The test rows as a mode scored them: feature columns, 0/1 `ready` (won within the
    horizon; the label itself in flat mode) and `won` (eventually), hand-raises, each model's
    probabilities (`readiness` and `potential` at least), and per row its lead: `groups` any
    label of it (what the bootstrap resamples), `lead_ids` its id. A flat table's hold-out
    also keeps its rows' own cells, `table`, from which a version that reads other columns
    takes its own (`training.compare`)."""

    columns: dict[str, np.ndarray]
    ready: np.ndarray
    won: np.ndarray
    hand_raise: np.ndarray
    scores: dict[str, np.ndarray]
    groups: np.ndarray
    lead_ids: np.ndarray
    table: pd.DataFrame | None = None


def take(columns: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """The rows of `mask` of every column."""
    return {name: values[mask] for name, values in columns.items()}


def config_params(config: Any, skip: tuple[str, ...] = ()) -> dict[str, object]:
    """A training config (snapshot or flat mode) as MLflow params, its routing policy's options
    among them, less the fields `skip`."""
    fields = {k: v for k, v in asdict(config).items() if k not in (*skip, "policy")}
    return {**fields, **config.policy.model_dump()}


def global_drivers(
    model: Calibrated, x: np.ndarray, features: list[str], seed: int
) -> dict[str, float]:
    """Mean absolute contribution (log-odds) per input feature over up to DRIVER_ROWS rows
    drawn from `x`, largest first."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), size=min(DRIVER_ROWS, len(x)), replace=False)
    mean_abs = np.abs(model.contributions(x[rows])[:, :-1]).mean(axis=0)
    return {features[j]: float(mean_abs[j]) for j in np.argsort(-mean_abs)}


def holdout_intervals(
    holdout: Holdout, seed: int
) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Model name -> metric -> (value, low, high) on the hold-out; `potential` is measured
    against eventual wins, every other score against `ready`. A score whose labels have one
    class only (a cold start's small test set) is left out: nothing honest to report."""
    intervals = {}
    for name, scores in holdout.scores.items():
        y = holdout.won if name == "potential" else holdout.ready
        if 0 < y.sum() < len(y):
            intervals[name] = bootstrap_intervals(y, scores, holdout.groups, seed=seed)
    return intervals


def point_values(intervals: dict[str, dict[str, tuple[float, float, float]]]) -> dict[str, float]:
    """`test_{model}_{metric}` -> value on the hold-out: the MLflow metrics of a run."""
    return {
        f"test_{name}_{metric}": value[0]
        for name, ci in intervals.items()
        for metric, value in ci.items()
    }


def model_info(
    *,
    details: CrmDetails | FlatDetails,
    cold_start: bool,
    kinds: dict[str, str],
    routing: Chosen,
    policy: Policy,
    routes: dict[str, dict[str, float]],
    intervals: dict[str, dict[str, tuple[float, float, float]]],
    leaderboard: list[dict[str, object]],
    drivers: dict[str, float],
    labels: dict[str, str],
    features: list[str],
    custom: dict[str, str],
    profile: Profile | None = None,
) -> ModelInfo:
    """The metadata every model carries (it travels in MLflow's MLmodel), with the section of
    its mode: `details`, and what monitoring compares live traffic with (`profile`)."""
    flat = isinstance(details, FlatDetails)
    return ModelInfo.model_validate(
        {
            "model_name": model_name(flat),
            "mode": MODE if flat else "snapshots",
            "cold_start": cold_start,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_kind": {"readiness": kinds["ready"], "potential": kinds["potential"]},
            "thresholds": routing.thresholds,
            "policy": policy,
            "routes": routes,
            "routing_notes": list(routing.notes),
            "metrics": point_values(intervals),
            "intervals": intervals,
            "leaderboard": leaderboard,
            "drivers": drivers,
            "labels": labels,
            "features": features,
            "custom": custom,
            "profile": profile,
            "flat" if flat else "crm": details,
        }
    )


def assemble(
    *,
    cold_start: bool,
    encoder: FeatureEncoder,
    models: dict[str, Calibrated],
    kinds: dict[str, str],
    routing: Chosen,
    config: Any,
    leaderboard: list[dict[str, object]],
    explained: np.ndarray,
    labels: dict[str, str],
    holdout: Holdout,
    details: CrmDetails | FlatDetails,
    custom: dict[str, str],
    fingerprint: dict[str, str | int],
    params: dict[str, object],
    explaining: Callable[[], None] = lambda: None,
    trained_ids: np.ndarray | None = None,
    notes: list[str] | None = None,
    monitored: Mapping[str, tuple[FeatureKind, np.ndarray]] | None = None,
) -> TrainResult:
    """The scorer (`models` keyed `ready` and `potential`, their candidate names in `kinds`),
    its metadata (shared fields, `custom` features, the mode's `details`) and the hold-out
    measurements, as publication takes them. Drivers are measured on the encoded rows
    `explained`, after `explaining` is called (a progress step). `trained_ids` are the ids of
    the leads the registered model was fitted (or calibrated) on: a flat model's every row, a CRM
    model's leads before its test split. `notes` say what training skipped or fell back on.
    `monitored` are the monitored inputs of the rows the model was fitted on
    (`features.drift.lead_inputs`): with them, the metadata gets the profile monitoring compares
    live traffic with."""
    intervals = holdout_intervals(holdout, config.seed)
    routes = route_statistics(
        holdout.scores["readiness"],
        holdout.scores["potential"],
        holdout.hand_raise,
        holdout.ready,
        holdout.won,
        routing.thresholds,
    )
    explaining()
    info = model_info(
        details=details,
        cold_start=cold_start,
        kinds=kinds,
        routing=routing,
        policy=config.policy,
        routes=routes,
        intervals=intervals,
        leaderboard=leaderboard,
        drivers=global_drivers(models["ready"], explained, encoder.features_, config.seed),
        labels=labels,
        features=encoder.features_,
        custom=custom,
        profile=None
        if monitored is None
        else reference_profile(monitored, holdout.scores["readiness"]),
    )
    return TrainResult(
        scorer=LeadScorer(encoder, models["ready"], models["potential"], info),
        metrics=point_values(intervals),
        test_columns=holdout.columns,
        test_ready=holdout.ready,
        test_scores=holdout.scores,
        test_groups=holdout.lead_ids,
        intervals=intervals,
        fingerprint=fingerprint,
        params=params,
        test_table=holdout.table,
        trained_ids=trained_ids,
        notes=tuple(notes or ()),
    )
