"""Hold-out metrics, the routing thresholds policy, and route statistics."""

from __future__ import annotations

import numpy as np
from leadready.features.routing import ROUTES, Thresholds, assign_routes
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

ECE_BINS = 10
MIN_SALES_ROWS = 30


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |predicted - observed| over equal-frequency bins of the prediction, row-weighted."""
    order = np.argsort(p, kind="stable")
    return float(
        sum(
            len(chunk) * abs(p[chunk].mean() - y[chunk].mean())
            for chunk in np.array_split(order, bins)
            if len(chunk)
        )
        / len(p)
    )


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    """Win rate of the 10% highest-scored rows over the overall win rate."""
    top = np.argsort(-p, kind="stable")[: max(1, len(p) // 10)]
    return float(y[top].mean() / y.mean())


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, clipped)),
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "top_decile_lift": top_decile_lift(y, p),
        "ece": expected_calibration_error(y, p),
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
