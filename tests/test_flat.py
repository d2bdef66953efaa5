"""Flat mode end to end: `leadready train --table` and `score --table` on synthetic tables,
with a real MLflow store in a temp folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import NEW_SOURCE, ROWS, make_table, write
from fastapi.testclient import TestClient
from holdout_checks import assert_one_source_of_metrics
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.registry import NoChampionError
from leadready.features.schema import Schema
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.store import load_champion
from leadready.training.flat import holdout
from leadready.training.flat_table import FlatConfig, prepare

runner = CliRunner()


def with_leak(frame: pd.DataFrame) -> pd.DataFrame:
    """A column filled in after the outcome (almost, but not exactly, the label) and a running
    lead number."""
    rng = np.random.default_rng(0)
    out = frame.copy()
    score = np.where(out["converted"] == "yes", 80.0, 20.0) + rng.normal(0, 6, len(out))
    out["sales_rating"] = np.round(score, 1)
    out["lead_number"] = 5000 + 2 * np.arange(len(out))
    return out


KEEP_LEAK = "table: {features: {sales_rating: numeric}}"
"""A schema that keeps the leaking column, which the leakage check would exclude."""


TRAIN = ["train", "--table", "{path}", "--id", "lead", "--label", "converted", "--positive", "yes"]


def train_args(path: Path, models: Path, *extra: str) -> list[str]:
    return [a.format(path=path) for a in TRAIN] + ["--models-dir", str(models), *extra]


# ---------------------------------------------------------------------- inference, overrides


@pytest.mark.unit
def test_column_types_are_inferred_with_reasons(tmp_path):
    path = write(make_table(), tmp_path)
    data = prepare(path, FlatConfig("lead", "converted", "yes"))
    kinds = {t.name: t.kind for t in data.types}
    assert kinds == {
        "created": "excluded",
        "visits": "numeric",
        "minutes": "numeric",
        "open_share": "numeric",
        "balance": "numeric",
        "source": "categorical",
        "size": "categorical",
        "comment": "excluded",
        "region": "excluded",
    }
    notes = {t.name: t.note for t in data.types}
    assert "dates" in notes["created"]
    assert "id or free text" in notes["comment"]
    assert "constant" in notes["region"]
    assert "lead" not in kinds and "converted" not in kinds
    assert len(data.y) == ROWS and 0.15 < data.y.mean() < 0.6


@pytest.mark.unit
def test_schema_overrides_win_and_renames_and_value_maps_apply(tmp_path):
    frame = make_table().rename(columns={"converted": "Outcome"})
    frame["Outcome"] = frame["Outcome"].map({"yes": "Closed Won", "no": "Closed Lost"})
    path = write(frame, tmp_path)
    schema = Schema.parse(
        {
            "table": {
                "columns": {"Outcome": "converted"},
                "values": {"converted": {"closed won": "yes", "Closed Lost": "no"}},
                "features": {"visits": "categorical", "source": "ignore", "region": "categorical"},
            }
        }
    )
    data = prepare(path, FlatConfig("lead", "converted", "yes"), schema.table("table"))
    by_name = {t.name: t for t in data.types}
    assert (by_name["visits"].kind, by_name["visits"].source) == ("categorical", "schema")
    assert (by_name["source"].kind, by_name["source"].source) == ("excluded", "schema")
    assert by_name["region"].kind == "categorical"
    assert by_name["minutes"].kind == "numeric"
    assert data.y.sum() == (frame["Outcome"] == "Closed Won").sum()


# ------------------------------------------------------------------------------ the hold-out


@pytest.mark.unit
def test_holdout_is_stratified_without_time_and_newest_with_it():
    rng = np.random.default_rng(1)
    y = (rng.random(1000) < 0.1).astype(int)
    test = holdout(y, None, 0.2, seed=0)
    assert test.sum() == 200
    assert abs(y[test].sum() - 0.2 * y.sum()) <= 1
    assert (test == holdout(y, None, 0.2, seed=0)).all()
    assert not (test == holdout(y, None, 0.2, seed=1)).all()

    times = pd.Timestamp("2024-01-01").to_datetime64() + rng.permutation(1000).astype(
        "timedelta64[D]"
    )
    test = holdout(y, times, 0.2, seed=0)
    assert test.sum() == 200
    assert times[test].min() > times[~test].max()


# ---------------------------------------------------------------------------- unusable input


def _broken(kind: str) -> tuple[pd.DataFrame, list[str], str]:
    frame = make_table()
    extra: list[str] = []
    if kind == "label missing":
        frame = frame.drop(columns=["converted"])
        message = "no column 'converted' (--label)"
    elif kind == "one class":
        frame["converted"] = "no"
        message = "one class only"
    elif kind == "id not unique":
        frame.loc[10, "lead"] = frame.loc[3, "lead"]
        message = "duplicate id ('L00003')"
    elif kind == "label is an id":
        frame["converted"] = frame["lead"]
        frame.loc[0, "converted"] = "yes"
        message = "looks like an id"
    elif kind == "copy of the label":
        frame["stage"] = frame["converted"].map({"yes": "Closed Won", "no": "Closed Lost"})
        message = "'stage' ('Closed"
    elif kind == "dates do not parse":
        frame.loc[[4, 9], "created"] = ["31/02/2024", "soon"]
        extra = ["--time", "created"]
        message = "lines 6, 11: date that does not parse"
    else:
        raise AssertionError(kind)
    return frame, extra, message


@pytest.mark.unit
@pytest.mark.parametrize(
    "kind",
    [
        "label missing",
        "one class",
        "id not unique",
        "label is an id",
        "copy of the label",
        "dates do not parse",
    ],
)
def test_unusable_tables_stop_with_a_clear_message_and_nothing_written(tmp_path, kind):
    frame, extra, message = _broken(kind)
    path = write(frame, tmp_path)
    models = tmp_path / "models"
    result = runner.invoke(app, train_args(path, models, *extra))
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not models.exists()


@pytest.mark.unit
def test_the_copy_of_the_label_can_be_ignored_in_the_schema(tmp_path):
    frame, _, _ = _broken("copy of the label")
    path = write(frame, tmp_path)
    schema = Schema.parse({"table": {"features": {"stage": "ignore"}}}).table("table")
    data = prepare(path, FlatConfig("lead", "converted", "yes"), schema)
    assert "stage" not in data.feature_types


@pytest.mark.unit
@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--id", "lead"], "give --data DIR"),
        (
            ["train", "--table", "x.csv", "--label", "converted", "--positive", "yes"],
            "--table needs --id",
        ),
        (["train", "--data", "crm", "--table", "x.csv"], "exclude each other"),
        (["train", "--data", "crm", "--label", "converted"], "only apply to a flat table"),
        (["score", "--out", "s.csv"], "give --data DIR"),
    ],
)
def test_option_mistakes_stop_with_exit_status_2(tmp_path, args, message):
    result = runner.invoke(app, [*args, "--models-dir", str(tmp_path / "models")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "models").exists()


# ------------------------------------------------------------------ training end to end


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A flat champion trained through the CLI on a table with a lead number and a leaking
    column its schema keeps, holding out the newest 20% by --time. The leak keeps it from
    becoming champion on its own: it is promoted by hand (the output holds both commands')."""
    folder = tmp_path_factory.mktemp("flat")
    path = write(with_leak(make_table()), folder)
    schema = folder / "keep-leak.yaml"
    schema.write_text(KEEP_LEAK)
    models = folder / "models"
    result = runner.invoke(
        app, train_args(path, models, "--time", "created", "--schema", str(schema))
    )
    assert result.exit_code == 0, result.output
    with pytest.raises(NoChampionError):
        load_champion(models, flat=True)
    promoted = runner.invoke(app, ["models", "promote", "1", "--flat", "--models-dir", str(models)])
    assert promoted.exit_code == 0, promoted.output
    return path, models, " ".join((result.output + promoted.output).split())


