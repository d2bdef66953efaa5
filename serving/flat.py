"""Flat-table models: columns as training saw them, and `leadready score --table FILE`.

A flat model is trained on one row per lead with engagement already counted (see
docs/flat-mode.md and `training.flat`). Its metadata records, per feature column, the type
training settled on (`info["feature_types"]`: numeric or categorical) and the id column; scoring
coerces a new file's columns with exactly those types, never by inferring them again.

Serving never imports training: this module holds what both sides need, training imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from leadready.features.contract import ContractError, read_table
from leadready.features.schema import TableMapping
from leadready.serving.explain import reasons, top_labels
from leadready.serving.predict import Prediction, predict
from leadready.serving.routing import Thresholds, route_reason
from leadready.serving.store import LoadedModel, NoChampionError

MODE = "flat"
CHUNK = 5000
TOP_IN_FILE = 3
MISSING_CATEGORY = "unknown"
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?"})
"""Cells a numeric column treats as empty (compared stripped and lower-cased)."""


class FlatModel:
    """A loaded flat-table champion, checked once at load like the API's engine."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.scorer = loaded.scorer
        self.info: dict[str, Any] = loaded.scorer.info
        self.labels: dict[str, str] = self.info["labels"]
        self.model_ref = loaded.ref
        probe = pd.DataFrame(
            {name: [""] for name in (self.info["id_column"], *self.info["feature_types"])}
        )
        try:
            score_table(probe, loaded)
        except Exception as exc:  # any failure means the same for every file
            raise NoChampionError(
                f"version {loaded.version} of '{loaded.name}' cannot score with this version "
                f"of leadready ({type(exc).__name__}: {exc}); retrain with `leadready train "
                "--table FILE`"
            ) from None


def text(series: pd.Series) -> pd.Series:
    """A column as stripped strings, '' where missing (parquet nulls and NaN included);
    dates from parquet become ISO 8601 text."""
    if pd.api.types.is_datetime64_any_dtype(series):
        series = series.dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
    elif series.dtype != object and not pd.api.types.is_string_dtype(series):
        series = series.astype(object).where(series.notna(), "")
    return series.fillna("").astype(str).str.strip()


def numbers(values: pd.Series) -> pd.Series:
    """Stripped text to floats; NaN for empty cells, the usual missing tokens and anything
    that is not a number."""
    missing = values.str.lower().isin(MISSING_TOKENS)
    parsed = pd.to_numeric(values.mask(missing, None), errors="coerce").astype(float)
    return parsed.mask(np.isinf(parsed))  # 'inf' parses, but is no count or amount


def read_flat(path: str | Path, mapping: TableMapping | None = None) -> pd.DataFrame:
    """The table as text columns ('' when empty), after the schema's renames and value maps."""
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"{path}: no such file; expected a .csv or .parquet table")
    frame = read_table(path)
    if mapping is not None:
        frame = mapping.apply(frame)
    return pd.DataFrame({name: text(frame[name]) for name in frame.columns})


def stored_mapping(info: Mapping[str, Any]) -> TableMapping:
    """The schema `table` section (renames, value maps, date formats) a model was trained with,
    so a file from the same export scores without passing --schema again."""
    stored = info.get("table_mapping") or {}
    return TableMapping(
        columns=dict(stored.get("columns", {})),
        values={k: dict(v) for k, v in stored.get("values", {}).items()},
        dates=dict(stored.get("dates", {})),
    )


