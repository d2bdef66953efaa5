"""The CRM data contract: what a CRM export must look like, and the one loader that enforces it.

An export is a folder with three tables, `leads`, `activities` and `touches`, each a `.csv` or a
`.parquet` file; only `leads` is required (no events file, or one without rows, means no events).
`docs/data-contract.md` is the human-readable version of this module.

Loading is where dtypes are decided, once: enum fields become lower-case strings from a fixed
vocabulary (empty BANT fields become "unknown"), dates become timezone-naive UTC datetimes,
`company_size` a float (NaN when missing) and `responded` a float (1, 0, or NaN when missing).
Any violation stops the load with a `ContractError` whose message names the file, the lines
(as a spreadsheet shows them, header = line 1), the column, the bad values and what was expected.
What a file is before it is parsed (UTF-8 or not, a workbook named .csv) is `features/reading.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute

from leadready.features.outcome_rules import close_lost_after, export_end
from leadready.features.reading import (
    PARQUET,
    binary_kind,
    first_bad_utf8,
    read_csv_cells,
    spreadsheet_column,
)

if TYPE_CHECKING:
    from leadready.features.schema import Schema, TableMapping

# Each vocabulary is a `Literal` type, for the API's fields (serving.schemas), and the tuple of
# its values in order (the order of the int codes of features.build), typed as plain strings:
# it is what any text read from an export is checked against.
Source = Literal[
    "web_form",
    "trade_show",
    "webinar",
    "content_download",
    "referral",
    "partner",
    "outbound",
    "chat",
    "other",
]
SOURCES: tuple[str, ...] = get_args(Source)
Budget = Literal["confirmed", "indicated", "none", "unknown"]
BUDGET: tuple[str, ...] = get_args(Budget)
Authority = Literal["decision_maker", "influencer", "user", "unknown"]
AUTHORITY: tuple[str, ...] = get_args(Authority)
Need = Literal["confirmed", "indicated", "none", "unknown"]
NEED: tuple[str, ...] = get_args(Need)
Timeframe = Literal["lt_1m", "1_3m", "3_6m", "6_12m", "gt_12m", "unknown"]
TIMEFRAME: tuple[str, ...] = get_args(Timeframe)
OUTCOMES = ("won", "lost", "open")
ActivityType = Literal[
    "email_open",
    "email_click",
    "web_visit",
    "pricing_page_view",
    "content_download",
    "webinar_attended",
    "event_attended",
    "demo_request",
    "contact_request",
    "chat",
    "form_submit",
    "unsubscribe",
]
ACTIVITY_TYPES: tuple[str, ...] = get_args(ActivityType)
Channel = Literal["email", "call", "meeting", "direct_mail", "social", "event"]
CHANNELS: tuple[str, ...] = get_args(Channel)
Team = Literal["marketing", "sales"]
TEAMS: tuple[str, ...] = get_args(Team)
BANT_FIELDS = {"budget": BUDGET, "authority": AUTHORITY, "need": NEED, "timeframe": TIMEFRAME}
VOCABULARIES: dict[str, dict[str, tuple[str, ...]]] = {
    "leads": {"source": SOURCES, **BANT_FIELDS},
    "activities": {"type": ACTIVITY_TYPES},
    "touches": {"channel": CHANNELS, "team": TEAMS},
}
"""The vocabulary columns of each table, with their allowed values."""

TABLES = ("leads", "activities", "touches")
OPTIONAL_TABLES = ("activities", "touches")
LEAD_COLUMNS = (
    "lead_id",
    "created_at",
    "source",
    "industry",
    "company_size",
    "country",
    *BANT_FIELDS,
    "outcome",
    "outcome_at",
)
ACTIVITY_COLUMNS = ("lead_id", "occurred_at", "type")
TOUCH_COLUMNS = ("lead_id", "occurred_at", "channel", "team", "responded")
COLUMNS_OF = {"activities": ACTIVITY_COLUMNS, "touches": TOUCH_COLUMNS}

MAX_LISTED_ROWS = 10
MAX_LISTED_VALUES = 10
"""Most distinct values one problem or note lists (by count, largest first); the rest are
counted as "and K more values"."""
MAX_SHOWN_CHARS = 60
"""Longest value an error message quotes in full; longer ones are cut and their length said."""
EARLIEST = 0  # 1970-01-01, Unix seconds
LATEST = 4_102_444_800  # 2100-01-01
DATE_RANGE = "a date between 1970-01-01 and 2100-01-01"
"""The dates leadready accepts, in files as in API requests: outside them a date is a typo
(year 3000, 9999-12-31 placeholders) and would not fit a nanosecond timestamp anyway."""
DAY_SECONDS = 86_400
SAVE_AS_CSV = "save it as CSV UTF-8 (in Excel: File > Save As > CSV UTF-8)"
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


class ContractError(ValueError):
    """Input that breaks the data contract; the message is meant for the person who made it."""


_SEPARATORS = re.compile(r"[\W_]+")


def value_key(text: str) -> str:
    """A vocabulary value as leadready matches it: case folded, and every run of spaces,
    punctuation and underscores one "_", none at the ends. "Trade Show", "trade-show" and
    " TRADE_SHOW " are all `trade_show`. Files (`_enum`, schema value maps) and the API
    (serving.schemas) match through this one function."""
    return _SEPARATORS.sub("_", text.casefold()).strip("_")


def value_keys(values: pd.Series) -> pd.Series:
    """`value_key` of every cell of a text column, computed once per distinct value."""
    codes, uniques = pd.factorize(values)
    return _taken(codes, [value_key(value) for value in uniques], values.index)


def _taken(codes: np.ndarray, texts: list[str], index: pd.Index) -> pd.Series:
    """A text column from the codes of `pd.factorize` and a text per distinct value."""
    taken = pa.compute.take(pa.array(texts, type=pa.string()), pa.array(codes))
    return pd.Series(taken, index=index, dtype="str")


def encode(values: object, vocabulary: tuple[str, ...]) -> npt.NDArray[np.int64]:
    """Validated contract values as int codes (their position in `vocabulary`), -1 for others."""
    return positions(values, pd.Index(vocabulary))


def positions(values: object, index: pd.Index) -> npt.NDArray[np.int64]:
    """Each value's position in `index` (-1 when absent), looked up once per distinct value."""
    codes, uniques = pd.factorize(values)  # type: ignore[call-overload]
    found = index.get_indexer(uniques)
    return np.where(codes < 0, -1, found[codes]).astype(np.int64)