@pytest.mark.model
def test_ids_excluded_and_kept_leakage_are_reported_loudly_before_training_goes_on(trained):
    _, models, output = trained
    assert (
        "note: 'lead_number' excluded as an id (600 distinct values in 600 rows, a sequence); "
        "to use it, declare it in the schema: table: {features: {lead_number: numeric}}"
    ) in output
    assert (
        "warning: suspected leakage: column 'sales_rating' predicts 'converted' suspiciously "
        "well: alone it ranks the outcome with ROC AUC 1.000" in output
    )
    assert output.index("suspected leakage") < output.index("Hold-out (")
    # The leak makes the hold-out too good: the summary says so, naming the strongest input.
    assert "Warning: hold-out ROC AUC 1.000 is too good to be true (>= 0.97)" in output
    assert "Strongest inputs: 'sales_rating' (AUC 1.000 alone)" in output
    assert output.index("too good to be true") < output.index("Registered")
    assert (models / "mlflow.db").exists()


@pytest.mark.api
def test_the_model_page_and_the_report_say_what_was_left_out_in_plain_words(trained, tmp_path):
    _, models, _ = trained
    settings = ServeSettings(
        models_dir=models, audit_url=f"sqlite:///{tmp_path / 'a.db'}", sample_dir=tmp_path / "x"
    )
    with TestClient(create_app(settings)) as client:
        page = client.get("/ui/model?model=flat").text
    section = page.split('<section class="card" id="left-out">', 1)[1].split("</section>", 1)[0]
    left_out, kept = section.split('id="kept-suspects"')
    assert "<strong>lead_number</strong> — looks like an id: nearly every row" in left_out
    assert "<strong>comment</strong> — looks like an id or free text" in left_out
    assert "<strong>region</strong> — the same on every row" in left_out
    assert "sales_rating" not in left_out
    assert (
        "<strong>sales_rating</strong> — suspected leakage: alone it predicts the outcome "
        "suspiciously well" in kept
    ) and "higher 100% of the time): filled in after the outcome?" in kept
    warning = page.split('<p class="notice" role="alert" id="too-good">', 1)[1].split("</p>")[0]
    assert warning.startswith("Warning: Too good to be true: on rows it had not seen")
    assert "The inputs that rank leads best on their own, by the same measure: sales_rating 1" in (
        warning
    )
    for jargon in ("--", "AUC", "table: {"):
        assert jargon not in section and jargon not in warning
    report = (models / "reports" / "sales-readiness-flat-v1.html").read_text()
    left = report.split('<section id="left-out">', 1)[1].split("</section>", 1)[0]
    assert "<tr><td>lead_number</td><td>looks like an id: nearly every row" in left
    assert "<td>an id (600 distinct values in 600 rows, a sequence)</td>" in left
    assert "<td>sales_rating</td><td>suspected leakage" in left and "Too good to be true" in left


