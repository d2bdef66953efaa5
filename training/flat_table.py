"""Flat mode, before any fitting: read a table (one row per lead), check it, infer its column
types, leave out ids and scan every feature alone for leakage, so the CLI can show what was
inferred and excluded before `training.flat.fit` runs.

`prepare` reads the table (schema `table` section applied), checks it is usable (or raises
`ContractError` / `FlatTrainingError` with a message for the person who made the file), infers
the column types (docs/flat-mode.md), measures each feature's single-column ROC AUC out of fold
and excludes suspected leakage. One rule overrides every exclusion: a column whose type the
schema declares (`table: {features: {COLUMN: numeric | categorical}}`) is used as declared, and
a declared column suspected of leakage is warned about instead. `scan_custom_features` runs
the same checks on the custom features of a CRM export.
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

from leadready.features.contract import (
    CheckedTable,
    ContractError,
    Crm,
    check_dates,
    quoted,
    unmatched_renames,
    value_key,
    value_keys,
)
from leadready.features.exclusions import DISPLAY_NOTE, LEAKAGE, STRONGEST_SHOWN
from leadready.features.metadata import SCHEMA_IGNORED, TOO_GOOD_AUC, Policy
from leadready.features.schema import TableMapping
from leadready.features.table import (
    MISSING_CATEGORY,
    MISSING_TOKENS,
    flat_columns,
    numbers,
    read_flat,
)
from leadready.training.evaluate import DEFAULT_POLICY
from leadready.training.result import TrainingError

NUMERIC_SHARE = 0.98
"""A column is numeric when at least this share of its non-empty cells are numbers (the rest,
like 'n/a' or '?', count as missing)."""
ID_LIKE_SHARE = 0.9
"""A text column whose non-empty cells are at least this share distinct is an id or free text
(and an id when this share of them are UUIDs, hex digests or email addresses)."""
SEQUENCE_SPAN = 100
"""A numeric column is an id (a running number, like the Leads export's `Lead Number`) when its
values are integers, each in one row only, spanning at most this many times their count (gaps
of up to 99 numbers in 100). `Lead Number` spans 8.8 times its 9,237 rows; a measured integer
(seconds on the site, a score) repeats values long before it gets that spread out."""
DATE_SHARE = 0.9
MAX_RELABEL_VALUES = 20
LEAKAGE_AUC = 0.85
"""A feature that alone ranks the outcome with at least this ROC AUC (out of fold, see
`single_feature_auc`) is suspected leakage. Measured on the Leads export (`prepare`, seed 0):
`Tags`, the notes sales write about the outcome ("Closed by Horizzon", "Lost to EINS"), scores
0.918; the next column 0.794 (`Lead Quality`, sales' own rating) and engagement at most 0.761
(time on the website). On the sample CRM's leads table (`leadready sample-data`, 5,000 leads,
seed 7, as a flat table) no column exceeds 0.663. The line sits between legitimate and leaked
columns: one column at 0.85 ranks leads about as well as a good whole model on real conversion
data."""
ONE_CLASS_FILL = 20.0
"""A feature filled (or left empty) at least this many times as often for one outcome as for
the other is suspected leakage: a field sales fill in after the fact ("lost reason", "won
on"). Measured: on the Leads export the most lopsided column, `Lead Quality`, is filled for 71%
of converted leads and 34% of the others (2.1 times as often; a lead's own form answers 1.5
times); the sample's columns at most 1.1 times."""
ONE_CLASS_MIN_SHARE = 0.05
"""The lopsided side (filled or empty) must cover at least this share of its outcome's rows,
and MIN_PER_CLASS rows, to count: `Lead Source` is empty for 0.8% of the Leads export's
converted leads and 0.1% of the others, which is no evidence of anything."""
MIN_PER_CLASS = 20
FOLDS = 5

_DATE = re.compile(
    r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T]\d{1,2}:\d{2}.*)?$"
)
_ID_SHAPES = {
    "UUIDs": re.compile(r"^\{?[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}\}?$", re.IGNORECASE),
    "hashes": re.compile(r"^[0-9a-f]{16,}$", re.IGNORECASE),
    "email addresses": re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
}


class FlatTrainingError(TrainingError):
    """A flat table that reads fine but cannot train a model (one class, a copy of the label)."""


@dataclass(frozen=True)
class FlatConfig:
    id_column: str
    label: str
    positive: str
    time: str | None = None
    policy: Policy = DEFAULT_POLICY
    test_share: float = 0.2
    seed: int = 0
    threads: int = 2


@dataclass(frozen=True)
class ColumnType:
    """What became of one column: `kind` is numeric, categorical or excluded; `source` is
    'inferred' or 'schema'; `note` says why, in words. `keep_as` is the kind the schema can
    declare to use a column the id or leakage checks excluded (empty otherwise)."""

    name: str
    kind: str
    source: str
    note: str
    keep_as: str = ""


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
    leakage: dict[str, str] = field(default_factory=dict)
    """Suspected leakage, column -> evidence: excluded, or used because the schema declares it."""

    @property
    def feature_types(self) -> dict[str, str]:
        return {t.name: t.kind for t in self.types if t.kind != "excluded"}

    @property
    def leaks(self) -> dict[str, float]:
        """Suspected leakage the model still uses (declared in the schema), with its AUC alone."""
        return {name: self.single_auc[name] for name in self.leakage if name in self.feature_types}


