"""95% bootstrap intervals of hold-out metrics, and the paired test of an AUC difference.

Snapshots of one lead are not independent, so the bootstrap resamples leads (clusters), not
rows: each replicate draws leads with replacement and weighs every row by how often its lead
was drawn. Rows are sorted by score once; each replicate's weighted metrics are then O(n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from leadready.training.evaluate import ECE_BINS

N_BOOT = 500
METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift")


def _weighted(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """Weighted metrics; `y`, `p`, `w` are sorted by descending `p`."""
    total, pos = w.sum(), (w * y).sum()
    neg = total - pos
    wp, wn = w * y, w * (1 - y)
    # Ties: a positive gets half credit for negatives with the same score.
    _, starts = np.unique(-p, return_index=True)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(p))))
    neg_by_group = np.bincount(group, weights=wn)
    pos_by_group = np.bincount(group, weights=wp)
    neg_above = np.cumsum(neg_by_group) - neg_by_group
    auc = float(((neg - neg_above - neg_by_group / 2) * pos_by_group).sum() / (pos * neg))
    hits, seen = np.cumsum(pos_by_group), np.cumsum(pos_by_group + neg_by_group)
    precision = np.divide(hits, seen, out=np.zeros_like(hits), where=seen > 0)
    pr_auc = float((pos_by_group * precision).sum() / pos)
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    brier = float((w * (p - y) ** 2).sum() / total)
    log_loss = float(-(w * (y * np.log(clipped) + (1 - y) * np.log(1 - clipped))).sum() / total)
    mass = np.cumsum(w) / total
    # Equal-frequency bins of the (weighted) sample, from the lowest score up.
    bins = np.minimum((ECE_BINS * (1 - mass + w / total)).astype(np.int64), ECE_BINS - 1)
    bin_w = np.bincount(bins, weights=w, minlength=ECE_BINS)
    gap = np.abs(
        np.bincount(bins, weights=w * p, minlength=ECE_BINS)
        - np.bincount(bins, weights=wp, minlength=ECE_BINS)
    )
    ece = float(gap.sum() / total) if bin_w.any() else float("nan")
    top = mass <= 0.1 + 1e-12
    top_rate = wp[top].sum() / max(w[top].sum(), 1e-12)
    return {
        "roc_auc": auc,
        "pr_auc": pr_auc,
        "brier": brier,
        "log_loss": log_loss,
        "ece": ece,
        "top_decile_lift": float(top_rate / (pos / total)),
    }


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
    """metric -> (value on the hold-out, 2.5th percentile, 97.5th percentile)."""
    order = np.argsort(-p, kind="stable")
    y, p, groups = y[order].astype(np.float64), p[order], groups[order]
    point = _weighted(y, p, np.ones(len(y)))
    replicates = [
        _weighted(y, p, w)
        for w in _lead_weights(groups, n_boot, seed)
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
    order_a, order_b = np.argsort(-p_a, kind="stable"), np.argsort(-p_b, kind="stable")

    def auc(order: np.ndarray, w: np.ndarray) -> float:
        return _weighted(y[order], p_a[order] if order is order_a else p_b[order], w[order])[
            "roc_auc"
        ]

    ones = np.ones(len(y))
    auc_a, auc_b = auc(order_a, ones), auc(order_b, ones)
    diffs = np.array(
        [
            auc(order_b, w) - auc(order_a, w)
            for w in _lead_weights(groups, n_boot, seed)
            if 0 < (w * y).sum() < w.sum()
        ]
    )
    low, high = np.percentile(diffs, [2.5, 97.5])
    p_value = float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())))
    return PairedComparison(auc_a, auc_b, auc_b - auc_a, float(low), float(high), p_value)
