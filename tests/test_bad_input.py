"""Files that are not what the data contract expects stop `leadready train` and `score` with exit
status 2 and one message naming the file, line or row, column and the expected form; nothing is
written. Covers what a CSV parser alone gets wrong: encodings, workbooks renamed .csv, repeated
headers, dates out of range, empty tables, huge values and brackets in values."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import ACTIVITIES, LEADS, TOUCHES, write_crm
from typer.testing import CliRunner
from workspace_server import FLAT_TRAIN

from leadready.cli import app
from leadready.features.contract import MAX_SHOWN_CHARS, load_crm

runner = CliRunner()
HEADER, GOOD_LEAD, *_ = LEADS.splitlines()


def refused(args: list[str], expected: list[str], written: Path) -> str:
    """Run the CLI; assert exit 2, no traceback, every part of `expected` in the message and
    nothing at `written`. Returns the message with whitespace collapsed."""
    result = runner.invoke(app, args)
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert not written.exists(), f"{written} must not be written"
    return message


def train_refused(crm: Path, expected: list[str]) -> str:
    models = crm.parent / "models"
    return refused(["train", "--data", str(crm), "--models-dir", str(models)], expected, models)


@pytest.mark.unit
def test_a_latin1_file_names_the_line_and_character_and_asks_for_utf8(tmp_path):
    crm = write_crm(tmp_path / "crm")
    text = LEADS.replace("L3,2025-02-01T00:00:00+01:00,web_form,", "L3,2025-02-01,web_form,Café")
    (crm / "leads.csv").write_bytes(text.encode("latin-1"))
    line = text.splitlines()[3]
    character = line.index("é") + 1
    train_refused(
        crm,
        [
            "leads.csv, line 4",
            f"character {character}",
            "not UTF-8 text",
            "byte 0xe9",
            "Latin-1",
            "save it as CSV UTF-8",
        ],
    )


@pytest.mark.unit
def test_a_utf8_file_with_a_byte_order_mark_loads(tmp_path):
    crm = write_crm(tmp_path / "crm")
    (crm / "leads.csv").write_bytes(LEADS.encode("utf-8-sig"))
    assert list(load_crm(crm).leads["lead_id"]) == ["L1", "L2", "L3"]


def _xlsx(path: Path) -> None:
    """The parts every .xlsx workbook has (it is a zip archive)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")


def _xls(path: Path) -> None:
    """An OLE2 compound document, as Excel 97-2003 writes it: magic bytes, then sectors."""
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))


def _parquet(path: Path) -> None:
    pd.DataFrame({"lead_id": ["L1"]}).to_parquet(path)


@pytest.mark.unit
@pytest.mark.parametrize(
    "make,kind,advice",
    [
        (_xlsx, "an Excel workbook (.xlsx)", "save it as CSV UTF-8"),
        (_xls, "an Excel 97-2003 workbook (.xls)", "save it as CSV UTF-8"),
        (_parquet, "a parquet file", "name it .parquet"),
    ],
)
def test_a_workbook_or_parquet_file_named_csv_is_recognised(tmp_path, make, kind, advice):
    crm = write_crm(tmp_path / "crm")
    make(crm / "leads.csv")
    train_refused(crm, ["leads.csv", f"this is {kind}, not UTF-8 CSV text", advice])


@pytest.mark.unit
def test_a_repeated_column_with_other_values_is_refused(tmp_path):
    # ' budget' and 'budget' are one name once stripped; the copy disagrees on lines 2 and 4.
    lines = LEADS.splitlines()
    values = ["none", "confirmed", "indicated"]
    text = "\n".join(
        [f"{lines[0]}, budget"] + [f"{row},{v}" for row, v in zip(lines[1:], values, strict=True)]
    )
    crm = write_crm(tmp_path / "crm", leads=text + "\n")
    train_refused(
        crm,
        [
            "leads.csv: column 'budget' appears 2 times",
            "columns 7 (G) and 13 (M)",
            "differ on lines 2, 3",
            "expected each column once",
        ],
    )


