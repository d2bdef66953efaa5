"""Ids and suspected leakage caught before a flat model trains: what is excluded, with what
evidence, and how the schema keeps a column anyway."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from conftest import write

from leadready.features.contract import load_crm
from leadready.features.exclusions import exclusion_words
from leadready.features.schema import Schema
from leadready.training.flat_table import (
    TOO_GOOD_AUC,
    FlatConfig,
    exclusion_notes,
    holdout_warning,
    leakage_evidence,
    leakage_messages,
    prepare,
    scan_custom_features,
)

pytestmark = pytest.mark.unit

CONFIG = FlatConfig("lead", "converted", "yes")


def leaky_table(rows: int = 400, seed: int = 5) -> pd.DataFrame:
    """Leads with two honest features, three id-like columns (a running number, UUIDs, email
    addresses), a floating-point amount distinct in every row (no id), notes sales write about
    the outcome (right for 92% of leads), and a lost reason filled for 40% of lost leads only."""
    rng = np.random.default_rng(seed)
    visits = rng.poisson(3, rows)
    source = rng.choice(["web", "ads", "referral"], rows)
    won = rng.random(rows) < 1 / (1 + np.exp(-(0.5 * visits - 2.0 + (source == "referral"))))
    agrees = rng.random(rows) < 0.92
    told = np.where(agrees, won, ~won)
    notes = np.where(
        told,
        rng.choice(["Closed by Anna", "Will revert", "Signed"], rows),
        rng.choice(["Ringing", "Lost to rival", "Not interested", "Switched off"], rows),
    )
    lost_reason = np.where(
        ~won & (rng.random(rows) < 0.4), rng.choice(["price", "timing", "competitor"], rows), ""
    )
    return pd.DataFrame(
        {
            "lead": [f"L{i:04d}" for i in range(rows)],
            "number": 660_000 - 3 * np.arange(rows) - rng.integers(0, 3, rows),
            "uuid": [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(rows)],
            "email": [f"lead{i}@example.com" for i in range(rows)],
            "amount": np.round(rng.normal(1000, 300, rows), 2),
            "visits": visits,
            "source": source,
            "notes": notes,
            "lost_reason": lost_reason,
            "converted": np.where(won, "yes", "no"),
        }
    )


@pytest.fixture
def table(tmp_path):
    return write(leaky_table(), tmp_path)


def test_ids_and_suspected_leakage_are_excluded_with_their_evidence(table):
    data = prepare(table, CONFIG)
    by_name = {t.name: t for t in data.types}
    assert data.feature_types == {"amount": "numeric", "visits": "numeric", "source": "categorical"}
    assert by_name["number"].note == "an id (400 distinct values in 400 rows, a sequence)"
    assert by_name["uuid"].note == "an id (400 distinct values in 400 rows, UUIDs)"
    assert by_name["email"].note == "an id (400 distinct values in 400 rows, email addresses)"
    # The notes alone rank the outcome far too well; the lost reason does not (AUC about 0.7),
    # but only lost leads have one.
    assert data.single_auc["notes"] > 0.85 and data.single_auc["lost_reason"] < 0.85
    assert data.leakage["notes"].startswith(
        f"alone it ranks the outcome with ROC AUC {data.single_auc['notes']:.3f} (out of fold"
    )
    assert data.leakage["lost_reason"].startswith("filled for 0% of converted leads and 4")
    assert set(data.leakage) == {"notes", "lost_reason"}
    assert by_name["notes"].note == f"suspected leakage: {data.leakage['notes']}"
    assert data.leaks == {}  # nothing suspected is left in the model
    notes = exclusion_notes(data)
    assert notes[0] == (
        "'number' excluded as an id (400 distinct values in 400 rows, a sequence); to use it, "
        "declare it in the schema: table: {features: {number: numeric}}"
    )
    assert "table: {features: {uuid: categorical}}" in notes[1]
    assert notes[3].startswith("'notes' excluded as suspected leakage: alone it ranks")
    assert notes[3].endswith("table: {features: {notes: categorical}}")
    assert len(notes) == 5
    assert leakage_messages(data) == []


def test_every_note_of_a_left_out_column_reads_in_plain_words(tmp_path):
    """The Model page and the report say why a column is out in words a marketer reads: no
    option, no schema syntax, no AUC; from the notes training really writes."""
    frame = leaky_table().assign(
        region="EMEA", signed=pd.date_range("2024-01-01", periods=400).strftime("%Y-%m-%d")
    )
    schema = Schema.parse({"table": {"display": ["email"], "features": {"uuid": "ignore"}}})
    data = prepare(write(frame, tmp_path), CONFIG, schema.table("table"))
    words = {
        t.name: exclusion_words(t.note, data.single_auc.get(t.name))
        for t in data.types
        if t.kind == "excluded"
    }
    assert words["number"].startswith("looks like an id: nearly every row has its own value")
    assert words["region"] == "the same on every row, so there is nothing to learn from it"
    assert words["signed"] == "holds dates, which the model does not read as an input"
    assert words["email"] == "shown beside each lead on the Leads page, never an input"
    assert words["uuid"] == "left out by the schema"
    assert words["notes"] == (
        "suspected leakage: alone it predicts the outcome suspiciously well (of two leads, one "
        "that converted and one that did not, it ranks the converted one higher "
        f"{data.single_auc['notes']:.0%} of the time): filled in after the outcome?"
    )
    share = data.leakage["lost_reason"].split(" and ")[1].split()[0]
    assert words["lost_reason"] == (
        f"suspected leakage: filled for 0% of converted leads and {share} of the others: "
        "filled in after the outcome?"
    )
    for text in words.values():
        assert "--" not in text and "AUC" not in text and "table:" not in text


def test_a_column_the_schema_declares_is_kept_and_a_kept_leak_is_warned_about(table):
    schema = Schema.parse(
        {"table": {"features": {"number": "numeric", "notes": "categorical", "uuid": "ignore"}}}
    )
    data = prepare(table, CONFIG, schema.table("table"))
    assert data.feature_types["number"] == "numeric"
    assert data.feature_types["notes"] == "categorical"
    assert "uuid" not in data.feature_types and "lost_reason" not in data.feature_types
    assert set(data.leakage) == {"notes", "lost_reason"}
    assert data.leaks == {"notes": data.single_auc["notes"]}
    assert exclusion_notes(data)[-1].startswith("'lost_reason' excluded as suspected leakage")
    (message,) = leakage_messages(data)
    assert message.startswith(
        "suspected leakage: column 'notes' predicts 'converted' suspiciously well: alone it "
        "ranks the outcome with ROC AUC"
    )
    assert "table: {features: {notes: ignore}}" in message


def test_filled_or_empty_for_one_outcome_is_evidence_only_when_it_covers_enough_rows():
    y = np.array([1] * 100 + [0] * 300)
    lost = np.array([False] * 100 + [True] * 60 + [False] * 240)  # a reason for 20% of losses
    assert leakage_evidence(lost, 0.6, y) == (
        "filled for 0% of converted leads and 20% of the others (>= 20 times as often for one "
        "outcome: filled in after it?)"
    )
    cleared = np.array([False] * 30 + [True] * 370)  # emptied once a lead converts
    assert leakage_evidence(cleared, 0.6, y).startswith(
        "empty for 30% of converted leads and 0% of the others"
    )
    few = np.array([False] * 4 + [True] * 396)  # 4 empty cells: no evidence of anything
    assert leakage_evidence(few, 0.6, y) is None
    twice = np.array([True] * 60 + [False] * 40 + [True] * 90 + [False] * 210)  # 60% vs 30%
    assert leakage_evidence(twice, 0.84, y) is None
    assert leakage_evidence(twice, 0.85, y).startswith("alone it ranks the outcome")


def test_a_too_good_hold_out_auc_warns_naming_the_strongest_inputs(table):
    schema = Schema.parse({"table": {"features": {"notes": "categorical"}}})
    data = prepare(table, CONFIG, schema.table("table"))
    assert holdout_warning(TOO_GOOD_AUC - 0.001, data) is None
    warning = holdout_warning(0.991, data)
    assert warning is not None
    assert warning.startswith("hold-out ROC AUC 0.991 is too good to be true (>= 0.97)")
    strongest = sorted(data.feature_types, key=lambda n: -data.single_auc[n])[:3]
    assert strongest[0] == "notes"
    assert (
        "Strongest inputs: "
        + ", ".join(f"'{n}' (AUC {data.single_auc[n]:.3f} alone)" for n in strongest)
        in warning
    )


def test_custom_features_of_a_crm_export_get_the_same_checks(tmp_path):
    rng = np.random.default_rng(2)
    rows = 300
    won = rng.random(rows) < 0.3
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(rows)],
            "created_at": "2025-01-01",
            "source": rng.choice(["referral", "web_form"], rows),
            "industry": "software",
            "company_size": "",
            "country": "DE",
            "budget": "",
            "authority": "",
            "need": "",
            "timeframe": "",
            "outcome": np.where(won, "won", "lost"),
            "outcome_at": "2025-03-01",
            "Partner ID": 100 + np.arange(rows),
            "Lost reason": np.where(~won & (rng.random(rows) < 0.4), "price", ""),
            "MQL score": rng.integers(0, 100, rows),
        }
    )
    leads.loc[:9, "outcome"] = "open"  # open leads count for the id check, not for leakage
    leads.loc[:9, "outcome_at"] = ""
    folder = write(leads, tmp_path / "crm").parent
    (folder / "activities.csv").write_text("lead_id,occurred_at,type\n")
    (folder / "touches.csv").write_text("lead_id,occurred_at,channel,team,responded\n")
    kinds = {"Partner ID": "numeric", "Lost reason": "categorical", "MQL score": "numeric"}
    crm = load_crm(folder, schema=Schema.parse({"leads": {"features": kinds}}))
    closed_lost = leads["outcome"] == "lost"
    reasons = (leads["Lost reason"][closed_lost] != "").mean()
    assert scan_custom_features(crm).warnings() == [
        "custom feature 'Partner ID' looks like an id (300 distinct values in 300 rows, a "
        "sequence): what a model learns from an id does not carry over to new leads; remove it "
        "from the schema's leads.features",
        "suspected leakage: custom feature 'Lost reason' tells won from lost leads suspiciously "
        f"well: filled for 0% of converted leads and {reasons:.0%} of the others (>= 20 times "
        "as often for one outcome: filled in after it?). The schema declares it, so "
        "training goes on with it, but the version is not made champion automatically; if it is "
        "filled in once the outcome is known, remove it from the schema's leads.features",
    ]
