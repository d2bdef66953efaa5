"""`leadready train`: from a validated CRM export to a fitted, evaluated `LeadScorer`.

Nothing here writes anything: `training.registry` logs and registers the result afterwards, so
a failure at any step leaves no run, model or registry entry behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from features.build import (
    CATEGORICAL,
    HAND_RAISE_WINDOW,
    NUMERIC,
    Events,
    Leads,
    build_features,
)
from features.contract import Crm
from features.labels import FEATURE_LABELS
from features.model import Calibrated, FeatureEncoder, LeadScorer
from serving.store import MODEL_NAME
from training.evaluate import (
    choose_thresholds,
    classification_metrics,
    route_statistics,
)
from training.examples import Snapshots, make_snapshots, split_by_time
from training.fit import Candidate, fit_candidates, platt
from training.scorecard import scorecard_points

DRIVER_ROWS = 2000
MIN_CLOSED_LEADS = 200
STEPS = (
    "Building snapshots", "Building features", "Fitting readiness models",
    "Fitting potential models", "Scoring the test set", "Explaining global drivers",
)


class TrainingError(ValueError):
    """Data that validates but cannot train a model (too few leads, one class only...)."""


@dataclass(frozen=True)
class TrainConfig:
    step_days: int = 14
    horizon_days: int = 90
    sales_precision: float = 0.5
    max_disqualified_wins: float = 0.02
    test_share: float = 0.2
    seed: int = 0
    threads: int = 2


@dataclass
class TrainResult:
    scorer: LeadScorer
    metrics: dict[str, float]
    test_columns: dict[str, np.ndarray]
    test_ready: np.ndarray
    test_scores: dict[str, np.ndarray]
    fingerprint: dict[str, str | int]
    params: dict[str, object] = field(default_factory=dict)


def fingerprint(crm: Crm) -> dict[str, str | int]:
    """Row counts, date range and a content hash of the export, for traceability."""
    digest = hashlib.sha256()
    for frame in (crm.leads, crm.activities, crm.touches):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    created = crm.leads["created_at"]
    return {
        "leads": len(crm.leads), "activities": len(crm.activities), "touches": len(crm.touches),
        "closed_leads": int(crm.leads["outcome"].isin(("won", "lost")).sum()),
        "first_created_at": str(created.min()), "last_created_at": str(created.max()),
        "sha256": digest.hexdigest()[:16],
    }


def _columns_for(crm: Crm, snaps: Snapshots) -> dict[str, np.ndarray]:
    lead_ids = pd.Index(crm.leads["lead_id"])
    return build_features(
        Leads.from_frame(crm.leads, crm.custom),
        Events.activities_from_frame(crm.activities, lead_ids),
        Events.touches_from_frame(crm.touches, lead_ids),
        snaps.lead, snaps.as_of,
    )


def _check_classes(snaps: Snapshots, masks: dict[str, np.ndarray]) -> None:
    for part, mask in masks.items():
        for label in ("ready", "potential"):
            values = getattr(snaps, label)[mask]
            if len(values) == 0 or values.min() == values.max():
                raise TrainingError(
                    f"the {part} part of the time split has no "
                    f"{'positive' if len(values) and values.min() == 0 else 'negative'} "
                    f"'{label}' examples; the export needs won and lost leads across its "
                    "whole date range"
                )


def _take(columns: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[mask] for name, values in columns.items()}


def _drivers(model: Calibrated, x: np.ndarray, features: list[str], seed: int
             ) -> dict[str, float]:
    """Mean absolute contribution (log-odds) per input feature, largest first."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), size=min(DRIVER_ROWS, len(x)), replace=False)
    mean_abs = np.abs(model.contributions(x[rows])[:, :-1]).mean(axis=0)
    order = np.argsort(-mean_abs)
    return {features[j]: float(mean_abs[j]) for j in order}


