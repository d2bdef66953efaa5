"""The exploration slice against selection bias, in a synthetic world whose true win rate is
known: P(won | called, x) = 3% + 60% * sigmoid(2.5 (x - 1.8)), x ~ N(0, 1). The policy calls the
top 10% (sales); only a called lead can win. A model retrained on what the policy saw cannot
know the nurture leads' win rate: trained on every lead (the ones never called count as not
won, as in a CRM export) it learns that nurture leads never win; trained on the called leads
alone it guesses, by extrapolation. With a 2% exploration slice (`features.routing.
Exploration`) and each called lead weighted by 1 / its propensity, the same model recovers
the true calibration; and the slice's win rate by readiness band (what `leadready monitor`
shows) is the true one.

`.venv/bin/python -m pytest -q -s tests/test_exploration.py` prints the figures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import SplineTransformer

from leadready.features.evaluation import calibration_table
from leadready.features.routing import Exploration

pytestmark = pytest.mark.unit

LEADS = 200_000
SALES_SHARE = 0.1
EXPLORE_SHARE = 0.02


def true_win_rate(x: np.ndarray) -> np.ndarray:
    return 0.03 + 0.6 / (1 + np.exp(-2.5 * (x - 1.8)))


def retrain(x: np.ndarray, won: np.ndarray, weights: np.ndarray) -> Pipeline:
    """The retrained model: a logistic regression on cubic splines of x, with sample weights."""
    model = make_pipeline(
        SplineTransformer(n_knots=6, degree=3, extrapolation="linear"),
        LogisticRegression(C=100, max_iter=2000),
    )
    return model.fit(x.reshape(-1, 1), won, logisticregression__sample_weight=weights)


def predicted(model: Pipeline, x: np.ndarray) -> np.ndarray:
    return model.predict_proba(x.reshape(-1, 1))[:, 1]


def test_with_the_slice_a_retrained_model_recovers_the_true_calibration_and_without_it_not():
    rng = np.random.default_rng(0)
    x = rng.normal(size=LEADS)
    truth = true_win_rate(x)
    routes = np.where(truth >= np.quantile(truth, 1 - SALES_SHARE), "sales", "nurture")
    ids = [f"sim-{i}" for i in range(LEADS)]
    explored, propensity = Exploration(EXPLORE_SHARE).choose(ids, routes.astype(object))
    policy = routes == "sales"
    called = policy | explored
    won = (rng.random(LEADS) < truth) & called
    fits = {
        "slice, weighted 1/propensity": retrain(x[called], won[called], 1 / propensity[called]),
        "no slice, every lead (never called = not won)": retrain(x, won, np.ones(LEADS)),
        "no slice, the called leads only": retrain(x[policy], won[policy], np.ones(policy.sum())),
    }
    fresh = rng.normal(size=100_000)  # new leads, scored by each retrained model
    truth_fresh = true_win_rate(fresh)
    nurture = truth_fresh < np.quantile(truth_fresh, 1 - SALES_SHARE)
    errors = {}
    print(f"\n{explored.sum():,} explored of {(~policy).sum():,} nurture leads")
    for name, model in fits.items():
        p = predicted(model, fresh)
        # Calibration against the truth: per band of the prediction, |mean prediction - mean
        # true win rate|, averaged over bands (the expected calibration error).
        everywhere = calibration_table(truth_fresh, p)
        below = calibration_table(truth_fresh[nurture], p[nurture])
        errors[name] = everywhere.error
        print(
            f"{name}: ECE against the truth {everywhere.error:.4f} (nurture leads "
            f"{below.error:.4f}); nurture leads' mean prediction {p[nurture].mean():.4f}, true "
            f"{truth_fresh[nurture].mean():.4f}"
        )
    slice_error, *without = errors.values()
    assert slice_error < 0.01
    assert min(without) > max(0.01, 2 * slice_error)

    # The monitor's view: the slice's win rate by band of the readiness the biased model
    # gives, weighted by 1 / propensity, next to the truth of the same leads.
    readiness = predicted(fits["no slice, every lead (never called = not won)"], x[explored])
    weights = 1 / propensity[explored]
    seen = calibration_table(won[explored].astype(float), readiness, 5, weights)
    true = calibration_table(truth[explored], readiness, 5, weights)
    leads = seen.rows * EXPLORE_SHARE
    for band in range(len(seen.rows)):
        print(
            f"band {band + 1}: readiness {seen.predicted[band]:.4f}, slice win rate "
            f"{seen.observed[band]:.4f}, true {true.observed[band]:.4f} ({leads[band]:.0f} leads)"
        )
    spread = 4 * np.sqrt(true.observed * (1 - true.observed) / leads)
    assert np.all(np.abs(seen.observed - true.observed) < spread)
    assert np.all(seen.predicted < true.observed / 2)  # what the slice corrects
