"""Metrics of scores against outcomes: calibration bins and cumulative gains (one definition for
the training report, its plots, the expected calibration error metric and the workspace's model
page), the hold-out metrics with row weights, and their 95% bootstrap intervals, which training
reports for its hold-out and `leadready monitor` for live scores.

Snapshots of one lead are not independent, so the bootstrap resamples leads (clusters), not
rows: each replicate draws leads with replacement and weighs every row by how often its lead
was drawn. Rows are sorted by score once; each replicate's weighted metrics are then O(n).

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


METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "top_decile_lift")
CLIP = 1e-6
"""Probabilities are clipped to [CLIP, 1 - CLIP] for the log loss, so one confident miss
cannot make it infinite."""


@dataclass(frozen=True)
class Ranked:
    """Hold-out labels and scores sorted once by descending score (ties in row order), so each
    weighted evaluation is O(n): the bootstrap evaluates hundreds of reweightings."""

    order: np.ndarray  # the row behind each sorted position
    y: np.ndarray
    p: np.ndarray
    group: np.ndarray  # tie group of each sorted position: equal scores, one group
    ascending: np.ndarray  # sorted positions by ascending score, ties in row order


def rank(y: np.ndarray, p: np.ndarray) -> Ranked:
    """`y` (0/1) and `p` (probabilities) of the hold-out rows, sorted for `weighted_metrics`."""
    order = np.argsort(-p, kind="stable")
    sorted_p = p[order]
    _, starts = np.unique(-sorted_p, return_index=True)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(p))))
    position = np.empty(len(p), dtype=np.int64)
    position[order] = np.arange(len(p))
    ascending = position[np.argsort(p, kind="stable")]
    return Ranked(order, y[order].astype(np.float64), sorted_p, group, ascending)


def _by_group(r: Ranked, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weight of positives and of negatives per tie group, highest score first."""
    return np.bincount(r.group, weights=w * r.y), np.bincount(r.group, weights=w * (1 - r.y))


def weighted_roc_auc(r: Ranked, w: np.ndarray) -> float:
    """ROC AUC with row weights `w` (in sorted order)."""
    return _auc(*_by_group(r, w))


def _auc(pos_by_group: np.ndarray, neg_by_group: np.ndarray) -> float:
    """A positive gets half credit for the negatives that share its score, as in
    scikit-learn's `roc_auc_score`."""
    neg = neg_by_group.sum()
    neg_above = np.cumsum(neg_by_group) - neg_by_group
    below = neg - neg_above - neg_by_group / 2
    return float((below * pos_by_group).sum() / (pos_by_group.sum() * neg))


def weighted_metrics(r: Ranked, w: np.ndarray | None = None) -> dict[str, float]:
    """The hold-out metrics with row weights `w` (in sorted order; None: every row once).

    ROC AUC, PR AUC (average precision over distinct scores), Brier score and log loss equal
    scikit-learn's with unit weights; ECE uses the calibration chart's bins; top-decile lift is
    the win rate of the highest-scored 10% of the weight (at least the first row) over the
    overall win rate."""
    w = np.ones(len(r.y)) if w is None else w
    total, pos = w.sum(), (w * r.y).sum()
    pos_by_group, neg_by_group = _by_group(r, w)
    hits, seen = np.cumsum(pos_by_group), np.cumsum(pos_by_group + neg_by_group)
    precision = np.divide(hits, seen, out=np.zeros_like(hits), where=seen > 0)
    clipped = np.clip(r.p, CLIP, 1 - CLIP)
    log_loss = -(w * (r.y * np.log(clipped) + (1 - r.y) * np.log(1 - clipped))).sum() / total
    cumulative = np.cumsum(w)
    top = cumulative <= max(total / 10, w[0])
    top_rate = (w * r.y)[top].sum() / max(w[top].sum(), 1e-12)
    a = r.ascending
    return {
        "roc_auc": _auc(pos_by_group, neg_by_group),
        "pr_auc": float((pos_by_group * precision).sum() / pos),
        "brier": float((w * (r.p - r.y) ** 2).sum() / total),
        "log_loss": float(log_loss),
        "ece": calibration_table(r.y[a], r.p[a], CALIBRATION_BINS, w[a]).error,
        "top_decile_lift": float(top_rate / (pos / total)),
    }


N_BOOT = 500


def lead_weights(groups: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
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
        for w in lead_weights(groups[ranked.order], n_boot, seed)
        if 0 < (w * y).sum() < w.sum()
    ]
    out = {}
    for name in METRICS:
        values = np.array([r[name] for r in replicates])
        low, high = np.percentile(values, [2.5, 97.5])
        out[name] = (point[name], float(low), float(high))
    return out


Ci = tuple[float, float, float]
"""A metric's (value, low, high): the point value and its 95% bootstrap bounds."""


def worse_than(
    auc: Ci, ece: Ci, reference_auc: Ci, reference_ece: Ci, what: str, than: str
) -> list[str]:
    """Why `what`'s scores are worse than `than`'s beyond both intervals, if so: a ROC AUC whose
    upper bound is below the reference's lower bound, a calibration error whose lower bound is
    above the reference's upper bound."""
    out = []
    if auc[2] < reference_auc[1]:
        out.append(
            f"{what} ROC AUC {auc[0]:.3f} (at most {auc[2]:.3f}) is below {than} "
            f"{reference_auc[0]:.3f} (at least {reference_auc[1]:.3f})"
        )
    if ece[1] > reference_ece[2]:
        out.append(
            f"{what} calibration error {ece[0]:.3f} (at least {ece[1]:.3f}) is above {than} "
            f"{reference_ece[0]:.3f} (at most {reference_ece[2]:.3f})"
        )
    return out
