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

import os
from collections.abc import Mapping
from dataclasses import dataclass
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


GROUPED_ROWS = 250
"""From this many rows on, `TreeMargin.contributions` computes each tree's contributions once
per group of rows that take the same branches in it (see `_grouped_contributions`): with the
sample's 285 trees, 1,000 API leads took 80 ms so and 250 ms with LightGBM's own per-row
computation, 300 leads 54 vs 75 ms, 100 leads 42 vs 25 ms (one thread each)."""
THREADED_ROWS = 2_000
"""From this many rows on, `TreeMargin.margin` uses every core."""


class TreeMargin:
    """A LightGBM booster: margins and native tree SHAP contributions (log-odds)."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def __getstate__(self) -> dict[str, Any]:
        return {"booster": self.booster}  # not the splits cached by `_splits`

    def margin(self, x: np.ndarray) -> np.ndarray:
        """One thread for a few rows (more only add overhead), every core from THREADED_ROWS."""
        threads = 1 if len(x) < THREADED_ROWS else os.cpu_count() or 1
        margin: np.ndarray = self.booster.predict(x, raw_score=True, num_threads=threads)
        return margin

    def contributions(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        """(n, n_features + 1): one column per feature, the last is the base value.

        One thread by default: for a single lead, more threads only add overhead. Many rows
        are grouped per tree (GROUPED_ROWS), which gives LightGBM's own values (up to the
        order in which the trees' parts are added) several times faster."""
        splits = self._splits() if len(x) >= GROUPED_ROWS else None
        if splits is None:
            contributions: np.ndarray = self.booster.predict(
                x, pred_contrib=True, num_threads=threads
            )
            return contributions
        return _grouped_contributions(self.booster, splits, x)

    def _splits(self) -> Plan | None:
        """The booster's trees (as `predict` uses them) as `_grouped_contributions` reads them
        (`_plan`); None when the booster is no single-output tree model."""
        if "splits_" not in self.__dict__:
            booster = self.booster
            trees = booster.dump_model()["tree_info"]
            used = booster.best_iteration if booster.best_iteration > 0 else len(trees)
            self.splits_ = (
                _plan([tree["tree_structure"] for tree in trees[:used]])
                if booster.num_model_per_iteration() == 1 and len(trees) >= used
                else None
            )
        splits: Plan | None = self.splits_
        return splits


Split = tuple[int, np.ndarray | list[set[int]]]
"""A tree's split feature: for a numeric one, the bin of each of the feature's `Plan` bins
among this tree's thresholds (`_plan`); for a categorical one, the sets of categories its
splits send left."""


@dataclass
class Plan:
    """Every tree's split features (`Split`), and per numeric feature the sorted thresholds of
    all trees: a value's bin among those is found once, and each tree's bin from it by a
    lookup, in place of a binary search per tree."""

    trees: list[list[Split]]
    thresholds: dict[int, np.ndarray]
    categories: dict[int, int]
    """Per categorical feature, the largest category in any tree's sets."""


def _plan(roots: list[dict[str, Any]]) -> Plan:
    """The `Plan` of dumped trees."""
    numeric_per_tree, categorical_per_tree = [], []
    for root in roots:
        numeric: dict[int, set[float]] = {}
        categorical: dict[int, list[set[int]]] = {}
        nodes = [root]
        while nodes:
            node = nodes.pop()
            if "split_feature" not in node:
                continue
            feature = int(node["split_feature"])
            if node["decision_type"] == "<=":
                numeric.setdefault(feature, set()).add(float(node["threshold"]))
            else:
                cats = {int(c) for c in str(node["threshold"]).split("||")}
                categorical.setdefault(feature, []).append(cats)
            nodes += [node["left_child"], node["right_child"]]
        numeric_per_tree.append(numeric)
        categorical_per_tree.append(categorical)
    everywhere: dict[int, set[float]] = {}
    for numeric in numeric_per_tree:
        for feature, values in numeric.items():
            everywhere.setdefault(feature, set()).update(values)
    thresholds = {f: np.array(sorted(v)) for f, v in everywhere.items()}
    categories: dict[int, int] = {}
    for categorical in categorical_per_tree:
        for feature, sets in categorical.items():
            most = max((c for cats in sets for c in cats), default=0)
            categories[feature] = max(categories.get(feature, 0), most)
    trees = []
    for numeric, categorical in zip(numeric_per_tree, categorical_per_tree, strict=True):
        splits: list[Split] = [
            (f, _lookup(np.array(sorted(v)), thresholds[f])) for f, v in numeric.items()
        ]
        trees.append(sorted([*splits, *categorical.items()], key=lambda split: split[0]))
    return Plan(trees, thresholds, categories)


