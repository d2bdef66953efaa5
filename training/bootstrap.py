"""The paired bootstrap test of an AUC difference, resampling leads as
`features.evaluation.bootstrap_intervals` does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadready.features.evaluation import N_BOOT, lead_weights, rank, weighted_roc_auc


@dataclass(frozen=True)
class PairedComparison:
    auc_a: float
    auc_b: float
    difference: float  # b - a
    ci_low: float
    ci_high: float
    p_value: float  # two-sided, H0: no difference


def paired_auc_test(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    groups: np.ndarray,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> PairedComparison:
    """Bootstrap the AUC difference of two models scored on the same rows, resampling leads
    once per replicate for both, so the comparison is paired."""
    y = y.astype(np.float64)
    a, b = rank(y, p_a), rank(y, p_b)
    ones = np.ones(len(y))
    auc_a, auc_b = weighted_roc_auc(a, ones), weighted_roc_auc(b, ones)
    diffs = np.array(
        [
            weighted_roc_auc(b, w[b.order]) - weighted_roc_auc(a, w[a.order])
            for w in lead_weights(groups, n_boot, seed)
            if 0 < (w * y).sum() < w.sum()
        ]
    )
    low, high = np.percentile(diffs, [2.5, 97.5])
    p_value = float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())))
    return PairedComparison(auc_a, auc_b, auc_b - auc_a, float(low), float(high), p_value)