@pytest.mark.unit
def test_a_repeated_column_with_the_same_values_is_kept_once(tmp_path):
    lines = LEADS.splitlines()
    text = "\n".join([f"{lines[0]},budget"] + [f"{row},{row.split(',')[6]}" for row in lines[1:]])
    crm = write_crm(tmp_path / "crm", leads=text + "\n")
    leads = load_crm(crm).leads
    assert list(leads.columns).count("budget") == 1
    assert list(leads["budget"]) == ["confirmed", "unknown", "indicated"]


@pytest.mark.unit
def test_a_row_with_more_fields_than_the_header_is_refused(tmp_path):
    # pandas would otherwise make the first column an index and shift every value by one.
    crm = write_crm(tmp_path / "crm", leads=LEADS.replace("lt_1m,won,2025-02-15", "lt_1m,won,x,y"))
    train_refused(crm, ["leads.csv", "cannot be read as csv", "Expected 12 fields in line 2"])


@pytest.mark.unit
@pytest.mark.parametrize("date", ["3000-01-05", "1960-01-05T10:00:00Z"])
def test_csv_dates_outside_1970_to_2100_are_refused(tmp_path, date):
    crm = write_crm(tmp_path / "crm", activities=ACTIVITIES.replace("2025-01-06T10:00:00", date))
    train_refused(
        crm,
        [
            "activities.csv, column 'occurred_at', line 5",
            "date out of range",
            f"'{date}'",
            "expected a date between 1970-01-01 and 2100-01-01",
        ],
    )


@pytest.mark.unit
def test_a_parquet_timestamp_in_year_3000_is_refused(tmp_path, tiny_crm):
    crm = tmp_path / "pq"
    crm.mkdir()
    leads = pd.read_csv(tiny_crm / "leads.csv", dtype=str, keep_default_na=False)
    leads["created_at"] = pd.to_datetime(["2025-01-01", "3000-01-01", "2025-01-31"]).as_unit("us")
    leads.to_parquet(crm / "leads.parquet")
    for name in ("activities", "touches"):
        (crm / f"{name}.csv").write_text((tiny_crm / f"{name}.csv").read_text())
    train_refused(
        crm,
        ["leads.parquet, column 'created_at', row 2", "date out of range", "2100-01-01"],
    )


@pytest.mark.unit
def test_a_leads_table_with_a_header_only_is_refused_with_its_events(tmp_path):
    crm = write_crm(tmp_path / "crm", leads=HEADER + "\n")
    train_refused(
        crm,
        [
            "3 problems",
            "leads.csv: no rows; expected one row per lead below the header",
            "activities.csv, column 'lead_id', lines 2, 3, 4, 5, 6: lead not in the leads table",
            "touches.csv, column 'lead_id', lines 2, 3, 4: lead not in the leads table",
        ],
    )


@pytest.mark.unit
def test_header_only_tables_are_nothing_to_score(tmp_path):
    crm = write_crm(
        tmp_path / "crm",
        leads=HEADER + "\n",
        activities=ACTIVITIES.splitlines()[0] + "\n",
        touches=TOUCHES.splitlines()[0] + "\n",
    )
    out = tmp_path / "scores.csv"
    models = str(tmp_path / "models")
    message = refused(
        ["score", "--data", str(crm), "--out", str(out), "--models-dir", models],
        ["leads.csv: no rows; expected one row per lead below the header"],
        out,
    )
    assert "zero-size array" not in message
    train_refused(crm, ["leads.csv: no rows"])


@pytest.mark.unit
@pytest.mark.parametrize(
    "outcomes,expected",
    [
        (("open", "open", "open"), "the export has no closed leads (3 leads, all open)"),
        (("lost", "lost", "open"), "the export has no won leads (2 lost, 1 open)"),
    ],
)
def test_an_export_without_won_leads_says_what_it_holds(tmp_path, outcomes, expected):
    lines = LEADS.splitlines()
    rows = [line.rsplit(",", 2)[0] for line in lines[1:]]
    ends = {"open": "", "lost": "2025-04-01"}
    leads = [lines[0], *(f"{row},{o},{ends[o]}" for row, o in zip(rows, outcomes, strict=True))]
    crm = write_crm(tmp_path / "crm", leads="\n".join(leads) + "\n")
    train_refused(crm, [expected])


