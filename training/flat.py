"""Flat mode: `leadready train --table FILE --id COL --label COL --positive VALUE [--time COL]`.

One row per lead, engagement already counted (the common CRM or marketing-automation export).
Every other column becomes a feature with an inferred type; see docs/flat-mode.md. Like
`training.pipeline`, nothing here writes anything: the CLI prints, `training.registry` logs.

Two steps, so the CLI can show what was inferred (and warn of leaks) before any fitting:

- `prepare`: read the table (schema `table` section applied), check it is usable (or raise
  `ContractError` / `FlatTrainingError` with a message for the person who made the file), infer
  the column types, and scan every feature alone for leakage (single-column ROC AUC);
- `fit`: hold out a test set (the newest 20% by `--time`, else a stratified random 20%),
  choose a model by 5-fold cross-validation on the rest, Platt-calibrate it on its
  out-of-fold margins, test it once, then refit the chosen model on all the rows given
  (cross-fitted again for its calibration) and return a `TrainResult` to register.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from leadready.features.baselines import FrequencyMargin
from leadready.features.contract import CheckedTable, ContractError, check_dates
from leadready.features.model import (
    Calibrated,
    FeatureEncoder,
    LeadScorer,
    LinearMargin,
    TreeMargin,
)
from leadready.features.routing import Thresholds, nurture_warning, route_rules
from leadready.features.schema import TableMapping
from leadready.features.table import MISSING_TOKENS, MODE, flat_columns, numbers, read_flat
from leadready.training.bootstrap import bootstrap_intervals
from leadready.training.evaluate import choose_thresholds, classification_metrics, route_statistics
from leadready.training.fit import platt
from leadready.training.pipeline import TrainingError, TrainResult, model_info, routing_policy
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

NUMERIC_SHARE = 0.98
"""A column is numeric when at least this share of its non-empty cells are numbers (the rest,
like 'n/a' or '?', count as missing)."""
ID_LIKE_SHARE = 0.9
"""A text column whose non-empty cells are at least this share distinct is an id or free text."""
DATE_SHARE = 0.9
MAX_RELABEL_VALUES = 20
LEAKAGE_AUC = 0.98
MIN_PER_CLASS = 20
MIN_COUNT = 2
"""Category values seen once in training count as missing; rarer values carry signal on small
tables (5 cost 0.015 AUC on 1,000-row subsamples of the Leads export)."""
FOLDS = 5
DRIVER_ROWS = 2000
STEPS = (
    "Checking the table",
    "Selecting a model (5-fold cross-validation)",
    "Scoring the hold-out",
    "Refitting on all rows",
    "Explaining global drivers",
)

_DATE = re.compile(
    r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T]\d{1,2}:\d{2}.*)?$"
)

LGBM_BASE = {
    "objective": "binary",
    "learning_rate": 0.05,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "min_data_in_leaf": 20,
    "max_cat_to_onehot": 8,
    "min_data_per_group": 20,
    "cat_smooth": 10,
    "cat_l2": 10,
    "verbose": -1,
}
MAX_ROUNDS = 2000
EARLY_STOPPING = 50
MAX_LINEAR_CELLS = 30_000_000


class FlatTrainingError(TrainingError):
    """A flat table that reads fine but cannot train a model (one class, a copy of the label)."""


@dataclass(frozen=True)
class FlatConfig:
    id_column: str
    label: str
    positive: str
    time: str | None = None
    sales_precision: float = 0.5
    max_disqualified_wins: float = 0.02
    test_share: float = 0.2
    seed: int = 0
    threads: int = 2


@dataclass(frozen=True)
class ColumnType:
    """What became of one column: `kind` is numeric, categorical or excluded; `source` is
    'inferred' or 'schema'; `note` says why, in words."""

    name: str
    kind: str
    source: str
    note: str


@dataclass
class FlatData:
    """A checked flat table: the labelled rows, their labels, ids, times and column types."""

    path: str
    frame: pd.DataFrame
    y: np.ndarray
    ids: np.ndarray
    times: np.ndarray | None
    types: list[ColumnType]
    single_auc: dict[str, float]
    unlabelled_rows: int
    mapping: TableMapping
    label: str = ""
    fingerprint: dict[str, str | int] = field(default_factory=dict)

    @property
    def feature_types(self) -> dict[str, str]:
        return {t.name: t.kind for t in self.types if t.kind != "excluded"}

    @property
    def leaks(self) -> dict[str, float]:
        """Features that alone give a ROC AUC above LEAKAGE_AUC."""
        return {
            name: auc
            for name, auc in self.single_auc.items()
            if name in self.feature_types and auc > LEAKAGE_AUC
        }


# ---------------------------------------------------------------------------------- reading


def _where(frame: pd.DataFrame, path: str, mask: np.ndarray) -> str:
    table = CheckedTable.of(path, frame)
    return table.where(mask)


def _label(frame: pd.DataFrame, config: FlatConfig, path: str) -> tuple[np.ndarray, np.ndarray]:
    """(labelled mask, 0/1 labels of all rows); the positive value is matched exactly, then
    ignoring case, then as a number."""
    values = frame[config.label]
    labelled = (values != "").to_numpy()
    observed = values[labelled]
    positive = config.positive.strip()
    hit = observed == positive
    if not hit.any():
        hit = observed.str.lower() == positive.lower()
    if not hit.any():
        with contextlib.suppress(ValueError):
            hit = numbers(observed) == float(positive)
    distinct = list(dict.fromkeys(observed))
    if labelled.sum() >= 20 and len(distinct) >= ID_LIKE_SHARE * labelled.sum():
        raise FlatTrainingError(
            f"{path}: the label column '{config.label}' looks like an id ({len(distinct):,} "
            f"distinct values in {int(labelled.sum()):,} rows), not an outcome; pass the "
            "column that says whether the lead converted with --label"
        )
    shown = ", ".join(repr(v) for v in distinct[:8]) + (" ..." if len(distinct) > 8 else "")
    if not hit.any():
        raise FlatTrainingError(
            f"{path}: no row has {config.label} = {positive!r}, so there is one class only "
            f"(values found: {shown or 'none'}); --positive must be the value that marks a "
            "converted lead"
        )
    if hit.all():
        raise FlatTrainingError(
            f"{path}: every labelled row has {config.label} = {positive!r}, so there is one "
            f"class only; training needs converted and not converted leads (values found: "
            f"{shown})"
        )
    y = np.zeros(len(frame), dtype=np.int64)
    y[np.flatnonzero(labelled)[hit.to_numpy()]] = 1
    return labelled, y


def _check_id(frame: pd.DataFrame, column: str, path: str) -> list[str]:
    ids = frame[column]
    problems = []
    empty = (ids == "").to_numpy()
    if empty.any():
        problems.append(
            f"{path}, column '{column}' (--id), {_where(frame, path, empty)}: "
            "empty id; expected a unique, non-empty id per row"
        )
    duplicated = ids.duplicated(keep=False).to_numpy() & ~empty
    if duplicated.any():
        shown = ", ".join(repr(v) for v in list(dict.fromkeys(ids[duplicated]))[:5])
        problems.append(
            f"{path}, column '{column}' (--id), {_where(frame, path, duplicated)}: "
            f"duplicate id ({shown}); expected each id once, one row per lead"
        )
    return problems


def _times(frame: pd.DataFrame, column: str, mapping: TableMapping, path: str) -> np.ndarray:
    table = CheckedTable.of(path, frame, dict(mapping.dates))
    parsed = check_dates(table, column, required=True)
    if table.problems:
        hint = (
            ""
            if column in mapping.dates
            else f"; for another format, give it in the schema: table: {{dates: {{{column}: "
            "'%d/%m/%Y'}}"
        )
        raise ContractError(
            f"{path}: the --time column cannot be used for the time split:\n"
            + "\n".join(f"- {p}" for p in table.problems)
            + hint
        )
    return parsed.to_numpy(dtype="datetime64[ns]")


# -------------------------------------------------------------------------------- inference


def infer_types(frame: pd.DataFrame, config: FlatConfig, mapping: TableMapping) -> list[ColumnType]:
    """The type of every column but the id, the label and --time; schema `features` win."""
    special = {config.id_column: "the id column (--id)", config.label: "the label (--label)"}
    if config.time:
        special[config.time] = "the time column (--time), used for the hold-out"
    out = []
    for name in frame.columns:
        if name in special:
            continue
        override = mapping.features.get(name)
        if override == "ignore":
            out.append(ColumnType(name, "excluded", "schema", "ignored by the schema"))
        elif override is not None:
            out.append(ColumnType(name, override, "schema", _describe(frame[name], override)))
        else:
            out.append(_infer(name, frame[name], name in mapping.dates))
    return out


def _describe(values: pd.Series, kind: str) -> str:
    def share(missing: float, what: str) -> str:
        if not missing:
            return ""
        return f", <1% {what}" if missing < 0.01 else f", {missing:.0%} {what}"

    if kind == "numeric":
        parsed = numbers(values)
        junk = int((parsed.isna() & ~values.str.lower().isin(MISSING_TOKENS)).sum())
        note = (
            f"numbers from {parsed.min():g} to {parsed.max():g}"
            if parsed.notna().any()
            else "numbers (none present)"
        )
        return (
            note
            + share(float(parsed.isna().mean()), "missing")
            + (f" ({junk:,} cells not numbers)" if junk else "")
        )
    return f"{values[values != ''].nunique():,} distinct values" + share(
        float((values == "").mean()), "empty"
    )


def _infer(name: str, values: pd.Series, declared_date: bool) -> ColumnType:
    filled = values[values != ""]
    distinct = filled.unique()
    if values.nunique() <= 1:
        shown = repr(distinct[0]) if len(distinct) else "empty"
        return ColumnType(name, "excluded", "inferred", f"constant (every row is {shown})")
    parsed = numbers(filled)
    present = ~filled.str.lower().isin(MISSING_TOKENS)
    if (
        not declared_date
        and present.any()
        and parsed.notna().sum() >= NUMERIC_SHARE * present.sum()
    ):
        return ColumnType(name, "numeric", "inferred", _describe(values, "numeric"))
    if declared_date or (len(filled) and filled.str.match(_DATE).mean() >= DATE_SHARE):
        return ColumnType(
            name, "excluded", "inferred", f"dates (e.g. {filled.iloc[0]!r}); only --time uses dates"
        )
    if len(filled) >= 20 and len(distinct) >= ID_LIKE_SHARE * len(filled):
        return ColumnType(
            name,
            "excluded",
            "inferred",
            f"an id or free text ({len(distinct):,} distinct values in {len(filled):,} rows)",
        )
    return ColumnType(name, "categorical", "inferred", _describe(values, "categorical"))


def _label_copies(frame: pd.DataFrame, y: np.ndarray, types: list[ColumnType]) -> list[str]:
    """Features whose every value goes with one outcome: the label under another name."""
    copies = []
    for t in types:
        if t.kind == "excluded":
            continue
        groups = pd.DataFrame({"v": frame[t.name].to_numpy(), "y": y})
        rates = groups.groupby("v", sort=False)["y"].agg(["mean", "size"])
        if 2 <= len(rates) <= MAX_RELABEL_VALUES and rates["mean"].isin((0.0, 1.0)).all():
            pairs = ", ".join(
                f"{v!r} -> {'positive' if m else 'negative'}"
                for v, m in rates["mean"].head(4).items()
            )
            copies.append(f"'{t.name}' ({pairs}{' ...' if len(rates) > 4 else ''})")
    return copies


# ---------------------------------------------------------------------------------- leakage


def single_feature_auc(values: np.ndarray, kind: str, y: np.ndarray, seed: int = 0) -> float:
    """How well one column alone ranks the outcome (0.5 = not at all, 1 = perfectly).

    Categories (and numbers cut into 20 quantile bins, missing as its own bin) are
    target-encoded out of fold, so rare values cannot score by being rare; numbers are also
    ranked as they are, with missing values first or last, whichever ranks better."""
    best = 0.5
    if kind == "numeric":
        x = values.astype(np.float64)
        present = ~np.isnan(x)
        if present.any():
            for fill in (np.nanmin(x) - 1.0, np.nanmax(x) + 1.0):
                auc = roc_auc_score(y, np.where(present, x, fill))
                best = max(best, auc, 1.0 - auc)
            edges = np.unique(np.nanquantile(x, np.linspace(0, 1, 21)[1:-1]))
            codes = np.where(present, np.searchsorted(edges, np.nan_to_num(x), side="right"), -1)
        else:
            codes = np.zeros(len(x), dtype=np.int64)
    else:
        codes = pd.factorize(values)[0]
    encoded = np.empty(len(y))
    prior = y.mean()
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    for fit, held in folds.split(codes, y):
        sums = pd.Series(y[fit]).groupby(codes[fit]).agg(["sum", "size"])
        rate = (sums["sum"] + prior) / (sums["size"] + 1.0)
        encoded[held] = pd.Series(codes[held]).map(rate).fillna(prior).to_numpy()
    auc = roc_auc_score(y, encoded)
    return float(max(best, auc, 1.0 - auc))


# ---------------------------------------------------------------------------------- prepare


def prepare(path: str | Path, config: FlatConfig, mapping: TableMapping | None = None) -> FlatData:
    """Read, check, infer types and scan for leakage; raise with a clear message if unusable."""
    mapping = mapping or TableMapping()
    path = str(path)
    frame = read_flat(path, mapping)
    named = {"--id": config.id_column, "--label": config.label}
    if config.time:
        named["--time"] = config.time
    missing = [f"'{col}' ({option})" for option, col in named.items() if col not in frame]
    if missing:
        raise ContractError(
            f"{path}: no column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; the "
            f"table has {', '.join(repr(c) for c in frame.columns) or 'no columns'}"
        )
    if len(set(named.values())) < len(named):
        raise ContractError(
            f"{path}: {', '.join(named)} must name different columns "
            f"(got {', '.join(f'{k} {v!r}' for k, v in named.items())})"
        )
    unknown = [c for c in mapping.features if c not in frame]
    if unknown:
        raise ContractError(
            f"{path}: the schema's table.features names "
            f"{', '.join(repr(c) for c in unknown)}, not columns of the table"
        )
    problems = _check_id(frame, config.id_column, path)
    if problems:
        raise ContractError(
            f"{path}: the --id column is not an id:\n" + "\n".join(f"- {p}" for p in problems)
        )
    times = _times(frame, config.time, mapping, path) if config.time else None
    labelled, y_all = _label(frame, config, path)
    rows = np.flatnonzero(labelled)
    data = frame.iloc[rows].reset_index(drop=True)
    y = y_all[rows]
    for cls, name in ((1, "converted"), (0, "not converted")):
        if (y == cls).sum() < MIN_PER_CLASS:
            raise FlatTrainingError(
                f"{path}: only {(y == cls).sum()} {name} rows ({config.label} "
                f"{'=' if cls else '!='} {config.positive!r}); flat training needs at least "
                f"{MIN_PER_CLASS} of each outcome to fit, choose and test a model"
            )
    types = infer_types(frame, config, mapping)
    copies = _label_copies(data, y, types)
    if copies:
        raise FlatTrainingError(
            f"{path}: {', '.join(copies)} {'is a copy' if len(copies) == 1 else 'are copies'} "
            f"of the label '{config.label}' under another name: every value goes with one "
            "outcome, so the column records the result rather than predicting it. Drop it "
            "from the table, or mark it in the schema: table: {features: {COLUMN: ignore}}"
        )
    feature_types = {t.name: t.kind for t in types if t.kind != "excluded"}
    if not feature_types:
        raise FlatTrainingError(
            f"{path}: no usable feature columns; every column other than "
            "--id, --label and --time was excluded (see the summary)"
        )
    columns = flat_columns(data, feature_types)
    single = {
        name: single_feature_auc(columns[name], kind, y, config.seed)
        for name, kind in feature_types.items()
    }
    result = FlatData(
        path=path,
        frame=data,
        y=y,
        ids=data[config.id_column].to_numpy(),
        times=None if times is None else times[rows],
        types=types,
        single_auc=single,
        unlabelled_rows=int((~labelled).sum()),
        mapping=mapping,
        label=config.label,
    )
    result.fingerprint = _fingerprint(result, config)
    return result


def _fingerprint(data: FlatData, config: FlatConfig) -> dict[str, str | int]:
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(data.frame, index=False).to_numpy().tobytes()
    )
    first = last = ""
    if data.times is not None:
        first, last = str(data.times.min()), str(data.times.max())
    n = len(data.y)
    # The first six keys are those the snapshot pipeline reports (leads, closed leads...),
    # so the model report and `leadready models list` read both modes.
    return {
        "leads": n,
        "closed_leads": n,
        "activities": "n/a (flat table)",
        "touches": "n/a (flat table)",
        "first_created_at": first,
        "last_created_at": last,
        "file": Path(data.path).name,
        "rows": n,
        "positives": int(data.y.sum()),
        "unlabelled_rows": data.unlabelled_rows,
        "sha256": digest.hexdigest()[:16],
    }


# -------------------------------------------------------------------------------- splitting


def holdout(y: np.ndarray, times: np.ndarray | None, share: float, seed: int) -> np.ndarray:
    """Test mask: the newest `share` of rows by time (ties broken by row order), else a
    stratified random `share`, seeded."""
    n = len(y)
    size = max(1, int(round(share * n)))
    test = np.zeros(n, dtype=bool)
    if times is not None:
        order = np.argsort(times, kind="stable")
        test[order[n - size :]] = True
    else:
        split = StratifiedShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        test[next(split.split(np.zeros(n), y))[1]] = True
    return test


# -------------------------------------------------------------------------------- modelling


@dataclass(frozen=True)
class Spec:
    """One candidate: a regularised logistic regression or a LightGBM configuration."""

    name: str
    kind: str
    params: dict[str, Any]


CANDIDATES = (
    Spec("logistic_regression_c0.1", "linear", {"c": 0.1}),
    Spec("logistic_regression_c1", "linear", {"c": 1.0}),
    Spec(
        "lightgbm_4_leaves", "lightgbm", {"num_leaves": 4, "min_data_per_group": 5, "cat_smooth": 5}
    ),
    Spec("lightgbm_15_leaves", "lightgbm", {"num_leaves": 15}),
    Spec(
        "lightgbm_15_leaves_half_features", "lightgbm", {"num_leaves": 15, "feature_fraction": 0.5}
    ),
)
"""Measured (bench/quality.py and subsamples of it): 4-leaf trees win on small tables with few
positives, 15-leaf trees on thousands of rows, the linear models on a few hundred rows of
smooth numeric columns; 5-fold cross-validated AUC picks among them per table."""


def _candidates(rows: int, vocab: list[int], n_numeric: int) -> tuple[Spec, ...]:
    """All candidates, but the linear ones only while their dense one-hot design stays small
    (many rows times thousands of category values would not fit in memory)."""
    cells = rows * (sum(size + 1 for size in vocab) + 2 * n_numeric)
    if cells <= MAX_LINEAR_CELLS:
        return CANDIDATES
    return tuple(spec for spec in CANDIDATES if spec.kind != "linear")


@dataclass
class _Fitted:
    spec: Spec
    auc: float  # mean fold ROC AUC
    margins: np.ndarray  # out-of-fold
    rounds: int  # trees for a refit on all the rows (LightGBM), 0 otherwise


def _lgbm_params(spec: Spec, n_rows: int, seed: int, threads: int) -> dict[str, Any]:
    params = {**LGBM_BASE, **spec.params, "seed": seed, "num_threads": threads}
    # Leaves of at least 20 rows, fewer on very small tables (at most 2% of the rows).
    params["min_data_in_leaf"] = int(max(3, min(params["min_data_in_leaf"], n_rows // 50)))
    params["min_data_per_group"] = min(params["min_data_per_group"], params["min_data_in_leaf"])
    return params


def _fit_one(
    spec: Spec,
    x: np.ndarray,
    y: np.ndarray,
    n_cat: int,
    vocab: list[int],
    seed: int,
    threads: int,
    rounds: int,
) -> Any:
    """A margin model fitted on (x, y); LightGBM grows `rounds` trees."""
    if spec.kind == "linear":
        return LinearMargin(vocab, c=spec.params["c"]).fit(x, y)
    import lightgbm as lgb

    params = _lgbm_params(spec, len(y), seed, threads)
    train = lgb.Dataset(x, y, categorical_feature=list(range(n_cat)))
    booster = lgb.train(params, train, num_boost_round=max(rounds, 1))
    booster.free_dataset()
    return TreeMargin(booster)


def _folds(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    k = int(min(FOLDS, (y == 1).sum(), (y == 0).sum()))
    return list(
        StratifiedKFold(max(k, 2), shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    )


def _lightgbm_cv(
    spec: Spec,
    x: np.ndarray,
    y: np.ndarray,
    n_cat: int,
    folds: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
    threads: int,
) -> tuple[np.ndarray, int]:
    """Out-of-fold margins and the number of trees, early-stopped on the log loss averaged
    over the folds (steadier than stopping each small fold on its own)."""
    import lightgbm as lgb

    fold_rows = int(np.mean([len(fit) for fit, _ in folds]))
    params = _lgbm_params(spec, fold_rows, seed, threads)
    data = lgb.Dataset(x, y, categorical_feature=list(range(n_cat)), free_raw_data=False)
    result = lgb.cv(
        params,
        data,
        num_boost_round=MAX_ROUNDS,
        folds=folds,
        stratified=False,
        return_cvbooster=True,
        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
    )
    boosters = result["cvbooster"]
    best = int(boosters.best_iteration) or MAX_ROUNDS
    margins = np.empty(len(y))
    for (_, held), booster in zip(folds, boosters.boosters, strict=True):
        margins[held] = booster.predict(x[held], raw_score=True, num_iteration=best)
    return margins, best


def cross_fit(
    spec: Spec, x: np.ndarray, y: np.ndarray, n_cat: int, vocab: list[int], seed: int, threads: int
) -> _Fitted:
    """Out-of-fold margins, mean fold AUC and (LightGBM) the trees a refit should grow."""
    folds = _folds(y, seed)
    rounds = 0
    if spec.kind == "lightgbm":
        margins, best = _lightgbm_cv(spec, x, y, n_cat, folds, seed, threads)
        # A refit sees k/(k-1) times the rows of a fold model: proportionally more trees.
        rounds = int(np.ceil(best * len(folds) / (len(folds) - 1)))
    else:
        margins = np.empty(len(y))
        for fit, held in folds:
            model = _fit_one(spec, x[fit], y[fit], n_cat, vocab, seed, threads, 0)
            margins[held] = model.margin(x[held])
    auc = float(np.mean([roc_auc_score(y[held], margins[held]) for _, held in folds]))
    return _Fitted(spec, auc, margins, rounds)


def _calibrated_fit(
    chosen: _Fitted,
    x: np.ndarray,
    y: np.ndarray,
    n_cat: int,
    vocab: list[int],
    seed: int,
    threads: int,
) -> Calibrated:
    """The chosen candidate fitted on (x, y), Platt-scaled on its out-of-fold margins."""
    model = _fit_one(chosen.spec, x, y, n_cat, vocab, seed, threads, chosen.rounds)
    a, b = platt(chosen.margins, y)
    return Calibrated(model, a, b)


def _frequency(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray, n_cat: int, seed: int
) -> np.ndarray:
    """The frequency score baseline on the test rows, fitted on (x, y) and Platt-scaled on its
    out-of-fold margins."""
    margins = np.empty(len(y))
    for fit, held in _folds(y, seed):
        margins[held] = FrequencyMargin(n_cat).fit(x[fit], y[fit]).margin(x[held])
    a, b = platt(margins, y)
    return Calibrated(FrequencyMargin(n_cat).fit(x, y), a, b).proba(x_test)


def _drivers(model: Calibrated, x: np.ndarray, features: list[str], seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), size=min(DRIVER_ROWS, len(x)), replace=False)
    mean_abs = np.abs(model.contributions(x[rows])[:, :-1]).mean(axis=0)
    return {features[j]: float(mean_abs[j]) for j in np.argsort(-mean_abs)}


def _take(columns: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[mask] for name, values in columns.items()}


def fit(
    data: FlatData, config: FlatConfig, step: Callable[[str], None] = lambda _: None
) -> TrainResult:
    """Choose, calibrate, test once, refit on all rows; see the module docstring."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    feature_types = data.feature_types
    categorical = tuple(n for n, k in feature_types.items() if k == "categorical")
    numeric = tuple(n for n, k in feature_types.items() if k == "numeric")
    columns = flat_columns(data.frame, feature_types)
    y = data.y
    test = holdout(y, data.times, config.test_share, config.seed)
    train = ~test
    for part, mask in (("training", train), ("hold-out", test)):
        if len(np.unique(y[mask])) < 2:
            raise FlatTrainingError(
                f"{data.path}: the {part} part of the split ({int(mask.sum())} rows) has one "
                "outcome only; the table needs converted and not converted leads across the "
                "whole --time range"
            )

    step(STEPS[1])
    encoder = FeatureEncoder(categorical, numeric, MIN_COUNT).fit(_take(columns, train))
    x = encoder.transform(columns)
    n_cat = len(categorical)
    vocab = [len(encoder.vocabulary_[name]) for name in categorical]
    x_train, y_train = x[train], y[train]
    fitted = [
        cross_fit(spec, x_train, y_train, n_cat, vocab, config.seed, config.threads)
        for spec in _candidates(len(y), vocab, len(numeric))
    ]
    chosen = max(fitted, key=lambda f: f.auc)
    # Columns as in the snapshot pipeline's leaderboard; here both AUCs are cross-validated:
    # the mean over folds, and over all out-of-fold margins pooled.
    leaderboard = [
        {
            "target": "ready",
            "candidate": f.spec.name,
            "cv_roc_auc": round(f.auc, 4),
            "validation_roc_auc": round(float(roc_auc_score(y_train, f.margins)), 4),
            "explainable": True,
            "chosen": f is chosen,
            "params": json.dumps(f.spec.params, sort_keys=True),
        }
        for f in fitted
    ]

    step(STEPS[2])
    tested = _calibrated_fit(chosen, x_train, y_train, n_cat, vocab, config.seed, config.threads)
    oof = 1.0 / (1.0 + np.exp(-platt_apply(chosen.margins, y_train)))
    thresholds = choose_thresholds(
        oof, oof, y_train, y_train, config.sales_precision, config.max_disqualified_wins
    )
    readiness = tested.proba(x[test])
    test_scores = {
        "readiness": readiness,
        "potential": readiness,
        "frequency_score": _frequency(x_train, y_train, x[test], n_cat, config.seed),
    }
    y_test = y[test]
    groups = data.ids[test]
    metrics: dict[str, float] = {}
    intervals: dict[str, dict[str, tuple[float, float, float]]] = {}
    for name, scores in test_scores.items():
        metrics.update(
            {f"test_{name}_{m}": v for m, v in classification_metrics(y_test, scores).items()}
        )
        intervals[name] = bootstrap_intervals(y_test, scores, groups, seed=config.seed)
    routes = route_statistics(
        readiness, readiness, np.zeros(len(readiness)), y_test, y_test, thresholds
    )

    step(STEPS[3])
    # The registered model: the same candidate on every row given, calibrated on out-of-fold
    # margins of the same procedure over all rows (cross-fitting).
    final_encoder = FeatureEncoder(categorical, numeric, MIN_COUNT).fit(columns)
    x_all = final_encoder.transform(columns)
    vocab_all = [len(final_encoder.vocabulary_[name]) for name in categorical]
    refit = cross_fit(chosen.spec, x_all, y, n_cat, vocab_all, config.seed, config.threads)
    model = _calibrated_fit(refit, x_all, y, n_cat, vocab_all, config.seed, config.threads)

    step(STEPS[4])
    test_from = (
        "stratified random" if data.times is None else str(pd.Timestamp(data.times[test].min()))
    )
    info: dict[str, Any] = {
        **model_info(
            mode=MODE,
            cold_start=False,
            kinds={"ready": chosen.spec.name, "potential": chosen.spec.name},
            thresholds=thresholds,
            routes=routes,
            intervals=intervals,
            policy=routing_policy(config),
            leaderboard=leaderboard,
            drivers=_drivers(model, x_all, final_encoder.features_, config.seed),
            labels={name: name for name in feature_types},
            features=final_encoder.features_,
        ),
        "metrics": metrics,
        "custom": {},
        "id_column": config.id_column,
        "label": {"column": config.label, "positive": config.positive},
        "time_column": config.time,
        "feature_types": feature_types,
        "excluded": {t.name: t.note for t in data.types if t.kind == "excluded"},
        "single_feature_auc": {k: round(v, 4) for k, v in data.single_auc.items()},
        "leakage_warnings": {k: round(v, 4) for k, v in data.leaks.items()},
        "table_mapping": {
            "columns": dict(data.mapping.columns),
            "values": {k: dict(v) for k, v in data.mapping.values.items()},
            "dates": dict(data.mapping.dates),
        },
        "refit": {
            "rows": int(len(y)),
            "positives": int(y.sum()),
            "trees": refit.rounds,
            "calibration": "Platt scaling on out-of-fold margins (5-fold cross-fitting "
            "over all rows)",
        },
        "data": data.fingerprint,
        "split": {
            "holdout": "newest by --time" if data.times is not None else "stratified random",
            "test_from": test_from,
            "fit_rows": int(train.sum()),
            "validation_rows": "5-fold cross-validation",
            "test_rows": int(test.sum()),
        },
    }
    return TrainResult(
        scorer=LeadScorer(final_encoder, model, model, info),
        metrics=metrics,
        test_columns=_take(columns, test),
        test_ready=y_test,
        test_scores=test_scores,
        test_groups=groups,
        intervals=intervals,
        fingerprint=data.fingerprint,
        params={
            "mode": MODE,
            "id_column": config.id_column,
            "label": config.label,
            "positive": config.positive,
            "time": config.time or "",
            **{
                k: v
                for k, v in asdict(config).items()
                if k not in ("id_column", "label", "positive", "time")
            },
            "folds": FOLDS,
            "min_count": MIN_COUNT,
            "readiness_model": chosen.spec.name,
            "potential_model": chosen.spec.name,
            "cold_start": False,
        },
    )


