"""Schema files map a customer's export onto the contract: renames, value maps, date formats and
custom features, end to end through training and scoring."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ACTIVITIES, TOUCHES
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.contract import ContractError, load_crm
from leadready.features.schema import Schema
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.schemas import EXAMPLE_REQUEST

runner = CliRunner()

CUSTOMER_LEADS = """Lead ID,Created,Origin,Sector,Employees,Country,Budget,Role,Need,When,Status,Closed,Partner tier,MQL score
L1,01/01/2025,Referral,software,120,DE,confirmed,Decision Maker,confirmed,this month,won,15/02/2025,gold,88
L2,05/01/2025,Trade Show,retail,,US,,User,,next quarter,lost,01/04/2025,,12
L3,01/02/2025,web_form,,8,,indicated,Influencer,none,,open,,silver,
"""
SCHEMA = """
leads:
  file: crm_leads.csv
  columns: {Lead ID: lead_id, Created: created_at, Origin: source, Sector: industry,
            Employees: company_size, Budget: budget, Role: authority, Need: need,
            When: timeframe, Status: outcome, Closed: outcome_at}
  values:
    source: {Referral: referral, Trade Show: trade_show}
    authority: {Decision Maker: decision_maker, Influencer: influencer, User: user}
    timeframe: {this month: lt_1m, next quarter: 1_3m}
  dates: {created_at: "%d/%m/%Y", outcome_at: "%d/%m/%Y"}
  features: {Partner tier: categorical, MQL score: numeric}
activities:
  file: engagement.csv
