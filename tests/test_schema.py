"""Schema files map a customer's export onto the contract: renames, value maps, date formats and
custom features, end to end through training and scoring."""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from conftest import ACTIVITIES, LEADS, TOUCHES, make_table, write, write_crm
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.contract import ContractError, load_crm, value_key
from leadready.features.leadstore.database import open_store
from leadready.features.leadstore.tables import current_scores
from leadready.features.registry import embedded_uri
from leadready.features.schema import Schema
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.engine import Engine
from leadready.serving.live import LivePolicy, sweep
from leadready.serving.schemas import EXAMPLE_REQUEST
from leadready.serving.store import load_champion

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
def test_values_match_ignoring_case_spaces_and_punctuation(customer_export):
    folder, schema = customer_export
    text = CUSTOMER_LEADS.replace("Decision Maker", " decision-MAKER ")
    (folder / "crm_leads.csv").write_text(text)
    assert load_crm(folder, schema=schema).leads["authority"][0] == "decision_maker"
    for spelling in ("Trade Show", "trade-show", " TRADE_SHOW ", "trade  show!"):
        assert value_key(spelling) == "trade_show"


@pytest.mark.unit
def test_close_spellings_of_contract_values_are_read_and_noted(tmp_path):
    leads = LEADS.replace(",referral,", ",Referral,").replace(",trade_show,", ",Trade Show,")
    crm = load_crm(write_crm(tmp_path / "crm", leads=leads))
    assert list(crm.leads["source"]) == ["referral", "trade_show", "web_form"]
    assert crm.notes == [
        f"{tmp_path / 'crm' / 'leads.csv'}, column 'source': 'Referral' read as referral "
        "(1 line), 'Trade Show' read as trade_show (1 line)"
    ]


def _leads_with_sources(sources: list[str]) -> str:
    header, first = LEADS.splitlines()[:2]
    rows = [
        first.replace("L1,", f"X{i},").replace(",referral,", f",{source},")
        for i, source in enumerate(sources)
    ]
    return "\n".join([header, *rows]) + "\n"


@pytest.mark.unit
def test_every_bad_value_is_counted_in_one_message(tmp_path):
    sources = ["Unsubscribed"] * 14 + ["Bounced"] * 3 + [f"bad{i}" for i in range(10)]
    crm = write_crm(
        tmp_path / "crm",
        leads=_leads_with_sources(sources),
        activities=ACTIVITIES.splitlines()[0] + "\n",
        touches=TOUCHES.splitlines()[0] + "\n",
    )
    result = runner.invoke(app, ["train", "--data", str(crm), "--models-dir", str(tmp_path / "m")])
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2, result.output
    assert "(1 problem;" in message
    assert (
        "column 'source', lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 17 more (27 in all): value not "
        "allowed ('Unsubscribed' in 14 lines, 'Bounced' in 3 lines, 'bad0' in 1 line"
    ) in message
    assert "'bad7' in 1 line and 2 more values in 2 lines); expected one of web_form" in message