def _most_frequent_first(counts: pd.Series) -> pd.Series:
    """Counts sorted largest first, ties in their first-seen order (so messages are stable)."""
    return counts.iloc[np.argsort(-counts.to_numpy(), kind="stable")]


def counted_values(values: pd.Series, unit: str = "row") -> str:
    """The distinct values of a column, most frequent first, as a message lists them: with
    their counts unless each occurs once, MAX_LISTED_VALUES at most and "and K more values"
    for the rest; '' when there are none."""
    counts = _most_frequent_first(values.astype(str).value_counts(sort=False))
    listed = counts.iloc[:MAX_LISTED_VALUES]
    each_once = bool((counts == 1).all())
    shown = ", ".join(
        quoted(v) if each_once else f"{quoted(v)} in {n:,} {unit}{'s' if n > 1 else ''}"
        for v, n in listed.items()
    )
    rest = counts.iloc[MAX_LISTED_VALUES:]
    if len(rest):
        more = f"{len(rest):,} more value{'s' if len(rest) > 1 else ''}"
        total = int(rest.sum())
        shown += f" and {more}" + ("" if each_once else f" in {total:,} {unit}s")
    return shown


@dataclass(frozen=True)
class Crm:
    """A validated CRM export. Frames are sorted by lead (and time for events).

    `custom` names the extra lead columns a schema declared as features, with their kind
    (numeric or categorical); `display` the lead columns the schema's `leads.display` names
    for the workspace to show (name, company...: never features), kept as text; both are
    columns of `leads`. `schema` is the one the export was read with; `notes` the values read
    as another spelling of a contract value, and the optional parts the export does not have."""

    leads: pd.DataFrame
    activities: pd.DataFrame
    touches: pd.DataFrame
    custom: dict[str, str] = field(default_factory=dict)
    display: tuple[str, ...] = ()
    schema: Schema | None = None
    notes: list[str] = field(default_factory=list)
    lost_after: int | None = None
    """The lost-after rule's days the export was read with (`features.outcome_rules`)."""
    closed_as_lost: int = 0
    """Leads that rule counted as lost (open ones too old, lost ones without a date)."""


@dataclass
class CheckedTable:
    """One raw table being checked; collects every problem before anything is raised. The
    flat mode (training.flat) checks its tables with it too, so errors read the same."""

    file: str
    frame: pd.DataFrame
    is_csv: bool
    problems: list[str]
    date_formats: dict[str, str]
    notes: list[str] = field(default_factory=list)
    """Values read as another spelling of a contract value: not problems, said once."""
    unmatched: dict[str, str] = field(default_factory=dict)
    """Schema renames (export column -> contract column) whose export column is missing: the
    problem is the schema's, so the contract column is not reported missing as well."""

    @classmethod
    def of(
        cls, path: str, frame: pd.DataFrame, date_formats: dict[str, str] | None = None
    ) -> CheckedTable:
        return cls(path, frame, not path.endswith(".parquet"), [], dict(date_formats or {}))

    @property
    def unit(self) -> str:
        return "line" if self.is_csv else "row"

    def where(self, mask: np.ndarray) -> str:
        rows = np.flatnonzero(mask)
        unit = self.unit
        # Header is line 1 in a CSV; parquet rows are counted from 1.
        numbers = rows + (2 if self.is_csv else 1)
        shown = ", ".join(str(n) for n in numbers[:MAX_LISTED_ROWS])
        more = len(rows) - MAX_LISTED_ROWS
        suffix = f" and {more} more ({len(rows)} in all)" if more > 0 else ""
        return f"{unit}{'s' if len(rows) > 1 else ''} {shown}{suffix}"

    def report(self, mask: np.ndarray, column: str, what: str, expected: str) -> None:
        values = self.frame[column][mask] if column in self.frame else pd.Series(dtype=object)
        shown = counted_values(cell_text(values), self.unit)
        self.problems.append(
            f"{self.file}, column '{column}', {self.where(mask)}: {what}"
            + (f" ({shown})" if shown else "")
            + f"; expected {expected}"
        )


