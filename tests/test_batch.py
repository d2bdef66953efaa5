"""Batch scoring (`leadready score`, serving/batch.py) at its fast paths: tree contributions
grouped per tree equal LightGBM's own, reasons worded for all leads at once are each lead's own,
and `--reasons 0` leaves the scores as they are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.build import Events, Leads, build_features
from leadready.features.contract import load_crm
from leadready.features.model import GROUPED_ROWS
from leadready.serving.batch import latest_time
from leadready.serving.engine import Engine
from leadready.serving.explain import describe, describe_many, reason_columns
from leadready.serving.explain import reasons as lead_reasons
from leadready.serving.store import load_champion

runner = CliRunner()


@pytest.mark.model
def test_grouped_contributions_equal_lightgbm_pred_contrib(champion_dir, sample_dir):
    crm = load_crm(sample_dir)
    ids = pd.Index(crm.leads["lead_id"])
    rows = np.arange(len(ids))
    columns = build_features(
        Leads.from_frame(crm.leads),
        Events.activities_from_frame(crm.activities, ids),
        Events.touches_from_frame(crm.touches, ids),
        rows,
        np.full(len(rows), latest_time(crm)),
    )
    scorer = load_champion(champion_dir).scorer
    x = scorer.encode(columns)
    assert len(x) >= GROUPED_ROWS
    booster = scorer.readiness.base.booster
    grouped = scorer.readiness.base.contributions(x)
    native = booster.predict(x, pred_contrib=True, num_threads=1)
    assert grouped.shape == native.shape
    np.testing.assert_allclose(grouped, native, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        grouped.sum(axis=1), booster.predict(x, raw_score=True), rtol=0, atol=1e-12
    )


@pytest.mark.model
def test_score_without_reasons_keeps_the_scores(champion_dir, small_export, tmp_path):
    written = {}
    for reasons in ("3", "0"):
        out = tmp_path / f"scores-{reasons}.csv"
        args = ["score", "--data", str(small_export), "--out", str(out), "--reasons", reasons]
        result = runner.invoke(app, [*args, "--models-dir", str(champion_dir)])
        assert result.exit_code == 0, result.output
        written[reasons] = pd.read_csv(out, dtype=str, keep_default_na=False)
    plain, full = written["0"], written["3"]
    assert list(plain.columns) == ["lead_id", "readiness", "potential", "route", "route_reason"]
    assert "reason_up_3" in full.columns and "reason_down_1" in full.columns
    pd.testing.assert_frame_equal(plain, full[plain.columns])


@pytest.mark.model
def test_reason_columns_are_each_leads_own_reasons(champion_dir, sample_dir):
    """The file's reason columns, worded per feature for every lead at once, say what the
    API's per-lead reasons say, in the same order, "" past a lead's last reason."""
    crm = load_crm(sample_dir)
    ids = pd.Index(crm.leads["lead_id"])
    rows = np.arange(len(ids))
    engine = Engine(load_champion(champion_dir))
    prediction = engine.predict(
        Leads.from_frame(crm.leads),
        Events.activities_from_frame(crm.activities, ids),
        Events.touches_from_frame(crm.touches, ids),
        rows,
        np.full(len(rows), latest_time(crm)),
    )
    args = (prediction.contributions, prediction.columns, engine.features, engine.labels)
    columns = reason_columns(*args, top=3)
    assert list(columns) == [f"reason_{s}_{k}" for k in (1, 2, 3) for s in ("up", "down")]
    for row, said in enumerate(lead_reasons(*args, top=3)):
        for side in ("up", "down"):
            labels = [item["label"] for item in said[side]]  # type: ignore[attr-defined]
            padded = [*labels, "", "", ""][:3]
            assert [columns[f"reason_{side}_{k + 1}"][row] for k in range(3)] == padded


@pytest.mark.unit
def test_describe_many_words_each_value_as_describe_does():
    labels = {"touches_7d": "touches in the last 7 days", "custom_score": "Score"}
    cases = {
        "touches_7d": np.array([0.5, 1.5, 2.5, 1.0, 0.49, np.nan, 2.5, 1e6 + 0.5]),
        "lead_age_days": np.array([0.4, 0.5, 1.5, 2.0, 365.7]),
        "touches_responded_share": np.array([0.125, 0.5, np.nan, 1.0, 0.005]),
        "hand_raise_7d": np.array([0.0, 1.0, 1.0, np.nan]),
        "custom_score": np.array([0.5, 2.25, 1e-7, np.nan]),
        "budget": np.array(["confirmed", "unknown", "confirmed"], dtype=object),
    }
    for feature, values in cases.items():
        expected = [describe(feature, v, labels) for v in values]
        assert describe_many(feature, values, labels).tolist() == expected, feature
