"""The one scoring step, from feature columns to readiness, potential, routes and exact
contributions: the API and batch scoring (`serving.engine`) and flat tables (`serving.flat`)
differ only in how they build the columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadready.features.model import LeadScorer
from leadready.features.routing import Thresholds, assign_routes


@dataclass(frozen=True)
class Prediction:
    """Model outputs for a set of leads, as parallel arrays."""

    columns: dict[str, np.ndarray]
    readiness: np.ndarray
    potential: np.ndarray
    routes: np.ndarray
    contributions: np.ndarray


def predict(
    scorer: LeadScorer,
    columns: dict[str, np.ndarray],
    hand_raise: np.ndarray,
    thresholds: Thresholds,
    threads: int = 1,
    explain: bool = True,
) -> Prediction:
    """Score feature columns; readiness is the logistic of the summed contributions. Without
    `explain`, readiness comes from the model's margin and `contributions` has no columns."""
    x = scorer.encode(columns)
    if explain:
        contributions = scorer.readiness.contributions(x, threads)
        readiness = 1.0 / (1.0 + np.exp(-contributions.sum(axis=1)))
    else:
        contributions = np.empty((len(x), 0))
        readiness = scorer.readiness.proba(x)
    potential = scorer.potential.proba(x)
    routes = assign_routes(readiness, potential, hand_raise, thresholds)
    return Prediction(columns, readiness, potential, routes, contributions)