# ---------------------------------------------------------------------------------- reading


def _where(frame: pd.DataFrame, path: str, mask: np.ndarray) -> str:
    table = CheckedTable.of(path, frame)
    return table.where(mask)


def read_labels(
    frame: pd.DataFrame, config: FlatConfig, path: str
) -> tuple[np.ndarray, np.ndarray]:
    """(labelled mask, 0/1 labels of all rows); the positive value is matched exactly, then
    as `value_key` folds it (ignoring case, spaces and punctuation), then as a number."""
    values = frame[config.label]
    labelled = (values != "").to_numpy()
    observed = values[labelled]
    positive = config.positive.strip()
    hit = observed == positive
    if not hit.any():
        hit = value_keys(observed) == value_key(positive)
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
        if name in mapping.display:
            out.append(ColumnType(name, "excluded", "schema", DISPLAY_NOTE))
        elif override == "ignore":
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
        note = id_note(parsed.dropna(), len(values), numeric=True)
        if note:
            return ColumnType(name, "excluded", "inferred", note, "numeric")
        return ColumnType(name, "numeric", "inferred", _describe(values, "numeric"))
    if declared_date or (len(filled) and filled.str.match(_DATE).mean() >= DATE_SHARE):
        return ColumnType(
            name,
            "excluded",
            "inferred",
            f"dates (e.g. {quoted(filled.iloc[0])}); only --time uses dates",
        )
    note = id_note(filled, len(values), numeric=False)
    if note:
        return ColumnType(name, "excluded", "inferred", note, "categorical")
    return ColumnType(name, "categorical", "inferred", _describe(values, "categorical"))


def id_note(present: pd.Series, rows: int, numeric: bool) -> str | None:
    """Why a column's `present` (non-missing) values, numbers or text, make it an id rather
    than a feature, or None: a running number (integers, each once, spanning at most
    SEQUENCE_SPAN times their count), or text at least ID_LIKE_SHARE distinct (named by its
    shape: UUIDs, hashes, email addresses, else free text)."""
    if len(present) < MIN_PER_CLASS:
        return None
    counted = f"{present.nunique():,} distinct values in {rows:,} rows"
    if numeric:
        sequence = (
            present.is_unique
            and not (present % 1 != 0).any()
            and present.max() - present.min() + 1 <= SEQUENCE_SPAN * len(present)
        )
        return f"an id ({counted}, a sequence)" if sequence else None
    if present.nunique() < ID_LIKE_SHARE * len(present):
        return None
    for shape, pattern in _ID_SHAPES.items():
        if present.str.match(pattern).mean() >= ID_LIKE_SHARE:
            return f"an id ({counted}, {shape})"
    return f"an id or free text ({counted})"


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


def leakage_evidence(filled: np.ndarray, auc: float, y: np.ndarray) -> str | None:
    """Why a feature looks like it records the outcome, in words, or None: it alone ranks the
    outcome with ROC AUC `auc` >= LEAKAGE_AUC, or it is filled (`filled`: not missing, per row)
    or empty for one outcome at least ONE_CLASS_FILL times as often as for the other (see the
    constants)."""
    if auc >= LEAKAGE_AUC:
        return f"alone it ranks the outcome with ROC AUC {auc:.3f} (out of fold; >= {LEAKAGE_AUC})"
    for side, mask in (("filled", filled), ("empty", ~filled)):
        converted, others = mask[y == 1], mask[y == 0]
        high, low = (
            (converted, others) if converted.mean() >= others.mean() else (others, converted)
        )
        if (
            high.mean() >= ONE_CLASS_MIN_SHARE
            and high.sum() >= MIN_PER_CLASS
            and high.mean() >= ONE_CLASS_FILL * low.mean()
        ):
            return (
                f"{side} for {converted.mean():.0%} of converted leads and {others.mean():.0%} "
                f"of the others (>= {ONE_CLASS_FILL:g} times as often for one outcome: filled in "
                "after it?)"
            )
    return None


def _filled(values: pd.Series, kind: str) -> np.ndarray:
    """Per row of a table's text column, whether it holds a value (a number, if numeric)."""
    return (numbers(values).notna() if kind == "numeric" else values != "").to_numpy()


# ---------------------------------------------------------------------------------- prepare


