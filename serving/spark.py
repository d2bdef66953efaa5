"""`leadready score --data DIR --engine spark`: the open leads of an export scored on Apache
Spark, per group of leads, by the local engine's own `serving.batch.score_open_leads`
(docs/spark.md)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from leadready.features.contract import Crm, parse_moment
from leadready.features.spark import map_lead_groups
from leadready.serving.batch import TOP_IN_FILE, latest_time, score_open_leads, scored_columns
from leadready.serving.engine import Engine
from leadready.serving.store import LoadedModel

if TYPE_CHECKING:
    from pyspark import Broadcast
    from pyspark.sql import SparkSession

_ENGINES: dict[tuple[str, str, str], Engine] = {}
"""The engine of each model a Spark worker process scored with: loaded (and self-tested) once per
worker, not once per group."""


def _engine(model: Broadcast[LoadedModel]) -> Engine:
    loaded = model.value
    key = (loaded.name, loaded.version, loaded.run_id)
    if key not in _ENGINES:
        _ENGINES[key] = Engine(loaded)
    return _ENGINES[key]


def scores_schema(top: int) -> str:
    """The Spark DDL of `score_open_leads`'s frames."""
    kinds = {"readiness": "double", "potential": "double"}
    return ", ".join(f"{name} {kinds.get(name, 'string')}" for name in scored_columns(top))


def score_export_spark(
    crm: Crm,
    loaded: LoadedModel,
    as_of: str | None,
    spark: SparkSession,
    staging: Path,
    top: int = TOP_IN_FILE,
) -> pd.DataFrame:
    """`serving.batch.score_export` on Spark: the same rows, in the same order. The champion the
    driver loaded is broadcast to the workers (they need no access to the registry). `staging`:
    a folder every worker can read (created, then removed)."""
    moment = latest_time(crm) if as_of is None else parse_moment(as_of, "--as-of")
    engine = Engine(loaded)
    # No lead: the checks of score_open_leads (custom features the export lacks) on the driver,
    # before a Spark job starts.
    empty = Crm(crm.leads.head(0), crm.activities.head(0), crm.touches.head(0))
    score_open_leads(empty, engine, moment, top=top)
    model = spark.sparkContext.broadcast(loaded)
    folder = staging / f"leadready-spark-{uuid.uuid4().hex}"

    def score(part: Crm) -> pd.DataFrame:
        frame = score_open_leads(part, _engine(model), moment, threads=1, top=top)
        return frame.reindex(columns=scored_columns(top))

    try:
        scored = map_lead_groups(spark, crm, score, scores_schema(top), folder)
    finally:
        model.unpersist()
        shutil.rmtree(folder, ignore_errors=True)
    rank = pd.Index(crm.leads["lead_id"]).get_indexer(scored["lead_id"])
    return scored.iloc[rank.argsort(kind="stable")].reset_index(drop=True)
