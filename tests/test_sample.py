"""Tests for the seeded CRM export simulator (`training.sample`), on real files in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leadready.features.contract import (
    ACTIVITY_COLUMNS,
    LEAD_COLUMNS,
    TOUCH_COLUMNS,
    Crm,
    load_crm,
)
from leadready.training.sample import EXPORT_AT, SIMULATED_DAYS, generate_sample, write_sample

pytestmark = pytest.mark.data

FILES = ("leads.csv", "activities.csv", "touches.csv")
BUYING_SIGNALS = (
    "pricing_page_view",
    "webinar_attended",
    "demo_request",
    "contact_request",
    "chat",
)
LARGE_N = 3000  # enough leads for stable shares, still about a second to simulate


def _bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, int], Crm]:
    """One LARGE_N-lead export written to disk and loaded through the contract."""
    folder = tmp_path_factory.mktemp("export")
    counts = write_sample(folder, LARGE_N, seed=3)
    return counts, load_crm(folder)


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    write_sample(tmp_path / "a", 500, seed=11)
    write_sample(tmp_path / "b", 500, seed=11)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")


def test_different_seed_writes_different_files(tmp_path: Path) -> None:
    write_sample(tmp_path / "a", 500, seed=11)
    write_sample(tmp_path / "b", 500, seed=12)
    first, second = _bytes(tmp_path / "a"), _bytes(tmp_path / "b")
    assert all(first[name] != second[name] for name in FILES)


def test_frames_have_exactly_the_contract_columns() -> None:
    leads, activities, touches = generate_sample(300, seed=1)
    assert tuple(leads.columns) == LEAD_COLUMNS
    assert tuple(activities.columns) == ACTIVITY_COLUMNS
    assert tuple(touches.columns) == TOUCH_COLUMNS
    assert leads["lead_id"].is_unique and len(leads) == 300


def test_written_export_passes_the_contract(
    tmp_path: Path, export: tuple[dict[str, int], Crm]
) -> None:
    counts, crm = export
    assert counts == {
        "leads": len(crm.leads),
        "activities": len(crm.activities),
        "touches": len(crm.touches),
    }
    assert counts["leads"] == LARGE_N
    # Volume: a realistic stream of events per lead, not a handful and not millions.
    assert 20 <= counts["activities"] / LARGE_N <= 150
    assert 8 <= counts["touches"] / LARGE_N <= 40
    # The folder is created when missing, and the CSV spells missing values as empty strings.
    folder = tmp_path / "new" / "nested"
    write_sample(folder, 200, seed=5)
    load_crm(folder)
    touches = pd.read_csv(folder / "touches.csv", dtype=str, keep_default_na=False)
    assert set(touches["responded"]) == {"true", "false", ""}
    leads = pd.read_csv(folder / "leads.csv", dtype=str, keep_default_na=False)
    assert (leads.loc[leads["outcome"] == "open", "outcome_at"] == "").all()
    assert (leads.loc[leads["outcome"] != "open", "outcome_at"] != "").all()


def test_progress_reports_every_simulated_day() -> None:
    steps: list[int] = []
    generate_sample(50, seed=2, progress=steps.append)
    assert sum(steps) == SIMULATED_DAYS
    assert len(steps) > 1 and all(step > 0 for step in steps)


def test_won_share_of_closed_leads_is_realistic(export: tuple[dict[str, int], Crm]) -> None:
    leads = export[1].leads
    closed = leads[leads["outcome"] != "open"]
    assert 0.15 <= (closed["outcome"] == "won").mean() <= 0.25


def test_some_leads_are_still_open_at_the_export(export: tuple[dict[str, int], Crm]) -> None:
    leads = export[1].leads
    open_share = (leads["outcome"] == "open").mean()
    assert 0.05 <= open_share <= 0.30
    # Open leads are mostly recent ones: the funnel is still running for them.
    newest = leads["created_at"] >= pd.Timestamp(str(EXPORT_AT)) - pd.Timedelta(days=60)
    assert (leads.loc[newest, "outcome"] == "open").mean() > 0.8


@pytest.mark.parametrize("table", ["activities", "touches"])
def test_events_stay_within_each_leads_lifetime(
    export: tuple[dict[str, int], Crm], table: str
) -> None:
    crm = export[1]
    events = getattr(crm, table).merge(
        crm.leads[["lead_id", "created_at", "outcome_at"]], on="lead_id", validate="many_to_one"
    )
    assert len(events) == len(getattr(crm, table))
    assert (events["occurred_at"] < pd.Timestamp(str(EXPORT_AT))).all()
    assert (events["occurred_at"] >= events["created_at"]).all()
    closed = events["outcome_at"].notna()
    assert (events.loc[closed, "occurred_at"] <= events.loc[closed, "outcome_at"]).all()


def test_outcome_dates_are_before_the_export(export: tuple[dict[str, int], Crm]) -> None:
    leads = export[1].leads
    closed = leads[leads["outcome"] != "open"]
    assert (closed["outcome_at"] < pd.Timestamp(str(EXPORT_AT))).all()
    assert (closed["outcome_at"] > closed["created_at"]).all()


def test_trade_show_leads_win_far_less_than_referrals(
    export: tuple[dict[str, int], Crm],
) -> None:
    leads = export[1].leads
    closed = leads[leads["outcome"] != "open"]
    win_rate = (closed["outcome"] == "won").groupby(closed["source"]).mean()
    assert win_rate["referral"] >= win_rate["trade_show"] + 0.15
    assert win_rate["referral"] >= 2.5 * win_rate["trade_show"]


def test_bant_is_mostly_unknown_and_informative(export: tuple[dict[str, int], Crm]) -> None:
    leads = export[1].leads
    for field in ("budget", "authority", "need", "timeframe"):
        unknown = (leads[field] == "unknown").mean()
        assert 0.4 <= unknown <= 0.6, field
    closed = leads[leads["outcome"] != "open"]
    won = closed["outcome"] == "won"
    confirmed, no_budget = closed["budget"] == "confirmed", closed["budget"] == "none"
    assert won[confirmed].mean() > won[no_budget].mean() + 0.1


def test_recent_buying_signals_precede_wins(export: tuple[dict[str, int], Crm]) -> None:
    """Won leads showed buying signals in their last 30 days; lost leads mostly did not."""
    crm = export[1]
    closed = crm.leads[crm.leads["outcome"] != "open"]
    signals = crm.activities[crm.activities["type"].isin(BUYING_SIGNALS)].merge(
        closed[["lead_id", "outcome_at"]], on="lead_id"
    )
    recent = signals["occurred_at"] >= signals["outcome_at"] - pd.Timedelta(days=30)
    signalled = closed["lead_id"].isin(signals.loc[recent, "lead_id"])
    won = (closed["outcome"] == "won").to_numpy()
    assert signalled[won].mean() > 0.85
    assert signalled[~won].mean() < 0.3