def quoted(value: object) -> str:
    """A value as an error message quotes it: cut to MAX_SHOWN_CHARS characters with its length
    said, so one 50,000-character cell cannot make a 50 KB error line."""
    text = str(value)
    if len(text) <= MAX_SHOWN_CHARS:
        return repr(text)
    return f"{text[:MAX_SHOWN_CHARS]!r}... ({len(text):,} characters)"


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (every cell as text, '' when empty) or parquet file, with stripped column names.

    A CSV must be UTF-8 text (a byte-order mark is fine) whose rows have no more fields than
    its header. Columns whose names are equal once stripped must hold the same values, and
    are then kept once."""
    csv = path.suffix != ".parquet"
    kind = binary_kind(path) if csv and path.is_file() else None
    if kind is not None:
        advice = "name it .parquet" if kind == PARQUET else SAVE_AS_CSV
        raise ContractError(f"{path}: this is {kind}, not UTF-8 CSV text; {advice}")
    try:
        frame = read_csv_cells(path) if csv else pd.read_parquet(path)
    except UnicodeDecodeError:
        bad = first_bad_utf8(path)
        where = f", line {bad.line}, character {bad.character}" if bad else ""
        found = f" (byte 0x{bad.byte:02x} in {quoted(bad.near)})" if bad else ""
        raise ContractError(
            f"{path}{where}: not UTF-8 text{found}, Latin-1 or Windows-1252 perhaps; " + SAVE_AS_CSV
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        reason = quoted(exc) if len(str(exc)) > 4 * MAX_SHOWN_CHARS else str(exc).strip()
        raise ContractError(f"{path}: cannot be read as {path.suffix[1:]}: {reason}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return _without_copies(frame, str(path))


def _without_copies(frame: pd.DataFrame, path: str) -> pd.DataFrame:
    """The frame with each repeated column name kept once; a ContractError when the copies
    disagree on some row, since no one can tell which of them is meant."""
    names = pd.Index(frame.columns)
    if names.is_unique:
        return frame
    table = CheckedTable.of(path, frame)
    for name in names[names.duplicated()].unique():
        positions = [int(i) for i in np.flatnonzero(names == name)]
        cells = [cell_text(frame.iloc[:, i]) for i in positions]
        differ = np.zeros(len(frame), dtype=bool)
        for other in cells[1:]:
            differ |= (other != cells[0]).to_numpy()
        if differ.any():
            where = " and ".join(f"{i + 1} ({spreadsheet_column(i)})" for i in positions)
            table.problems.append(
                f"{path}: column {quoted(name)} appears {len(positions)} times (columns {where})"
                f" and the copies differ on {table.where(differ)}; expected each column once: "
                "remove or rename the copies"
            )
    if table.problems:
        raise ContractError("\n".join(table.problems))
    return frame.loc[:, ~names.duplicated()]


def _read(folder: Path, name: str, mapping: TableMapping | None) -> CheckedTable | None:
    """A table read and mapped by the schema; None for an events table the folder does not
    have (and the schema names no file for), or whose file holds nothing at all."""
    if mapping is not None and mapping.file:
        candidates = [folder / mapping.file]
    else:
        candidates = [folder / f"{name}.csv", folder / f"{name}.parquet"]
    present = [p for p in candidates if p.exists()]
    optional = name in OPTIONAL_TABLES
    if not present and optional and not (mapping and mapping.file):
        return None
    if not present:
        raise ContractError(
            f"{folder}: no '{name}' table; expected "
            + " or ".join(p.name for p in candidates)
            + " in that folder"
        )
    if len(present) > 1:
        raise ContractError(f"{folder}: both {name}.csv and {name}.parquet exist; keep one")
    path = present[0]
    if optional and _holds_nothing(path):
        return None
    frame = read_table(path)
    if mapping is None:
        return CheckedTable.of(str(path), frame)
    table = CheckedTable.of(str(path), mapping.apply(frame), mapping.dates)
    table.unmatched = mapping.unmatched(list(frame.columns))
    table.problems.extend(unmatched_renames(table.unmatched, path, list(frame.columns)))
    _set_constants(table, mapping.constant)
    if mapping.won_at is not None:
        _outcome_from_won_at(table, mapping.won_at)
    return table


def _holds_nothing(path: Path) -> bool:
    """A CSV file with no header and no rows: blank, or a byte-order mark alone."""
    if path.suffix == ".parquet" or path.stat().st_size > 64:
        return False
    return path.read_bytes().removeprefix(b"\xef\xbb\xbf").strip() == b""


def _set_constants(table: CheckedTable, constant: dict[str, str]) -> None:
    """The schema's `constant` columns, the same value in every row; checked afterwards like
    any other cell. A constant for a column the file has is the schema's mistake."""
    for column, value in constant.items():
        if column in table.frame:
            table.problems.append(
                f"{table.file}: the schema sets column '{column}' to the constant "
                f"{quoted(value)}, but the file has that column; remove the constant or the column"
            )
        else:
            table.frame = table.frame.assign(**{column: value})


