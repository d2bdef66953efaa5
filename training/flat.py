"""Flat mode: `leadready train --table FILE --id COL --label COL --positive VALUE [--time COL]`.

One row per lead, engagement already counted (the common CRM or marketing-automation export);
`training.flat_table.prepare` reads and checks the table and infers every column's type (see
docs/flat-mode.md). Like `training.pipeline`, nothing here writes anything: the CLI prints,
`training.registry` logs.

`fit` holds out a test set (the newest 20% by `--time`, else a stratified random 20%), chooses a
model by 5-fold cross-validation on the rest, Platt-calibrates it on its out-of-fold margins,
tests it once, then refits the chosen model on all the rows given (cross-fitted again for its
calibration) and returns a `TrainResult` to register.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from leadready.features.baselines import FrequencyMargin
from leadready.features.metadata import FlatDetails
from leadready.features.model import Calibrated, FeatureEncoder, LinearMargin, TreeMargin
from leadready.features.schema import TableMapping
from leadready.features.table import MODE, flat_columns
from leadready.training.evaluate import choose_thresholds, leads_per_week
from leadready.training.fit import platt
from leadready.training.flat_table import (
    FOLDS,
    FlatConfig,
    FlatData,
    FlatTrainingError,
    holdout_warning,
    prepare,
)
from leadready.training.result import Holdout, TrainResult, assemble, config_params, take

MIN_COUNT = 2
"""Category values seen once in training count as missing; rarer values carry signal on small
tables (5 cost 0.015 AUC on 1,000-row subsamples of the Leads export)."""
STEPS = (
    "Checking the table",
    "Selecting a model (5-fold cross-validation)",
    "Scoring the hold-out",
    "Refitting on all rows",
    "Explaining global drivers",
)


LGBM_BASE = {
    "objective": "binary",
    "learning_rate": 0.05,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "min_data_in_leaf": 20,
    "max_cat_to_onehot": 8,
    "min_data_per_group": 20,
    "cat_smooth": 10,
    "cat_l2": 10,
    "verbose": -1,
}
MAX_ROUNDS = 2000
EARLY_STOPPING = 50
MAX_LINEAR_CELLS = 30_000_000


# -------------------------------------------------------------------------------- splitting


def holdout(y: np.ndarray, times: np.ndarray | None, share: float, seed: int) -> np.ndarray:
    """Test mask: the newest `share` of rows by time (ties broken by row order), else a
    stratified random `share`, seeded."""
    n = len(y)
    size = max(1, int(round(share * n)))
    test = np.zeros(n, dtype=bool)
    if times is not None:
        order = np.argsort(times, kind="stable")
        test[order[n - size :]] = True
    else:
        split = StratifiedShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        test[next(split.split(np.zeros(n), y))[1]] = True
    return test


# -------------------------------------------------------------------------------- modelling


@dataclass(frozen=True)
class Spec:
    """One candidate: a regularised logistic regression or a LightGBM configuration."""

    name: str
    kind: str
    params: dict[str, Any]


CANDIDATES = (
    Spec("logistic_regression_c0.1", "linear", {"c": 0.1}),
    Spec("logistic_regression_c1", "linear", {"c": 1.0}),
    Spec(
        "lightgbm_4_leaves", "lightgbm", {"num_leaves": 4, "min_data_per_group": 5, "cat_smooth": 5}
    ),
    Spec("lightgbm_15_leaves", "lightgbm", {"num_leaves": 15}),
    Spec(
        "lightgbm_15_leaves_half_features", "lightgbm", {"num_leaves": 15, "feature_fraction": 0.5}
    ),
)
"""Measured (bench/quality.py and subsamples of it): 4-leaf trees win on small tables with few
positives, 15-leaf trees on thousands of rows, the linear models on a few hundred rows of
smooth numeric columns; 5-fold cross-validated AUC picks among them per table."""


def _candidates(rows: int, vocab: list[int], n_numeric: int) -> tuple[Spec, ...]:
    """All candidates, but the linear ones only while their dense one-hot design stays small
    (many rows times thousands of category values would not fit in memory)."""
    cells = rows * (sum(size + 1 for size in vocab) + 2 * n_numeric)
    if cells <= MAX_LINEAR_CELLS:
        return CANDIDATES
    return tuple(spec for spec in CANDIDATES if spec.kind != "linear")


@dataclass
class _Fitted:
    spec: Spec
    auc: float  # mean fold ROC AUC
    margins: np.ndarray  # out-of-fold
    rounds: int  # trees for a refit on all the rows (LightGBM), 0 otherwise


def _lgbm_params(spec: Spec, n_rows: int, seed: int, threads: int) -> dict[str, Any]:
    params = {**LGBM_BASE, **spec.params, "seed": seed, "num_threads": threads}
    # Leaves of at least 20 rows, fewer on very small tables (at most 2% of the rows).
    params["min_data_in_leaf"] = int(max(3, min(params["min_data_in_leaf"], n_rows // 50)))
    params["min_data_per_group"] = min(params["min_data_per_group"], params["min_data_in_leaf"])
    return params


def _fit_one(
    spec: Spec,
    x: np.ndarray,
    y: np.ndarray,
    n_cat: int,
    vocab: list[int],
    seed: int,
    threads: int,
    rounds: int,
) -> Any:
    """A margin model fitted on (x, y); LightGBM grows `rounds` trees."""
    if spec.kind == "linear":
        return LinearMargin(vocab, c=spec.params["c"]).fit(x, y)
    import lightgbm as lgb

    params = _lgbm_params(spec, len(y), seed, threads)
    train = lgb.Dataset(x, y, categorical_feature=list(range(n_cat)))
    booster = lgb.train(params, train, num_boost_round=max(rounds, 1))
    booster.free_dataset()
    return TreeMargin(booster)


def _folds(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    k = int(min(FOLDS, (y == 1).sum(), (y == 0).sum()))
    return list(
        StratifiedKFold(max(k, 2), shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    )


def _lightgbm_cv(
    spec: Spec,
    x: np.ndarray,
    y: np.ndarray,
    n_cat: int,
    folds: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
    threads: int,
) -> tuple[np.ndarray, int]:
    """Out-of-fold margins and the number of trees, early-stopped on the log loss averaged
    over the folds (steadier than stopping each small fold on its own)."""
    import lightgbm as lgb

    fold_rows = int(np.mean([len(fit) for fit, _ in folds]))
    params = _lgbm_params(spec, fold_rows, seed, threads)
    data = lgb.Dataset(x, y, categorical_feature=list(range(n_cat)), free_raw_data=False)
    result = lgb.cv(
        params,
        data,
        num_boost_round=MAX_ROUNDS,
        folds=folds,
        stratified=False,
        return_cvbooster=True,
        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
    )
    boosters = result["cvbooster"]
    assert isinstance(boosters, lgb.CVBooster)  # return_cvbooster=True puts it there
    best = int(boosters.best_iteration) or MAX_ROUNDS
    margins = np.empty(len(y))
    for (_, held), booster in zip(folds, boosters.boosters, strict=True):
        margins[held] = booster.predict(x[held], raw_score=True, num_iteration=best)
    return margins, best


def cross_fit(
    spec: Spec, x: np.ndarray, y: np.ndarray, n_cat: int, vocab: list[int], seed: int, threads: int
) -> _Fitted:
    """Out-of-fold margins, mean fold AUC and (LightGBM) the trees a refit should grow."""
    folds = _folds(y, seed)
    rounds = 0
    if spec.kind == "lightgbm":
        margins, best = _lightgbm_cv(spec, x, y, n_cat, folds, seed, threads)
        # A refit sees k/(k-1) times the rows of a fold model: proportionally more trees.
        rounds = int(np.ceil(best * len(folds) / (len(folds) - 1)))
    else:
        margins = np.empty(len(y))
        for fit, held in folds:
            model = _fit_one(spec, x[fit], y[fit], n_cat, vocab, seed, threads, 0)
            margins[held] = model.margin(x[held])
    auc = float(np.mean([roc_auc_score(y[held], margins[held]) for _, held in folds]))
    return _Fitted(spec, auc, margins, rounds)


def _calibrated_fit(
    chosen: _Fitted,
    x: np.ndarray,
    y: np.ndarray,
    n_cat: int,
    vocab: list[int],
    seed: int,
    threads: int,
) -> Calibrated:
    """The chosen candidate fitted on (x, y), Platt-scaled on its out-of-fold margins."""
    model = _fit_one(chosen.spec, x, y, n_cat, vocab, seed, threads, chosen.rounds)
    a, b = platt(chosen.margins, y)
    return Calibrated(model, a, b)


def _frequency(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray, n_cat: int, seed: int
) -> np.ndarray:
    """The frequency score baseline on the test rows, fitted on (x, y) and Platt-scaled on its
    out-of-fold margins."""
    margins = np.empty(len(y))
    for fit, held in _folds(y, seed):
        margins[held] = FrequencyMargin(n_cat).fit(x[fit], y[fit]).margin(x[held])
    a, b = platt(margins, y)
    return Calibrated(FrequencyMargin(n_cat).fit(x, y), a, b).proba(x_test)


def fit(
    data: FlatData, config: FlatConfig, step: Callable[[str], None] = lambda _: None
) -> TrainResult:
    """Choose, calibrate, test once, refit on all rows; see the module docstring."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    feature_types = data.feature_types
    categorical = tuple(n for n, k in feature_types.items() if k == "categorical")
    numeric = tuple(n for n, k in feature_types.items() if k == "numeric")
    columns = flat_columns(data.frame, feature_types)
    y = data.y
    test = holdout(y, data.times, config.test_share, config.seed)
    train = ~test
    for part, mask in (("training", train), ("hold-out", test)):
        if len(np.unique(y[mask])) < 2:
            raise FlatTrainingError(
                f"{data.path}: the {part} part of the split ({int(mask.sum())} rows) has one "
                "outcome only; the table needs converted and not converted leads across the "
                "whole --time range"
            )

    step(STEPS[1])
    encoder = FeatureEncoder(categorical, numeric, MIN_COUNT).fit(take(columns, train))
    x = encoder.transform(columns)
    n_cat = len(categorical)
    vocab = [len(encoder.vocabulary_[name]) for name in categorical]
    x_train, y_train = x[train], y[train]
    fitted = [
        cross_fit(spec, x_train, y_train, n_cat, vocab, config.seed, config.threads)
        for spec in _candidates(len(y), vocab, len(numeric))
    ]
    chosen = max(fitted, key=lambda f: f.auc)
    # Columns as in the snapshot pipeline's leaderboard; here both AUCs are cross-validated:
    # the mean over folds, and over all out-of-fold margins pooled.
    leaderboard = [
        {
            "target": "ready",
            "candidate": f.spec.name,
            "cv_roc_auc": round(f.auc, 4),
            "validation_roc_auc": round(float(roc_auc_score(y_train, f.margins)), 4),
            "explainable": True,
            "chosen": f is chosen,
            "params": json.dumps(f.spec.params, sort_keys=True),
        }
        for f in fitted
    ]

    step(STEPS[2])
    tested = _calibrated_fit(chosen, x_train, y_train, n_cat, vocab, config.seed, config.threads)
    oof = 1.0 / (1.0 + np.exp(-platt_apply(chosen.margins, y_train)))
    routing = choose_thresholds(
        oof,
        oof,
        y_train,
        y_train,
        config.policy,
        leads_per_week=None if data.times is None else leads_per_week(data.times[train]),
    )
    readiness = tested.proba(x[test])
    too_good = holdout_warning(float(roc_auc_score(y[test], readiness)), data)
    test_scores = {
        "readiness": readiness,
        "potential": readiness,
        "frequency_score": _frequency(x_train, y_train, x[test], n_cat, config.seed),
    }
    y_test = y[test]

    step(STEPS[3])
    # The registered model: the same candidate on every row given, calibrated on out-of-fold
    # margins of the same procedure over all rows (cross-fitting).
    final_encoder = FeatureEncoder(categorical, numeric, MIN_COUNT).fit(columns)
    x_all = final_encoder.transform(columns)
    vocab_all = [len(final_encoder.vocabulary_[name]) for name in categorical]
    refit = cross_fit(chosen.spec, x_all, y, n_cat, vocab_all, config.seed, config.threads)
    model = _calibrated_fit(refit, x_all, y, n_cat, vocab_all, config.seed, config.threads)

    test_from = (
        "stratified random" if data.times is None else str(pd.Timestamp(data.times[test].min()))
    )
    return assemble(
        cold_start=False,
        encoder=final_encoder,
        models={"ready": model, "potential": model},
        kinds={"ready": chosen.spec.name, "potential": chosen.spec.name},
        routing=routing,
        config=config,
        leaderboard=leaderboard,
        explained=x_all,
        labels={name: name for name in feature_types},
        holdout=Holdout(
            columns=take(columns, test),
            ready=y_test,
            won=y_test,
            hand_raise=np.zeros(len(y_test)),
            scores=test_scores,
            groups=data.ids[test],
            lead_ids=data.ids[test],
            table=data.frame[test].reset_index(drop=True),
        ),
        details=FlatDetails.model_validate(
            {
                "id_column": config.id_column,
                "label": {"column": config.label, "positive": config.positive},
                "time_column": config.time,
                "feature_types": feature_types,
                "excluded": {t.name: t.note for t in data.types if t.kind == "excluded"},
                "single_feature_auc": {k: round(v, 4) for k, v in data.single_auc.items()},
                "leakage_warnings": {k: round(v, 4) for k, v in data.leaks.items()},
                "suspected_leakage": data.leakage,
                "holdout_warning": too_good,
                "table_mapping": {
                    "columns": dict(data.mapping.columns),
                    "values": {k: dict(v) for k, v in data.mapping.values.items()},
                    "dates": dict(data.mapping.dates),
                    "display": list(data.mapping.display),
                    "actionable": [c for c in data.mapping.actionable if c in feature_types],
                },
                "refit": {
                    "rows": int(len(y)),
                    "positives": int(y.sum()),
                    "trees": refit.rounds,
                    "calibration": "Platt scaling on out-of-fold margins (5-fold cross-fitting "
                    "over all rows)",
                },
                "data": data.fingerprint,
                "split": {
                    "holdout": "newest by --time"
                    if data.times is not None
                    else "stratified random",
                    "test_from": test_from,
                    "fit_rows": int(train.sum()),
                    "validation_rows": "5-fold cross-validation",
                    "test_rows": int(test.sum()),
                },
            }
        ),
        custom={},
        fingerprint=data.fingerprint,
        params={
            "mode": MODE,
            "id_column": config.id_column,
            "label": config.label,
            "positive": config.positive,
            "time": config.time or "",
            **config_params(config, skip=("id_column", "label", "positive", "time")),
            "folds": FOLDS,
            "min_count": MIN_COUNT,
            "readiness_model": chosen.spec.name,
            "potential_model": chosen.spec.name,
            "cold_start": False,
        },
        explaining=lambda: step(STEPS[4]),
        trained_ids=data.ids,
    )


def platt_apply(margins: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Calibrated logits of out-of-fold margins (Platt fitted on the same rows)."""
    a, b = platt(margins, y)
    return a * margins + b


def train_flat(
    path: str | Path, config: FlatConfig, mapping: TableMapping | None = None
) -> TrainResult:
    """`prepare` then `fit`: the whole flat mode without MLflow (for benchmarks and tests)."""
    return fit(prepare(path, config, mapping), config)