@pytest.mark.unit
def test_a_schema_rename_of_a_column_not_in_the_file_is_named_as_such(tmp_path, tiny_crm):
    (tiny_crm / "leads.csv").write_text(LEADS.replace(",source,", ",Origin,", 1))
    schema = tmp_path / "schema.yaml"
    schema.write_text("leads: {columns: {Lead Src: source}}\n")
    args = ["train", "--data", str(tiny_crm), "--schema", str(schema)]
    result = runner.invoke(app, [*args, "--models-dir", str(tmp_path / "m")])
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2, result.output
    assert (
        "leads.csv: the schema maps column 'Lead Src' (to source), which is not in leads.csv "
        "(columns: 'lead_id', 'created_at', 'Origin', 'industry'"
    ) in message
    assert "missing column" not in message

    table = write(make_table(), tmp_path / "flat")
    schema.write_text("table: {columns: {Lead Src: origin}}\n")
    flat = ["train", "--table", str(table), "--id", "lead", "--label", "converted"]
    result = runner.invoke(
        app, [*flat, "--positive", "yes", "--schema", str(schema), "--models-dir", str(tmp_path)]
    )
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2, result.output
    assert "the schema maps column 'Lead Src' (to origin), which is not in leads.csv" in message


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
        ("leads: {actionable: [name]}", "leads.actionable: only the flat mode's table section"),
        ("touches: {display: [name]}", "touches.display: display columns are lead-level"),
        (
            "leads: {display: [tier], features: {tier: categorical}}",
            "leads.display names 'tier', which leads.features makes a feature",
        ),
        ("leads: {display: [source]}", "display column 'source' has the name of a built-in"),
        ("leads: {display: [Nmae]}", "missing column 'Nmae', named as a display column"),
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
    """A customer's 'Partner tier' that carries signal becomes a feature end to end; the
    schema is stored with the model, so scoring the export needs no --schema."""
    export = tmp_path / "export"
    shutil.copytree(sample_dir, export)
    leads = pd.read_csv(export / "leads.csv", dtype=str, keep_default_na=False)
    (export / "leads.csv").unlink()
    trade_show = leads["source"] == "trade_show"
    leads.loc[trade_show, "source"] = "Trade Show"
    rng = np.random.default_rng(0)
    won = leads["outcome"] == "won"
    leads["Partner tier"] = np.where(
        won & (rng.random(len(leads)) < 0.6),
        "gold",
        rng.choice(["silver", "bronze", ""], len(leads)),
    )
    leads["MQL score"] = rng.integers(0, 100, len(leads)).astype(str)
    leads["Name"] = [f"Person {i}" for i in range(len(leads))]
    leads = leads.rename(columns={"lead_id": "Lead ID"})
    leads.to_csv(export / "contacts.csv", index=False)
    schema = tmp_path / "schema.yaml"
    schema.write_text(
        "leads:\n  file: contacts.csv\n  columns: {Lead ID: lead_id}\n"
        "  features: {Partner tier: categorical, MQL score: numeric}\n  display: [Name]\n"
    )
    models = tmp_path / "models"
    result = runner.invoke(
        app, ["train", "--data", str(export), "--schema", str(schema), "--models-dir", str(models)]
    )
    assert result.exit_code == 0, result.output
    assert (
        f"note: {export / 'contacts.csv'}, column 'source': 'Trade Show' read as trade_show "
        f"({trade_show.sum():,} lines)"
    ) in " ".join(result.output.split())

    settings = ServeSettings(models_dir=models, audit_url=f"sqlite:///{tmp_path / 'a.db'}")
    with TestClient(create_app(settings)) as client:
        info = client.get("/v1/model").json()
        assert "Partner tier" in [d["feature"] for d in info["drivers"]]
        assert "Name" not in client.app.state.engine.info.features  # shown, never a feature
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
        # The workspace reads an upload without a schema with the stored one, too.
        files = {
            name: (f"{name}.csv", (export / f"{file}.csv").read_bytes())
            for name, file in (("leads", "contacts"), ("activities",) * 2, ("touches",) * 2)
        }
        assert client.post("/ui/leads/upload", files=files).status_code == 200
        uploaded = pd.read_csv(io.StringIO(client.get("/ui/leads.csv").text))
        assert len(uploaded) == (leads["outcome"] == "open").sum()
        top = uploaded.iloc[0]  # named by the stored schema's display column
        assert (
            f'>{top["Name"]}</a> <span class="hint">{top["lead_id"]}</span>'
            in client.get("/ui/leads").text
        )

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
    stored = tmp_path / "stored.csv"
    no_schema = runner.invoke(
        app, ["score", "--data", str(export), "--out", str(stored), "--models-dir", str(models)]
    )
    assert no_schema.exit_code == 0, no_schema.output
    pd.testing.assert_frame_equal(pd.read_csv(stored), pd.read_csv(out))
    # An explicit --schema wins over the stored one: this one names no leads file.
    schema.write_text("leads:\n  columns: {Lead ID: lead_id}\n")
    other = runner.invoke(
        app,
        ["score", "--data", str(export), "--schema", str(schema), "--out", str(tmp_path / "o.csv")]
        + ["--models-dir", str(models)],
    )
    assert other.exit_code == 2
    assert "no 'leads' table" in " ".join(other.stderr.split())


