"""`leadready monitor` on a real lead store and MLflow store: the session's champion (trained on
the 3,000-lead sample) scores the sample's open leads in a sweep; the same leads exit 0, a new
source dominating with shifted company sizes exits 3 naming both, outcomes that make the live
calibration wrong exit 4; the figures land in the champion's run as a time series, the report
is one self-contained page; and the PSI arithmetic itself."""

from __future__ import annotations

import copy
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.contract import load_crm
from leadready.features.drift import (
    PSI_DRIFT,
    field_drift,
    field_profile,
    lead_inputs,
    psi,
)
from leadready.features.leadstore.database import default_url, open_store
from leadready.features.leadstore.loading import load_export
from leadready.features.leadstore.tables import current_scores, leads
from leadready.features.registry import use_store
from leadready.features.routing import Exploration
from leadready.serving.batch import latest_time
from leadready.serving.engine import Engine
from leadready.serving.live import LivePolicy, sweep
from leadready.serving.monitor import MonitorError, monitor
from leadready.serving.store import load_champion

runner = CliRunner()


@pytest.fixture(scope="session")
def swept(champion_dir, sample_dir, tmp_path_factory) -> tuple[Path, datetime]:
    """A copy of the champion's models folder whose lead store holds the sample, its open leads
    scored by the champion at the export's end; and that moment."""
    models = tmp_path_factory.mktemp("monitored") / "models"
    shutil.copytree(champion_dir, models)
    crm = load_crm(sample_dir)
    end = datetime.fromtimestamp(latest_time(crm), UTC)
    store = open_store(default_url(models))
    try:
        load_export(store, crm, end.replace(tzinfo=None))
        sweep(store, Engine(load_champion(models)), end, LivePolicy())
    finally:
        store.dispose()
    return models, end


@pytest.fixture
def models(swept, tmp_path) -> Path:
    """This test's own copy of the swept models folder (lead store and MLflow store)."""
    folder = tmp_path / "models"
    shutil.copytree(swept[0], folder)
    return folder


def close_halves(connection: sa.Connection, scored: list, at: datetime) -> None:
    """The first half of `scored` (rows with a lead_id, lowest readiness first) lost at `at`,
    the second half won."""
    half = len(scored) // 2
    for outcome, part in (("lost", scored[:half]), ("won", scored[half:])):
        connection.execute(
            sa.update(leads)
            .where(leads.c.lead_id.in_([row.lead_id for row in part]))
            .values(outcome=outcome, outcome_at=at.replace(tzinfo=None))
        )


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_monitor(models: Path, now: datetime, *extra: str):
    return runner.invoke(
        app,
        [
            "monitor",
            "--since",
            "2d",
            "--now",
            iso(now),
            "--models-dir",
            str(models),
            "--out",
            str(models / "monitor.html"),
            *extra,
        ],
    )


def said(result) -> str:
    return " ".join(result.output.split())


def drifted(output: str) -> list[str]:
    """The fields the `drift:` line names."""
    match = re.search(r"^drift: (.+)$", output, flags=re.MULTILINE)
    return match.group(1).replace(",", " ").split() if match else []


@pytest.mark.model
def test_the_same_leads_are_healthy_and_each_run_adds_a_point_to_the_champions_run(models, swept):
    end = swept[1]
    first = run_monitor(models, end + timedelta(hours=1))
    assert first.exit_code == 0, first.output
    text = said(first)
    assert "drift:" not in text and "Outcomes not judged: too few outcomes yet" in text
    page = (models / "monitor.html").read_text()
    assert "Healthy: the leads look like the model" in page
    # Self-contained: nothing fetched, no script.
    assert not re.search(r"<script|<link|src=|https?://", page)
    second = run_monitor(models, end + timedelta(hours=2))
    assert second.exit_code == 0, second.output
    use_store(models)
    run_id = load_champion(models).run_id
    history = MlflowClient().get_metric_history(run_id, "monitor_psi_source")
    assert [m.step for m in history] == [0, 1]
    assert all(0 <= m.value < 0.1 for m in history)
    assert history[1].timestamp >= history[0].timestamp
    statuses = MlflowClient().get_metric_history(run_id, "monitor_status")
    assert [m.value for m in statuses] == [0.0, 0.0]