@pytest.mark.model
def test_training_prints_what_was_inferred_and_registers_a_flat_champion(trained):
    path, models, output = trained
    assert "Columns of leads.csv" in output and "600 labelled rows" in output
    for column in ("visits", "open_share", "comment", "region", "sales_rating"):
        assert column in output
    assert (
        "as challenger; not champion: not made champion automatically: it reads 'sales_rating', "
        "suspected of leakage: alone it ranks the outcome with ROC AUC 1.000"
    ) in output
    assert "its hold-out ROC AUC 1.0000 is too good to be true (>= 0.97)" in output
    assert "`leadready models promote VERSION --flat`" in output
    # Promoted by hand, it is champion, and the command repeats why training did not do it.
    assert "warning: training did not make this version champion: it reads 'sales_rating'" in (
        output
    )
    assert "sales-readiness-flat version 1 is now champion" in output
    loaded = load_champion(models, flat=True)
    info = loaded.scorer.info
    assert info.mode == "flat" and info.flat.id_column == "lead"
    assert info.flat.feature_types["balance"] == "numeric"
    assert info.flat.feature_types["source"] == "categorical"
    assert "comment" in info.flat.excluded and "created" not in info.flat.feature_types
    assert info.flat.excluded["lead_number"].startswith("an id (600 distinct values")
    assert list(info.flat.leakage_warnings) == ["sales_rating"]
    assert list(info.flat.suspected_leakage) == ["sales_rating"]
    assert info.flat.suspected_leakage["sales_rating"].startswith("alone it ranks the outcome")
    assert info.flat.holdout_warning.startswith("hold-out ROC AUC 1.000 is too good to be true")
    assert 0.5 < info.metrics["test_readiness_roc_auc"] <= 1.0


@pytest.mark.model
def test_logged_stored_and_printed_metrics_are_one_computation(trained):
    _, models, output = trained
    assert_one_source_of_metrics(models, "sales-readiness-flat", output)