@pytest.mark.unit
def test_display_and_actionable_columns_are_lists_of_names():
    mapping = Schema.parse(
        {"table": {"display": ["Name", "Email", "Name"], "actionable": "Lead Source"}}
    ).table("table")
    assert mapping.display == ("Name", "Email") and mapping.actionable == ("Lead Source",)
    assert Schema.parse({"table": {}}).table("table").display == ()


@pytest.mark.unit
@pytest.mark.parametrize(
    "text,expected",
    [
        ("table: {constant: {a: b}}", "table.constant: only the leads, activities and touches"),
        ("leads: {constant: {lead_id: x}}", "leads.constant.lead_id: not a column a constant"),
        ("leads: {constant: {source: [a]}}", "leads.constant.source: expected a single name"),
        ("touches: {lost_after: 30}", "touches.lost_after: only the leads section"),
        ("leads: {lost_after: 0}", "leads.lost_after: 0; expected a whole number of days"),
        ("leads: {lost_after: soon}", "leads.lost_after: 'soon'; expected a whole number"),
        (
            "leads: {won_at: Won, columns: {Status: outcome}}",
            "leads.won_at derives outcome and outcome_at from 'Won', but leads.columns renames",
        ),
    ],
)
def test_bad_constants_and_outcome_rules_are_named(text, expected):
    with pytest.raises(ContractError) as error:
        Schema.parse(yaml.safe_load(text), "my.yaml")
    assert expected in str(error.value)


MINIMAL_LEADS = """MQL Id,First Contact,Won Date
M1,2025-01-01,2025-02-01
M2,2025-01-02,
M3,2025-03-01,
"""


@pytest.mark.unit
def test_a_constant_column_and_an_outcome_derived_from_won_dates(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "leads.csv").write_text(MINIMAL_LEADS)
    raw = {
        "leads": {
            "columns": {"MQL Id": "lead_id", "First Contact": "created_at"},
            "constant": {"source": "Other", "industry": "Software"},
            "won_at": "Won Date",
        },
        "touches": {"constant": {"team": "sales"}},
    }
    crm = load_crm(folder, schema=Schema.parse(raw))
    assert list(crm.leads["source"]) == ["other"] * 3
    assert list(crm.leads["industry"]) == ["software"] * 3
    assert list(crm.leads["outcome"]) == ["won", "open", "open"]
    assert str(crm.leads["outcome_at"][0].date()) == "2025-02-01"
    assert crm.leads["outcome_at"][1:].isna().all()
    # A constant for a column the file has, a won_at column it lacks, or one beside an outcome.
    (folder / "leads.csv").write_text(MINIMAL_LEADS.replace("Won Date", "outcome"))
    with pytest.raises(ContractError) as error:
        load_crm(folder, schema=Schema.parse({**raw, "touches": {"constant": {"lead_id": "x"}}}))
    message = " ".join(str(error.value).split())
    assert "touches.constant.lead_id: not a column a constant can set" in message
    with pytest.raises(ContractError) as error:
        raw["leads"]["constant"] = {"source": "other", "created_at": "2025-01-01"}
        load_crm(folder, schema=Schema.parse(raw))
    assert "leads.constant.created_at" in str(error.value)
    raw["leads"]["constant"] = {"source": "other"}
    with pytest.raises(ContractError) as error:
        load_crm(folder, schema=Schema.parse(raw))
    message = " ".join(str(error.value).split())
    assert "won_at names column 'Won Date', which is not in the file" in message
    (folder / "leads.csv").write_text(MINIMAL_LEADS.replace("MQL Id", "MQL Id,source,outcome"))
    with pytest.raises(ContractError) as error:
        load_crm(folder, schema=Schema.parse(raw))
    message = " ".join(str(error.value).split())
    assert "sets column 'source' to the constant 'other', but the file has that column" in message
    assert "derives the outcome from column 'Won Date' (won_at), but the file has 'outcome'" in (
        message
    )