def _outcome_from_won_at(table: CheckedTable, won_at: str) -> None:
    """The schema's `won_at`: a lead with a date in that column was won then, the others are
    open (until a lost-after rule closes them); replaces the outcome and outcome_at columns."""
    frame = table.frame
    if won_at not in frame:
        found = ", ".join(map(quoted, frame.columns)) or "none"
        table.problems.append(
            f"{table.file}: the schema's won_at names column {quoted(won_at)}, which is not in "
            f"the file (columns: {found}); expected the column's name as the file spells it"
        )
        return
    clashes = [c for c in ("outcome", "outcome_at") if c in frame and c != won_at]
    if clashes:
        table.problems.append(
            f"{table.file}: the schema derives the outcome from column {quoted(won_at)} "
            f"(won_at), but the file has {' and '.join(map(quoted, clashes))} too; remove "
            "won_at from the schema or those columns from the file"
        )
        return
    won = (cell_text(frame[won_at]) != "").to_numpy()
    table.frame = frame.drop(columns=won_at).assign(
        outcome=np.where(won, "won", "open"), outcome_at=frame[won_at]
    )


def unmatched_renames(unmatched: dict[str, str], path: Path, columns: list[str]) -> list[str]:
    """One problem per schema rename whose export column `path` does not have."""
    found = ", ".join(map(quoted, columns)) or "none"
    return [
        f"{path}: the schema maps column {quoted(key)} (to {target}), which is not in "
        f"{path.name} (columns: {found}); expected the column's name as the file spells it"
        for key, target in unmatched.items()
    ]


def cell_text(series: pd.Series) -> pd.Series:
    """A column as the stripped text of its cells, '' where missing (parquet nulls and NaN
    included): how every table leadready reads (CRM exports, flat tables, outcomes) sees a cell
    before checking it. Dates typed by parquet become ISO 8601 text, with their UTC offset when
    they have one."""
    if pd.api.types.is_datetime64_any_dtype(series):
        series = series.dt.strftime("%Y-%m-%dT%H:%M:%S%z").astype(object)
    elif series.dtype != object and not pd.api.types.is_string_dtype(series):
        series = series.astype(object).where(series.notna(), "")
    return series.fillna("").astype(str).str.strip()


def _text(table: CheckedTable, column: str) -> pd.Series:
    return cell_text(table.frame[column])


def _require_columns(
    table: CheckedTable, columns: tuple[str, ...], required: tuple[str, ...]
) -> bool:
    renamed = set(table.unmatched.values())  # reported as the schema's problem already
    missing = [c for c in required if c not in table.frame.columns and c not in renamed]
    if missing:
        table.problems.append(
            f"{table.file}: missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{c}'" for c in missing)
            + f"; expected columns {', '.join(columns)}"
            + f" (found {', '.join(map(quoted, table.frame.columns)) or 'none'})"
        )
    return all(c in table.frame.columns for c in required)