def train(
    crm: Crm, config: TrainConfig, step: Callable[[str], None] = lambda _: None
) -> TrainResult:
    """Fit, select, calibrate and evaluate; see docs/training.md for the method."""
    step(STEPS[0])
    closed = int(crm.leads["outcome"].isin(("won", "lost")).sum())
    if closed < MIN_CLOSED_LEADS:
        raise TrainingError(
            f"only {closed} closed (won or lost) leads; training needs at least "
            f"{MIN_CLOSED_LEADS}, so the model can be fitted and tested on separate leads"
        )
    snaps = make_snapshots(crm.leads, config.step_days, config.horizon_days)
    split = split_by_time(snaps, config.test_share)
    masks = {"fit": split.fit, "validation": split.validation, "test": split.test}
    _check_classes(snaps, masks)

    step(STEPS[1])
    columns = _columns_for(crm, snaps)
    custom = crm.custom
    encoder = FeatureEncoder(
        categorical=(*CATEGORICAL, *(c for c, k in custom.items() if k == "categorical")),
        numeric=(*NUMERIC, *(c for c, k in custom.items() if k == "numeric")),
    ).fit(_take(columns, split.fit))
    x = encoder.transform(columns)
    vocab_sizes = [len(encoder.vocabulary_[name]) for name in encoder.vocabulary_]
    parts = {name: x[mask] for name, mask in masks.items()}

    chosen: dict[str, Candidate] = {}
    leaderboard: dict[str, float] = {}
    for target, label in ((STEPS[2], "ready"), (STEPS[3], "potential")):
        step(target)
        y = getattr(snaps, label)
        candidates = fit_candidates(
            parts["fit"], y[split.fit], parts["validation"], y[split.validation],
            vocab_sizes, config.seed, config.threads,
        )
        chosen[label] = candidates[0]
        for c in candidates:
            leaderboard[f"validation_{label}_{c.name}_roc_auc"] = c.validation_auc

    step(STEPS[4])
    readiness, potential = chosen["ready"].model, chosen["potential"].model
    hand_raise = columns[f"hand_raise_{HAND_RAISE_WINDOW}d"]
    val, test = split.validation, split.test
    thresholds = choose_thresholds(
        readiness.proba(parts["validation"]), potential.proba(parts["validation"]),
        snaps.ready[val], snaps.potential[val],
        config.sales_precision, config.max_disqualified_wins,
    )
    test_scores = {
        "readiness": readiness.proba(parts["test"]),
        "potential": potential.proba(parts["test"]),
    }
    points = scorecard_points(columns)
    a, b = platt(points[val], snaps.ready[val])
    test_scores["bant_scorecard"] = 1.0 / (1.0 + np.exp(-(a * points[test] + b)))
    metrics: dict[str, float] = {}
    for name, target in (("readiness", "ready"), ("potential", "potential"),
                         ("bant_scorecard", "ready")):
        for metric, value in classification_metrics(
            getattr(snaps, target)[test], test_scores[name]
        ).items():
            metrics[f"test_{name}_{metric}"] = value
    routes = route_statistics(
        test_scores["readiness"], test_scores["potential"], hand_raise[test],
        snaps.ready[test], snaps.potential[test], thresholds,
    )

    step(STEPS[5])
    info = {
        "model_name": MODEL_NAME,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_kind": {"readiness": chosen["ready"].name, "potential": chosen["potential"].name},
        "thresholds": thresholds.as_dict(),
        "policy": {"sales_precision": config.sales_precision,
                   "max_disqualified_wins": config.max_disqualified_wins},
        "routes": routes,
        "metrics": metrics,
        "leaderboard": leaderboard,
        "drivers": _drivers(readiness, parts["test"], encoder.features_, config.seed),
        "labels": {**FEATURE_LABELS, **{name: name for name in custom}},
        "features": encoder.features_,
        "custom": dict(custom),
        "horizon_days": config.horizon_days,
        "step_days": config.step_days,
        "data": fingerprint(crm),
        "split": {"validation_from": datetime.fromtimestamp(split.validation_from, UTC)
                  .isoformat(), "test_from": datetime.fromtimestamp(split.test_from, UTC)
                  .isoformat(),
                  **{f"{k}_rows": int(m.sum()) for k, m in masks.items()}},
    }
    scorer = LeadScorer(encoder, readiness, potential, info)
    return TrainResult(
        scorer=scorer, metrics=metrics, test_columns=_take(columns, test),
        test_ready=snaps.ready[test], test_scores=test_scores, fingerprint=info["data"],
        params={**asdict(config), "readiness_model": chosen["ready"].name,
                "potential_model": chosen["potential"].name},
    )
