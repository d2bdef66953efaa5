"""Evaluation plots logged with each run: ROC, calibration, cumulative gains, global drivers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from leadready.features.evaluation import CALIBRATION_BINS, calibration_table, gains_table  # noqa: E402


def _roc(y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    title = "ROC, test set"
    if 0 < y.sum() < len(y):
        for name, p in scores.items():
            fpr, tpr, _ = roc_curve(y, p)
            ax.plot(fpr, tpr, label=name)
        ax.legend()
    else:  # a hold-out with one outcome only (a cold start's few leads) has no ROC curve
        title += " (one outcome only: no curve)"
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title)
    return fig


def _calibration(y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in scores.items():
        table = calibration_table(y, p, CALIBRATION_BINS)
        ax.plot(table.predicted, table.observed, "o-", label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(
        xlabel="Predicted readiness",
        ylabel="Observed win rate within horizon",
        title=f"Calibration ({CALIBRATION_BINS} equal-frequency bins)",
    )
    ax.legend()
    return fig


def _gains(y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    if y.sum():  # a hold-out without wins (cold start) has no gains curve
        for name, p in scores.items():
            gains = gains_table(y, p)
            ax.plot(gains.share, gains.captured, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="random")
    ax.set(
        xlabel="Share of leads contacted (highest score first)",
        ylabel="Share of wins captured",
        title="Cumulative gains, test set",
    )
    ax.legend()
    return fig


def _drivers(drivers: dict[str, float], labels: dict[str, str], top: int = 15) -> Figure:
    names = list(drivers)[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh([labels.get(n, n) for n in names], [drivers[n] for n in names])
    ax.set(xlabel="Mean |contribution| to readiness (log-odds)", title="Global drivers")
    fig.tight_layout()
    return fig


def evaluation_figures(
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    drivers: dict[str, float],
    labels: dict[str, str],
) -> dict[str, Figure]:
    """File name -> figure; `scores` maps a model name to its test-set probabilities."""
    return {
        "plots/roc.png": _roc(y, scores),
        "plots/calibration.png": _calibration(y, scores),
        "plots/cumulative_gains.png": _gains(y, scores),
        "plots/feature_importance.png": _drivers(drivers, labels),
    }
