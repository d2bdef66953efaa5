"""The packaged model that MLflow stores: feature encoding, two calibrated classifiers, metadata.

It lives in `features/` because it is the artefact both sides unpickle: training assembles and
registers it, serving loads it from the registry, and serving never imports training. It takes
the feature columns of `features.build.build_features` (a dict of arrays or a DataFrame with
those columns), so `mlflow models serve` and `mlflow.pyfunc.load_model` can use it as is.

Scores are calibrated with Platt scaling on the model's margin, `logit = a * margin + b`, which
keeps explanations exact: every contribution is on the calibrated log-odds scale and the
contributions plus the base value add up to the logit of the returned probability.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from leadready.features.build import CATEGORICAL, NUMERIC
from leadready.features.metadata import ModelInfo

Columns = Mapping[str, Any] | pd.DataFrame


class FeatureEncoder(BaseEstimator):  # type: ignore[misc]  # scikit-learn has no type hints
    """Named feature columns to one float matrix: categoricals first, as integer codes learned
    in training, then numerics as they are.

    Values seen fewer than `min_count` times, or never, encode as NaN (missing), so a new
    industry in production is treated like an unknown one, never as an error.
    """

    def __init__(
        self,
        categorical: tuple[str, ...] = CATEGORICAL,
        numeric: tuple[str, ...] = NUMERIC,
        min_count: int = 20,
    ) -> None:
        self.categorical = categorical
        self.numeric = numeric
        self.min_count = min_count

    @property
    def features_(self) -> list[str]:
        """Column names in matrix order."""
        return [*self.categorical, *self.numeric]

    def fit(self, columns: Columns) -> FeatureEncoder:
        self.vocabulary_: dict[str, dict[str, int]] = {}
        for name in self.categorical:
            values, counts = np.unique(np.asarray(columns[name], dtype=str), return_counts=True)
            kept = values[counts >= self.min_count]
            self.vocabulary_[name] = {str(v): i for i, v in enumerate(kept)}
        return self

    def transform(self, columns: Columns) -> np.ndarray:
        n = len(columns[self.features_[0]])
        matrix = np.empty((n, len(self.features_)), dtype=np.float64)
        for j, name in enumerate(self.categorical):
            lookup = self.vocabulary_[name]
            matrix[:, j] = [lookup.get(v, np.nan) for v in columns[name]]
        offset = len(self.categorical)
        for j, name in enumerate(self.numeric):
            matrix[:, offset + j] = columns[name]
        return matrix

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(self.features_, dtype=object)


class TreeMargin:
    """A LightGBM booster: margins and native tree SHAP contributions (log-odds)."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def margin(self, x: np.ndarray) -> np.ndarray:
        margin: np.ndarray = self.booster.predict(x, raw_score=True, num_threads=1)
        return margin

    def contributions(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        """(n, n_features + 1): one column per feature, the last is the base value.

        One thread by default: for a single lead, more threads only add overhead."""
        contributions: np.ndarray = self.booster.predict(x, pred_contrib=True, num_threads=threads)
        return contributions


class LinearMargin:
    """Logistic regression on one-hot categoricals and standardised numerics.

    Its contributions are the exact linear terms summed per input feature (all one-hot columns
    of a field, and a numeric's missing-indicator with its value term).
    """

    def __init__(self, vocab_sizes: list[int], c: float = 0.1) -> None:
        self.vocab_sizes = vocab_sizes
        self.c = c

    def _design(self, x: np.ndarray) -> list[np.ndarray]:
        """Per input feature, its block of design columns."""
        blocks = []
        for j, size in enumerate(self.vocab_sizes):
            codes = x[:, j]
            codes = np.where(np.isnan(codes), size, codes).astype(np.int64)
            blocks.append(np.eye(size + 1)[codes])
        numeric = self._numeric(x)
        missing = np.isnan(numeric)
        z = (np.where(missing, self.fill_, numeric) - self.mean_) / self.scale_
        for j in range(numeric.shape[1]):
            blocks.append(np.column_stack([z[:, j], missing[:, j]]))
        return blocks

    def _numeric(self, x: np.ndarray) -> np.ndarray:
        # Counts are heavy-tailed: on a signed log scale, sign(x) * log(1 + |x|), one very
        # active lead does not dominate the fit, and negative values (flat tables hold
        # balances and differences) keep their order.
        values = x[:, len(self.vocab_sizes) :]
        signed_log: np.ndarray = np.sign(values) * np.log1p(np.abs(values))
        return signed_log

    def fit(self, x: np.ndarray, y: np.ndarray) -> LinearMargin:
        numeric = self._numeric(x)
        self.fill_ = np.nan_to_num(np.nanmedian(numeric, axis=0))
        filled = np.where(np.isnan(numeric), self.fill_, numeric)
        self.mean_ = filled.mean(axis=0)
        self.scale_ = np.where(filled.std(axis=0) > 0, filled.std(axis=0), 1.0)
        model = LogisticRegression(C=self.c, max_iter=500, tol=1e-3)
        model.fit(np.hstack(self._design(x)), y)
        self.coef_ = model.coef_[0]
        self.intercept_ = float(model.intercept_[0])
        return self

    def contributions(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        blocks = self._design(x)
        terms = np.empty((x.shape[0], len(blocks) + 1))
        start = 0
        for j, block in enumerate(blocks):
            terms[:, j] = block @ self.coef_[start : start + block.shape[1]]
            start += block.shape[1]
        terms[:, -1] = self.intercept_
        return terms

    def margin(self, x: np.ndarray) -> np.ndarray:
        margin: np.ndarray = self.contributions(x).sum(axis=1)
        return margin


class Margin(Protocol):
    """What Calibrated scales: TreeMargin, LinearMargin and the baselines of
    features.baselines (margins and contributions in log-odds)."""

    def margin(self, x: np.ndarray) -> np.ndarray: ...

    def contributions(self, x: np.ndarray, threads: int = 1) -> np.ndarray: ...


class Calibrated:
    """A margin model with Platt scaling: probability = sigmoid(a * margin + b)."""

    def __init__(self, base: Margin, a: float, b: float) -> None:
        self.base = base
        self.a = a
        self.b = b

    def logit(self, x: np.ndarray) -> np.ndarray:
        return self.a * self.base.margin(x) + self.b

    def proba(self, x: np.ndarray) -> np.ndarray:
        proba: np.ndarray = 1.0 / (1.0 + np.exp(-self.logit(x)))
        return proba

    def contributions(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        """Per-feature contributions to the calibrated logit; the last column is the base."""
        raw = self.base.contributions(x, threads) * self.a
        raw[:, -1] += self.b
        return raw


class LeadScorer(BaseEstimator, ClassifierMixin):  # type: ignore[misc]  # as FeatureEncoder
    """Readiness and potential of leads from their feature columns.

    `predict_proba` answers readiness (won within the horizon), as MLflow's generic tools
    expect; `potential` answers "will this lead ever be won". `info` carries what travels with
    the model: thresholds, route statistics, metrics, feature labels.

    The pickle holds `info` as plain data, validated back into `ModelInfo` on load: a field
    added later (with a default) or a version pickled before the metadata was typed still
    loads, and the pickle does not depend on the metadata classes' layout.
    """

    def __init__(
        self,
        encoder: FeatureEncoder,
        readiness: Calibrated,
        potential: Calibrated,
        info: ModelInfo,
    ) -> None:
        self.encoder = encoder
        self.readiness = readiness
        self.potential = potential
        self.info = info

    @property
    def classes_(self) -> np.ndarray:
        return np.array([0, 1])

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        return {**state, "info": self.info.model_dump()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__({**state, "info": ModelInfo.model_validate(state["info"])})

    def fit(self, columns: Columns, y: object = None) -> LeadScorer:
        """Parts are fitted by `training.fit`; this exists for the estimator contract."""
        return self

    def encode(self, columns: Columns) -> np.ndarray:
        return self.encoder.transform(columns)

    def predict_proba(self, columns: Columns) -> np.ndarray:
        p = self.readiness.proba(self.encode(columns))
        return np.column_stack([1.0 - p, p])

    def predict(self, columns: Columns) -> np.ndarray:
        return (self.predict_proba(columns)[:, 1] >= 0.5).astype(np.int64)