def _enum(
    table: CheckedTable, column: str, allowed: tuple[str, ...], empty: str | None
) -> pd.Series:
    """A vocabulary column matched through `value_key`; other spellings of an allowed value
    ("Trade Show" for trade_show) are read as it and noted, other values reported."""
    text = _text(table, column)
    codes, uniques = pd.factorize(text)
    keys = [value_key(value) for value in uniques]
    if empty is not None:
        keys = [empty if key == "" else key for key in keys]
    bad_once = ~pd.Index(keys, dtype=object).isin(allowed)
    bad = bad_once[codes]
    if bad.any():
        note = f" (empty means {empty})" if empty is not None else ""
        table.report(bad, column, "value not allowed", f"one of {' | '.join(allowed)}{note}")
    values = _taken(codes, keys, text.index)
    respelt_once = ~bad_once & (uniques != keys) & (uniques != "")
    if respelt_once.any():
        respelt = respelt_once[codes]
        pairs = pd.DataFrame({"text": text[respelt], "key": values[respelt]})
        counts = _most_frequent_first(pairs.value_counts(sort=False)).iloc[:MAX_LISTED_VALUES]
        read = [
            f"{quoted(t)} read as {k} ({n:,} {table.unit}{'s' if n > 1 else ''})"
            for (t, k), n in zip(counts.index, counts, strict=True)
        ]
        rest = len(pairs.drop_duplicates()) - MAX_LISTED_VALUES
        more = f" and {rest} more spelling{'s' if rest > 1 else ''}" if rest > 0 else ""
        table.notes.append(f"{table.file}, column '{column}': {', '.join(read)}{more}")
    return values


def check_dates(table: CheckedTable, column: str, required: bool) -> pd.Series:
    """A date column parsed (ISO 8601, or the schema's format), naive UTC; unparsable and (when
    required) empty cells are reported on the table."""
    raw = table.frame[column]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw, utc=True)
        missing = parsed.isna().to_numpy()
        bad = np.zeros(len(raw), dtype=bool)
    else:
        text = _text(table, column)
        parsed = parse_dates(text, table.date_formats.get(column))
        missing = (text == "").to_numpy()
        bad = parsed.isna().to_numpy() & ~missing
    expected = (
        "an ISO 8601 date or time"
        if column not in table.date_formats
        else f"a date in the schema's format '{table.date_formats[column]}'"
    )
    if bad.any():
        table.report(bad, column, "date that does not parse", expected)
    if required and missing.any():
        table.report(missing, column, "empty date", expected)
    earliest, latest = (pd.Timestamp(t, unit="s", tz="UTC") for t in (EARLIEST, LATEST))
    outside = ((parsed < earliest) | (parsed >= latest)).to_numpy()
    if outside.any():
        table.report(outside, column, "date out of range", DATE_RANGE)
        parsed = parsed.mask(outside)
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def parse_dates(text: pd.Series, fmt: str | None) -> pd.Series:
    """Dates as text parsed in a schema's strftime format (ISO 8601 without one), UTC; NaT
    where they do not parse; dates out of DATE_RANGE moved just outside it (so that they fit in
    nanoseconds). Files (`check_dates`) and the API (serving.mapping) parse through this one
    function: ISO 8601 cells of the usual layouts are read by `_plain_iso_seconds` (vectorised,
    many times faster), the others by pandas."""
    fmt = fmt or "ISO8601"
    if fmt == "ISO8601":
        seconds, plain = _plain_iso_seconds(text)
    else:
        seconds, plain = np.zeros(len(text), dtype=np.int64), np.zeros(len(text), dtype=bool)
    stamps = np.where(plain, seconds * 1_000_000_000, np.iinfo(np.int64).min)
    others = np.flatnonzero(~plain)
    if len(others):
        rest = pd.to_datetime(text.iloc[others], format=fmt, utc=True, errors="coerce")
        earliest, latest = (pd.Timestamp(t, unit="s", tz="UTC") for t in (EARLIEST, LATEST))
        rest = rest.mask(rest < earliest, earliest - pd.Timedelta(seconds=1))
        rest = rest.mask(rest >= latest, latest)
        stamps[others] = rest.dt.tz_localize(None).astype("datetime64[ns]").to_numpy().view("i8")
    return pd.Series(stamps.view("datetime64[ns]"), index=text.index).dt.tz_localize("UTC")


_LAYOUTS = {10: "0000-00-00", 16: "0000-00-00T00:00", 19: "0000-00-00T00:00:00"}
"""Layouts `_plain_iso_seconds` reads, by length in bytes: 0 stands for a digit, and a space
may stand for the T, as pandas reads them."""
_BLOCK = 1 << 20