def inject_drift(models: Path, end: datetime) -> None:
    """70% of the open leads now come from `partner` (6% of the fit rows), every open lead's
    company is 20 times bigger; then they are swept again, an hour after `end`."""
    store = open_store(default_url(models))
    try:
        with store.begin() as connection:
            ids = list(
                connection.execute(
                    sa.select(leads.c.lead_id).where(leads.c.outcome == "open").order_by("lead_id")
                ).scalars()
            )
            partner = ids[: int(len(ids) * 0.7)]
            connection.execute(
                sa.update(leads).where(leads.c.lead_id.in_(partner)).values(source="partner")
            )
            connection.execute(
                sa.update(leads)
                .where(leads.c.outcome == "open")
                .values(company_size=leads.c.company_size * 20)
            )
        sweep(store, Engine(load_champion(models)), end + timedelta(hours=1), LivePolicy())
    finally:
        store.dispose()


@pytest.mark.model
def test_a_new_source_dominating_and_bigger_companies_exit_3_naming_both(models, swept):
    end = swept[1]
    inject_drift(models, end)
    result = run_monitor(models, end + timedelta(hours=2))
    assert result.exit_code == 3, result.output
    assert sorted(drifted(result.output)) == ["company_size", "source"]
    page = (models / "monitor.html").read_text()
    assert "The leads changed: source, company_size drifted" in page
    use_store(models)
    run_id = load_champion(models).run_id
    (psi_source,) = MlflowClient().get_metric_history(run_id, "monitor_psi_source")
    (psi_industry,) = MlflowClient().get_metric_history(run_id, "monitor_psi_industry")
    assert psi_source.value > PSI_DRIFT > psi_industry.value


@pytest.mark.model
def test_outcomes_the_readiness_got_badly_wrong_exit_4_on_calibration(models, swept):
    """The higher half of the scored leads all won, the lower half all lost: the ranking is
    right (a high AUC), but a lead given 20% that always wins is not calibrated."""
    end = swept[1]
    store = open_store(default_url(models))
    try:
        with store.begin() as connection:
            scored = connection.execute(
                sa.select(current_scores.c.lead_id, current_scores.c.readiness).order_by(
                    current_scores.c.readiness
                )
            ).all()
            close_halves(connection, scored, end + timedelta(days=5))
    finally:
        store.dispose()
    result = run_monitor(models, end + timedelta(days=6), "--since", iso(end - timedelta(hours=1)))
    assert result.exit_code == 4, result.output
    text = said(result)
    assert "worse: live calibration error" in text
    assert "worse: live ROC AUC" not in text and "drift:" not in text
    page = (models / "monitor.html").read_text()
    assert "The scores turned out worse than on the hold-out" in page
    assert "Reliability" in page and "<svg" in page
    use_store(models)
    (auc,) = MlflowClient().get_metric_history(load_champion(models).run_id, "monitor_auc")
    assert auc.value > 0.95


@pytest.mark.model
def test_nothing_to_compare_is_a_one_line_error(models, swept):
    end = swept[1]
    before = run_monitor(models, end - timedelta(days=30))
    assert before.exit_code == 2
    assert "has no lead scored by version 1 of 'sales-readiness'" in said(before)
    assert "Traceback" not in before.output
    bad = run_monitor(models, end, "--since", "last week")
    assert bad.exit_code == 2 and "a duration such as 7d" in said(bad)
    # A version trained before monitoring has no profile to compare with.
    loaded = load_champion(models)
    scorer = copy.copy(loaded.scorer)
    scorer.info = loaded.scorer.info.model_copy(update={"profile": None})
    store = open_store(default_url(models))
    try:
        with pytest.raises(MonitorError, match="trained before monitoring.*retrain"):
            monitor(
                store,
                type(loaded)(scorer, loaded.name, loaded.version, loaded.run_id),
                end.replace(tzinfo=None) - timedelta(days=1),
                end.replace(tzinfo=None),
            )
    finally:
        store.dispose()