def write_minimal_export(folder: Path, leads: int = 400, seed: int = 5) -> pd.DataFrame:
    """An export shaped like a real marketing-funnel one: an id, a first-contact date and an
    origin per lead, a won date for closed deals, nothing else (no BANT, no lost dates). Open
    leads stay open forever. Returns the leads as written."""
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 540, leads), "D")
    origin = rng.choice(["Paid Search", "Organic Search", "Social", "Referral"], leads)
    won_at = created + pd.to_timedelta(rng.integers(5, 120, leads), "D")
    rate = np.select([origin == "Referral", origin == "Paid Search"], [0.55, 0.3], 0.08)
    won = (rng.random(leads) < rate) & (won_at < pd.Timestamp("2025-06-20"))
    frame = pd.DataFrame(
        {
            "mql_id": [f"M{i:04d}" for i in range(leads)],
            "first_contact_date": created.strftime("%d/%m/%Y"),
            "origin": origin,
            "won_date": np.where(won, won_at.strftime("%Y-%m-%d"), ""),
        }
    )
    write(frame, folder)
    return frame


MINIMAL_SCHEMA = """
leads:
  columns: {mql_id: lead_id, first_contact_date: created_at, origin: source}
  values:
    source: {Paid Search: web_form, Organic Search: web_form, Social: other}
  dates: {created_at: "%d/%m/%Y"}
  won_at: won_date
"""


def train_with_lost_after(export: Path, schema: str, models: Path):
    """`leadready train` on `export` with the schema text `schema` (written beside it) and
    `--lost-after 150`, no search; asserts it succeeded."""
    path = export.parent / "schema.yaml"
    path.write_text(schema)
    trained = runner.invoke(
        app,
        ["train", "--data", str(export), "--schema", str(path)]
        + ["--lost-after", "150", "--search-seconds", "0", "--models-dir", str(models)],
    )
    assert trained.exit_code == 0, trained.output
    return trained


@pytest.mark.model
def test_a_minimal_export_trains_and_scores_with_a_schema_and_lost_after(tmp_path):
    export = tmp_path / "export"
    frame = write_minimal_export(export)
    models = tmp_path / "models"
    trained = train_with_lost_after(export, MINIMAL_SCHEMA, models)
    out = " ".join(trained.output.split())
    created = pd.to_datetime(frame["first_contact_date"], format="%d/%m/%Y")
    end = max(created.max(), pd.to_datetime(frame["won_date"].replace("", None)).max())
    stale = (frame["won_date"] == "") & (created + pd.Timedelta(days=150) <= end)
    assert f"Lost after 150 days: {int(stale.sum()):,} leads still open" in out
    assert "No BANT fields: all unknown" in out
    assert "Cold start" not in out and "now champion" in out

    # Scoring applies the model's rule (given on the command line, not in the schema).
    scores = tmp_path / "scores.csv"
    scored = runner.invoke(
        app, ["score", "--data", str(export), "--out", str(scores), "--models-dir", str(models)]
    )
    assert scored.exit_code == 0, scored.output
    assert f"{int(stale.sum()):,} leads still open 150 days" in " ".join(scored.output.split())
    young = frame.loc[(frame["won_date"] == "") & ~stale, "mql_id"]
    assert sorted(pd.read_csv(scores)["lead_id"]) == sorted(young)


