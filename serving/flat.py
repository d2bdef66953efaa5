"""Scoring flat tables: `leadready score --table FILE` and the workspace's flat uploads.

A flat model is trained on one row per lead with engagement already counted (see
docs/flat-mode.md and `training.flat`). A new file's columns are read and coerced exactly as
training read them (`features.table`, with the types recorded in the model's metadata), then
scored here with the API's scoring step.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from leadready.features.contract import cell_text
from leadready.features.metadata import FlatDetails, ModelInfo
from leadready.features.registry import NoChampionError
from leadready.features.routing import route_reason
from leadready.features.table import flat_columns
from leadready.serving.explain import reason_columns, reasons, themed
from leadready.serving.predict import Prediction, predict
from leadready.serving.store import LoadedModel

CHUNK = 5000
TOP_IN_FILE = 3


class FlatModel:
    """A loaded flat-table champion, checked once at load like the API's engine."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.scorer = loaded.scorer
        self.info = loaded.scorer.info
        self.details = flat_details(loaded)
        self.labels = self.info.labels
        self.model_ref = loaded.ref
        probe = pd.DataFrame(
            {name: [""] for name in (self.details.id_column, *self.details.feature_types)}
        )
        try:
            score_table(probe, loaded)
        except Exception as exc:  # any failure means the same for every file
            raise NoChampionError(
                f"version {loaded.version} of '{loaded.name}' cannot score with this version "
                f"of leadready ({type(exc).__name__}: {exc}); retrain with `leadready train "
                "--table FILE`"
            ) from None


def flat_details(loaded: LoadedModel) -> FlatDetails:
    """The flat-table section of a model's metadata; NoChampionError for a CRM-export model."""
    details = loaded.scorer.info.flat
    if details is None:
        raise NoChampionError(
            f"version {loaded.version} of '{loaded.name}' was trained on CRM exports, not on a "
            "flat table"
        )
    return details


def check_table(frame: pd.DataFrame, details: FlatDetails, where: str) -> None:
    """Raise ValueError naming what a table lacks to be scored by this model."""
    needed = [details.id_column, *details.feature_types]
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
    columns = flat_columns(frame, flat_details(loaded).feature_types)
    return predict_columns(columns, loaded, threads)


def predict_columns(
    columns: dict[str, np.ndarray], loaded: LoadedModel, threads: int = 1
) -> Prediction:
    """`predict_table` on feature columns already built (`flat_columns`), such as the
    workspace's what-if variants of one row."""
    rows = len(next(iter(columns.values())))
    thresholds = loaded.scorer.info.thresholds
    return predict(loaded.scorer, columns, np.zeros(rows), thresholds, threads)


def reason_for(info: ModelInfo, route: str, readiness: float, percent: bool = False) -> str:
    return route_reason(
        route, readiness, readiness, info.thresholds, potential_name="readiness", percent=percent
    )


def explain_rows(columns: dict[str, np.ndarray], loaded: LoadedModel) -> list[dict[str, Any]]:
    """Per row of feature columns (`flat_columns`), what the workspace shows of a lead:
    readiness, potential, route, route reason (in percentages, as the workspace shows scores),
    the reasons object (contributions in plain words, log-odds) and the reasons chart's groups
    (`themes`: a flat row's columns have no themes, so each is its own)."""
    info = loaded.scorer.info
    p = predict_columns(columns, loaded)
    said = reasons(p.contributions, p.columns, info.features, info.labels)
    return [
        {
            "readiness": float(p.readiness[i]),
            "potential": float(p.potential[i]),
            "route": str(p.routes[i]),
            "route_reason": reason_for(info, str(p.routes[i]), float(p.readiness[i]), True),
            "reasons": said[i],
            "themes": themed(
                p.contributions[i], p.columns, i, info.features, info.labels, grouped=False
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
    details = flat_details(loaded)
    check_table(frame, details, where)
    id_column = details.id_column
    ids = cell_text(frame[id_column]).to_numpy(dtype=object)
    features, labels = info.features, info.labels
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
        part |= reason_columns(p.contributions, p.columns, features, labels, TOP_IN_FILE)
        parts.append(pd.DataFrame(part))
        progress(rows.stop, n)
    if not parts:
        return pd.DataFrame(columns=[id_column, "readiness", "potential", "route", "route_reason"])
    return pd.concat(parts, ignore_index=True)
