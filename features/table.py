"""Flat-table columns as training saw them, for both sides: reading a table, the schema
mapping a model was trained with, and coercing columns to the types training settled on.

A flat model is trained on one row per lead with engagement already counted (see
docs/flat-mode.md). Its metadata records, per feature column, the type training settled on
(`info.flat.feature_types`: numeric or categorical) and the id column; scoring coerces a new
file's columns with exactly those types, never by inferring them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from leadready.features.contract import ContractError, cell_text, read_table
from leadready.features.metadata import FlatDetails
from leadready.features.schema import TableMapping

MODE = "flat"
"""The `mode` a flat model's metadata records."""
MISSING_CATEGORY = "unknown"
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?"})
"""Cells a numeric column treats as empty (compared stripped and lower-cased)."""


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
    if frame.empty:
        raise ContractError(f"{path}: no rows; expected one row per lead below the header")
    if mapping is not None:
        frame = mapping.apply(frame)
    return pd.DataFrame({name: cell_text(frame[name]) for name in frame.columns})


def stored_mapping(details: FlatDetails) -> TableMapping:
    """The schema `table` section (renames, value maps, date formats, display and actionable
    columns) a model was trained with,
    so a file from the same export scores without passing --schema again."""
    stored = details.table_mapping
    return TableMapping(
        columns=dict(stored.columns),
        values={k: dict(v) for k, v in stored.values.items()},
        dates=dict(stored.dates),
        display=tuple(stored.display),
        actionable=tuple(stored.actionable),
    )


def flat_columns(frame: pd.DataFrame, feature_types: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The model's feature columns from a table: numbers as float (NaN when missing or not a
    number), categories as text ('unknown' when empty). The caller checks columns exist."""
    out: dict[str, np.ndarray] = {}
    for name, kind in feature_types.items():
        values = cell_text(frame[name])
        if kind == "numeric":
            out[name] = numbers(values).to_numpy(dtype=np.float64)
        else:
            out[name] = values.mask(values == "", MISSING_CATEGORY).to_numpy(dtype=object)
    return out
