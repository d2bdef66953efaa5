"""Bootstrap intervals and the promotion rule, on seeded cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from leadready.features.evaluation import bootstrap_intervals, expected_calibration_error
from leadready.training.bootstrap import paired_auc_test
from leadready.training.compare import promotion_decision

pytestmark = pytest.mark.unit


def seeded(n: int = 4000, leads: int = 800, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)
    return y, p, rng.integers(0, leads, n)


def test_point_estimates_equal_the_plain_metrics():
    y, p, groups = seeded()
    intervals = bootstrap_intervals(y, p, groups, n_boot=50)
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    top = np.argsort(-p, kind="stable")[: len(p) // 10]
    plain = {
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "brier": brier_score_loss(y, p),
        "log_loss": log_loss(y, clipped),
        "top_decile_lift": y[top].mean() / y.mean(),
        "ece": expected_calibration_error(y, p),
    }
    for metric in ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift"):
        assert intervals[metric][0] == pytest.approx(plain[metric], rel=1e-9), metric
    assert intervals["ece"][0] == pytest.approx(plain["ece"], abs=2e-3)


def test_intervals_contain_the_estimate_and_shrink_with_more_leads():
    y, p, groups = seeded()
    value, low, high = bootstrap_intervals(y, p, groups, seed=1)["roc_auc"]
    assert low < value < high
    # Calibrated scores drawn from p: the true AUC of this process is about 0.83.
    assert low < 0.834 < high
    y2, p2, groups2 = seeded(n=40_000, leads=8000)
    _, low2, high2 = bootstrap_intervals(y2, p2, groups2, seed=1)["roc_auc"]
    assert high2 - low2 < (high - low) / 2


def test_a_perfect_ranking_has_a_degenerate_auc_interval():
    y = np.array([0, 0, 0, 1, 1, 1] * 50)
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9] * 50)
    groups = np.arange(len(y)) // 3
    assert bootstrap_intervals(y, p, groups, n_boot=100)["roc_auc"] == (1.0, 1.0, 1.0)


def test_resampling_is_by_lead_so_duplicated_rows_do_not_narrow_the_interval():
    y, p, groups = seeded(n=2000, leads=2000)
    _, low, high = bootstrap_intervals(y, p, groups, seed=2)["roc_auc"]
    # The same rows, each copied five times under the same lead: no new information.
    _, low5, high5 = bootstrap_intervals(
        np.repeat(y, 5), np.repeat(p, 5), np.repeat(groups, 5), seed=2
    )["roc_auc"]
    assert high5 - low5 == pytest.approx(high - low, rel=0.25)


def test_paired_test_finds_a_real_difference_and_not_a_fake_one():
    y, p, groups = seeded(seed=3)
    noise = np.random.default_rng(4).normal(0, 0.35, len(p))
    worse = np.clip(p + noise, 0, 1)
    real = paired_auc_test(y, worse, p, groups)
    assert real.difference > 0 and real.p_value < 0.01 and real.ci_low > 0
    same = paired_auc_test(y, p, p + 1e-9 * np.random.default_rng(5).random(len(p)), groups)
    assert same.p_value > 0.05 and same.ci_low <= 0 <= same.ci_high


@pytest.mark.parametrize(
    "comparison,promote",
    [
        ({"difference": 0.02, "p_value": 0.01, "a_ece": 0.01, "b_ece": 0.05}, True),
        ({"difference": -0.02, "p_value": 0.01, "a_ece": 0.05, "b_ece": 0.01}, False),
        ({"difference": 0.001, "p_value": 0.40, "a_ece": 0.03, "b_ece": 0.02}, True),
        ({"difference": 0.001, "p_value": 0.40, "a_ece": 0.02, "b_ece": 0.03}, False),
        ({"difference": -0.001, "p_value": 0.60, "a_ece": 0.03, "b_ece": 0.02}, True),
    ],
)
def test_the_promotion_rule_both_ways(comparison, promote):
    assert promotion_decision(comparison) is promote
