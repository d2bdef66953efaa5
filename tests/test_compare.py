"""Comparable versions (training.compare): two flat versions with different columns compare on
the same rows, each with its own; rows a version trained on count only with its own test's
scores; `models compare --on FILE`; and the promotion of a leak-free retrain."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from conftest import make_table, write
from test_flat import KEEP_LEAK, train_args, with_leak
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.metadata import SCHEMA_IGNORED
from leadready.features.registry import load_scorer
from leadready.training.compare import ComparisonError, leaked_inputs
from leadready.training.registry import compare_versions

pytestmark = pytest.mark.model

runner = CliRunner()
FLAT = "sales-readiness-flat"


def compare(models: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["models", "compare", "1", "2", "--flat", *extra, "--models-dir", str(models)]
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


def test_a_leak_free_retrain_with_other_columns_compares_and_replaces_the_leaky_champion(
    tmp_path,
):
    """The leaky champion reads sales_rating because its schema declared it; the retrain leaves
    it out as suspected leakage (the default)."""
    leaky = write(with_leak(make_table()), tmp_path, "history.csv")
    schema = tmp_path / "schema.yaml"
    schema.write_text(KEEP_LEAK)
    models = tmp_path / "models"
    first = runner.invoke(app, train_args(leaky, models, "--schema", str(schema)))
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
