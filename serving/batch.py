"""`leadready score --data DIR`: score every open lead of an export through the API's path."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pandas as pd

from leadready.features.build import Events, Leads, to_seconds
from leadready.features.contract import Crm, parse_moment
from leadready.features.outcome_rules import export_end
from leadready.serving.engine import Engine
from leadready.serving.explain import reason_column_names, reason_columns
from leadready.serving.store import LoadedModel

CHUNK = 25_000
"""Leads scored at once: tree contributions are computed faster for many rows at once
(features.model.GROUPED_ROWS)."""
TOP_IN_FILE = 3


def latest_time(crm: Crm) -> int:
    """The latest moment the export records: the default time to score it at."""
    end = export_end(crm.leads, crm.activities, crm.touches)
    assert end is not None  # every lead has a creation date
    return int(to_seconds(pd.Series([end]))[0])


def score_export(
    crm: Crm,
    loaded: LoadedModel,
    as_of: str | None,
    progress: Callable[[int, int], None] = lambda done, total: None,
    threads: int = os.cpu_count() or 1,
    top: int = TOP_IN_FILE,
) -> pd.DataFrame:
    """One row per open lead: id, readiness, potential, route, route reason, its `top` reasons
    up and down (none: no reason columns). A ContractError when `as_of` is no ISO 8601 time
    within the contract's date range."""
    moment = latest_time(crm) if as_of is None else parse_moment(as_of, "--as-of")
    return score_open_leads(crm, Engine(loaded), moment, progress, threads, top)


def score_open_leads(
    crm: Crm,
    engine: Engine,
    moment: int,
    progress: Callable[[int, int], None] = lambda done, total: None,
    threads: int = os.cpu_count() or 1,
    top: int = TOP_IN_FILE,
) -> pd.DataFrame:
    """`score_export` with an engine already loaded (and self-tested), at `moment` (Unix
    seconds): what a server that keeps its champion in memory scores uploads with."""
    leads_frame = crm.leads
    if "outcome" in leads_frame:
        leads_frame = leads_frame[leads_frame["outcome"] == "open"]
    positions = np.flatnonzero(to_seconds(leads_frame["created_at"]) <= moment)
    ids = pd.Index(crm.leads["lead_id"])
    custom = engine.info.custom
    missing = [name for name in custom if name not in crm.leads]
    if missing:
        raise ValueError(
            f"the model uses custom features {', '.join(missing)}; load the export "
            "with the schema it was trained with (--schema)"
        )
    leads = Leads.from_frame(crm.leads, custom)
    activities = Events.activities_from_frame(crm.activities, ids)
    touches = Events.touches_from_frame(crm.touches, ids)
    rows = ids.get_indexer(leads_frame["lead_id"].to_numpy()[positions])
    parts = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        prediction = engine.predict(
            leads,
            activities,
            touches,
            chunk,
            np.full(len(chunk), moment, dtype=np.int64),
            threads=threads,
            explain=top > 0,
        )
        part = {
            "lead_id": ids[chunk],
            "readiness": prediction.readiness.round(4),
            "potential": prediction.potential.round(4),
            "route": prediction.routes,
            "route_reason": engine.route_reasons(prediction),
        }
        if top > 0:
            part |= reason_columns(
                prediction.contributions, prediction.columns, engine.features, engine.labels, top
            )
        parts.append(pd.DataFrame(part))
        progress(start + len(chunk), len(rows))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(SCORED))


SCORED = ("lead_id", "readiness", "potential", "route", "route_reason")
"""The columns of the scores of `score_open_leads`, before its reasons."""


def scored_columns(top: int) -> list[str]:
    """The columns of the scores of `score_open_leads` with its `top` reasons up and down."""
    return [*SCORED, *reason_column_names(top)]