@pytest.mark.unit
def test_a_flat_table_with_a_header_only_is_refused(tmp_path):
    table = tmp_path / "flat.csv"
    table.write_text("lead,created,visits,converted\n")
    models = tmp_path / "models"
    refused(
        [a.format(table=table, models=models) for a in FLAT_TRAIN],
        ["flat.csv: no rows; expected one row per lead below the header"],
        models,
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    "as_of,expected",
    [
        ("9999-12-31", "--as-of '9999-12-31' is out of range; expected a date between 1970-01-01"),
        ("1969-12-31", "--as-of '1969-12-31' is out of range"),
        ("next week", "--as-of 'next week' is not an ISO 8601 date or time; expected e.g."),
    ],
)
def test_as_of_outside_the_api_date_range_is_refused_before_anything_is_read(
    tmp_path, tiny_crm, as_of, expected
):
    out = tmp_path / "scores.csv"
    models = tmp_path / "models"  # no champion: --as-of is checked first
    refused(
        ["score", "--data", str(tiny_crm), "--as-of", as_of, "--out", str(out)]
        + ["--models-dir", str(models)],
        [expected],
        out,
    )
    assert not models.exists()


@pytest.mark.unit
def test_a_50000_character_value_is_cut_in_the_message(tmp_path):
    huge = "x" * 50_000
    crm = write_crm(tmp_path / "crm", leads=LEADS.replace("referral,software", f"{huge},software"))
    message = train_refused(
        crm,
        [
            "leads.csv, column 'source', line 2: value not allowed",
            f"'{'x' * MAX_SHOWN_CHARS}'... (50,000 characters)",
            "expected one of web_form",
        ],
    )
    assert len(message) < 1000


@pytest.mark.unit
def test_brackets_in_a_value_are_printed_not_read_as_markup(tmp_path):
    crm = write_crm(tmp_path / "crm", leads=LEADS.replace("referral,software", "[/],software"))
    train_refused(crm, ["leads.csv, column 'source', line 2", "('[/]')"])


# ------------------------------------------------------------------ with trained champions


@pytest.mark.model
def test_a_flat_table_with_a_header_only_is_nothing_to_score(served, tmp_path):
    table = tmp_path / "new.csv"
    header = pd.read_csv(served["flat_table"], nrows=0)
    header.to_csv(table, index=False)
    out = tmp_path / "scores.csv"
    message = refused(
        ["score", "--table", str(table), "--out", str(out), "--models-dir", str(served["models"])],
        ["new.csv: no rows; expected one row per lead below the header"],
        out,
    )
    assert "Scored" not in message


@pytest.mark.model
def test_an_export_with_no_open_lead_by_as_of_is_nothing_to_score(served, tiny_crm, tmp_path):
    # The tiny export's one open lead is created on 2025-01-31: on the 15th there is none.
    out = tmp_path / "scores.csv"
    args = ["score", "--data", str(tiny_crm), "--as-of", "2025-01-15", "--out", str(out)]
    refused(
        [*args, "--models-dir", str(served["models"])],
        [
            f"nothing to score: {tiny_crm} has no open lead created on or before 2025-01-15",
            "scores.csv was not written",
        ],
        out,
    )


@pytest.mark.unit
def test_a_sales_capacity_without_dates_is_refused(tmp_path):
    table = tmp_path / "leads.csv"
    table.write_text("id,converted,visits\na,1,3\nb,0,1\n")
    refused(
        ["train", "--table", str(table), "--id", "id", "--label", "converted", "--positive", "1"]
        + ["--sales-capacity", "50", "--models-dir", str(tmp_path / "models")],
        ["--sales-capacity needs --time", "how many leads arrive a week"],
        tmp_path / "models",
    )
