"""What the workspace keeps on disk for its sessions (serving.sessions), on real files."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest
from conftest import LEADS, make_table, write_crm

from leadready.features.contract import load_crm
from leadready.features.schema import Schema
from leadready.serving.sessions import MAX_SAVED, Saved, SavedExports, session_secret

pytestmark = pytest.mark.unit


def test_the_secret_is_created_once_private_and_shared(tmp_path):
    folder = tmp_path / "workspace"
    first = session_secret(folder)
    assert len(first) == 32
    assert oct((folder / "secret").stat().st_mode & 0o777) == "0o600"
    assert session_secret(folder) == first  # a second process reads the same one


def test_a_crm_export_comes_back_as_it_was_saved(tmp_path):
    header, *rows = LEADS.strip().split("\n")
    named = [f"{header},Name", *(f"{row},Person {i}" for i, row in enumerate(rows))]
    folder = write_crm(tmp_path / "crm", leads="\n".join(named) + "\n")
    schema = Schema.parse({"leads": {"display": ["Name"]}})
    crm = load_crm(folder, require_outcome=False, schema=schema)
    assert crm.display == ("Name",)
    store = SavedExports(tmp_path / "workspace")
    store.save(
        "sid-1",
        Saved("leads.csv, activities.csv, touches.csv", "crm", "2025-03-01T00:00:00", crm=crm),
    )
    back = store.load("sid-1")
    assert back is not None and back.kind == "crm" and back.as_of == "2025-03-01T00:00:00"
    assert back.name == "leads.csv, activities.csv, touches.csv"
    for name in ("leads", "activities", "touches"):
        pd.testing.assert_frame_equal(getattr(back.crm, name), getattr(crm, name))
    assert back.crm.custom == crm.custom and back.frame is None
    assert back.crm.display == ("Name",)


def test_a_flat_table_and_the_sample_come_back_and_a_new_save_replaces_the_old(tmp_path):
    store = SavedExports(tmp_path / "workspace")
    frame = make_table(20).astype(str)
    store.save("sid-2", Saved("new.csv", "flat", frame=frame))
    back = store.load("sid-2")
    pd.testing.assert_frame_equal(back.frame, frame)
    store.save("sid-2", Saved("sample (data/sample)", "sample"))
    back = store.load("sid-2")
    assert (back.kind, back.name, back.crm, back.frame) == (
        "sample",
        "sample (data/sample)",
        None,
        None,
    )
    assert sorted(p.name for p in (tmp_path / "workspace").iterdir()) == ["sid-2"]


def test_unknown_or_damaged_sessions_load_as_none(tmp_path):
    store = SavedExports(tmp_path / "workspace")
    assert store.load("never-saved") is None
    store.save("sid-3", Saved("new.csv", "flat", frame=make_table(5).astype(str)))
    (tmp_path / "workspace" / "sid-3" / "table.parquet").write_bytes(b"not parquet")
    assert store.load("sid-3") is None


def test_only_the_newest_sessions_are_kept_and_none_older_than_a_session(tmp_path):
    store = SavedExports(tmp_path / "workspace", max_age=3600)
    frame = make_table(5).astype(str)
    for i in range(MAX_SAVED + 3):
        store.save(f"s{i:03d}", Saved("t.csv", "flat", frame=frame))
        stamp = time.time() - (MAX_SAVED + 3 - i)  # older saves first
        os.utime(tmp_path / "workspace" / f"s{i:03d}", (stamp, stamp))
    kept = sorted(p.name for p in (tmp_path / "workspace").iterdir())
    assert len(kept) == MAX_SAVED and kept[0] == "s003"
    old = time.time() - 7200
    os.utime(tmp_path / "workspace" / "s010", (old, old))
    cut_off = tmp_path / "workspace" / ".s999.abcd"  # a save that never finished
    cut_off.mkdir()
    os.utime(cut_off, (old, old))
    store.save("new", Saved("t.csv", "flat", frame=frame))
    remaining = {p.name for p in (tmp_path / "workspace").iterdir()}
    assert "s010" not in remaining and "new" in remaining and ".s999.abcd" not in remaining
