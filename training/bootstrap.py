"""95% bootstrap intervals of hold-out metrics, and the paired test of an AUC difference.

Snapshots of one lead are not independent, so the bootstrap resamples leads (clusters), not
rows: each replicate draws leads with replacement and weighs every row by how often its lead
was drawn. Rows are sorted by score once; each replicate's weighted metrics are then O(n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadready.training.evaluate import METRICS, rank, weighted_metrics, weighted_roc_auc

N_BOOT = 500


def _lead_weights(groups: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_rows) row weights: how often each row's lead was drawn."""
    _, index = np.unique(groups, return_inverse=True)
    n_leads = index.max() + 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_leads, size=(n_boot, n_leads))
    counts = np.stack([np.bincount(d, minlength=n_leads) for d in draws])
    return counts[:, index].astype(np.float64)


def bootstrap_intervals(
    y: np.ndarray,
    p: np.ndarray,
    groups: np.ndarray,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """metric -> (value on the hold-out, 2.5th percentile, 97.5th percentile): the one source of
    every hold-out metric training reports (summary, MLflow metrics, model metadata, report)."""
    ranked = rank(y, p)
    point = weighted_metrics(ranked)
    y = ranked.y
    replicates = [
        weighted_metrics(ranked, w)
        for w in _lead_weights(groups[ranked.order], n_boot, seed)
        if 0 < (w * y).sum() < w.sum()
    ]
    out = {}
    for name in METRICS:
        values = np.array([r[name] for r in replicates])
        low, high = np.percentile(values, [2.5, 97.5])
        out[name] = (point[name], float(low), float(high))
    return out


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
            for w in _lead_weights(groups, n_boot, seed)
            if 0 < (w * y).sum() < w.sum()
        ]
    )
    low, high = np.percentile(diffs, [2.5, 97.5])
    p_value = float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())))
    return PairedComparison(auc_a, auc_b, auc_b - auc_a, float(low), float(high), p_value)