@pytest.mark.model
def test_the_hold_out_is_the_newest_fifth_by_time(trained):
    path, models, _ = trained
    split = load_champion(models, flat=True).scorer.info.flat.split
    created = pd.read_csv(path)["created"].sort_values()
    assert split.holdout == "newest by --time"
    assert split.test_rows == ROWS // 5
    assert pd.Timestamp(split.test_from) == pd.Timestamp(created.iloc[ROWS - ROWS // 5])


@pytest.mark.model
def test_the_registered_model_is_refit_on_all_rows(trained):
    _, models, _ = trained
    scorer = load_champion(models, flat=True).scorer
    assert scorer.info.flat.refit.rows == ROWS
    # Only the newest rows (all in the time hold-out) have this source: the registered model's
    # encoder knows it only if it was fitted on the hold-out rows too.
    assert NEW_SOURCE in scorer.encoder.vocabulary_["source"]


@pytest.mark.model
def test_score_table_writes_id_readiness_route_and_reasons(trained, tmp_path):
    path, models, _ = trained
    table = pd.read_csv(path).drop(columns=["converted"]).iloc[::-1]
    new = write(table, tmp_path, "new.csv")
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["score", "--table", str(new), "--out", str(out), "--models-dir", str(models)]
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out, keep_default_na=False)
    assert list(scores.columns[:5]) == ["lead", "readiness", "potential", "route", "route_reason"]
    assert {"reason_up_1", "reason_down_1", "reason_up_3"} <= set(scores.columns)
    assert scores["lead"].tolist() == table["lead"].tolist()
    assert scores["readiness"].between(0, 1).all()
    assert set(scores["route"]) <= {"sales", "nurture", "disqualify"}
    assert (scores["route_reason"].str.len() > 0).all()
    reasons = pd.concat([scores["reason_up_1"], scores["reason_down_1"]])
    assert (reasons != "").mean() > 0.5
    assert reasons.str.contains("sales_rating: ").any()
    # The same rows score the same in any order: columns are coerced, not re-inferred.
    by_id = scores.set_index("lead")["readiness"]
    model = load_champion(models, flat=True).scorer
    from leadready.features.table import flat_columns, read_flat

    direct = model.predict_proba(flat_columns(read_flat(new), model.info.flat.feature_types))
    np.testing.assert_allclose(by_id.loc[table["lead"]].to_numpy(), direct[:, 1], atol=1e-4)


@pytest.mark.model
def test_score_table_names_missing_columns(trained, tmp_path):
    path, models, _ = trained
    new = write(pd.read_csv(path).drop(columns=["visits"]), tmp_path, "new.csv")
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["score", "--table", str(new), "--out", str(out), "--models-dir", str(models)]
    )
    assert result.exit_code == 2
    assert "missing column 'visits'" in result.output
    assert not out.exists()


@pytest.mark.model
def test_a_flat_champion_has_its_own_name_and_the_crm_path_says_it_has_none(
    trained, tiny_crm, tmp_path
):
    _, models, _ = trained
    assert load_champion(models, flat=True).name == "sales-readiness-flat"
    with pytest.raises(NoChampionError) as raised:
        load_champion(models)
    message = str(raised.value)
    assert message.startswith("no 'champion' version of model 'sales-readiness' in sqlite:")
    assert message.endswith("train one with `leadready train --data DIR` (or `make demo`)")
    out = tmp_path / "s.csv"
    result = runner.invoke(
        app, ["score", "--data", str(tiny_crm), "--out", str(out), "--models-dir", str(models)]
    )
    assert result.exit_code == 2
    assert "no 'champion' version of model 'sales-readiness' in" in " ".join(result.output.split())
    assert not out.exists()


@pytest.mark.model
def test_models_list_shows_both_models_and_promote_takes_flat(trained):
    _, models, _ = trained
    from leadready.training.registry import list_versions

    listed = runner.invoke(app, ["models", "list", "--models-dir", str(models)])
    assert listed.exit_code == 0, listed.output
    assert "sales-readiness-flat versions" in listed.output
    assert [(row["name"], row["version"], row["aliases"]) for row in list_versions(models)] == [
        ("sales-readiness-flat", "1", "challenger, champion")
    ]
    wrong = runner.invoke(app, ["models", "promote", "1", "--models-dir", str(models)])
    assert wrong.exit_code == 2
    assert "no version 1 of 'sales-readiness'" in wrong.output
    right = runner.invoke(app, ["models", "promote", "1", "--flat", "--models-dir", str(models)])
    assert right.exit_code == 0, right.output
    assert "sales-readiness-flat version 1 is now champion" in right.output


@pytest.mark.model
def test_a_sales_capacity_raises_the_sales_threshold_and_says_why(tmp_path):
    path = write(make_table(), tmp_path)
    models = tmp_path / "models"
    result = runner.invoke(
        app, train_args(path, models, "--time", "created", "--sales-capacity", "1")
    )
    assert result.exit_code == 0, result.output
    info = load_champion(models, flat=True).scorer.info
    assert info.policy.sales_capacity == 1
    (note,) = [n for n in info.routing_notes if "sales capacity" in n]
    assert note.startswith("sales threshold raised from ")
    assert f"to {info.thresholds.sales:.3f} so that about" in note
    assert "Routing adjusted: sales threshold raised" in " ".join(result.output.split())
