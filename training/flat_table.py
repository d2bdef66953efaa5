"""Flat mode, before any fitting: read a table (one row per lead), check it, infer its column
types and scan every feature alone for leakage, so the CLI can show what was inferred (and warn
of leaks) before `training.flat.fit` runs.

`prepare` reads the table (schema `table` section applied), checks it is usable (or raises
`ContractError` / `FlatTrainingError` with a message for the person who made the file), infers
the column types (docs/flat-mode.md) and measures each feature's single-column ROC AUC.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from leadready.features.contract import CheckedTable, ContractError, check_dates, quoted
from leadready.features.metadata import SCHEMA_IGNORED
from leadready.features.schema import TableMapping
from leadready.features.table import MISSING_TOKENS, flat_columns, numbers, read_flat
from leadready.training.result import TrainingError

NUMERIC_SHARE = 0.98
"""A column is numeric when at least this share of its non-empty cells are numbers (the rest,
like 'n/a' or '?', count as missing)."""
ID_LIKE_SHARE = 0.9
"""A text column whose non-empty cells are at least this share distinct is an id or free text."""
DATE_SHARE = 0.9
MAX_RELABEL_VALUES = 20
LEAKAGE_AUC = 0.98
MIN_PER_CLASS = 20
FOLDS = 5

_DATE = re.compile(
    r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T]\d{1,2}:\d{2}.*)?$"
)


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


def read_labels(
    frame: pd.DataFrame, config: FlatConfig, path: str
) -> tuple[np.ndarray, np.ndarray]:
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
    shown = ", ".join(quoted(v) for v in distinct[:8]) + (" ..." if len(distinct) > 8 else "")
    if not hit.any():
        raise FlatTrainingError(
            f"{path}: no row has {config.label} = {quoted(positive)}, so there is one class only "
            f"(values found: {shown or 'none'}); --positive must be the value that marks a "
            "converted lead"
        )
    if hit.all():
        raise FlatTrainingError(
            f"{path}: every labelled row has {config.label} = {quoted(positive)}, so there is one "
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
        shown = ", ".join(quoted(v) for v in list(dict.fromkeys(ids[duplicated]))[:5])
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
            out.append(ColumnType(name, "excluded", "schema", SCHEMA_IGNORED))
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
        shown = quoted(distinct[0]) if len(distinct) else "empty"
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
            name,
            "excluded",
            "inferred",
            f"dates (e.g. {quoted(filled.iloc[0])}); only --time uses dates",
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
                f"{quoted(v)} -> {'positive' if m else 'negative'}"
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
            f"table has {', '.join(quoted(c) for c in frame.columns) or 'no columns'}"
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
            f"{', '.join(quoted(c) for c in unknown)}, not columns of the table"
        )
    problems = _check_id(frame, config.id_column, path)
    if problems:
        raise ContractError(
            f"{path}: the --id column is not an id:\n" + "\n".join(f"- {p}" for p in problems)
        )
    times = _times(frame, config.time, mapping, path) if config.time else None
    labelled, y_all = read_labels(frame, config, path)
    rows = np.flatnonzero(labelled)
    data = frame.iloc[rows].reset_index(drop=True)
    y = y_all[rows]
    for cls, name in ((1, "converted"), (0, "not converted")):
        if (y == cls).sum() < MIN_PER_CLASS:
            raise FlatTrainingError(
                f"{path}: only {(y == cls).sum()} {name} rows ({config.label} "
                f"{'=' if cls else '!='} {quoted(config.positive)}); flat training needs at least "
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
