"""Fitting the candidate models, choosing one by time-aware cross-validation, calibrating it.

Candidates for each target: logistic regression (one-hot + scaling), LightGBM with a bounded
hyperparameter search (Optuna, within a wall-clock budget), and scikit-learn's
HistGradientBoosting. The explainable ones are scored by expanding-window cross-validation
over the fit slice, ordered by lead creation (train on older leads, validate on the next newer
ones); all on the validation slice. The best
*explainable* candidate (exact contributions: LightGBM's tree SHAP or the linear terms) is
refitted on the whole fit slice, with early stopping on the validation slice, and
Platt-scaled on the validation slice. HistGradientBoosting has no exact explanations, so it is
on the leaderboard for comparison only, by its validation AUC.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import optuna
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from leadready.features.model import Calibrated, LinearMargin, TreeMargin

LGBM_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_cat_to_onehot": 8,
    "deterministic": True,
    "force_col_wise": True,
    "verbose": -1,
}
# Small trees: exact contributions cost about 0.15 ms for one lead and 8,000 leads/s in batch
# (15 leaves cost 1 ms and 700 leads/s) for the same hold-out AUC on the sample CRM.
MAX_ROUNDS = 300
EARLY_STOPPING = 30
CV_FOLDS = 3
MAX_TRIALS = 40
SEARCHED = ("num_leaves", "min_data_in_leaf", "lambda_l2", "feature_fraction", "learning_rate")


@dataclass(frozen=True)
class Candidate:
    name: str
    model: Calibrated | None
    cv_auc: float
    validation_auc: float
    params: dict[str, object]

    @property
    def explainable(self) -> bool:
        return self.model is not None


def platt(margin: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Sigmoid calibration of a margin: (a, b) such that p = sigmoid(a * margin + b)."""
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def time_folds(created_at: np.ndarray, n_folds: int = CV_FOLDS) -> list[tuple[np.ndarray, ...]]:
    """Expanding-window folds by lead creation: fold k trains on the k+1 oldest chunks of
    leads and validates on the next chunk."""
    edges = np.quantile(created_at, np.linspace(0, 1, n_folds + 2))
    chunk = np.clip(np.searchsorted(edges[1:-1], created_at, side="right"), 0, n_folds)
    return [(chunk <= k, chunk == k + 1) for k in range(n_folds)]


def _lgbm(
    params: dict,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_categorical: int,
) -> lgb.Booster:
    categorical = list(range(n_categorical))
    train = lgb.Dataset(x, y, categorical_feature=categorical, free_raw_data=False)
    valid = lgb.Dataset(x_val, y_val, categorical_feature=categorical, reference=train)
    booster = lgb.train(
        params,
        train,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
    )
    booster.free_dataset()
    return booster


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def _cv(
    fit_fold: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, ...]],
) -> float:
    """Mean validation AUC over the time folds of a function (x, y, x_val, y_val) -> scores;
    NaN without folds (see `usable_folds`)."""
    if not folds:
        return float("nan")
    return float(np.nanmean([_auc(y[v], fit_fold(x[t], y[t], x[v], y[v])) for t, v in folds]))


def _two_classes(y: np.ndarray) -> bool:
    return bool(0 < y.sum() < len(y))


def usable_folds(
    folds: list[tuple[np.ndarray, ...]], y: np.ndarray
) -> tuple[list[tuple[np.ndarray, ...]], str | None]:
    """The folds whose training and validation windows both hold both outcomes (a model cannot
    learn, nor an AUC be measured, from one class), and a note saying which were left out and
    why, or None when none was."""
    kept: list[tuple[np.ndarray, ...]] = []
    skipped: list[str] = []
    why: set[str] = set()
    for k, (t, v) in enumerate(folds, start=1):
        lacking = [
            f"{part} window with {'no wins' if y[m].sum() == 0 else 'only wins'}"
            for part, m in (("a training", t), ("a validation", v))
            if not _two_classes(y[m])
        ]
        if lacking:
            skipped.append(str(k))
            why.update(lacking)
        else:
            kept.append((t, v))
    if not skipped:
        return kept, None
    note = (
        f"cross-validation fold{'s' if len(skipped) > 1 else ''} {', '.join(skipped)} of "
        f"{len(folds)} skipped ({' or '.join(sorted(why))})"
    )
    if not kept:
        note += "; candidates ranked by validation AUC instead"
    return kept, note