def _plain_iso_seconds(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Unix seconds of the cells laid out as one of _LAYOUTS with a valid date and time from
    1970 to 2099, and which cells those are (the others: 0 seconds, False)."""
    n = len(text)
    seconds, plain = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    array = pa.array(text.array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not n or array.type not in (pa.string(), pa.large_string()) or array.buffers()[2] is None:
        return seconds, plain
    wide = np.int64 if array.type == pa.large_string() else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=wide)[array.offset : array.offset + n + 1]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    for start in range(0, n, _BLOCK):
        end = min(start + _BLOCK, n)
        for width, layout in _LAYOUTS.items():
            rows = np.flatnonzero(lengths[start:end] == width)
            if len(rows) == end - start:  # all of one layout: the bytes as they lie
                first = int(offsets[start])
                cells = data[first : first + len(rows) * width].reshape(-1, width)
            else:
                starts: np.ndarray = offsets[start + rows]
                cells = data[starts[:, None] + np.arange(width)]
            rows += start
            seconds[rows], plain[rows] = _layout_seconds(cells.T - np.uint8(48), layout)
    return seconds, plain


def _shifted(char: str) -> np.uint8:
    """A character's byte minus ord('0'), as uint8 arithmetic wraps it."""
    return np.uint8((ord(char) - 48) % 256)


_MONTH_DAYS = (
    np.arange(np.datetime64("1970-01", "M"), np.datetime64("2100-02", "M"))
    .astype("datetime64[D]")
    .astype(np.int32)
)
"""Unix days of the first of each month from 1970-01 to 2100-01, by months since 1970-01."""


def _layout_seconds(d: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Unix seconds of cells (a column each: its bytes minus ord('0'), as uint8) laid out as
    `layout`, and which cells are such valid dates from 1970 to 2099. Fields are summed in
    int32 (half the memory traffic of int64) in place."""
    digits = [i for i, char in enumerate(layout) if char == "0"]
    ok = (d[digits] <= 9).all(axis=0)
    for position, char in enumerate(layout):
        if char != "0":
            found = d[position]
            ok &= (found == _shifted(char)) | ((char == "T") & (found == _shifted(" ")))

    def number(start: int, size: int) -> np.ndarray:
        value = np.zeros(d.shape[1], dtype=np.int32)
        for k in range(start, min(start + size, len(layout))):
            value *= 10
            value += d[k]
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second = number(11, 2), number(14, 2), number(17, 2)
    ok &= (year >= 1970) & (year <= 2099) & (month >= 1) & (month <= 12)
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0)
    first, following = _MONTH_DAYS[months], _MONTH_DAYS[months + 1]
    ok &= (day >= 1) & (day <= following - first) & (hour <= 23) & (minute <= 59) & (second <= 59)
    days = (first + day - 1).astype(np.int64)
    seconds = days * DAY_SECONDS + (hour * 3600 + minute * 60 + second)
    return np.where(ok, seconds, 0), ok


def parse_moment(text: str, what: str) -> int:
    """Unix seconds of an ISO 8601 time a person typed (`--as-of`, the workspace's scoring
    time), naive taken as UTC; a ContractError naming `what` when it does not parse or is not
    within DATE_RANGE, the bound the API applies too."""
    stamp = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    if pd.isna(stamp):
        raise ContractError(
            f"{what} {quoted(text)} is not an ISO 8601 date or time; expected e.g. "
            "2025-03-04 or 2025-03-04T10:15:00Z"
        )
    seconds = int(stamp.timestamp())
    if not EARLIEST <= seconds < LATEST:
        raise ContractError(f"{what} {quoted(text)} is out of range; expected {DATE_RANGE}")
    return seconds


def _number(table: CheckedTable, column: str) -> pd.Series:
    text = _text(table, column)
    numbers = pd.to_numeric(text.mask(text == "", None), errors="coerce")
    bad = (numbers.isna() & (text != "")).to_numpy() | (numbers < 0).to_numpy()
    if bad.any():
        table.report(bad, column, "not a non-negative number", "a number of employees or empty")
    return numbers.astype(float)


def _flag(table: CheckedTable, column: str) -> pd.Series:
    text = value_keys(_text(table, column))
    values = pd.Series(np.nan, index=text.index)
    values[text.isin(_TRUE)] = 1.0
    values[text.isin(_FALSE)] = 0.0
    bad = (values.isna() & (text != "")).to_numpy()
    if bad.any():
        table.report(bad, column, "value not allowed", "true | false, or empty when not known")
    return values


def _custom(table: CheckedTable, out: pd.DataFrame, custom: dict[str, str]) -> None:
    """Extra lead columns the schema declared as features, typed like the contract's own."""
    from leadready.features.build import FEATURES

    for column, kind in custom.items():
        if column in FEATURES or column in LEAD_COLUMNS:
            table.problems.append(
                f"{table.file}: custom feature '{column}' has the name of a "
                "built-in column or feature; rename it in the schema"
            )
        elif column not in table.frame:
            table.problems.append(
                f"{table.file}: missing column '{column}', declared as a "
                "custom feature in the schema"
            )
        elif kind == "numeric":
            text = _text(table, column)
            numbers = pd.to_numeric(text.mask(text == "", None), errors="coerce")
            bad = (numbers.isna() & (text != "")).to_numpy()
            if bad.any():
                table.report(
                    bad,
                    column,
                    "not a number",
                    "a number or empty (declared numeric in the schema)",
                )
            out[column] = numbers.astype(float)
        else:
            text = _text(table, column)
            out[column] = text.mask(text == "", "unknown")


def _display(
    table: CheckedTable, out: pd.DataFrame, display: tuple[str, ...], required: bool
) -> tuple[str, ...]:
    """The schema's display columns, kept as the text of their cells; those the file lacks are
    a problem when `required` (training data: a misspelt schema), else skipped (a later export
    can still be scored without them). Returns the columns kept."""
    from leadready.features.build import FEATURES

    kept = []
    for column in display:
        if column in FEATURES or column in LEAD_COLUMNS:
            table.problems.append(
                f"{table.file}: display column '{column}' has the name of a built-in column "
                "or feature; a display column is never a feature: name one of the export's "
                "own columns (name, company, email, owner...)"
            )
        elif column in table.frame:
            out[column] = _text(table, column)
            kept.append(column)
        elif required:
            table.problems.append(
                f"{table.file}: missing column '{column}', named as a display column in the "
                f"schema (found {', '.join(map(quoted, table.frame.columns)) or 'none'})"
            )
    return tuple(kept)


def _check_leads(
    table: CheckedTable, require_outcome: bool, custom: dict[str, str], lost_after: int | None
) -> pd.DataFrame:
    """The leads checked; with a lost-after rule, lost leads may have no outcome date (the
    rule gives them one)."""
    required = ("lead_id", "created_at", "source") + (("outcome",) if require_outcome else ())
    if not _require_columns(table, LEAD_COLUMNS, required):
        return pd.DataFrame()
    frame = table.frame
    if frame.empty:
        table.problems.append(f"{table.file}: no rows; expected one row per lead below the header")
    out = pd.DataFrame(index=frame.index)
    out["lead_id"] = _text(table, "lead_id")
    empty_id = (out["lead_id"] == "").to_numpy()
    if empty_id.any():
        table.report(empty_id, "lead_id", "empty id", "a unique, non-empty string")
    duplicated = out["lead_id"].duplicated(keep=False).to_numpy() & ~empty_id
    if duplicated.any():
        table.report(duplicated, "lead_id", "duplicate id", "each lead_id once")
    out["created_at"] = check_dates(table, "created_at", required=True)
    out["source"] = _enum(table, "source", SOURCES, empty=None)
    industry = _text(table, "industry") if "industry" in frame else pd.Series("", frame.index)
    out["industry"] = industry.str.lower().mask(industry == "", "unknown")
    out["company_size"] = _number(table, "company_size") if "company_size" in frame else np.nan
    out["country"] = _text(table, "country") if "country" in frame else ""
    for name, allowed in BANT_FIELDS.items():
        out[name] = _enum(table, name, allowed, empty="unknown") if name in frame else "unknown"
    if "outcome" in frame:
        out["outcome"] = _enum(table, "outcome", OUTCOMES, empty=None)
        has_at = "outcome_at" in frame
        out["outcome_at"] = (
            check_dates(table, "outcome_at", required=False)
            if has_at
            else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
        )
        closed = out["outcome"].isin(("won", "lost") if lost_after is None else ("won",))
        no_date = closed.to_numpy() & out["outcome_at"].isna().to_numpy()
        if has_at:
            no_date &= (_text(table, "outcome_at") == "").to_numpy()
        if no_date.any():
            table.report(
                no_date,
                "outcome_at",
                "won or lost lead without an outcome date",
                "the date the lead was won or lost (lost leads may go without one under a "
                "lost-after rule)",
            )
        before = (out["outcome_at"] < out["created_at"]).to_numpy()
        if before.any():
            table.report(
                before,
                "outcome_at",
                "outcome before the lead was created",
                "a date on or after created_at",
            )
        open_dated = (out["outcome"] == "open").to_numpy() & out["outcome_at"].notna().to_numpy()
        if open_dated.any():
            table.report(
                open_dated,
                "outcome_at",
                "open lead with an outcome date",
                "empty outcome_at while the outcome is open",
            )
    _custom(table, out, custom)
    return out


def _check_events(
    table: CheckedTable,
    columns: tuple[str, ...],
    known: pd.Series | None,
    enums: dict[str, tuple[str, ...]],
) -> pd.DataFrame:
    """The events of a table checked; `known` is the leads' ids (None when the leads table could
    not be checked, so every id would look unknown)."""
    required = tuple(c for c in columns if c != "responded")
    if not _require_columns(table, columns, required):
        return pd.DataFrame()
    out = pd.DataFrame(index=table.frame.index)
    codes, uniques = pd.factorize(_text(table, "lead_id"), sort=True)
    out["lead_id"] = pd.Categorical.from_codes(codes, uniques)  # sorted ids: codes sort as they do
    unknown = None
    if known is not None:
        ids = pa.array(known.array, type=pa.string())
        unknown = ~np.asarray(pa.compute.is_in(pa.array(uniques.array), value_set=ids))[codes]
    if unknown is not None and unknown.any():
        table.report(unknown, "lead_id", "lead not in the leads table", "a lead_id from leads")
    out["occurred_at"] = check_dates(table, "occurred_at", required=True)
    for column, allowed in enums.items():
        out[column] = _enum(table, column, allowed, empty=None)
    if "responded" in columns:
        out["responded"] = _flag(table, "responded") if "responded" in table.frame else np.nan
    return out


def load_crm(
    folder: str | Path,
    *,
    require_outcome: bool = True,
    schema: Schema | None = None,
    lost_after: int | None = None,
) -> Crm:
    """Read and validate a CRM export folder; raise `ContractError` listing every problem.

    With a schema, its renames, value maps, date formats and constants apply first, and its
    custom lead features and display columns are kept (`Crm.custom`, `Crm.display`).
    `lost_after` (days; default the schema's `leads.lost_after`) closes leads left open by the
    rule of `features.outcome_rules`, at the export's end."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(f"{folder}: not a folder; expected a folder with {', '.join(TABLES)}")
    mappings = {name: schema.table(name) if schema else None for name in TABLES}
    if lost_after is None and mappings["leads"] is not None:
        lost_after = mappings["leads"].lost_after
    leads_t = _read(folder, "leads", mappings["leads"])
    assert leads_t is not None  # only events tables are optional
    events_t = {name: _read(folder, name, mappings[name]) for name in OPTIONAL_TABLES}
    notes = [
        f"{folder}: no {name} (no {name}.csv or {name}.parquet, or an empty one)"
        for name, t in events_t.items()
        if t is None
    ]
    activities_t, touches_t = (
        t or CheckedTable.of(str(folder / name), pd.DataFrame(columns=COLUMNS_OF[name], dtype=str))
        for name, t in events_t.items()
    )
    custom = dict(mappings["leads"].features) if mappings["leads"] else {}
    leads = _check_leads(leads_t, require_outcome, custom, lost_after)
    wanted = tuple(mappings["leads"].display) if mappings["leads"] else ()
    display = _display(leads_t, leads, wanted, require_outcome) if len(leads.columns) else ()
    known = leads.get("lead_id")
    activities = _check_events(activities_t, ACTIVITY_COLUMNS, known, VOCABULARIES["activities"])
    touches = _check_events(touches_t, TOUCH_COLUMNS, known, VOCABULARIES["touches"])
    tables = (leads_t, activities_t, touches_t)
    problems = [p for t in tables for p in t.problems]
    if problems:
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        raise ContractError(
            f"The CRM export in {folder} breaks the data contract ({count}; see "
            "docs/data-contract.md):\n" + "\n".join(f"- {p}" for p in problems)
        )
    activities, touches = sorted_events(activities, "activities"), sorted_events(touches, "touches")
    leads, closed = closed_by_rule(leads.reset_index(drop=True), lost_after, activities, touches)
    return Crm(
        leads=leads,
        activities=activities,
        touches=touches,
        custom=custom,
        display=display,
        schema=schema,
        notes=[n for t in tables for n in t.notes] + notes,
        lost_after=lost_after,
        closed_as_lost=closed,
    )


def sorted_events(events: pd.DataFrame, table: str) -> pd.DataFrame:
    """Checked events of `table` (activities or touches) as `Crm` holds them: sorted by
    lead_id, then occurred_at, stably (as `sort_values` would, with a lexsort of integer codes
    in place of comparing texts). The lead ids (unless a categorical of sorted ids already)
    and the vocabulary columns become categoricals first (their values unchanged), so the
    sort moves small codes, not millions of texts, and later lookups of the values are done
    once per distinct one."""
    if events.empty:
        return events.reset_index(drop=True)
    if not isinstance(events["lead_id"].dtype, pd.CategoricalDtype):
        codes, ids = pd.factorize(events["lead_id"], sort=True)
        events = events.assign(lead_id=pd.Categorical.from_codes(codes, ids))
    lead_codes = events["lead_id"].cat.codes.to_numpy()
    order = np.lexsort((events["occurred_at"].to_numpy().view(np.int64), lead_codes))
    coded = events.assign(
        **{
            column: pd.Categorical.from_codes(encode(events[column], allowed), pd.Index(allowed))
            for column, allowed in VOCABULARIES[table].items()
        },
    )
    return coded.take(order).reset_index(drop=True)


def closed_by_rule(
    leads: pd.DataFrame, lost_after: int | None, *events: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """The leads with the lost-after rule applied at the export's end, and how many it closed;
    leads of an export without outcomes (to score) are open until the rule closes them. The
    lead store applies it when read (`leadstore.reading.read_crm`) the same way."""
    end = export_end(leads, *events)
    if lost_after is None or end is None:
        return leads, 0
    if "outcome" not in leads:
        leads = leads.assign(outcome="open", outcome_at=pd.Series(pd.NaT, leads.index, "M8[ns]"))
    return close_lost_after(leads, lost_after, end)