def flat_columns(frame: pd.DataFrame, feature_types: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The model's feature columns from a table: numbers as float (NaN when missing or not a
    number), categories as text ('unknown' when empty). The caller checks columns exist."""
    out: dict[str, np.ndarray] = {}
    for name, kind in feature_types.items():
        values = text(frame[name])
        if kind == "numeric":
            out[name] = numbers(values).to_numpy(dtype=np.float64)
        else:
            out[name] = values.mask(values == "", MISSING_CATEGORY).to_numpy(dtype=object)
    return out


def check_table(frame: pd.DataFrame, info: Mapping[str, Any], where: str) -> None:
    """Raise ValueError naming what a table lacks to be scored by this model."""
    needed = [info["id_column"], *info["feature_types"]]
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise ValueError(
            f"{where}: missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{c}'" for c in missing)
            + " that the model was trained with (when the export names them differently, give "
            "a schema whose table section renames them: docs/flat-mode.md)"
        )


def predict_table(frame: pd.DataFrame, loaded: LoadedModel, threads: int = 1) -> Prediction:
    """Readiness, route and exact contributions of every row of a table (checked columns); a
    table has no hand-raise signal."""
    columns = flat_columns(frame, loaded.scorer.info["feature_types"])
    return predict_columns(columns, loaded, threads)


def predict_columns(
    columns: dict[str, np.ndarray], loaded: LoadedModel, threads: int = 1
) -> Prediction:
    """`predict_table` on feature columns already built (`flat_columns`), such as the
    workspace's what-if variants of one row."""
    rows = len(next(iter(columns.values())))
    thresholds = Thresholds(**loaded.scorer.info["thresholds"])
    return predict(loaded.scorer, columns, np.zeros(rows), thresholds, threads)


def reason_for(info: Mapping[str, Any], route: str, readiness: float) -> str:
    return route_reason(
        route, readiness, readiness, Thresholds(**info["thresholds"]), potential_name="readiness"
    )


def explain_rows(columns: dict[str, np.ndarray], loaded: LoadedModel) -> list[dict[str, Any]]:
    """Per row of feature columns (`flat_columns`), what the API gives a lead: readiness,
    potential, route, route reason and the reasons object (contributions in plain words,
    log-odds)."""
    info = loaded.scorer.info
    p = predict_columns(columns, loaded)
    return [
        {
            "readiness": float(p.readiness[i]),
            "potential": float(p.potential[i]),
            "route": str(p.routes[i]),
            "route_reason": reason_for(info, str(p.routes[i]), float(p.readiness[i])),
            "reasons": reasons(
                p.contributions[i], p.columns, i, list(info["features"]), info["labels"]
            ),
        }
        for i in range(len(p.readiness))
    ]


def score_table(
    frame: pd.DataFrame,
    loaded: LoadedModel,
    progress: Callable[[int, int], None] = lambda done, total: None,
    threads: int = os.cpu_count() or 1,
    where: str = "the table",
) -> pd.DataFrame:
    """One row per table row: id, readiness, potential, route, route reason, top reasons.

    `frame` is the table after the schema's renames and value maps. Potential equals readiness
    (a flat table has one label), kept so the file has the columns of `score --data`."""
    info = loaded.scorer.info
    check_table(frame, info, where)
    id_column = info["id_column"]
    ids = text(frame[id_column]).to_numpy(dtype=object)
    features: list[str] = list(info["features"])
    labels: dict[str, str] = info["labels"]
    parts = []
    n = len(frame)
    for start in range(0, n, CHUNK):
        rows = slice(start, min(start + CHUNK, n))
        p = predict_table(frame.iloc[rows], loaded, threads)
        part: dict[str, object] = {
            id_column: ids[rows],
            "readiness": p.readiness.round(4),
            "potential": p.potential.round(4),
            "route": p.routes,
            "route_reason": [
                reason_for(info, route, r) for r, route in zip(p.readiness, p.routes, strict=True)
            ],
        }
        up, down = top_labels(p.contributions, p.columns, features, labels, TOP_IN_FILE)
        for k in range(TOP_IN_FILE):
            for side, words in (("up", up), ("down", down)):
                part[f"reason_{side}_{k + 1}"] = [row[k] if len(row) > k else "" for row in words]
        parts.append(pd.DataFrame(part))
        progress(rows.stop, n)
    if not parts:
        return pd.DataFrame(columns=[id_column, "readiness", "potential", "route", "route_reason"])
    return pd.concat(parts, ignore_index=True)
