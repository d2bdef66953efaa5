"""The audit log's database and journal mechanics, in one process: an audit database from
before the journal (and before `as_of`, `explore` and `propensity`) is upgraded in place, and a
large, fully written journal is replaced."""

from __future__ import annotations

import sqlite3
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from leadready.features.auditdb import engine_for
from leadready.serving import audit
from leadready.serving.audit import JOURNAL_SUFFIX, AuditLog, export
from leadready.serving.middleware import Metrics

pytestmark = pytest.mark.unit

ROW = {
    "lead_id": "L1",
    "model_name": "m",
    "model_version": "1",
    "readiness": 0.5,
    "potential": 0.5,
    "route": "sales",
    "scored_at": "2026-01-01T00:00:00+00:00",
    "as_of": "2025-12-31T00:00:00+00:00",
    "explore": True,
    "propensity": 0.02,
}


def test_an_audit_database_without_newer_columns_gets_them_and_keeps_its_rows(tmp_path):
    path = tmp_path / "audit.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "create table scores (id integer primary key, request_id varchar(64) not null, "
            "lead_id varchar(200) not null, model_name varchar(200) not null, model_version "
            "varchar(32) not null, readiness float not null, potential float not null, "
            "route varchar(16) not null, scored_at varchar(40) not null)"
        )
        old.execute(
            "insert into scores values (1, 'old', 'L0', 'm', '1', 0.1, 0.1, 'nurture', 'x')"
        )
    url = f"sqlite:///{path}"
    log = AuditLog(url, tmp_path / "journal", Metrics())
    log.record([dict(ROW, request_id="new")])
    log.close()
    indexes = sa.inspect(engine_for(url)).get_indexes("scores")
    assert any(i["name"] == "ix_scores_record_key" and i["unique"] for i in indexes)
    assert export(url, tmp_path / "audit.csv") == 2
    exported = pd.read_csv(tmp_path / "audit.csv")
    assert exported["as_of"].isna().tolist() == [True, False]  # the old row has none
    assert exported["as_of"].iloc[1] == ROW["as_of"]
    assert exported["propensity"].isna().tolist() == [True, False]
    assert exported["explore"].iloc[1] and exported["propensity"].iloc[1] == ROW["propensity"]


def test_a_shipped_journal_past_the_rotation_size_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(audit, "ROTATE_BYTES", 1000)
    folder = tmp_path / "journal"
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", folder, Metrics())
    first = next(folder.glob(f"*{JOURNAL_SUFFIX}"))
    log.record([dict(ROW, request_id=f"r{i}") for i in range(20)])
    deadline = time.monotonic() + 10
    while first.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not first.exists()
    log.record([dict(ROW, request_id="after")])
    log.close()
    assert not list(folder.glob(f"*{JOURNAL_SUFFIX}"))
    with engine_for(f"sqlite:///{tmp_path / 'audit.db'}").connect() as connection:
        ids = list(connection.scalars(sa.text("select request_id from scores")))
    assert sorted(ids) == sorted([f"r{i}" for i in range(20)] + ["after"])
