"""The lead store (features/leadstore) on SQLite and on a real PostgreSQL server: an export read
back from the store is what `load_crm` gives, loading again adds nothing, a bad export or an
interrupted load leaves the store as it was, the migrations build exactly the tables the
metadata describes, and processes opening a new store at once all succeed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import ACTIVITIES, LEADS, TOUCHES, write_crm
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.contract import LEAD_COLUMNS, ContractError, load_crm
from leadready.features.leadstore.database import (
    StoreError,
    database_url,
    default_url,
    head_revision,
    open_store,
)
from leadready.features.leadstore.loading import event_ids, load_export
from leadready.features.leadstore.reading import lead_frame, read_crm
from leadready.features.leadstore.tables import VERSION_TABLE, metadata
from leadready.features.schema import Schema

runner = CliRunner()
NOW = datetime(2026, 1, 1)
DATABASES = ["sqlite", "postgresql"]
SCHEMA = """
leads:
  features:
    plan: categorical
    score: numeric
  display: [name]
"""
CUSTOM_LEADS = LEADS.replace("outcome_at\n", "outcome_at,plan,score,name\n", 1)
CUSTOM_LEADS = (
    "\n".join(
        [CUSTOM_LEADS.splitlines()[0]]
        + [
            f"{line},{plan},{score},{name}"
            for line, plan, score, name in zip(
                CUSTOM_LEADS.splitlines()[1:],
                ["gold", "", "silver"],
                ["12.5", "3", ""],
                ["Ada: the first", "", "=cmd"],
                strict=True,
            )
        ]
    )
    + "\n"
)


def assert_same_crm(stored, loaded) -> None:
    """The store's frames equal an export's: leads compared in lead_id order (a store has no
    file order), events as load_crm sorts them (by lead, then time)."""
    pd.testing.assert_frame_equal(
        stored.leads, loaded.leads.sort_values("lead_id", ignore_index=True, kind="stable")
    )
    pd.testing.assert_frame_equal(stored.activities, loaded.activities)
    pd.testing.assert_frame_equal(stored.touches, loaded.touches)
    assert stored.custom == loaded.custom
    assert stored.display == loaded.display


def store_load(crm: Path, url: str, *extra: str):
    return runner.invoke(app, ["store", "load", "--data", str(crm), "--database-url", url, *extra])


@pytest.mark.data
def test_an_export_read_back_from_the_store_is_what_load_crm_gives(store_url, small_export):
    crm = load_crm(small_export)
    engine = open_store(store_url)
    summary = load_export(engine, crm, NOW)
    assert (summary.leads_new, summary.leads_updated) == (len(crm.leads), 0)
    assert summary.events_added == {"activities": len(crm.activities), "touches": len(crm.touches)}
    assert_same_crm(read_crm(engine), crm)
    engine.dispose()


@pytest.mark.data
def test_leads_read_by_id_come_with_their_custom_features_typed(store_url, tmp_path):
    """`lead_frame` (what `leadready monitor` reads): the leads asked for that the store has,
    with the custom features asked for, typed as `read_crm` types them."""
    folder = write_crm(tmp_path / "crm", leads=CUSTOM_LEADS)
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    crm = load_crm(folder, schema=Schema.load(tmp_path / "schema.yaml"))
    engine = open_store(store_url)
    load_export(engine, crm, NOW)
    whole = read_crm(engine).leads
    with engine.connect() as connection:
        some = lead_frame(connection, ["L3", "nobody", "L1"], crm.custom)
        none = lead_frame(connection, [], {})
    engine.dispose()
    assert list(some.columns) == [*LEAD_COLUMNS, "plan", "score"]
    expected = whole[whole["lead_id"].isin(["L1", "L3"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(some, expected[list(some.columns)])
    assert none.empty and list(none.columns) == list(LEAD_COLUMNS)


@pytest.mark.data
def test_custom_and_display_fields_come_back_typed_as_the_export_gives_them(store_url, tmp_path):
    folder = write_crm(tmp_path / "crm", leads=CUSTOM_LEADS)
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    crm = load_crm(folder, schema=Schema.load(tmp_path / "schema.yaml"))
    assert crm.custom == {"plan": "categorical", "score": "numeric"} and crm.display == ("name",)
    engine = open_store(store_url)
    load_export(engine, crm, NOW)
    stored = read_crm(engine)
    assert_same_crm(stored, crm)
    assert stored.leads["plan"].tolist() == ["gold", "unknown", "silver"]
    assert stored.leads["score"].isna().tolist() == [False, False, True]
    assert stored.leads["name"].tolist() == ["Ada: the first", "", "=cmd"]
    # A later export whose schema makes a numeric field categorical is refused, store unchanged.
    (tmp_path / "other.yaml").write_text(SCHEMA.replace("score: numeric", "score: categorical"))
    result = store_load(folder, store_url, "--schema", str(tmp_path / "other.yaml"))
    assert result.exit_code == 2, result.output
    assert "'score' is numeric in the store but categorical" in " ".join(result.stderr.split())
    assert_same_crm(read_crm(engine), crm)
    engine.dispose()


@pytest.mark.data
def test_loading_again_adds_nothing_and_a_changed_export_changes_only_what_changed(
    store_url, tmp_path
):
    folder = write_crm(tmp_path / "crm")
    first = store_load(folder, store_url)
    assert first.exit_code == 0, first.output
    said = " ".join(first.stdout.split())
    assert "3 leads (3 new, 0 updated, 0 unchanged), 8 events (8 added, 0 already there)" in said
    again = store_load(folder, store_url)
    said = " ".join(again.stdout.split())
    assert "3 leads (0 new, 0 updated, 3 unchanged), 8 events (0 added, 8 already there)" in said
    # L2 gets a budget, one activity is repeated (a second, identical event) and L4 is new.
    write_crm(
        folder,
        leads=LEADS.replace(
            "L2,2025-01-05,trade_show,retail,,US,,",
            "L2,2025-01-05,trade_show,retail,,US,confirmed,",
        )
        + "L4,2025-03-01,chat,,,,,,,,open,\n",
        activities=ACTIVITIES + "L2,2025-01-06T10:00:00,email_open\n",
        touches=TOUCHES,
    )
    changed = store_load(folder, store_url)
    said = " ".join(changed.stdout.split())
    assert "4 leads (1 new, 1 updated, 2 unchanged), 9 events (1 added, 8 already there)" in said
    engine = open_store(store_url)
    assert_same_crm(read_crm(engine), load_crm(folder))
    with engine.connect() as connection:
        stamps = dict(
            connection.execute(sa.text("select lead_id, updated_at > stored_at from leads")).all()
        )
    engine.dispose()
    assert {k: bool(v) for k, v in stamps.items()} == {
        "L1": False,
        "L2": True,
        "L3": False,
        "L4": False,
    }


@pytest.mark.data
def test_a_bad_export_stops_with_the_contract_message_and_the_store_unchanged(store_url, tmp_path):
    good = write_crm(tmp_path / "good")
    assert store_load(good, store_url).exit_code == 0
    bad = write_crm(tmp_path / "bad", activities=ACTIVITIES + "L3,2025-02-03T10:00:00,fax_sent\n")
    with pytest.raises(ContractError) as contract:
        load_crm(bad)
    result = store_load(bad, store_url)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    said = " ".join(result.stderr.split())
    assert " ".join(str(contract.value).split()) in said  # train's message, word for word
    assert "'fax_sent'" in said and "activities.csv, column 'type', line 7" in said
    engine = open_store(store_url)
    assert_same_crm(read_crm(engine), load_crm(good))
    engine.dispose()


@pytest.mark.data
def test_a_bad_export_creates_no_sqlite_store(tmp_path):
    bad = write_crm(tmp_path / "bad", activities=ACTIVITIES + "L3,2025-02-03T10:00:00,fax_sent\n")
    models = tmp_path / "models"
    result = runner.invoke(app, ["store", "load", "--data", str(bad), "--models-dir", str(models)])
    assert result.exit_code == 2
    assert not models.exists()


@pytest.mark.data
def test_a_load_interrupted_after_its_leads_leaves_the_store_as_it_was(store_url, small_export):
    crm = load_crm(small_export)
    engine = open_store(store_url)
    before = read_crm(engine)

    def interrupt(done: int, total: int) -> None:
        if done > len(crm.leads):  # leads written, events under way
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_export(engine, crm, NOW, progress=interrupt)
    after = read_crm(engine)
    assert after.leads.empty and after.activities.empty and after.touches.empty
    assert_same_crm(after, before)
    engine.dispose()


@pytest.mark.data
def test_the_migrations_build_exactly_the_tables_the_metadata_describes(store_url):
    engine = open_store(store_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        assert compare_metadata(context, metadata) == []
        assert context.get_current_revision() == head_revision()
        tables = set(sa.inspect(connection).get_table_names())
    assert tables == set(metadata.tables) | {VERSION_TABLE}
    engine.dispose()


@pytest.mark.data
def test_a_store_from_a_newer_leadready_is_refused_with_a_reason(store_url):
    open_store(store_url).dispose()
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"update {VERSION_TABLE} set version_num = 'f00d'"))
    engine.dispose()
    with pytest.raises(StoreError, match="written by a newer leadready: upgrade leadready"):
        open_store(store_url)


OPEN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from leadready.features.leadstore.database import open_store, current_revision
    go = Path(sys.argv[2])
    Path(sys.argv[3]).touch()
    while not go.exists():
        time.sleep(0.005)
    engine = open_store(sys.argv[1])
    with engine.connect() as connection:
        print(current_revision(connection))
    """
)


