"""Spreadsheet-safe CSV and atomic outputs (features/files.py): the rule on its own, the three
CSVs a user opens (`score --out`, `scores export`, the workspace download) with formula-like
lead ids from a real champion, and `--out` refused before any work."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.files import (
    FORMULA_STARTS,
    OutputError,
    check_output,
    csv_text,
    neutralise_formulas,
    replacing,
    write_csv,
)
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.schemas import EXAMPLE_REQUEST

runner = CliRunner()
FORMULA_IDS = ('=HYPERLINK("http://x","y")', "@SUM(1+1)", "-5", "+49 30 1234")
"""Lead ids a spreadsheet would evaluate; "-5" is text in an id column, so it is quoted too.
(Leading tabs and carriage returns too, but every reader of leadready strips those.)"""


def read_text_cells(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def assert_no_formula_cells(table: pd.DataFrame, numeric: tuple[str, ...]) -> None:
    """No header and no text cell starts a formula; numeric columns read back as numbers."""
    assert not [c for c in table.columns if c.startswith(FORMULA_STARTS)]
    for column in table.columns:
        if column in numeric:
            pd.to_numeric(table[column])  # raises on a quoted number
        else:
            assert not table[column].str.startswith(FORMULA_STARTS).any(), column


# ------------------------------------------------------------------ the rule


@pytest.mark.unit
def test_text_cells_that_start_a_formula_get_a_quote_and_numbers_stay_numbers():
    frame = pd.DataFrame(
        {
            "lead_id": [*FORMULA_IDS, "\tL7", "L1", "\rL8"],
            "readiness": [-0.5, 0.1, 0.2, np.nan, 1.0, 0.3, 0.4],
            "visits": [-1, 2, 3, 4, 5, 6, 7],
            "mixed": [-2, "-2", None, np.nan, 2.5, "x", "=y"],
            "=cmd": pd.Categorical(["=a", "b", "b", "b", "b", "b", "b"]),
        }
    )
    before = frame.copy()
    text = csv_text(frame)
    pd.testing.assert_frame_equal(frame, before)  # the input is not modified
    back = read_text_cells(text)
    assert list(back.columns) == ["lead_id", "readiness", "visits", "mixed", "'=cmd"]
    quoted = ["'" + i for i in FORMULA_IDS]
    # The carriage return stays inside its cell: lines end with CRLF, so the cell is quoted.
    assert back["lead_id"].tolist() == [*quoted, "'\tL7", "L1", "'\rL8"]
    assert back["readiness"].iloc[0] == "-0.5" and back["visits"].iloc[0] == "-1"  # numbers
    assert back["mixed"].tolist() == ["-2", "'-2", "", "", "2.5", "x", "'=y"]
    assert back["'=cmd"].tolist()[:2] == ["'=a", "b"]
    assert text.count("\r\n") == len(frame) + 1


@pytest.mark.unit
def test_a_frame_with_nothing_to_neutralise_is_returned_as_it_is():
    frame = pd.DataFrame({"lead_id": ["L1", "L2"], "readiness": [-0.1, 0.2]})
    assert neutralise_formulas(frame) is frame


# ------------------------------------------------------------------ the atomic writer


@pytest.mark.unit
@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_a_write_cut_off_leaves_the_previous_file_and_no_temporary_file(tmp_path, error):
    target = tmp_path / "scores.csv"
    target.write_bytes(b"old,complete\r\n")
    with pytest.raises(error), replacing(target) as temp:
        temp.write_text("new,half")
        raise error
    assert target.read_bytes() == b"old,complete\r\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]
    write_csv(pd.DataFrame({"lead_id": ["=1"]}), target)
    assert target.read_bytes() == b"lead_id\r\n'=1\r\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


@pytest.mark.unit
def test_a_folder_replaces_a_folder_whole(tmp_path):
    target = tmp_path / "session"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with replacing(target) as temp:
        temp.mkdir()
        (temp / "new.txt").write_text("new")
        assert temp.parent == tmp_path and temp.name.endswith(".partial")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["session"]


@pytest.mark.unit
def test_the_output_check_names_the_problem_and_creates_nothing(tmp_path):
    (tmp_path / "a-file").write_text("x")
    cases = {
        tmp_path: "is a folder",
        tmp_path / "scores.xlsx": "expected a .csv or .parquet file name, not .xlsx",
        tmp_path / "scores": "expected a .csv or .parquet file name",
        tmp_path / "a-file" / "sub" / "scores.csv": "a-file is a file",
    }
    for path, message in cases.items():
        with pytest.raises(OutputError) as raised:
            check_output(path, (".csv", ".parquet"))
        assert message in str(raised.value) and str(path) in str(raised.value)
    assert check_output(tmp_path / "new" / "deeper" / "s.CSV", (".csv",)).name == "s.CSV"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


# ------------------------------------------------------------------ --out through the CLI


@pytest.mark.unit
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "--data", "crm", "--out", ".", "--models-dir", "models"], "is a folder"),
        (["score", "--data", "crm", "--out", "s.xlsx", "--models-dir", "m"], ".csv or .parquet"),
        (["score", "--table", "t.csv", "--out", "file/s.csv", "--models-dir", "m"], "is a file"),
        (["scores", "export", "--out", "a.xlsx", "--models-dir", "m"], ".csv or .parquet"),
        (["scores", "export", "--out", ".", "--models-dir", "models"], "is a folder"),
        (["scores", "export", "--out", "file/a.csv", "--models-dir", "m"], "is a file"),
        (["sample-data", "--out", "file"], "file is a file"),
    ],
)
def test_an_unwritable_out_stops_with_exit_2_before_any_work(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no audit.db, no models/


@pytest.mark.unit
def test_an_output_that_fails_while_written_stops_with_exit_2(tmp_path):
    """/proc passes the check for root (it exists and root may write anywhere) and refuses the
    file; for anyone else the check refuses it first. Either way: exit 2, the path, no
    traceback."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    result = runner.invoke(app, ["scores", "export", "--audit-url", url, "--out", "/proc/s.csv"])
    assert result.exit_code == 2, result.output
    assert "--out /proc/s.csv" in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------ the three CSVs


