"""Hold-out metrics (weighted, for the bootstrap), the routing thresholds policy, and route
statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadready.features.evaluation import CALIBRATION_BINS, calibration_table
from leadready.features.routing import ROUTES, Thresholds, assign_routes

MIN_SALES_ROWS = 30
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


def choose_thresholds(
    readiness: np.ndarray,
    potential: np.ndarray,
    ready: np.ndarray,
    won: np.ndarray,
    sales_precision: float,
    max_disqualified_wins: float,
) -> Thresholds:
    """The documented policy, applied to validation rows.

    Sales: the lowest readiness threshold at which at least `sales_precision` of the rows at or
    above it are won within the horizon (over at least MIN_SALES_ROWS rows; 1.0 when no cut
    reaches it, so only hand-raises go to sales). Disqualify: the highest potential threshold
    below which at most `max_disqualified_wins` of the eventually won rows fall.
    """
    order = np.argsort(-readiness, kind="stable")
    hits = np.cumsum(ready[order])
    sizes = np.arange(1, len(order) + 1)
    ok = (hits / sizes >= sales_precision) & (sizes >= MIN_SALES_ROWS)
    sales = float(readiness[order][np.flatnonzero(ok)[-1]]) if ok.any() else 1.0
    won_scores = potential[won == 1]
    disqualify = (
        float(np.quantile(won_scores, max_disqualified_wins, method="lower"))
        if len(won_scores)
        else 0.0
    )
    return Thresholds(sales=sales, disqualify=disqualify)


def route_statistics(
    readiness: np.ndarray,
    potential: np.ndarray,
    hand_raise: np.ndarray,
    ready: np.ndarray,
    won: np.ndarray,
    thresholds: Thresholds,
) -> dict[str, dict[str, float]]:
    """Per route: share of rows, win rate within the horizon, eventual win rate."""
    routes = assign_routes(readiness, potential, hand_raise, thresholds)
    stats = {}
    for route in ROUTES:
        mask = routes == route.value
        n = int(mask.sum())
        stats[route.value] = {
            "share": n / len(routes),
            "win_rate": float(ready[mask].mean()) if n else float("nan"),
            "eventual_win_rate": float(won[mask].mean()) if n else float("nan"),
            "rows": n,
        }
    return stats