@pytest.mark.fault
@pytest.mark.parametrize("database", DATABASES)
def test_processes_opening_a_new_store_at_the_same_moment_all_succeed(database, request, tmp_path):
    if database == "sqlite":
        url = default_url(tmp_path / "models")
    else:
        url = request.getfixturevalue("postgres_server").create_database(
            f"race_{uuid.uuid4().hex[:12]}"
        )
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url, str(go), str(tmp_path / f"ready-{n}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # all four have imported leadready and wait for this to open the store at once
    results = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    for code, out, err in results:
        assert code == 0, err
        assert out.strip() == head_revision()


@pytest.mark.unit
def test_event_ids_follow_what_a_row_says_and_count_identical_rows():
    events = pd.DataFrame(
        {
            "lead_id": ["a:1", "a", "a", "a:1"],
            "occurred_at": pd.to_datetime(["2025-01-01"] * 3 + ["2025-01-01"]),
            "type": ["web_visit", "web_visit", "web_visit", "web_visit"],
        }
    )
    ids = event_ids("activities", events).tolist()
    assert ids == [
        "activities:a:1:1735689600:web_visit:0",
        "activities:a:1735689600:web_visit:0",
        "activities:a:1735689600:web_visit:1",
        "activities:a:1:1735689600:web_visit:1",
    ]
    assert event_ids("activities", events.iloc[::-1]).tolist()[::-1] != ids  # n counts in order
    assert sorted(event_ids("activities", events.iloc[::-1])) == sorted(ids)  # but the set holds
    touches = pd.DataFrame(
        {
            "lead_id": ["a", "a"],
            "occurred_at": pd.to_datetime(["2025-01-01", "2025-01-01"]),
            "channel": ["call", "call"],
            "team": ["sales", "sales"],
            "responded": [float("nan"), 1.0],
        }
    )
    assert event_ids("touches", touches).tolist() == [
        "touches:a:1735689600:call:sales::0",
        "touches:a:1735689600:call:sales:1:0",
    ]


@pytest.mark.unit
def test_the_store_url_is_the_option_else_the_environment_else_sqlite_in_the_models_folder(
    tmp_path,
):
    models = tmp_path / "models"
    env = {"LEADREADY_DATABASE_URL": "postgresql://u@h/db"}
    assert database_url(models, None, {}) == f"sqlite:///{(models / 'leads.db').resolve()}"
    assert database_url(models, None, env) == "postgresql+psycopg://u@h/db"
    assert database_url(models, "sqlite:////x.db", env) == "sqlite:////x.db"
    assert database_url(models, "postgres://u@h/db", {}) == "postgresql+psycopg://u@h/db"
