"""Candidate selection: time-ordered folds and a hyperparameter search that starts from the
defaults."""

from __future__ import annotations

import numpy as np
import pytest

from leadready.training.fit import (
    LGBM_PARAMS,
    SEARCHED,
    fit_candidates,
    search_lightgbm,
    time_folds,
)


def synthetic(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, 4, n).astype(float), rng.normal(size=(n, 5))])
    logit = 0.8 * (x[:, 0] == 2) + x[:, 1] - 0.5 * x[:, 2] ** 2
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x, y, rng.integers(0, 10_000, n)


@pytest.mark.unit
def test_folds_train_on_older_leads_and_validate_on_newer_ones():
    created = np.random.default_rng(1).integers(0, 1000, 5000)
    folds = time_folds(created, n_folds=3)
    assert len(folds) == 3
    for k, (train, valid) in enumerate(folds):
        assert created[train].max() <= created[valid].min()
        assert valid.sum() > 0.15 * len(created)
        if k:
            assert train.sum() > folds[k - 1][0].sum()  # expanding window


@pytest.mark.model
def test_search_starts_from_the_defaults_and_does_not_do_worse():
    x, y, created = synthetic()
    folds = time_folds(created)
    # bench/search_budget.py measures how long the search takes against its budget.
    params, cv_auc = search_lightgbm(x, y, folds, 1, seed=0, threads=1, seconds=3)
    assert 0.6 < cv_auc <= 1
    assert 3 <= params["num_leaves"] <= 15 and set(SEARCHED) <= set(params)
    defaults, default_auc = search_lightgbm(x, y, folds, 1, seed=0, threads=1, seconds=0)
    assert {k: defaults[k] for k in SEARCHED} == {k: LGBM_PARAMS[k] for k in SEARCHED}
    assert cv_auc >= default_auc


@pytest.mark.model
def test_the_chosen_candidate_is_explainable_and_the_best_by_cv():
    x, y, created = synthetic(seed=2)
    fit = created < 8000
    selection = fit_candidates(
        x[fit], y[fit], created[fit], x[~fit], y[~fit], [4], seed=0, threads=1, search_seconds=0
    )
    candidates = selection.candidates
    assert selection.notes == []
    assert {c.name for c in candidates} == {
        "logistic_regression",
        "lightgbm",
        "hist_gradient_boosting",
    }
    explainable = [c for c in candidates if c.explainable]
    assert candidates[0] is max(explainable, key=lambda c: c.cv_auc)
    hgb = next(c for c in candidates if c.name == "hist_gradient_boosting")
    # Comparison only: scored on the validation slice, not cross-validated.
    assert hgb.model is None and np.isnan(hgb.cv_auc) and 0.5 < hgb.validation_auc < 1


@pytest.mark.model
def test_sparse_inputs_skip_folds_with_a_note_and_every_candidate_still_fits():
    """No win among the oldest leads, a column missing in every row, a categorical of more
    codes than HistGradientBoosting takes as categories: every candidate fits, the folds
    without both outcomes are skipped and named, and the rest rank as usual."""
    rng = np.random.default_rng(3)
    n = 1200
    created = np.arange(n)
    wide = rng.integers(0, 300, n).astype(float)
    x = np.column_stack([wide, rng.normal(size=n), np.full(n, np.nan)])
    y = ((rng.random(n) < 1 / (1 + np.exp(-2 * x[:, 1]))) & (created > 500)).astype(int)
    fit = created < 1000
    selection = fit_candidates(
        x[fit], y[fit], created[fit], x[~fit], y[~fit], [300], seed=0, threads=1, search_seconds=0
    )
    # Four chunks of 250 leads; wins from lead 501: the first two training windows and the
    # first validation window have none.
    assert selection.notes == [
        "cross-validation folds 1, 2 of 3 skipped "
        "(a training window with no wins or a validation window with no wins)"
    ]
    assert [c.explainable for c in selection.candidates] == [True, True, False]
    assert all(0.5 < c.validation_auc <= 1 for c in selection.candidates)

    late = created > 800  # no fold left: ranked by validation AUC
    y_late = (y.astype(bool) & late).astype(int)
    ranked = fit_candidates(
        x[fit], y_late[fit], created[fit], x[~fit], y_late[~fit], [300], 0, 1, 0
    )
    assert ranked.notes[0].endswith("; candidates ranked by validation AUC instead")
    first, second = ranked.candidates[:2]
    assert first.validation_auc >= second.validation_auc
