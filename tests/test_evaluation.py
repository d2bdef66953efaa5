"""The hold-out metrics and the calibration and gains tables, against scikit-learn and
np.array_split on seeded data, with and without tied scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from leadready.features.evaluation import (
    bootstrap_intervals,
    calibration_table,
    equal_frequency_bins,
    expected_calibration_error,
    gains_table,
    rank,
    weighted_metrics,
)

pytestmark = pytest.mark.unit


def scores(kind: str, n: int = 3001, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    if kind == "ties":  # a points scorecard: 7 distinct scores, including 0 and 1
        p = np.round(p * 6) / 6
    y = (rng.random(n) < np.clip(p, 0.05, 0.95)).astype(int)
    return y, p


@pytest.mark.parametrize("kind", ["random", "ties"])
def test_weighted_metrics_with_unit_weights_equal_scikit_learn(kind):
    y, p = scores(kind)
    got = weighted_metrics(rank(y, p))
    expected = {
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "brier": brier_score_loss(y, p),
        "log_loss": log_loss(y, np.clip(p, 1e-6, 1 - 1e-6)),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9, rel=0), name


def test_integer_weights_equal_repeated_rows():
    y, p = scores("ties", n=500, seed=1)
    w = np.random.default_rng(2).integers(0, 4, len(y)).astype(float)
    ranked = rank(y, p)
    weighted = weighted_metrics(ranked, w[ranked.order])
    rows = np.repeat(np.arange(len(y)), w.astype(int))
    repeated = weighted_metrics(rank(y[rows], p[rows]))
    for name in ("roc_auc", "pr_auc", "brier", "log_loss"):
        assert weighted[name] == pytest.approx(repeated[name], abs=1e-9), name


@pytest.mark.parametrize("n", [3, 10, 1000, 1005])
def test_unit_weight_bins_are_those_of_array_split(n):
    index = equal_frequency_bins(np.ones(n), 10)
    expected = np.concatenate(
        [np.full(len(c), k) for k, c in enumerate(np.array_split(range(n), 10))]
    )
    assert np.array_equal(index, expected)


@pytest.mark.parametrize("kind", ["random", "ties"])
def test_calibration_table_and_ece(kind):
    y, p = scores(kind)
    table = calibration_table(y, p)
    chunks = np.array_split(np.argsort(p, kind="stable"), 10)
    assert table.predicted == pytest.approx([p[c].mean() for c in chunks], abs=1e-12)
    assert table.observed == pytest.approx([y[c].mean() for c in chunks], abs=1e-12)
    assert table.rows.tolist() == [len(c) for c in chunks]
    ece = sum(len(c) * abs(p[c].mean() - y[c].mean()) for c in chunks) / len(p)
    assert expected_calibration_error(y, p) == pytest.approx(ece, abs=1e-12)
    assert weighted_metrics(rank(y, p))["ece"] == pytest.approx(ece, abs=1e-12)
    assert bootstrap_intervals(y, p, np.arange(len(y)), n_boot=20)["ece"][0] == pytest.approx(
        ece, abs=1e-12
    )


def test_a_calibration_table_of_few_rows_has_no_empty_bins():
    table = calibration_table(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.5]))
    assert table.predicted.tolist() == [0.2, 0.5, 0.9]
    assert table.observed.tolist() == [0.0, 1.0, 1.0]
    assert table.rows.tolist() == [1, 1, 1]


def test_gains_table():
    y, p = scores("random", n=1005)
    gains = gains_table(y, p)
    order = np.argsort(-p, kind="stable")
    assert gains.share[0] == 0 and gains.captured[0] == 0 and gains.captured[-1] == 1
    assert gains.captured[100] == pytest.approx(y[order[:100]].sum() / y.sum())
    assert gains.share[100] == pytest.approx(100 / 1005)
    lift = [y[c].mean() / y.mean() for c in np.array_split(order, 10)]
    assert gains.lift == pytest.approx(lift)
    assert gains.lift[0] > 1.5 > 0.5 > gains.lift[-1]
    with pytest.raises(ValueError, match="positive"):
        gains_table(np.zeros(5), np.linspace(0, 1, 5))


def test_top_decile_lift_takes_at_least_one_row():
    y, p = np.array([1, 0, 0, 1]), np.array([0.9, 0.8, 0.1, 0.2])
    assert weighted_metrics(rank(y, p))["top_decile_lift"] == pytest.approx(2.0)