def formula_export(source, folder):
    """A copy of a CRM export whose first open leads carry FORMULA_IDS, in all three tables."""
    folder.mkdir()
    tables = {
        name: pd.read_csv(source / f"{name}.csv", dtype=str, keep_default_na=False)
        for name in ("leads", "activities", "touches")
    }
    open_ids = tables["leads"].loc[tables["leads"]["outcome"] == "open", "lead_id"]
    renamed = dict(zip(open_ids.head(len(FORMULA_IDS)), FORMULA_IDS, strict=True))
    for name, table in tables.items():
        table["lead_id"] = table["lead_id"].replace(renamed)
        table.to_csv(folder / f"{name}.csv", index=False)
    return folder


def assert_quoted_ids(ids: pd.Series) -> None:
    assert {"'" + i for i in FORMULA_IDS} <= set(ids)
    assert not set(FORMULA_IDS) & set(ids)


@pytest.mark.model
def test_score_out_quotes_formula_lead_ids(champion_dir, small_export, tmp_path):
    export = formula_export(small_export, tmp_path / "crm")
    out = tmp_path / "scores.csv"
    args = ["score", "--data", str(export), "--out", str(out), "--models-dir", str(champion_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = read_text_cells(out.read_text())
    assert len(table) == 240
    assert_quoted_ids(table["lead_id"])
    assert_no_formula_cells(table, numeric=("readiness", "potential"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.api
def test_the_audit_export_quotes_formula_lead_ids_in_csv_and_keeps_them_in_parquet(
    champion_dir, tmp_path
):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    settings = ServeSettings(models_dir=champion_dir, api_keys="k", audit_url=url)
    with TestClient(create_app(settings)) as client:
        for lead_id in FORMULA_IDS:
            body = {**EXAMPLE_REQUEST, "lead": {**EXAMPLE_REQUEST["lead"], "lead_id": lead_id}}
            answer = client.post("/v1/score", json=body, headers={"Authorization": "Bearer k"})
            assert answer.status_code == 200, answer.text
    # Leaving the client shut the app down, which wrote the audit queue.
    for name in ("audit.csv", "audit.parquet"):
        result = runner.invoke(
            app, ["scores", "export", "--audit-url", url, "--out", str(tmp_path / name)]
        )
        assert result.exit_code == 0, result.output
        assert f"Wrote {len(FORMULA_IDS)} scores" in result.output
    table = read_text_cells((tmp_path / "audit.csv").read_text())
    assert_quoted_ids(table["lead_id"])
    assert_no_formula_cells(table, numeric=("readiness", "potential", "model_version"))
    parquet = pd.read_parquet(tmp_path / "audit.parquet")
    assert parquet["lead_id"].tolist() == list(FORMULA_IDS)


@pytest.mark.api
def test_the_workspace_download_quotes_formula_lead_ids(champion_dir, small_export, tmp_path):
    export = formula_export(small_export, tmp_path / "crm")
    settings = ServeSettings(
        models_dir=champion_dir, audit_url=f"sqlite:///{tmp_path / 'a.db'}", sample_dir=tmp_path
    )
    with TestClient(create_app(settings)) as client:
        files = {
            name: (f"{name}.csv", (export / f"{name}.csv").read_bytes())
            for name in ("leads", "activities", "touches")
        }
        assert client.post("/ui/leads/upload", files=files).status_code == 200
        download = client.get("/ui/leads.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    table = read_text_cells(download.text)
    assert len(table) == 240
    assert_quoted_ids(table["lead_id"])
    numeric = ("readiness", "potential", "company_size")
    assert_no_formula_cells(table, numeric=tuple(c for c in numeric if c in table))