"""


@pytest.fixture
def customer_export(tmp_path) -> tuple[Path, Schema]:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "crm_leads.csv").write_text(CUSTOMER_LEADS)
    (folder / "engagement.csv").write_text(ACTIVITIES)
    (folder / "touches.csv").write_text(TOUCHES)
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    return folder, Schema.load(tmp_path / "schema.yaml")


@pytest.mark.unit
def test_renames_value_maps_date_formats_and_custom_columns(customer_export):
    folder, schema = customer_export
    crm = load_crm(folder, schema=schema)
    leads = crm.leads
    assert list(leads["source"]) == ["referral", "trade_show", "web_form"]
    assert list(leads["authority"]) == ["decision_maker", "user", "influencer"]
    assert list(leads["timeframe"]) == ["lt_1m", "1_3m", "unknown"]
    assert str(leads["created_at"][1]) == "2025-01-05 00:00:00"
    assert str(leads["outcome_at"][0]) == "2025-02-15 00:00:00"
    assert crm.custom == {"Partner tier": "categorical", "MQL score": "numeric"}
    assert list(leads["Partner tier"]) == ["gold", "unknown", "silver"]
    np.testing.assert_array_equal(leads["MQL score"], [88.0, 12.0, np.nan])
    assert len(crm.activities) == 5


@pytest.mark.unit
def test_values_match_ignoring_case_and_spaces(customer_export):
    folder, schema = customer_export
    text = CUSTOMER_LEADS.replace("Decision Maker", " decision MAKER ")
    (folder / "crm_leads.csv").write_text(text)
    assert load_crm(folder, schema=schema).leads["authority"][0] == "decision_maker"


@pytest.mark.unit
def test_a_date_in_another_format_names_the_schema_format(customer_export):
    folder, schema = customer_export
    (folder / "crm_leads.csv").write_text(CUSTOMER_LEADS.replace("05/01/2025", "2025-01-05"))
    with pytest.raises(ContractError) as error:
        load_crm(folder, schema=schema)
    message = str(error.value)
    assert "column 'created_at', line 3" in message and "'%d/%m/%Y'" in message


@pytest.mark.unit
def test_unmapped_values_and_non_numeric_custom_values_are_reported(customer_export):
    folder, schema = customer_export
    text = CUSTOMER_LEADS.replace("Decision Maker", "Boss").replace(",88", ",lots")
    (folder / "crm_leads.csv").write_text(text)
    with pytest.raises(ContractError) as error:
        load_crm(folder, schema=schema)
    message = str(error.value)
    assert "column 'authority', line 2: value not allowed ('Boss')" in message
    assert "column 'MQL score', line 2: not a number ('lots')" in message


@pytest.mark.unit
@pytest.mark.parametrize(
    "text,expected",
    [
        ("leeds: {}", "section 'leeds': unknown"),
        (
            "leads: {features: {Tier: text}}",
            "leads.features.Tier: 'text'; expected numeric | categorical",
        ),
        ("leads: {colums: {}}", "leads.colums: unknown key"),
        ("leads: {columns: [a, b]}", "leads.columns: expected a mapping"),
        ("touches: {features: {x: numeric}}", "custom features are lead-level"),
        ("leads: [", "not valid YAML"),
        ("leads: {display: [name]}", "leads.display: only the flat mode's table section"),
        ("table: {display: {a: b}}", "table.display: expected a list of column names"),
        (
            "table: {display: [name], actionable: [name]}",
            "table.display and table.actionable both name 'name'",
        ),
        (
            "table: {display: [name], features: {name: categorical}}",
            "table.display names 'name', which table.features makes a feature",
        ),
    ],
)
def test_a_bad_schema_file_stops_train_with_exit_2(tmp_path, tiny_crm, text, expected):
    schema = tmp_path / "schema.yaml"
    schema.write_text(text)
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(tiny_crm),
            "--schema",
            str(schema),
            "--models-dir",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2
    assert expected in " ".join(result.stderr.split())
    assert not (tmp_path / "m").exists()


@pytest.mark.api
def test_custom_features_train_serve_and_score(sample_dir, tmp_path):
    """A customer's 'Partner tier' that carries signal becomes a feature end to end."""
    export = tmp_path / "export"
    shutil.copytree(sample_dir, export)
    leads = pd.read_csv(export / "leads.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    won = leads["outcome"] == "won"
    leads["Partner tier"] = np.where(
        won & (rng.random(len(leads)) < 0.6),
        "gold",
        rng.choice(["silver", "bronze", ""], len(leads)),
    )
    leads["MQL score"] = rng.integers(0, 100, len(leads)).astype(str)
    leads = leads.rename(columns={"lead_id": "Lead ID"})
    leads.to_csv(export / "leads.csv", index=False)
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        "leads:\n  columns: {Lead ID: lead_id}\n"
        "  features: {Partner tier: categorical, MQL score: numeric}\n"
    )
    models = tmp_path / "models"
    result = runner.invoke(
        app, ["train", "--data", str(export), "--schema", str(schema), "--models-dir", str(models)]
    )
    assert result.exit_code == 0, result.output

    settings = ServeSettings(models_dir=models, audit_url=f"sqlite:///{tmp_path / 'a.db'}")
    with TestClient(create_app(settings)) as client:
        info = client.get("/v1/model").json()
        assert "Partner tier" in [d["feature"] for d in info["drivers"]]
        body = {
            **EXAMPLE_REQUEST,
            "lead": {
                **EXAMPLE_REQUEST["lead"],
                "custom": {"Partner tier": "gold", "MQL score": 40},
            },
        }
        gold = client.post("/v1/score", json=body).json()
        body["lead"]["custom"] = {"Partner tier": "bronze"}
        bronze = client.post("/v1/score", json=body).json()
        assert gold["readiness"] > bronze["readiness"]

    out = tmp_path / "scores.csv"
    scored = runner.invoke(
        app,
        [
            "score",
            "--data",
            str(export),
            "--schema",
            str(schema),
            "--out",
            str(out),
            "--models-dir",
            str(models),
        ],
    )
    assert scored.exit_code == 0, scored.output
    assert len(pd.read_csv(out)) == (leads["outcome"] == "open").sum()
    no_schema = runner.invoke(
        app, ["score", "--data", str(export), "--out", str(out), "--models-dir", str(models)]
    )
    assert no_schema.exit_code == 2


@pytest.mark.unit
def test_display_and_actionable_columns_are_lists_of_names():
    mapping = Schema.parse(
        {"table": {"display": ["Name", "Email", "Name"], "actionable": "Lead Source"}}
    ).table("table")
    assert mapping.display == ("Name", "Email") and mapping.actionable == ("Lead Source",)
    assert Schema.parse({"table": {}}).table("table").display == ()
