"""The Spark engine (`leadready score --engine spark`, serving/spark.py) on a real local[2] Spark:
the same scores as the local engine for every lead, and the registered champion through MLflow's
own `spark_udf`."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.build import FEATURES, Events, Leads, build_features
from leadready.features.contract import load_crm
from leadready.features.registry import embedded_uri
from leadready.serving.batch import latest_time
from leadready.serving.engine import Engine
from leadready.serving.store import load_champion

runner = CliRunner()


@pytest.fixture(scope="module")
def spark():
    """One SparkSession on local[2] for these tests, stopped at the end; `score --engine spark`
    uses it (an active session is kept, not stopped)."""
    from leadready.features.spark import spark_session

    session = spark_session("local[2]", "leadready-tests")
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    session.stop()


@pytest.mark.model
def test_the_spark_engine_scores_every_lead_as_the_local_engine(
    spark, champion_dir, sample_dir, tmp_path
):
    written = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"scores-{engine}.parquet"
        args = ["score", "--data", str(sample_dir), "--out", str(out), "--engine", engine]
        result = runner.invoke(app, [*args, "--models-dir", str(champion_dir)])
        assert result.exit_code == 0, result.output
        written[engine] = pd.read_parquet(out)
    local, on_spark = written["local"], written["spark"]
    assert len(local) > 300 and spark.sparkContext._jsc is not None  # the session is kept
    assert list(on_spark.columns) == list(local.columns)
    assert on_spark["lead_id"].tolist() == local["lead_id"].tolist()
    for score in ("readiness", "potential"):
        np.testing.assert_allclose(on_spark[score], local[score], rtol=0, atol=1e-9)
    texts = [c for c in local.columns if c not in ("lead_id", "readiness", "potential")]
    assert texts[:2] == ["route", "route_reason"] and "reason_down_3" in texts
    for column in texts:
        assert on_spark[column].tolist() == local[column].tolist(), column
    assert set(local["route"]) == {"sales", "nurture", "disqualify"}
    assert not list(tmp_path.glob("leadready-spark-*"))  # the staged tables are removed
    early = ["score", "--data", str(sample_dir), "--out", str(tmp_path / "none.parquet")]
    result = runner.invoke(
        app,
        [*early, "--engine", "spark", "--as-of", "2000-01-01", "--models-dir", str(champion_dir)],
    )
    assert result.exit_code == 2 and "nothing to score" in result.stderr
    assert not (tmp_path / "none.parquet").exists()


@pytest.mark.model
def test_the_champion_scores_with_mlflow_spark_udf_as_the_local_engine(
    spark, champion_dir, sample_dir, monkeypatch
):
    import mlflow.pyfunc
    from pyspark.sql.types import ArrayType, DoubleType

    monkeypatch.setenv("MLFLOW_TRACKING_URI", embedded_uri(champion_dir))
    engine = Engine(load_champion(champion_dir))
    crm = load_crm(sample_dir)
    ids = pd.Index(crm.leads["lead_id"])
    rows = np.arange(len(ids))
    leads = Leads.from_frame(crm.leads)
    activities = Events.activities_from_frame(crm.activities, ids)
    touches = Events.touches_from_frame(crm.touches, ids)
    as_of = np.full(len(rows), latest_time(crm))
    expected = engine.predict(leads, activities, touches, rows, as_of).readiness
    columns = build_features(leads, activities, touches, rows, as_of)
    features = pd.DataFrame(columns).assign(row=rows)
    udf = mlflow.pyfunc.spark_udf(
        spark, "models:/sales-readiness@champion", result_type=ArrayType(DoubleType())
    )
    scored = (
        spark.createDataFrame(features)
        .withColumn("proba", udf(*FEATURES))
        .select("row", "proba")
        .toPandas()
        .sort_values("row")
    )
    readiness = np.array([proba[1] for proba in scored["proba"]])
    assert len(readiness) == len(expected) == 3000
    np.testing.assert_allclose(readiness, expected, rtol=0, atol=1e-9)


@pytest.mark.model
def test_spark_engine_without_pyspark_names_the_extra(champion_dir, small_export, tmp_path):
    out = tmp_path / "scores.parquet"
    script = (
        "import sys; sys.modules['pyspark'] = None; from leadready.cli import app; "
        "app(sys.argv[1:], prog_name='leadready')"
    )
    models = tmp_path / "models"
    for args in (
        [
            "score",
            "--data",
            str(small_export),
            "--out",
            str(out),
            "--models-dir",
            str(champion_dir),
        ],
        ["train", "--data", str(small_export), "--models-dir", str(models)],
    ):
        done = subprocess.run(
            [sys.executable, "-c", script, *args, "--engine", "spark"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        said = " ".join(done.stderr.split())
        assert "--engine spark needs pyspark" in said and "pip install 'leadready[spark]'" in said
        assert "Traceback" not in done.stderr
    assert not out.exists() and not models.exists()


@pytest.mark.data
def test_spark_engine_options_are_checked_before_any_work(tiny_crm, tmp_path):
    out = str(tmp_path / "scores.parquet")
    for args, said in (
        (["--data", str(tiny_crm), "--engine", "dask"], "--engine dask: expected one of local"),
        (["--data", str(tiny_crm), "--master", "local[2]"], "--master applies to --engine spark"),
        (["--table", str(tiny_crm / "leads.csv"), "--engine", "spark"], "applies to --data only"),
    ):
        result = runner.invoke(app, ["score", *args, "--out", out])
        assert result.exit_code == 2, result.output
        assert said in " ".join(result.stderr.split())
    for args, said in (
        (["--data", str(tiny_crm), "--engine", "dask"], "--engine dask: expected one of local"),
        (["--table", str(tiny_crm / "leads.csv"), "--engine", "spark"], "applies to a CRM export"),
    ):
        result = runner.invoke(app, ["train", *args, "--models-dir", str(tmp_path / "m")])
        assert result.exit_code == 2, result.output
        assert said in " ".join(result.stderr.split())
    # A bad row is said as the local engine says it (the same validation), before Spark starts.
    leads = pd.read_csv(tiny_crm / "leads.csv", dtype=str, keep_default_na=False)
    leads.loc[1, "source"] = "carrier pigeon"
    leads.to_csv(tiny_crm / "leads.csv", index=False)
    said = []
    for engine in ("local", "spark"):
        args = ["score", "--data", str(tiny_crm), "--out", out, "--engine", engine]
        result = runner.invoke(app, [*args, "--models-dir", str(tmp_path / "none")])
        assert result.exit_code == 2, result.output
        said.append(result.stderr)
    assert "line 3" in said[0] and "carrier pigeon" in said[0] and said[0] == said[1]


@pytest.mark.model
def test_the_feature_table_built_on_spark_is_the_local_one(spark, sample_dir, tmp_path):
    from leadready.training.examples import make_snapshots, snapshot_features
    from leadready.training.spark import spark_snapshot_features

    crm = load_crm(sample_dir)
    snaps = make_snapshots(crm.leads, 14, 90)
    local = snapshot_features(crm, snaps)
    on_spark = spark_snapshot_features(spark, tmp_path, 14, 90)(crm, snaps)
    assert list(on_spark) == list(local) and len(snaps) > 10_000
    for name, values in local.items():
        if values.dtype == object:
            assert on_spark[name].dtype == object and on_spark[name].tolist() == values.tolist()
        else:
            np.testing.assert_allclose(on_spark[name], values, rtol=0, atol=1e-9, err_msg=name)
    assert not list(tmp_path.iterdir())  # the staged tables are removed


@pytest.mark.model
def test_train_with_the_spark_engine_registers_a_model(spark, small_export, tmp_path):
    models = tmp_path / "models"
    args = ["train", "--data", str(small_export), "--engine", "spark", "--models-dir", str(models)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Building the feature table on Spark (local[2])" in result.output
    assert load_champion(models).version == "1"
    assert spark.sparkContext._jsc is not None  # the test's session is kept
