"""Shared fixtures: a tiny hand-written CRM export, a synthetic flat table, the sample CRM and
a trained champion, and thread settings for LightGBM; and the rule that every test has a tier."""

from __future__ import annotations

import os
import uuid

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The hyperparameter search has its own test; elsewhere `train` tries only the defaults.
os.environ.setdefault("LEADREADY_SEARCH_SECONDS", "0")
# pytest-xdist gives its workers COLUMNS=80; rich fixes a console's width when COLUMNS is set as
# it is created, so a test's own COLUMNS (for `models list` rows unfolded) would go unread.
os.environ.pop("COLUMNS", None)

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

TIERS = ("unit", "data", "model", "api", "server", "fault", "browser", "notebook")
"""The test tiers (markers registered in pyproject.toml), from the quickest to the slowest."""
HEAVY = {
    "sample_dir": "the 3,000-lead sample",
    "champion_dir": "a trained champion",
    "postgres_server": "a PostgreSQL server",
}
"""Session fixtures that a unit test may not use, with what each one builds."""


def pytest_configure(config: pytest.Config) -> None:
    registered = {line.split(":")[0].strip() for line in config.getini("markers")}
    if missing := [tier for tier in TIERS if tier not in registered]:
        raise pytest.UsageError(f"tier markers not registered in pyproject.toml: {missing}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fail the run when a collected test has no tier or more than one, or when a unit test
    uses a heavy session fixture: every test says how expensive it is, so `-m unit` stays
    quick. Runs before `-m` deselects anything, so every collected test is checked."""
    problems = []
    for item in items:
        tiers = [tier for tier in TIERS if item.get_closest_marker(tier)]
        if not tiers:
            problems.append(f"{item.nodeid}: no tier marker")
        elif len(tiers) > 1:
            problems.append(f"{item.nodeid}: several tier markers ({', '.join(tiers)})")
        elif tiers == ["unit"]:
            used = [f"{name} ({HEAVY[name]})" for name in item.fixturenames if name in HEAVY]
            if used:
                problems.append(f"{item.nodeid}: a unit test using {', '.join(used)}")
    if problems:
        raise pytest.UsageError(
            f"every test needs exactly one tier marker ({', '.join(TIERS)}): "
            "`pytestmark = pytest.mark.TIER` for a module, `@pytest.mark.TIER` for one test\n  "
            + "\n  ".join(problems)
        )


LEADS = """lead_id,created_at,source,industry,company_size,country,budget,authority,need,timeframe,outcome,outcome_at
L1,2025-01-01T09:00:00,referral,software,120,DE,confirmed,decision_maker,confirmed,lt_1m,won,2025-02-15
L2,2025-01-05,trade_show,retail,,US,,,,,lost,2025-04-01T12:00:00Z
L3,2025-02-01T00:00:00+01:00,web_form,,8,,indicated,user,none,6_12m,open,
"""
ACTIVITIES = """lead_id,occurred_at,type
L1,2025-01-02T10:00:00,web_visit
L1,2025-01-20T10:00:00,pricing_page_view
L1,2025-02-01T10:00:00,demo_request
L2,2025-01-06T10:00:00,email_open
L3,2025-02-02T10:00:00,content_download
"""
TOUCHES = """lead_id,occurred_at,channel,team,responded
L1,2025-01-03T10:00:00,email,marketing,true
L1,2025-02-02T10:00:00,call,sales,
L2,2025-01-07T10:00:00,email,marketing,false
"""


def write_crm(
    folder: Path, leads: str = LEADS, activities: str = ACTIVITIES, touches: str = TOUCHES
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("leads", leads), ("activities", activities), ("touches", touches)):
        (folder / f"{name}.csv").write_text(text)
    return folder


ROWS = 600
"""Rows of the synthetic flat table (make_table)."""
NEW_SOURCE = "podcast"
"""A lead source that only the newest rows of make_table (a time hold-out) have."""


def make_table(rows: int = ROWS, seed: int = 3) -> pd.DataFrame:
    """One row per lead: counts, a share with gaps, categories, a date, free text, a constant
    column and a yes/no outcome that depends on several columns (about 30% yes)."""
    rng = np.random.default_rng(seed)
    visits = rng.poisson(3, rows)
    minutes = np.round(rng.gamma(2.0, 8.0, rows), 1)
    source = rng.choice(["web", "ads", "referral", "event"], rows, p=[0.4, 0.3, 0.2, 0.1])
    size = rng.choice(["1-10", "11-50", "51-200", "200+", ""], rows)
    balance = np.round(rng.normal(0, 500, rows), 2)  # negative values too
    logit = (
        0.5 * visits
        + 0.04 * minutes
        - 2.8
        + 0.001 * balance
        + np.select([source == "referral", source == "event"], [1.5, 0.8], 0.0)
        + np.where(size == "200+", 0.7, 0.0)
    )
    won = rng.random(rows) < 1 / (1 + np.exp(-logit))
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        np.sort(rng.integers(0, 365, rows)), unit="D"
    )
    share = np.round(rng.random(rows), 2).astype(object)
    share[rng.random(rows) < 0.1] = "n/a"
    frame = pd.DataFrame(
        {
            "lead": [f"L{i:05d}" for i in range(rows)],
            "created": created.strftime("%Y-%m-%d"),
            "visits": visits,
            "minutes": minutes,
            "open_share": share,
            "balance": balance,
            "source": source,
            "size": size,
            "comment": [f"called on {i}, left a message" for i in range(rows)],
            "region": "EMEA",
            "converted": np.where(won, "yes", "no"),
        }
    )
    frame.loc[frame.index[-8:], "source"] = NEW_SOURCE
    return frame


def write(frame: pd.DataFrame, folder: Path, name: str = "leads.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def tiny_crm(tmp_path: Path) -> Path:
    return write_crm(tmp_path / "crm")


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """A 3,000-lead sample CRM, generated once per test session."""
    from leadready.training.sample import write_sample

    out = tmp_path_factory.mktemp("sample")
    write_sample(out, 3000, seed=11)
    return out


@pytest.fixture(scope="session")
def champion_dir(sample_dir, tmp_path_factory) -> Path:
    """A models folder whose embedded MLflow store has a trained champion."""
    from leadready.features.contract import load_crm
    from leadready.training.pipeline import TrainConfig, train
    from leadready.training.registry import publish

    models = tmp_path_factory.mktemp("models")
    publish(train(load_crm(sample_dir), TrainConfig(search_seconds=0)), models)
    return models


@pytest.fixture(scope="session")
def small_export(sample_dir, tmp_path_factory) -> Path:
    """300 leads of the sample (240 open, 60 closed) with their events, as CSV."""
    out = tmp_path_factory.mktemp("small-export")
    leads = pd.read_csv(sample_dir / "leads.csv", dtype=str, keep_default_na=False)
    chosen = pd.concat(
        [leads[leads.outcome == "open"].head(240), leads[leads.outcome != "open"].head(60)]
    )
    chosen.to_csv(out / "leads.csv", index=False)
    for name in ("activities", "touches"):
        events = pd.read_csv(sample_dir / f"{name}.csv", dtype=str, keep_default_na=False)
        events[events.lead_id.isin(chosen.lead_id)].to_csv(out / f"{name}.csv", index=False)
    return out


@pytest.fixture(scope="session")
def served(champion_dir, tmp_path_factory) -> dict[str, Path]:
    """A models folder with both champions (a copy of the session's CRM-export one, and a
    flat-table one), and a flat table of new leads for it (the workspace's tests)."""
    import shutil

    from workspace_server import train_flat

    folder = tmp_path_factory.mktemp("ui-served")
    models = folder / "models"
    shutil.copytree(champion_dir, models)
    return {"models": models, "flat_table": train_flat(models, folder)}


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL server for the session (tests/pg_server.py), stopped at the end. The
    tests fail, never skip, when its binaries are missing (`.ci/run` installs them); they skip
    only when it truly cannot run: as root with no other user to run it as."""
    from pg_server import PostgresServer, Unavailable, bin_dir, run_as

    try:
        bin_dir()
    except Unavailable as exc:
        pytest.fail(str(exc))
    try:
        run_as()
    except Unavailable as exc:
        pytest.skip(f"PostgreSQL cannot run here: {exc}")
    server = PostgresServer.start(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A new, empty lead store's URL: SQLite in a temp folder, or a new database on the
    session's PostgreSQL server."""
    from leadready.features.leadstore.database import default_url

    if request.param == "sqlite":
        return default_url(tmp_path / "models")
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"store_{uuid.uuid4().hex[:12]}")


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, driven by Playwright (its own browser download does not work
    here). Browser tests fail, never skip, when it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium "
            "(apt-get install -y chromium; .ci/run does this) to run the browser tests"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        pytest.fail(f"playwright is not installed ({err}): pip install -e '.[dev]'")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