def search_lightgbm(
    x: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, ...]],
    n_categorical: int,
    seed: int,
    threads: int,
    seconds: float,
) -> tuple[dict, float]:
    """The best LightGBM parameters by time-fold CV AUC found within `seconds` (at most
    MAX_TRIALS trials; the defaults are always the first trial)."""
    base = {**LGBM_PARAMS, "seed": seed, "num_threads": threads}

    def cv(params: dict) -> float:
        def fold_scores(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
            scores = _lgbm(params, a, b, c, d, n_categorical).predict(c, raw_score=True)
            assert isinstance(scores, np.ndarray)  # raw scores of a dense matrix
            return scores

        return _cv(fold_scores, x, y, folds)

    def objective(trial: optuna.Trial) -> float:
        return cv(
            {
                **base,
                "num_leaves": trial.suggest_int("num_leaves", 3, 15),
                "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 500, log=True),
                "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
                "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
                "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.2, log=True),
            }
        )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: LGBM_PARAMS[k] for k in SEARCHED})
    started = time.perf_counter()
    # The defaults run whatever the budget: optuna checks its timeout before each trial, so on
    # a slow machine a budget of ~0 s would otherwise leave no trial at all.
    study.optimize(objective, n_trials=1)
    left = seconds - (time.perf_counter() - started)
    if left > 0:
        study.optimize(objective, n_trials=MAX_TRIALS - 1, timeout=left)
    return {**base, **study.best_params}, float(study.best_value)


@dataclass(frozen=True)
class Selection:
    """The candidates for one target, best explainable one first, and a plain note for each
    cross-validation fold left out (or for cross-validation skipped altogether)."""

    candidates: list[Candidate]
    notes: list[str]


def fit_candidates(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    created_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    vocab_sizes: list[int],
    seed: int,
    threads: int,
    search_seconds: float,
) -> Selection:
    """Every candidate for one target, best explainable one first: by time-fold CV AUC, or by
    validation AUC when no fold holds both outcomes in its training and validation windows.
    `y_fit` and `y_val` must each hold both outcomes."""
    folds, note = usable_folds(time_folds(created_fit), y_fit)
    n_cat = len(vocab_sizes)
    candidates = []

    def linear(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
        return LinearMargin(vocab_sizes).fit(a, b).margin(c)

    base = LinearMargin(vocab_sizes).fit(x_fit, y_fit)
    candidates.append(
        _finish(
            "logistic_regression",
            base,
            _cv(linear, x_fit, y_fit, folds),
            x_val,
            y_val,
            {"C": base.c},
        )
    )

    if folds:
        params, cv_auc = search_lightgbm(x_fit, y_fit, folds, n_cat, seed, threads, search_seconds)
    else:  # nothing to search on: the defaults
        params, cv_auc = {**LGBM_PARAMS, "seed": seed, "num_threads": threads}, float("nan")
    booster = _lgbm(params, x_fit, y_fit, x_val, y_val, n_cat)
    candidates.append(
        _finish(
            "lightgbm",
            TreeMargin(booster),
            cv_auc,
            x_val,
            y_val,
            {k: params[k] for k in SEARCHED} | {"trees": booster.num_trees()},
        )
    )

    # Comparison only, so on the validation slice only: its cross-validation took about a
    # fifth of a training run (issue 13) for a figure that chooses nothing.
    hgb_val = _auc(y_val, _histgb(x_fit, y_fit, x_val, n_cat, seed))
    candidates.append(
        Candidate("hist_gradient_boosting", None, float("nan"), hgb_val, {"explainable": False})
    )
    rank = (lambda c: c.cv_auc) if folds else (lambda c: c.validation_auc)
    return Selection(
        sorted(candidates, key=lambda c: (not c.explainable, -np.nan_to_num(rank(c), nan=-1.0))),
        [note] if note else [],
    )


HISTGB_MAX_CATEGORIES = 255
"""HistGradientBoosting takes categorical codes below 255 only: a wider vocabulary is given to
it as numbers (ordered codes)."""


def _histgb(
    x: np.ndarray, y: np.ndarray, x_eval: np.ndarray, n_categorical: int, seed: int
) -> np.ndarray:
    """HistGradientBoosting's decision function on `x_eval`, fitted on (x, y). Columns missing
    in every row of `x` are left out (it cannot bin them); without any column left, or with one
    class only, every row scores 0. Early stopping holds out a stratified tenth of the rows, so
    it is off while an outcome has fewer than 2 rows or the rows are fewer than 20."""
    kept = ~np.isnan(x).all(axis=0)
    if not kept.any() or not _two_classes(y):
        return np.zeros(len(x_eval))
    columns = np.arange(x.shape[1])
    too_wide = np.nanmax(np.where(np.isnan(x), 0, x), axis=0) >= HISTGB_MAX_CATEGORIES
    categorical = ((columns < n_categorical) & ~too_wide)[kept]
    # Codes are small non-negative ints or NaN, as HistGradientBoosting expects.
    model = HistGradientBoostingClassifier(
        categorical_features=categorical,
        random_state=seed,
        early_stopping=bool(min(y.sum(), len(y) - y.sum()) >= 2 and len(y) >= 20),
    ).fit(x[:, kept], y)
    scores: np.ndarray = model.decision_function(x_eval[:, kept])
    return scores


def _finish(
    name: str,
    base: TreeMargin | LinearMargin,
    cv_auc: float,
    x_val: np.ndarray,
    y_val: np.ndarray,
    params: dict[str, object],
) -> Candidate:
    margin = base.margin(x_val)
    return Candidate(
        name, Calibrated(base, *platt(margin, y_val)), cv_auc, _auc(y_val, margin), params
    )
