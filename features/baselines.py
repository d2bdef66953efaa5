"""The two reference scores that are not machine learning, as margin models.

They are the baselines every model is compared with, and the cold-start model when there is
too little history to learn from. Like the ML models, their contributions are exact: each
input feature's share of the score, on the scale the Platt calibration turns into log-odds.

The BANT points scorecard (what teams do by hand; docs/training.md lists the points):
- budget: confirmed 20, indicated 10, none -10, unknown 0
- authority: decision_maker 20, influencer 10, user 0, unknown 0
- need: confirmed 20, indicated 10, none -10, unknown 0
- timeframe: lt_1m 20, 1_3m 15, 3_6m 5, 6_12m 0, gt_12m -10, unknown 0
- engagement: 2 per activity in the last 30 days (at most 20), 10 per buying signal (pricing-page
  view, webinar, demo or contact request) in the last 30 days (at most 30, shared among the
  signal types in proportion), and 1 per touch in the last 30 days (at most 10).

The frequency score (naive-Bayes style, as CRM suites compute "predictive lead scoring"): for
each field's value, log of the smoothed share of won leads with that value over the share of
lost leads with it, summed with the prior log-odds. Numeric fields are cut into quantile bins.
"""

from __future__ import annotations

import numpy as np

from leadready.features.model import FeatureEncoder

POINTS = {
    "budget": {"confirmed": 20, "indicated": 10, "none": -10},
    "authority": {"decision_maker": 20, "influencer": 10},
    "need": {"confirmed": 20, "indicated": 10, "none": -10},
    "timeframe": {"lt_1m": 20, "1_3m": 15, "3_6m": 5, "gt_12m": -10},
}
SIGNALS_30D = ("pricing_page_view", "webinar_attended", "demo_request", "contact_request")


class ScorecardMargin:
    """The BANT points scorecard on encoded feature rows; margin = points."""

    def __init__(self, encoder: FeatureEncoder) -> None:
        position = {name: j for j, name in enumerate(encoder.features_)}
        self.n_features = len(position)
        # Points per category code; the extra last slot is for missing (NaN) codes.
        self.tables = {
            position[field]: np.array(
                [
                    points.get(value, 0)
                    for value, _ in sorted(
                        encoder.vocabulary_[field].items(), key=lambda item: item[1]
                    )
                ]
                + [0],
                dtype=np.float64,
            )
            for field, points in POINTS.items()
        }
        self.activities = position["activities_30d"]
        self.signals = [position[f"activity_{s}_30d"] for s in SIGNALS_30D]
        self.touches = position["touches_30d"]

    def contributions(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        out = np.zeros((len(x), self.n_features + 1))
        for j, table in self.tables.items():
            codes = np.where(np.isnan(x[:, j]), len(table) - 1, x[:, j]).astype(np.int64)
            out[:, j] = table[codes]
        out[:, self.activities] = np.minimum(2 * np.nan_to_num(x[:, self.activities]), 20)
        signals = np.nan_to_num(x[:, self.signals])
        total = signals.sum(axis=1)
        capped = np.minimum(10 * total, 30)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total[:, None] > 0, signals / total[:, None], 0.0)
        out[:, self.signals] = share * capped[:, None]
        out[:, self.touches] = np.minimum(np.nan_to_num(x[:, self.touches]), 10)
        return out

    def margin(self, x: np.ndarray) -> np.ndarray:
        margin: np.ndarray = self.contributions(x).sum(axis=1)
        return margin


class FrequencyMargin:
    """Naive-Bayes-style frequency score; margin = prior + sum of per-field log ratios."""

    def __init__(self, n_categorical: int, bins: int = 5, smoothing: float = 1.0) -> None:
        self.n_categorical = n_categorical
        self.bins = bins
        self.smoothing = smoothing

    def _buckets(self, x: np.ndarray) -> np.ndarray:
        """Per cell, the index of its value's bucket; missing values get the last bucket."""
        buckets = np.empty(x.shape, dtype=np.int64)
        for j in range(x.shape[1]):
            column = x[:, j]
            if j < self.n_categorical:
                index = np.where(np.isnan(column), -1, column)
            else:
                index = np.where(
                    np.isnan(column), -1, np.searchsorted(self.edges_[j], column, side="right")
                )
            size = self.sizes_[j]
            buckets[:, j] = np.where((index < 0) | (index >= size - 1), size - 1, index)
        return buckets

    def fit(self, x: np.ndarray, y: np.ndarray) -> FrequencyMargin:
        self.edges_: dict[int, np.ndarray] = {}
        self.sizes_: list[int] = []
        for j in range(x.shape[1]):
            column = x[:, j][~np.isnan(x[:, j])]
            if j < self.n_categorical:
                self.sizes_.append(int(column.max()) + 2 if len(column) else 1)
            else:
                quantiles = np.linspace(0, 1, self.bins + 1)[1:-1]
                edges = np.unique(np.quantile(column, quantiles)) if len(column) else np.array([])
                self.edges_[j] = edges
                self.sizes_.append(len(edges) + 2)
        buckets = self._buckets(x)
        won, lost = y == 1, y == 0
        a = self.smoothing
        self.tables_ = []
        for j, size in enumerate(self.sizes_):
            w = np.bincount(buckets[won, j], minlength=size)
            n = np.bincount(buckets[lost, j], minlength=size)
            self.tables_.append(
                np.log((w + a) / (won.sum() + a * size)) - np.log((n + a) / (lost.sum() + a * size))
            )
        self.prior_ = float(np.log(won.sum() / max(lost.sum(), 1)))
        return self

    def contributions(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        buckets = self._buckets(x)
        out = np.empty((len(x), x.shape[1] + 1))
        for j, table in enumerate(self.tables_):
            out[:, j] = table[buckets[:, j]]
        out[:, -1] = self.prior_
        return out

    def margin(self, x: np.ndarray) -> np.ndarray:
        margin: np.ndarray = self.contributions(x).sum(axis=1)
        return margin
