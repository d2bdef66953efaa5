"""`leadready train --from-store`: the same pipeline as `train --data`, on the lead store's
leads, events and outcomes; the version it registers has the figures of one trained on the
export that was loaded, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.contract import load_crm
from leadready.features.leadstore.database import open_store
from leadready.features.leadstore.reading import read_crm

runner = CliRunner()
COMPARED = ("model", "test ROC AUC", "test ECE", "data sha256")


def versions(models) -> list[dict[str, str]]:
    """`models list`'s rows of sales-readiness: {column: cell}, newest first."""
    listed = runner.invoke(app, ["models", "list", "--models-dir", str(models)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    (header,) = ([c.strip() for c in line.strip("┃").split("┃")] for line in lines if "┃" in line)
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in lines if "│" in line]
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.mark.model
def test_training_from_the_store_gives_the_figures_of_training_on_the_export(
    store_url, sample_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "200")  # `models list` unfolded
    models = tmp_path / "models"
    loaded = runner.invoke(
        app, ["store", "load", "--data", str(sample_dir), "--database-url", store_url]
    )
    assert loaded.exit_code == 0, loaded.output
    common = ["--seed", "3", "--models-dir", str(models)]
    from_data = runner.invoke(app, ["train", "--data", str(sample_dir), *common])
    assert from_data.exit_code == 0, from_data.output
    from_store = runner.invoke(app, ["train", "--from-store", "--database-url", store_url, *common])
    assert from_store.exit_code == 0, from_store.output
    store_row, data_row = versions(models)[:2]
    assert (store_row["version"], data_row["version"]) == ("2", "1")
    assert {c: store_row[c] for c in COMPARED} == {c: data_row[c] for c in COMPARED}


@pytest.mark.data
def test_the_lost_after_rule_applies_when_the_store_is_read(store_url, small_export):
    engine = open_store(store_url)
    runner.invoke(app, ["store", "load", "--data", str(small_export), "--database-url", store_url])
    stored = read_crm(engine, lost_after=30)
    engine.dispose()
    exported = load_crm(small_export, lost_after=30)
    assert stored.closed_as_lost == exported.closed_as_lost > 0
    assert stored.lost_after == 30
    assert (
        stored.leads["outcome"].value_counts() == exported.leads["outcome"].value_counts()
    ).all()


@pytest.mark.unit
@pytest.mark.parametrize(
    "args, message",
    [
        (["--from-store", "--data", "crm"], "--data and --from-store exclude each other"),
        (["--from-store", "--table", "x.csv"], "--table and --from-store exclude each other"),
        (["--from-store", "--schema", "s.yaml"], "--schema reads export files"),
        (["--from-store", "--label", "converted"], "only apply to a flat table"),
        (["--from-store"], "no lead store at sqlite:///"),
    ],
)
def test_from_store_mistakes_stop_with_exit_status_2(tmp_path, args, message):
    result = runner.invoke(app, ["train", *args, "--models-dir", str(tmp_path / "models")])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "models").exists()