@pytest.mark.model
def test_a_leaky_custom_field_makes_the_version_a_challenger_with_the_reason_shown(tmp_path):
    """A field filled in once a deal is won, declared as a custom feature: the scan warns, the
    version is registered as challenger only, tagged in MLflow, and the Model page says why."""
    export = tmp_path / "export"
    frame = write_minimal_export(export)
    models = tmp_path / "models"
    (tmp_path / "clean.yaml").write_text(MINIMAL_SCHEMA)
    (tmp_path / "leaky.yaml").write_text(MINIMAL_SCHEMA + "  features: {segment: categorical}\n")

    def train(schema: str) -> str:
        result = runner.invoke(
            app,
            ["train", "--data", str(export), "--schema", str(tmp_path / schema)]
            + ["--lost-after", "150", "--search-seconds", "0", "--models-dir", str(models)],
        )
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    assert "now champion" in train("clean.yaml")
    won = frame["won_date"] != ""
    segments = np.random.default_rng(0).choice(["smb", "enterprise"], len(frame))
    write(frame.assign(segment=np.where(won, segments, "")), export)
    out = train("leaky.yaml")
    assert (
        "warning: suspected leakage: custom feature 'segment' tells won from lost leads "
        "suspiciously well: alone it ranks the outcome with ROC AUC 1.000"
    ) in out
    assert (
        "version 2 (run " in out
        and "as challenger; not champion: not made champion automatically: it reads 'segment', "
        "suspected of leakage: alone it ranks the outcome with ROC AUC 1.000"
        in out
    )
    client = MlflowClient(tracking_uri=embedded_uri(models))
    tags = client.get_model_version("sales-readiness", "2").tags
    assert tags["suspected_leakage"] == "true"
    assert tags["not_promoted_because"].startswith("it reads 'segment', suspected of leakage:")
    assert client.get_model_version("sales-readiness", "1").tags["suspected_leakage"] == "false"
    assert str(client.get_model_version_by_alias("sales-readiness", "champion").version) == "1"

    settings = ServeSettings(
        models_dir=models, audit_url=f"sqlite:///{tmp_path / 'a.db'}", sample_dir=tmp_path / "x"
    )
    with TestClient(create_app(settings)) as web:
        page = web.get("/ui/model").text
    notice = page.split('id="suspect-challenger">', 1)[1].split("</p>", 1)[0]
    assert notice.startswith(
        "Version 2 was not made champion automatically: it reads segment, suspected of leakage"
    )
    assert "AUC" not in notice and "--" not in notice


CRM_API_SCHEMA = (
    MINIMAL_SCHEMA.replace(
        "source: {Paid Search: web_form",
        "segment: {SMB: smb, Enterprise: enterprise}\n    source: {Paid Search: web_form",
    )
    + """  features: {segment: categorical}
  display: [name]
  constant: {country: DE}
activities:
  columns: {Activity: type}
  values:
    type: {Opened email: email_open}
"""
)


