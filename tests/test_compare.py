"""Comparable versions (training.compare): two flat versions with different columns compare on
the same rows, each with its own; rows a version trained on count only with its own test's
scores; `models compare --on FILE`; and the promotion of a leak-free retrain. CRM versions
compare `--on DIR`, the closed leads of an export as snapshots."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import make_table, write
from test_flat import KEEP_LEAK, train_args, with_leak
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.contract import ContractError, load_crm
from leadready.features.metadata import SCHEMA_IGNORED
from leadready.features.registry import load_scorer, use_store
from leadready.training.compare import ComparisonError, Version, export_scores, leaked_inputs
from leadready.training.registry import compare_versions

pytestmark = pytest.mark.model

runner = CliRunner()
FLAT = "sales-readiness-flat"


def compare(models: Path, *extra: str, flat: bool = True) -> tuple[int, str]:
    """`models compare 1 2` (of the flat model unless `flat` is False) and what it printed."""
    options = ["--flat", *extra] if flat else list(extra)
    result = runner.invoke(
        app, ["models", "compare", "1", "2", *options, "--models-dir", str(models)]
    )
    return result.exit_code, " ".join(result.output.split())


def test_versions_of_one_table_compare_on_what_their_own_tests_gave(tmp_path):
    """Both versions were refitted on every row of the same file: v1 rescoring v2's hold-out
    would score its training rows, so v1 counts with the scores its own test gave them."""
    path = write(make_table(), tmp_path)
    models = tmp_path / "models"
    for _ in range(2):
        result = runner.invoke(app, train_args(path, models, "--time", "created"))
        assert result.exit_code == 0, result.output
    compared = compare_versions(models, "1", "2", flat=True)
    client = mlflow.tracking.MlflowClient()
    tested = [
        client.get_run(client.get_model_version(FLAT, v).run_id).data.metrics[
            "test_readiness_roc_auc"
        ]
        for v in ("1", "2")
    ]
    assert compared["holdout_version"] == "2"
    assert compared["clean_rows"] == compared["rows"]
    # Same file, same split: each version's AUC is its own test's, not a rescoring of seen rows.
    assert (compared["a_auc"], compared["b_auc"]) == pytest.approx(tested, abs=1e-9)
    assert compared["notes"] == [
        f"{compared['rows']} of {compared['rows']} rows of the hold-out of v2 are v1's training "
        f"data; {compared['rows']} count with the scores its own test gave them"
    ]
    code, output = compare(models)
    assert code == 0 and "Note: " in output and "v1's training data" in output
    # On the training file itself, every row is training data of both: only the hold-out rows
    # count (with each version's own test scores), and the output says so.
    on_training = compare_versions(models, "1", "2", flat=True, on=path)
    assert on_training["clean_rows"] == compared["rows"] < on_training["rows"]
    assert on_training["a_auc"] == pytest.approx(tested[0], abs=1e-9)
    left_out = on_training["rows"] - compared["rows"]
    for v in ("v1", "v2"):
        assert f"rows of {path} are {v}'s training data" in " ".join(on_training["notes"])
    assert f"{left_out} are left out" in on_training["notes"][0]
    code, output = compare(models, "--on", str(path))
    assert code == 0 and output.count("Note:") == 2
    # A folder is a CRM export: flat versions say so.
    code, output = compare(models, "--on", str(tmp_path))
    assert code == 2 and "a folder; flat versions compare on a table file" in output


def test_a_leak_free_retrain_with_other_columns_compares_and_replaces_the_leaky_champion(
    tmp_path,
):
    """The leaky champion reads sales_rating because its schema declared it; the retrain leaves
    it out as suspected leakage (the default)."""
    leaky = write(with_leak(make_table()), tmp_path, "history.csv")
    schema = tmp_path / "schema.yaml"
    schema.write_text(KEEP_LEAK)
    models = tmp_path / "models"
    first = runner.invoke(app, train_args(leaky, models, "--schema", str(schema), "--promote"))
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, train_args(leaky, models))
    assert second.exit_code == 0, second.output
    said = " ".join(second.output.split())
    assert "champion v1 reads 'sales_rating', which this training suspects of leakage" in said
    client = mlflow.tracking.MlflowClient()
    assert str(client.get_model_version_by_alias(FLAT, "champion").version) == "2"

    # v2's hold-out has no feature column sales_rating, but kept the table's cells: v1 scores
    # them with its own columns, with its own test's scores (same file, same split).
    compared = compare_versions(models, "1", "2", flat=True)
    assert compared["clean_rows"] == compared["rows"] > 0
    assert compared["a_auc"] > compared["b_auc"]  # the leak scores well...
    assert compared["b_should_replace_a"]  # ...and is not trusted

    # The same holds when the retrain was told to ignore the column rather than suspecting it.
    v1, v2 = (load_scorer(FLAT, v).info for v in ("1", "2"))
    told = v2.flat.model_copy(
        update={"suspected_leakage": {}, "excluded": {"sales_rating": SCHEMA_IGNORED}}
    )
    assert leaked_inputs(v1, v2.model_copy(update={"flat": told})) == ["sales_rating"]
    assert leaked_inputs(v2, v1) == []  # the leak-free version reads nothing v1 distrusts

    # A table neither version saw (other leads: ids are how seen rows are found): every row
    # counts, no notes.
    new_leads = with_leak(make_table(seed=11)).assign(lead=lambda t: "N" + t["lead"])
    fresh = write(new_leads, tmp_path, "fresh.csv")
    on_fresh = compare_versions(models, "1", "2", flat=True, on=fresh)
    assert on_fresh["clean_rows"] == on_fresh["rows"] == len(make_table(seed=11))
    assert on_fresh["notes"] == [] and on_fresh["where"] == str(fresh)
    code, output = compare(models, "--on", str(fresh))
    assert code == 0, output
    assert f"on {on_fresh['rows']:,} rows of" in output and "Note:" not in output

    # A column v1 reads that the table lacks is named.
    write(new_leads.drop(columns="sales_rating"), tmp_path, "no-rating.csv")
    with pytest.raises(ComparisonError, match="v1 reads 'sales_rating', which .* does not have"):
        compare_versions(models, "1", "2", flat=True, on=tmp_path / "no-rating.csv")
    code, output = compare(models, "--on", str(tmp_path / "no-rating.csv"))
    assert code == 2 and "v1 reads 'sales_rating'" in output


def snapshot_count(export: Path, step_days: int, created_from: str | None = None) -> int:
    """Snapshots of the export's closed leads, one every `step_days` from creation while the
    lead is open, counted from the CSV (of the leads created on or after `created_from`)."""
    leads = pd.read_csv(export / "leads.csv")
    leads = leads[leads.outcome.isin(["won", "lost"])]
    created = pd.to_datetime(leads.created_at, utc=True)
    if created_from is not None:
        leads, created = leads[created >= created_from], created[created >= created_from]
    open_days = (pd.to_datetime(leads.outcome_at, utc=True) - created) / pd.Timedelta(days=1)
    return int(np.ceil(open_days / step_days).clip(lower=0).sum())


@pytest.fixture(scope="module")
def crm_versions(champion_dir, sample_dir, tmp_path_factory) -> dict[str, Path]:
    """A store with two CRM versions of the session's sample (v1 the session's champion, v2
    another seed with snapshots every 28 days), an export of other leads neither saw, and the
    same export with the ids it was generated with, which are the sample's ids too."""
    from leadready.training.pipeline import TrainConfig, train
    from leadready.training.registry import publish
    from leadready.training.sample import write_sample

    folder = tmp_path_factory.mktemp("crm-compare")
    models = folder / "models"
    shutil.copytree(champion_dir, models)
    config = TrainConfig(seed=3, step_days=28, search_seconds=0)
    publish(train(load_crm(sample_dir), config), models)
    same_ids = folder / "same-ids"
    write_sample(same_ids, 1500, seed=12)
    fresh = folder / "fresh"
    fresh.mkdir()
    for name in ("leads", "activities", "touches"):
        table = pd.read_csv(same_ids / f"{name}.csv", dtype=str, keep_default_na=False)
        table.assign(lead_id="N" + table.lead_id).to_csv(fresh / f"{name}.csv", index=False)
    return {"models": models, "fresh": fresh, "same_ids": same_ids, "sample": sample_dir}


