"""Calibration bins and cumulative gains of scores on a hold-out set: one definition for the
training report, its plots, the expected calibration error metric and the workspace's model page.

Pure functions of 0/1 labels and probabilities (optionally row weights, which the bootstrap uses:
how often each row was drawn). Bins are equal-frequency: rows sorted by score (stable, so tied
scores keep their row order) and cut into runs of about equal weight; with unit weights the cuts
are exactly those of `np.array_split`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CALIBRATION_BINS = 10
DECILES = 10


@dataclass(frozen=True)
class CalibrationTable:
    """Per non-empty bin, lowest scores first: mean predicted probability, observed positive
    rate and rows (the sum of the weights)."""

    predicted: np.ndarray
    observed: np.ndarray
    rows: np.ndarray

    @property
    def error(self) -> float:
        """Expected calibration error: mean |predicted - observed| over bins, row-weighted (in
        probability units)."""
        return float((self.rows * np.abs(self.predicted - self.observed)).sum() / self.rows.sum())


@dataclass(frozen=True)
class GainsTable:
    """Rows contacted highest score first: `share[i]` of the leads (i rows, from 0 to all)
    captures `captured[i]` of the wins; `lift[k]` is the win rate of score decile k + 1 (1 =
    highest 10%) over the overall win rate."""

    share: np.ndarray
    captured: np.ndarray
    lift: np.ndarray


def equal_frequency_bins(weights: np.ndarray, bins: int) -> np.ndarray:
    """The bin (0 to `bins` - 1) of each row, rows given in the order to cut: consecutive runs
    of about equal weight, a row going where its weight starts. With unit weights the runs are
    those of `np.array_split` (the first `n % bins` runs one row longer)."""
    total = weights.sum()
    size, extra = divmod(total, bins)
    k = np.arange(1, bins)
    starts = k * size + np.minimum(k, extra)
    before: np.ndarray = np.cumsum(weights) - weights
    return np.searchsorted(starts, before, side="right")


def calibration_table(
    y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS, weights: np.ndarray | None = None
) -> CalibrationTable:
    """Equal-frequency calibration bins of probabilities `p` against 0/1 labels `y`; empty bins
    (fewer rows than bins) are left out. Already sorted input costs O(n)."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    w = np.ones(len(p)) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    y, p, w = y[order], p[order], w[order]
    index = equal_frequency_bins(w, bins)
    rows = np.bincount(index, weights=w, minlength=bins)
    kept = rows > 0
    rows = rows[kept]
    predicted = np.bincount(index, weights=w * p, minlength=bins)[kept] / rows
    observed = np.bincount(index, weights=w * y, minlength=bins)[kept] / rows
    return CalibrationTable(predicted, observed, rows)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean |predicted - observed| over equal-frequency bins of the prediction, row-weighted."""
    return calibration_table(y, p, bins).error


def gains_table(y: np.ndarray, p: np.ndarray, deciles: int = DECILES) -> GainsTable:
    """Cumulative gains (n + 1 points, from no rows to all) and decile lifts of scores `p`
    against 0/1 labels `y`, ties in row order; needs at least one positive."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if not y.sum() > 0:
        raise ValueError("gains need at least one positive label")
    ranked = y[np.argsort(-p, kind="stable")]
    captured = np.r_[0.0, np.cumsum(ranked)] / ranked.sum()
    share = np.arange(len(y) + 1) / max(len(y), 1)
    index = equal_frequency_bins(np.ones(len(y)), deciles)
    rows = np.bincount(index, minlength=deciles)
    kept = rows > 0
    rates = np.bincount(index, weights=ranked, minlength=deciles)[kept] / rows[kept]
    return GainsTable(share, captured, rates / y.mean())