@pytest.mark.model
def test_the_api_reads_the_crms_names_and_values_with_the_champions_schema(tmp_path):
    """A request in the CRM's own names, values and date format scores as its contract
    spelling does, says what was mapped, and a value neither spells is a 422 listing both."""
    export = tmp_path / "export"
    frame = write_minimal_export(export)
    segments = np.random.default_rng(1).choice(["SMB", "Enterprise"], len(frame))
    write(frame.assign(segment=segments, name=[f"P{i}" for i in range(len(frame))]), export)
    models = tmp_path / "models"
    train_with_lost_after(export, CRM_API_SCHEMA, models)
    crm = {
        "lead": {
            "mql_id": "M9",
            "first_contact_date": "02/05/2025",
            "origin": "Paid Search",
            "segment": "SMB",
            "name": "Ann Lee",
        },
        "activities": [{"occurred_at": "2025-05-20T10:00:00Z", "Activity": "Opened email"}],
        "as_of": "2025-06-01T00:00:00Z",
    }
    contract = {
        "lead": {
            "lead_id": "M9",
            "created_at": "2025-05-02T00:00:00Z",
            "source": "web_form",
            "country": "DE",
            "custom": {"segment": "smb"},
        },
        "activities": [{"occurred_at": "2025-05-20T10:00:00Z", "type": "email_open"}],
        "as_of": "2025-06-01T00:00:00Z",
    }
    other = {**contract, "lead": {**contract["lead"], "custom": {"segment": "enterprise"}}}
    settings = ServeSettings(models_dir=models, audit_url=f"sqlite:///{tmp_path / 'a.db'}")
    with TestClient(create_app(settings)) as client:
        mapped = client.post("/v1/score", json=crm)
        plain = client.post("/v1/score", json=contract).json()
        assert mapped.status_code == 200, mapped.text
        mapped = mapped.json()
        assert mapped["readiness"] == plain["readiness"]
        assert mapped["reasons"] == plain["reasons"]
        assert mapped["context"] == plain["context"] and mapped["warnings"] == []
        # The custom value counts: another segment scores otherwise.
        assert client.post("/v1/score", json=other).json()["readiness"] != plain["readiness"]
        assert plain["schema_applied"] is None
        assert mapped["schema_applied"] == {
            "renamed": {
                "lead.mql_id": "lead.lead_id",
                "lead.first_contact_date": "lead.created_at",
                "lead.origin": "lead.source",
                "lead.segment": "lead.custom.segment",
                "activities.Activity": "activities.type",
            },
            "values": {
                "lead.source": {"Paid Search": "web_form"},
                "lead.custom.segment": {"SMB": "smb"},
                "activities.type": {"Opened email": "email_open"},
            },
            "dates": {"lead.created_at": "%d/%m/%Y"},
            "constants": {"lead.country": "DE"},
            "dropped": ["lead.name"],
        }

        def bad(**lead: object) -> dict:
            return {**crm, "lead": {**crm["lead"], **lead}}

        billboard = bad(origin="Billboard")
        refused = client.post("/v1/score", json=billboard)
        assert refused.status_code == 422
        [error] = refused.json()["detail"]
        assert error["field"] == "lead.origin"
        assert error["message"] == (
            "value not allowed; got 'Billboard'; expected one of web_form, trade_show, webinar, "
            "content_download, referral, partner, outbound, chat, other or, as the schema "
            "spells them, 'Paid Search', 'Organic Search', 'Social'"
        )
        # Errors name the field as it was sent, the schema's rename or not.
        cases = [
            (bad(first_contact_date="31/31/2025"), "lead.first_contact_date", "'%d/%m/%Y'"),
            (bad(mql_id=""), "lead.mql_id", "at least 1 character"),
            (bad(source="web_form"), "lead.origin", "sent twice, as 'origin' and 'source'"),
        ]
        for body, field, words in cases:
            answer = client.post("/v1/score", json=body)
            assert answer.status_code == 422, answer.text
            [error] = answer.json()["detail"]
            assert error["field"] == field and words in error["message"], error
        batch = client.post("/v1/score/batch", json={"leads": [crm, contract, billboard]})
        first, second, third = batch.json()["results"]
        assert first["readiness"] == second["readiness"] == plain["readiness"]
        assert first["schema_applied"] == mapped["schema_applied"]
        assert second["schema_applied"] is None
        assert third == {
            "index": 2,
            "lead_id": "M9",
            "errors": [{"field": "lead.origin", "message": error_message(refused)}],
        }
        # Stored in the CRM's names, with its custom field, the lead scores as sent whole.
        lead = {k: v for k, v in crm["lead"].items() if k != "mql_id"}
        assert client.put("/v1/leads/M9", json=lead).status_code == 200
        event = {"event_id": "e1", "lead_id": "M9", **contract["activities"][0]}
        event["activity"] = event.pop("type")
        assert client.post("/v1/events", json={"events": [event]}).status_code == 200
    store = open_store(settings.store_url())
    try:
        engine = Engine(load_champion(models))
        sweep(store, engine, datetime(2025, 6, 1, tzinfo=UTC), LivePolicy())
        with store.connect() as connection:
            stored = connection.execute(sa.select(current_scores)).one()._asdict()
    finally:
        store.dispose()
    for key in ("readiness", "potential", "route", "route_reason", "reasons", "context"):
        assert stored[key] == plain[key], key


def error_message(answer) -> str:
    return answer.json()["detail"][0]["message"]