@pytest.mark.unit
def test_psi_bins_come_from_the_reference_and_unseen_values_count_apart():
    rng = np.random.default_rng(0)
    sizes = rng.lognormal(4, 1, 5000)
    sizes[:500] = np.nan
    profile = field_profile("numeric", sizes)
    assert len(profile.edges) == 9 and profile.labels[-1] == "missing"
    assert profile.shares[-1] == pytest.approx(0.1)
    assert field_drift(profile, sizes).psi == pytest.approx(0.0)
    same = rng.lognormal(4, 1, 5000)
    same[:500] = np.nan
    assert field_drift(profile, same).psi < 0.02
    assert field_drift(profile, same * 10).psi > PSI_DRIFT
    sources = np.array(["web"] * 60 + ["referral"] * 40, dtype=object)
    categories = field_profile("categorical", sources)
    live = field_drift(categories, np.array(["web"] * 50 + ["podcast"] * 50, dtype=object))
    assert live.unseen == 0.5 and live.drifted
    assert live.live.tolist() == [0.0, 0.5, 0.5]  # referral, web, unseen
    # An empty bin costs a finite amount; equal shares cost nothing.
    assert psi(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.5, 0.0])) == 0.0
    assert np.isfinite(psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


@pytest.mark.unit
def test_lead_inputs_are_the_contract_fields_and_the_custom_features():
    import pandas as pd

    frame = pd.DataFrame(
        {
            "source": ["web_form"],
            "industry": ["retail"],
            "company_size": [np.nan],
            "budget": ["none"],
            "authority": ["user"],
            "need": ["none"],
            "timeframe": ["unknown"],
            "plan": ["pro"],
            "seats": [3.0],
        }
    )
    inputs = lead_inputs(frame, {"plan": "categorical", "seats": "numeric"})
    assert {name: kind for name, (kind, _) in inputs.items()} == {
        "source": "categorical",
        "industry": "categorical",
        "company_size": "numeric",
        "budget": "categorical",
        "authority": "categorical",
        "need": "categorical",
        "timeframe": "categorical",
        "plan": "categorical",
        "seats": "numeric",
    }


@pytest.mark.model
def test_the_exploration_slice_shows_its_win_rate_by_readiness_band(models, swept):
    """The open leads are swept again with a 30% exploration slice; the explored leads with
    readiness above their median win, the rest lose: the slice's bands show it, weighted by
    1 / propensity, and the scores from before exploration (explore false) are left out."""
    end = swept[1]
    store = open_store(default_url(models))
    try:
        later = end + timedelta(hours=1)
        sweep(store, Engine(load_champion(models), Exploration(0.3)), later, LivePolicy())
        c = current_scores.c
        with store.begin() as connection:
            explored = connection.execute(
                sa.select(c.lead_id, c.readiness, c.propensity)
                .where(c.explore.is_(True), c.route == "sales")
                .order_by(c.readiness)
            ).all()
            close_halves(connection, explored, end + timedelta(days=5))
    finally:
        store.dispose()
    assert len(explored) >= 50 and {row.propensity for row in explored} == {0.3}
    since = iso(end + timedelta(minutes=30))  # the explored scores only
    result = run_monitor(models, end + timedelta(days=6), "--since", since)
    text = said(result)
    won = len(explored) - len(explored) // 2
    assert f"Exploration slice: {len(explored):,} leads with an outcome ({won:,} won)" in text
    until = (end + timedelta(days=6)).replace(tzinfo=None)
    store = open_store(default_url(models))
    try:
        loaded = load_champion(models)
        report = monitor(store, loaded, (end + timedelta(minutes=30)).replace(tzinfo=None), until)
        with_all = monitor(store, loaded, (end - timedelta(hours=1)).replace(tzinfo=None), until)
    finally:
        store.dispose()
    x = report.exploration
    assert x is not None and x.rows == len(explored)
    assert x.bands.rows.sum() == pytest.approx(len(explored) / 0.3)
    assert x.bands.observed[0] == 0.0 and x.bands.observed[-1] == 1.0
    assert "Leads sent to sales at random" in (models / "monitor.html").read_text()
    # The sweep before exploration scored the same leads (explore false): not in the slice.
    assert with_all.exploration is not None and with_all.exploration.rows == len(explored)