def prepare(path: str | Path, config: FlatConfig, mapping: TableMapping | None = None) -> FlatData:
    """Read, check, infer types and scan for leakage; raise with a clear message if unusable."""
    mapping = mapping or TableMapping()
    path = str(path)
    frame = read_flat(path, mapping)
    if unmatched := mapping.unmatched(list(frame.columns)):
        raise ContractError(
            "\n".join(unmatched_renames(unmatched, Path(path), list(frame.columns)))
        )
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
    for key, named_columns in (
        ("features", mapping.features),
        ("display", mapping.display),
        ("actionable", mapping.actionable),
    ):
        unknown = [c for c in named_columns if c not in frame]
        if unknown:
            raise ContractError(
                f"{path}: the schema's table.{key} names "
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
    candidates = {t.name: t.kind for t in types if t.kind != "excluded"}
    columns = flat_columns(data, candidates)
    single = {
        name: single_feature_auc(columns[name], kind, y, config.seed)
        for name, kind in candidates.items()
    }
    leakage = {
        name: evidence
        for name, kind in candidates.items()
        if (evidence := leakage_evidence(_filled(data[name], kind), single[name], y))
    }
    types = [
        ColumnType(t.name, "excluded", t.source, LEAKAGE + leakage[t.name], t.kind)
        if t.name in leakage and t.source == "inferred"
        else t
        for t in types
    ]
    if all(t.kind == "excluded" for t in types):
        raise FlatTrainingError(
            f"{path}: no usable feature columns; every column other than "
            "--id, --label and --time was excluded (see the summary)"
        )
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
        leakage=leakage,
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


def exclusion_notes(data: FlatData) -> list[str]:
    """One line per column the id or leakage checks left out: why, and how to keep it."""
    return [
        f"'{t.name}' excluded as {t.note}; to use it, declare it in the schema: "
        f"table: {{features: {{{t.name}: {t.keep_as}}}}}"
        for t in data.types
        if t.kind == "excluded" and t.keep_as
    ]


def leakage_messages(data: FlatData) -> list[str]:
    """One loud line per suspected leak the model still uses (its schema declares it)."""
    return [
        f"suspected leakage: column '{name}' predicts '{data.label}' suspiciously well: "
        f"{data.leakage[name]}. The schema declares it, so training goes on with it; if it is "
        "not known when a lead is scored, remove it from the schema's table.features or mark "
        f"it: table: {{features: {{{name}: ignore}}}}"
        for name in sorted(data.leaks, key=lambda name: -data.leaks[name])
    ]


def holdout_warning(auc: float, data: FlatData) -> str | None:
    """A warning when the hold-out ROC AUC is at least TOO_GOOD_AUC, naming the inputs that
    alone rank the outcome best; None otherwise."""
    if auc < TOO_GOOD_AUC:
        return None
    used = data.feature_types
    strongest = sorted((n for n in data.single_auc if n in used), key=lambda n: -data.single_auc[n])
    shown = ", ".join(
        f"'{n}' (AUC {data.single_auc[n]:.3f} alone)" for n in strongest[:STRONGEST_SHOWN]
    )
    return (
        f"hold-out ROC AUC {auc:.3f} is too good to be true (>= {TOO_GOOD_AUC}): scores of real "
        "leads rarely rank this well, so an input probably records the outcome. Strongest "
        f"inputs: {shown}. Keep only columns known when a new lead is scored; exclude one "
        "with table: {features: {COLUMN: ignore}} in the schema"
    )


# ------------------------------------------------- the same checks on a CRM export's features


@dataclass(frozen=True)
class CustomScan:
    """The id and leakage checks on a CRM export's custom lead features: id-like features
    (feature -> note), suspected leakage (feature -> evidence) and each feature's ROC AUC alone
    on the closed leads, won against lost (measured when both outcomes have MIN_PER_CLASS)."""

    ids: dict[str, str] = field(default_factory=dict)
    leakage: dict[str, str] = field(default_factory=dict)
    single_auc: dict[str, float] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """One line per suspect: the schema declares these features, so they are used."""
        return [
            *(
                f"custom feature '{name}' looks like {note}: what a model learns from an id "
                "does not carry over to new leads; remove it from the schema's leads.features"
                for name, note in self.ids.items()
            ),
            *(
                f"suspected leakage: custom feature '{name}' tells won from lost leads "
                f"suspiciously well: {evidence}. The schema declares it, so training goes on "
                "with it, but the version is not made champion automatically; if it is filled "
                "in once the outcome is known, remove it from the schema's leads.features"
                for name, evidence in self.leakage.items()
            ),
        ]


def scan_custom_features(crm: Crm, seed: int = 0) -> CustomScan:
    """The id and leakage checks above on the custom lead features of a CRM export (declared
    in its schema's `leads.features`, so used whatever the checks find). Leakage is measured on
    the closed leads, won against lost."""
    closed = crm.leads["outcome"].isin(("won", "lost")).to_numpy()
    y = (crm.leads["outcome"][closed] == "won").to_numpy(dtype=np.int64)
    scan = CustomScan()
    for name, kind in crm.custom.items():
        values = crm.leads[name]  # floats if numeric, else text with MISSING_CATEGORY for empty
        numeric = kind == "numeric"
        filled = (values.notna() if numeric else values != MISSING_CATEGORY).to_numpy()
        note = id_note(values[filled], len(values), numeric)
        if note:
            scan.ids[name] = note
        elif min(y.sum(), len(y) - y.sum()) >= MIN_PER_CLASS:
            auc = single_feature_auc(values.to_numpy()[closed], kind, y, seed)
            scan.single_auc[name] = auc
            evidence = leakage_evidence(filled[closed], auc, y)
            if evidence:
                scan.leakage[name] = evidence
    return scan
