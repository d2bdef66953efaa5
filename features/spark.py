"""Apache Spark as an engine: a function of a validated export's leads, applied per group of
leads with their events on Spark workers (`leadready score --engine spark`, docs/spark.md).

The export is read and validated on the driver by `features.contract.load_crm`, the same code
(and the same messages, with line and row numbers) as the local engine; the driver holds the
export, as the local engine does. The validated tables are staged as Parquet, read back by Spark
as one table partitioned by lead id into groups of about LEADS_PER_GROUP leads with all their
events, and the function is called on each group as a `Crm` of its own: it sees what it would
see locally, restricted to those leads, so no feature or scoring logic is written for Spark.

pyspark is the optional extra `leadready[spark]`; it is imported inside the functions only.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from leadready.features.build import to_seconds
from leadready.features.contract import Crm

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SPARK_EXTRA = "pip install 'leadready[spark]'"
DEFAULT_MASTER = "local[*]"
LEADS_PER_GROUP = 25_000
"""Leads per group (one call of the function): large enough for the vectorised feature build and
tree contributions to run at full speed, small enough for a worker's memory."""
LEAD = "__lead"
TABLE = "__table"
EVENT_TABLES = ("activities", "touches")
ENGINES = ("local", "spark")
"""Where `score --data` and `train --data` run: in this process, or on Apache Spark."""


class SparkUnavailable(RuntimeError):
    """pyspark is not installed, or Spark could not start."""


def active_session() -> SparkSession | None:
    """The SparkSession already running in this process (a notebook's, a test's), if any."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    return SparkSession.getActiveSession()


def require_pyspark() -> None:
    """SparkUnavailable, naming the extra to install, when pyspark cannot be imported."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable(
            f"--engine spark needs pyspark, which is not installed: {SPARK_EXTRA}"
        ) from None


def spark_session(master: str = DEFAULT_MASTER, app: str = "leadready") -> SparkSession:
    """A SparkSession on `master` (`local[*]`, `spark://host:7077`, `yarn`...); the active one
    when there is one (a notebook's, a Databricks job's), whose master it keeps."""
    require_pyspark()
    from pyspark.sql import SparkSession

    active = active_session()
    if active is not None:
        return active
    if master.startswith("local"):
        # Local workers run this interpreter (with leadready installed), not `python3` on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        return (
            SparkSession.builder.master(master)
            .appName(app)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
    except Exception as exc:  # no Java runtime, a master that cannot be reached...
        raise SparkUnavailable(f"Spark could not start on --master {master}: {exc}") from None


@contextmanager
def session_for(master: str) -> Iterator[SparkSession]:
    """`spark_session(master)` for one command: stopped at the end when it was started here, kept
    when it was already active."""
    own = active_session() is None
    spark = spark_session(master)
    if own:  # its failures are said once, by the command; Spark's log would repeat each
        spark.sparkContext.setLogLevel("FATAL")
    try:
        yield spark
    finally:
        if own:
            spark.stop()


def spark_failures() -> tuple[type[Exception], ...]:
    """The exceptions of a Spark job that failed (a worker's error, a lost executor...)."""
    from py4j.protocol import Py4JError  # installed with pyspark
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JError)


def failure_said(exc: Exception) -> str:
    """A failed Spark job's reason in one line: the last line of a Python worker's traceback
    (`TypeError: ...`), or the first line of a JVM error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    python = [line for line in lines if not line.startswith(("at ", "SQLSTATE", "File "))]
    if "Traceback" in str(exc) and python:
        return python[-1]
    return lines[0] if lines else type(exc).__name__


def _dates(frame: pd.DataFrame) -> list[str]:
    return [str(name) for name, dtype in frame.dtypes.items() if dtype.kind == "M"]


def _staged(frame: pd.DataFrame) -> pd.DataFrame:
    """A validated table as Parquet holds it for Spark: times as Unix seconds (nullable), so no
    time zone is applied on the way; categoricals as their values."""
    out = frame.copy()
    for name in _dates(frame):
        seconds = to_seconds(frame[name].fillna(pd.Timestamp(0)))
        out[name] = pd.Series(seconds, frame.index, "Int64").mask(frame[name].isna())
    for column, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            out[column] = frame[column].astype(object)
    return out


def _restored(rows: pd.DataFrame, table: str, columns: list[str], dates: list[str]) -> pd.DataFrame:
    """A table's rows of a group as the validated table had them (its columns, named without
    their table, times as datetimes)."""
    out = rows.loc[rows[TABLE] == table, [f"{table}:{c}" for c in columns]]
    out = out.set_axis(columns, axis=1).reset_index(drop=True)
    for name in dates:
        out[name] = pd.to_datetime(out[name], unit="s")
    return out


def stage(crm: Crm, folder: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Write the export's tables into `folder` as Parquet; per table, its columns and those of
    them that are times."""
    folder.mkdir(parents=True, exist_ok=True)
    layout = {}
    for name in ("leads", *EVENT_TABLES):
        frame = getattr(crm, name)
        _staged(frame).to_parquet(folder / f"{name}.parquet", index=False)
        layout[name] = (list(frame.columns), _dates(frame))
    return layout


def groups_for(leads: int, parallelism: int) -> int:
    """How many groups to split `leads` leads into: at least one per core of the cluster."""
    return max(parallelism, math.ceil(leads / LEADS_PER_GROUP), 1)


def map_lead_groups(
    spark: SparkSession,
    crm: Crm,
    fn: Callable[[Crm], pd.DataFrame],
    schema: str,
    folder: Path,
) -> pd.DataFrame:
    """`fn` applied on Spark to every group of leads of `crm` (with the events of those leads,
    and its custom and display columns), concatenated (in no set order). `schema`: the Spark DDL
    of the frames `fn` returns. `folder` holds the staged tables and Spark's output; it must be
    readable by every worker (shared storage on a cluster), and is left for the caller to
    remove.

    The three tables go through Spark as one (each column named after its table, so a custom
    lead column cannot meet an event column of the same name), partitioned by lead id into
    `groups_for` partitions: a partition holds its leads with all their events, and is one group.
    """
    from pyspark.sql import functions as F  # noqa: N812  # Spark's own convention

    layout = stage(crm, folder / "input")
    n_groups = groups_for(len(crm.leads), spark.sparkContext.defaultParallelism)

    def read(name: str) -> DataFrame:
        frame = spark.read.parquet(str(folder / "input" / f"{name}.parquet"))
        return frame.select(
            F.col("lead_id").alias(LEAD),
            F.lit(name).alias(TABLE),
            *(F.col(column).alias(f"{name}:{column}") for column in frame.columns),
        )

    tables = read("leads")
    for name in EVENT_TABLES:
        tables = tables.unionByName(read(name), allowMissingColumns=True)
    custom, display, lost_after = crm.custom, crm.display, crm.lost_after

    def group(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        rows = pd.concat(list(batches), ignore_index=True)
        leads, activities, touches = (
            _restored(rows, name, *layout[name]) for name in ("leads", *EVENT_TABLES)
        )
        if not len(leads):
            return
        part = Crm(
            leads, activities, touches, custom=custom, display=display, lost_after=lost_after
        )
        out = fn(part)
        if len(out):  # an empty frame's columns may have no type Spark can take
            # pyspark 4 sends pandas 3's Arrow-backed text columns only when they are one chunk
            # (a concatenated frame's have several): as Python strings, any column goes.
            yield out.astype({name: object for name in out.columns if out[name].dtype == "str"})

    out = str(folder / "output")
    tables.repartition(n_groups, LEAD).mapInPandas(group, schema).write.parquet(out)
    return pd.read_parquet(out)