def _lookup(own: np.ndarray, every: np.ndarray) -> np.ndarray:
    """A tree's bin for each bin `_global_bins` gives among `every` threshold: its interval
    among its `own` thresholds (a subset of `every`), then zero and missing (LightGBM's
    zero, missing for some splits; and NaN) as two more."""
    size = len(own) + 3
    inside = np.searchsorted(own, every, side="right")  # own thresholds below each bin's top
    return np.concatenate(([0], inside, [size - 2, size - 1])).astype(np.int64)


def _global_bins(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Each value's bin among all trees' `thresholds` of its feature: how many lie below it,
    then len+1 for LightGBM's zero and len+2 for NaN (`_lookup` maps them per tree)."""
    bins = np.searchsorted(thresholds, values, side="left")
    bins[np.abs(values) <= 1e-35] = len(thresholds) + 1
    bins[np.isnan(values)] = len(thresholds) + 2
    return bins


def _category_codes(values: np.ndarray, most: int) -> tuple[np.ndarray, int]:
    """A categorical feature's values as codes for `_category_bins`, and `top`: one more than
    the largest category of the values and of the trees' sets (`most`). A code is the category
    (a whole number from 0), `top` for other values, `top + 1` for NaN."""
    known = np.isfinite(values) & (values >= 0)
    whole = np.where(known, values, 0).astype(np.int64)
    top = max(int(whole.max(initial=0)), most) + 1
    codes = np.where(known, whole, top)
    codes[np.isnan(values)] = top + 1
    return codes, top


def _category_bins(codes: np.ndarray, top: int, sets: list[set[int]]) -> tuple[np.ndarray, int]:
    """Codes of one feature (`_category_codes`) renumbered equal for values that take the same
    branch at every split of one tree on that feature (the pattern of the sets holding the
    category; other values and NaN apart), and how many codes there can be."""
    if len(sets) > 16:
        dense, found = pd.factorize(codes)
        return dense + 1, len(found) + 1
    size = (1 << len(sets)) + 2
    lut = np.zeros(top + 2, dtype=np.int64)
    for i, cats in enumerate(sets):
        lut[[c for c in cats if c >= 0]] += 1 << i
    lut[top:] = (size - 2, size - 1)
    return lut[codes], size


def _grouped_contributions(booster: Any, plan: Plan, x: np.ndarray) -> np.ndarray:
    """`booster.predict(x, pred_contrib=True)`, one tree at a time: a tree's contributions for
    a row depend only on the branches the row takes at the tree's splits, so rows are grouped
    by those branches (per split feature, the interval of its value among the tree's
    thresholds, or the tree's category sets holding it; missing and zero values apart), and
    LightGBM computes the tree's contributions for one row of each group. One thread: a
    booster's predict with `start_iteration` sets which trees it uses on the booster itself,
    so two threads predicting different trees at once get wrong values (tried)."""
    n, width = x.shape
    total = np.zeros((width + 1, n))
    everyone = np.arange(n)
    coded = {f: _global_bins(x[:, f], t) for f, t in plan.thresholds.items()}
    categories = {f: _category_codes(x[:, f], most) for f, most in plan.categories.items()}
    for tree, features in enumerate(plan.trees):
        key, span = np.zeros(n, dtype=np.int64), 1
        for feature, split in features:
            if isinstance(split, np.ndarray):
                bins, size = split[coded[feature]], int(split[-1]) + 1
            else:
                bins, size = _category_bins(*categories[feature], split)
            key, span = key * size + bins, span * size
            if span > 1 << 40:  # keep the key small: renumber it densely
                key, found = pd.factorize(key)
                span = len(found)
        if span <= 4 * n:
            present = np.zeros(span, dtype=bool)
            present[key] = True
            codes = (np.cumsum(present) - 1)[key]
            groups = int(present.sum())
        else:
            codes, found = pd.factorize(key)
            groups = len(found)
        one = np.empty(groups, dtype=np.int64)
        one[codes] = everyone  # any row of a group stands for it
        part = booster.predict(
            x[one], pred_contrib=True, start_iteration=tree, num_iteration=1, num_threads=1
        )
        for column in [feature for feature, _ in features] + [width]:
            total[column] += part[codes, column]
    contributions: np.ndarray = np.ascontiguousarray(total.T)
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