def platt_apply(margins: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Calibrated logits of out-of-fold margins (Platt fitted on the same rows)."""
    a, b = platt(margins, y)
    return a * margins + b


def train_flat(
    path: str | Path, config: FlatConfig, mapping: TableMapping | None = None
) -> TrainResult:
    """`prepare` then `fit`: the whole flat mode without MLflow (for benchmarks and tests)."""
    return fit(prepare(path, config, mapping), config)


# ---------------------------------------------------------------------------------- printing


def inference_table(data: FlatData) -> Any:
    """What became of every column, as a rich table, with how to override it."""
    from rich.table import Table

    table = Table(
        title=f"Columns of {Path(data.path).name}: {len(data.y):,} labelled rows, "
        f"{int(data.y.sum()):,} converted"
        + (f", {data.unlabelled_rows:,} without a label left out" if data.unlabelled_rows else ""),
        caption="Override in a schema (--schema FILE): table: {features: {COLUMN: "
        "numeric | categorical | ignore}}",
    )
    for column in ("column", "used as", "how", "details", "AUC alone"):
        table.add_column(
            column, justify="right" if column == "AUC alone" else "left", overflow="fold"
        )
    for t in data.types:
        auc = data.single_auc.get(t.name)
        shown = "" if auc is None else f"{auc:.3f}"
        if auc is not None and auc > LEAKAGE_AUC:
            shown = f"[bold red]{shown} leak?[/]"
        table.add_row(
            t.name,
            "[dim]excluded[/]" if t.kind == "excluded" else t.kind,
            "schema" if t.source == "schema" else "inferred",
            t.note,
            shown,
        )
    return table


def leakage_messages(data: FlatData) -> list[str]:
    """One loud line per feature that alone predicts the label almost perfectly."""
    return [
        f"possible leakage: column '{name}' alone predicts '{data.label}' with ROC AUC "
        f"{auc:.3f} (> {LEAKAGE_AUC}); "
        "a column this predictive usually records what happened after the outcome was known. "
        "Training goes on with it; if it is not known when a lead is scored, exclude it: "
        f"table: {{features: {{{name}: ignore}}}} in the schema"
        for name, auc in sorted(data.leaks.items(), key=lambda item: -item[1])
    ]


def summary(result: TrainResult, published: Any, seconds: float) -> list[Any]:
    """The CLI's closing summary of a flat training run: hold-out metrics against the frequency
    score, routing, refit and registration."""
    from rich.table import Table

    info = result.scorer.info
    metrics = result.metrics
    out: list[Any] = []
    split = info["split"]
    how = (
        "the newest rows by " + str(info["time_column"])
        if info["time_column"]
        else "a stratified random sample"
    )
    table = Table(
        title=f"Hold-out ({split['test_rows']:,} rows, {how}; never used to fit or "
        "choose), 95% intervals"
    )
    table.add_column("metric")
    names = ("readiness", "frequency_score")
    for name in ("model", "frequency score"):
        table.add_column(name, justify="right")
    for metric in ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "ece"):
        table.add_row(
            metric, *("{:.3f} [{:.3f}, {:.3f}]".format(*result.intervals[n][metric]) for n in names)
        )
    out.append(table)
    gain = metrics["test_readiness_roc_auc"] - metrics["test_frequency_score_roc_auc"]
    out.append(
        f"Model: {info['model_kind']['readiness']} (chosen by 5-fold cross-validation "
        f"AUC); ROC AUC {gain:+.3f} over the frequency score."
    )
    routes = Table(title="Routing (thresholds from cross-validated scores, rates on the hold-out)")
    for column in ("route", "rule", "share", "conversion rate"):
        routes.add_column(column, justify="left" if column in ("route", "rule") else "right")
    rules = route_rules(Thresholds(**info["thresholds"]), flat=True)
    for route, stats in info["routes"].items():
        rate = stats["win_rate"]
        routes.add_row(
            route, rules[route], f"{stats['share']:.1%}", "-" if rate != rate else f"{rate:.1%}"
        )
    out.append(routes)
    warning = nurture_warning(info["routes"], Thresholds(**info["thresholds"]))
    if warning:
        out.append(f"[bold yellow]Routing warning:[/] {warning}")
    refit = info["refit"]
    out.append(
        f"Registered model refitted on all {refit['rows']:,} rows ({refit['positives']:,} "
        "converted) after the hold-out was scored; calibrated by cross-fitting."
    )
    if info["leakage_warnings"]:
        out.append(
            "[bold yellow]Leakage warnings:[/] "
            + ", ".join(
                f"{name} (AUC {auc:.3f} alone)" for name, auc in info["leakage_warnings"].items()
            )
        )
    out.append(
        f"Registered [bold]{info['model_name']}[/] version {published.version} (run "
        f"{published.run_id}) as challenger; "
        + ("[green]now champion[/]" if published.promoted else "[yellow]not champion[/]")
        + f": {published.reason}."
    )
    out.append(
        f"Model: {published.model_uri} in {published.tracking_uri} ({seconds:.0f} s end to end)"
    )
    report = getattr(published, "report", None)
    if report is not None:
        out.append(f"Report: {report}")
    out.append("Score a file: leadready score --table FILE --out scores.csv")
    return out