def test_crm_versions_compare_on_the_closed_leads_of_an_export_neither_saw(crm_versions):
    models, fresh = crm_versions["models"], crm_versions["fresh"]
    compared = compare_versions(models, "1", "2", on=fresh)
    # Every snapshot of every closed lead counts, built with v1's 14-day step, not v2's 28.
    assert compared["clean_rows"] == compared["rows"] == snapshot_count(fresh, 14)
    assert compared["notes"] == ["snapshots every 14 days, v1's step (v2 every 28 in training)"]
    assert compared["where"] == str(fresh) and compared["holdout_version"] is None
    # Labels and scores line up: both versions rank the new leads well and are calibrated.
    assert min(compared["a_auc"], compared["b_auc"]) > 0.7
    assert max(compared["a_ece"], compared["b_ece"]) < 0.06
    assert 0 <= compared["p_value"] <= 1
    code, output = compare(models, "--on", str(fresh), flat=False)
    assert code == 0, output
    assert f"v1 vs v2 on {compared['rows']:,} rows of {fresh}" in output
    assert f"{compared['a_auc']:.4f}" in output and f"{compared['p_value']:.3f}" in output
    assert "By the promotion rule, v2 should" in output

    # On the training export itself, leads either version was fitted on are left out: what
    # remains are the leads created in both test windows.
    on_training = compare_versions(models, "1", "2", on=crm_versions["sample"])
    test_from = max(load_scorer("sales-readiness", v).info.crm.split.test_from for v in ("1", "2"))
    expected = snapshot_count(crm_versions["sample"], 14, created_from=test_from)
    assert on_training["clean_rows"] == expected < on_training["rows"]
    for v in ("v1", "v2"):
        assert f"rows of {crm_versions['sample']} are {v}'s training data" in " ".join(
            on_training["notes"]
        )

    # Lead ids tell leads apart: the export with the sample's own ids is all seen, so fewer
    # than 30 rows are left and the comparison is refused.
    code, output = compare(models, "--on", str(crm_versions["same_ids"]), flat=False)
    assert code == 2
    assert "0 of" in output and "fewer than 30 with both outcomes" in output
    assert "--on DIR" in output


