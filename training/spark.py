"""`leadready train --data DIR --engine spark`: the snapshot feature table built on Apache Spark,
per group of leads, by the local engine's own `training.examples.snapshot_features`; the fit
runs on the driver, on the whole table, as it does locally (docs/spark.md)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leadready.features.build import CATEGORICAL, FEATURES
from leadready.features.contract import Crm
from leadready.features.spark import map_lead_groups
from leadready.training.examples import Snapshots, make_snapshots, snapshot_features

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Features = Callable[[Crm, Snapshots], dict[str, np.ndarray]]
LEAD, AS_OF = "__lead_id", "__as_of"


def spark_snapshot_features(
    spark: SparkSession, staging: Path, step_days: int, horizon_days: int
) -> Features:
    """`snapshot_features` on Spark, for snapshots `make_snapshots(leads, step_days,
    horizon_days)` makes: each group makes its leads' snapshots and their features; the driver
    puts the rows in the order of its own snapshots (by lead, then time). `staging`: a folder
    every worker can read."""

    def features(crm: Crm, snaps: Snapshots) -> dict[str, np.ndarray]:
        custom = crm.custom
        categorical = {*CATEGORICAL, *(c for c, kind in custom.items() if kind == "categorical")}
        names = [*FEATURES, *custom]
        schema = ", ".join(
            [f"{LEAD} string", f"{AS_OF} bigint"]
            + [f"`{n}` {'string' if n in categorical else 'double'}" for n in names]
        )

        def group(part: Crm) -> pd.DataFrame:
            own = make_snapshots(part.leads, step_days, horizon_days)
            columns = snapshot_features(part, own)
            ids = part.leads["lead_id"].to_numpy()[own.lead]
            return pd.DataFrame({LEAD: ids, AS_OF: own.as_of, **columns})

        folder = staging / f"leadready-spark-{uuid.uuid4().hex}"
        try:
            table = map_lead_groups(spark, crm, group, schema, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        lead = pd.Index(crm.leads["lead_id"]).get_indexer(table[LEAD])
        as_of = table[AS_OF].to_numpy()
        order = np.lexsort((as_of, lead))
        # The snapshots are made by lead, then time: the table's rows in that order are theirs.
        if not (
            np.array_equal(lead[order], snaps.lead) and np.array_equal(as_of[order], snaps.as_of)
        ):
            raise RuntimeError("Spark's snapshots are not those of make_snapshots")
        return {
            n: table[n].to_numpy(dtype=object if n in categorical else np.float64)[order]
            for n in names
        }

    return features