def test_crm_comparisons_apply_each_version_s_schema_and_refuse_what_does_not_compare(
    crm_versions, tmp_path
):
    """Versions as the registry loads them, with their metadata changed as another training
    would have left it: a stored schema, another horizon, a schema that reads outcomes
    otherwise."""
    models, fresh = crm_versions["models"], crm_versions["fresh"]
    use_store(models)
    v1 = Version("1", load_scorer("sales-readiness", "1"))
    rows, scored = export_scores(fresh, [v1])
    # Without the lead ids it was fitted on, every lead created before v1's test window counts
    # as one it may have seen.
    test_from = pd.Timestamp(v1.info.crm.split.test_from).timestamp()
    assert np.array_equal(scored["1"].counts, rows.created >= test_from)

    def changed(number: str, **crm: object) -> Version:
        scorer = copy.copy(v1.scorer)
        scorer.info = v1.info.model_copy(update={"crm": v1.info.crm.model_copy(update=crm)})
        return Version(number, scorer)

    # A version trained with a schema reads the export with it: here its creation column.
    renamed = tmp_path / "renamed"
    shutil.copytree(fresh, renamed)
    leads = pd.read_csv(renamed / "leads.csv", dtype=str, keep_default_na=False)
    leads.rename(columns={"created_at": "Created"}).to_csv(renamed / "leads.csv", index=False)
    with_schema = changed("2", schema_tables={"leads": {"columns": {"Created": "created_at"}}})
    schema_rows, schema_scored = export_scores(renamed, [with_schema])
    assert np.array_equal(schema_rows.ids, rows.ids)
    assert np.array_equal(schema_scored["2"].readiness, scored["1"].readiness)
    with pytest.raises(ContractError, match="created_at"):
        export_scores(renamed, [v1])

    with pytest.raises(ComparisonError, match="within 90 days, v2 within 60: .* same --horizon"):
        export_scores(fresh, [v1, changed("2", horizon_days=60)])
    flipped = changed("2", schema_tables={"leads": {"values": {"outcome": {"won": "lost"}}}})
    with pytest.raises(ComparisonError, match="read the leads of .* differently"):
        export_scores(fresh, [v1, flipped])

    # Bad input stops with exit status 2 and says what was expected.
    table = write(make_table(), tmp_path)
    code, output = compare(models, "--on", str(table), flat=False)
    assert code == 2 and "a file; CRM versions compare on an export folder" in output
    stray = tmp_path / "stray"
    write(make_table(), stray, "export.csv")
    code, output = compare(models, "--on", str(stray), flat=False)
    assert code == 2 and "no 'leads' table" in output
