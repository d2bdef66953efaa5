"""Schema files: how a customer's export maps onto the data contract (see docs/schema.md).

A schema is YAML with one section per table (`leads`, `activities`, `touches`, or `table` for a
flat one-row-per-lead export). Each section may hold:

- `file`: the file name in the export folder, when it is not `<table>.csv`/`.parquet`;
- `columns`: renames, export column -> contract column;
- `values`: per contract column, export value -> contract value (matched exactly, then as
  `features.contract.value_key` folds both: ignoring case, spaces and punctuation);
- `dates`: per contract column, a strftime format such as `%d/%m/%Y %H:%M`;
- `features`: extra export columns to use as model features, each `numeric`, `categorical`
  or (flat mode) `ignore`;
- `display` (flat mode's `table`, or `leads`): columns the workspace shows beside each lead
  (name, company, email, owner...), never used as features;
- (flat mode) `actionable`: feature columns marketing can change (the only ones the
  workspace's what-if suggests changing);
- (three-table mode) `constant`: per contract column the export lacks, the value of every row;
  (`leads` only) `won_at`: the export column holding the date a lead was won, from which the
  outcome is derived, and `lost_after`: the days after which a lead with no outcome counts as
  lost (`features.outcome_rules`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from leadready.features.contract import (
    ACTIVITY_COLUMNS,
    LEAD_COLUMNS,
    TOUCH_COLUMNS,
    ContractError,
    quoted,
    value_key,
)

SECTIONS = ("leads", "activities", "touches", "table")
FEATURE_KINDS = ("numeric", "categorical", "ignore")
_KEYS = (
    "file",
    "columns",
    "values",
    "dates",
    "features",
    "display",
    "actionable",
    "constant",
    "won_at",
    "lost_after",
)
_LEAD_LEVEL = ("table", "leads")
"""The sections that describe leads: display columns belong to them, never to events."""
_LEADS_ONLY = ("won_at", "lost_after")
_NEVER_CONSTANT = ("lead_id", "created_at", "occurred_at", "outcome", "outcome_at")
_CONSTANT_COLUMNS = {
    name: tuple(c for c in columns if c not in _NEVER_CONSTANT)
    for name, columns in (
        ("leads", LEAD_COLUMNS),
        ("activities", ACTIVITY_COLUMNS),
        ("touches", TOUCH_COLUMNS),
    )
}
"""The contract columns a `constant` may set: no ids, dates or outcomes (`won_at` derives
those), which are never the same for every lead."""


@dataclass(frozen=True)
class TableMapping:
    file: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)
    features: dict[str, str] = field(default_factory=dict)
    display: tuple[str, ...] = ()
    actionable: tuple[str, ...] = ()
    constant: dict[str, str] = field(default_factory=dict)
    won_at: str | None = None
    lost_after: int | None = None

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Renamed columns and mapped values (`map_value`, once per distinct value); a new
        frame, the input is left as it was."""
        out = frame.rename(columns=self.columns)
        for column in self.values:
            if column not in out:
                continue
            exact = out[column].astype(object)
            mapped = exact.map({v: self.map_value(column, v) for v in exact.dropna().unique()})
            out[column] = mapped.where(mapped.notna(), exact)
        return out

    def map_value(self, column: str, value: object) -> str | None:
        """The contract value `values` maps `value` of (contract) `column` to, matched exactly,
        then as `value_key` folds both; None when the map has no such value. Files (`apply`)
        and the API (serving.mapping) map through this one method."""
        mapping = self.values.get(column, {})
        if isinstance(value, str) and value in mapping:
            return mapping[value]
        return {value_key(k): v for k, v in mapping.items()}.get(value_key(str(value)))

    def unmatched(self, columns: list[str]) -> dict[str, str]:
        """The renames (export column -> contract column) whose export column is not among
        `columns` while the contract column is not there either: a misspelt or stale schema."""
        return {
            key: target
            for key, target in self.columns.items()
            if key not in columns and target not in columns
        }


@dataclass(frozen=True)
class Schema:
    tables: dict[str, TableMapping]
    source: str = "schema"

    def table(self, name: str) -> TableMapping:
        return self.tables.get(name, TableMapping())

    def stored(self) -> dict[str, dict[str, Any]]:
        """The sections as plain data, for a model's metadata (`CrmDetails.schema_tables`)."""
        return {name: asdict(mapping) for name, mapping in self.tables.items()}

    @classmethod
    def from_stored(cls, tables: dict[str, dict[str, Any]], source: str) -> Schema | None:
        """The schema a model stored with `stored`; None when it was trained without one."""
        if not tables:
            return None
        return cls({name: TableMapping(**mapping) for name, mapping in tables.items()}, source)

    def without_files(self) -> Schema:
        """The schema for tables saved under the contract's names (the workspace's uploads)."""
        return replace(
            self, tables={name: replace(m, file=None) for name, m in self.tables.items()}
        )

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ContractError(f"{path}: cannot be read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ContractError(f"{path}: not valid YAML ({exc})") from None
        return cls.parse(raw or {}, str(path))

    @classmethod
    def parse(cls, raw: Any, source: str = "schema") -> Schema:
        problems: list[str] = []
        if not isinstance(raw, dict):
            raise ContractError(f"{source}: expected a mapping with sections {', '.join(SECTIONS)}")
        tables = {}
        for name, section in raw.items():
            if name not in SECTIONS:
                problems.append(f"section '{name}': unknown; expected one of {', '.join(SECTIONS)}")
                continue
            tables[name] = _section(section or {}, f"{name}", problems)
        if problems:
            raise ContractError(
                f"{source} is not a valid schema:\n" + "\n".join(f"- {p}" for p in problems)
            )
        return cls(tables, source)


def _mapping(value: Any, where: str, problems: list[str], nested: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a mapping of names")
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if nested:
            out[str(key)] = {
                str(k): str(v) for k, v in _mapping(item, f"{where}.{key}", problems).items()
            }
        elif isinstance(item, dict | list) or item is None:
            problems.append(f"{where}.{key}: expected a single name or value")
        else:
            out[str(key)] = str(item)
    return out


def _names(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    """A list of column names (one name alone is a list of one)."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        problems.append(f"{where}: expected a list of column names")
        return ()
    return tuple(dict.fromkeys(str(v) for v in value))


def _section(section: Any, name: str, problems: list[str]) -> TableMapping:
    if not isinstance(section, dict):
        problems.append(f"{name}: expected a mapping with keys {', '.join(_KEYS)}")
        return TableMapping()
    for key in section:
        if key not in _KEYS:
            problems.append(f"{name}.{key}: unknown key; expected one of {', '.join(_KEYS)}")
    features = _mapping(section.get("features", {}), f"{name}.features", problems)
    for column, kind in features.items():
        allowed = FEATURE_KINDS if name == "table" else FEATURE_KINDS[:2]
        if kind not in allowed:
            problems.append(f"{name}.features.{column}: '{kind}'; expected {' | '.join(allowed)}")
    if features and name in ("activities", "touches"):
        problems.append(
            f"{name}.features: custom features are lead-level; declare them under leads"
        )
    if "display" in section and name not in _LEAD_LEVEL:
        problems.append(
            f"{name}.display: display columns are lead-level; declare them under leads (or "
            "table, in a flat table's schema)"
        )
    if "actionable" in section and name != "table":
        problems.append(f"{name}.actionable: only the flat mode's table section has actionable")
    display = _names(section.get("display", []), f"{name}.display", problems)
    actionable = _names(section.get("actionable", []), f"{name}.actionable", problems)
    for column in [c for c in display if c in actionable]:
        problems.append(
            f"{name}.display and {name}.actionable both name '{column}'; a display column "
            "is never a feature"
        )
    for column in display:
        if features.get(column, "ignore") != "ignore":
            problems.append(
                f"{name}.display names '{column}', which {name}.features makes a feature; a "
                "display column is never a feature"
            )
    file = section.get("file")
    if file is not None and not isinstance(file, str):
        problems.append(f"{name}.file: expected a file name")
    columns = _mapping(section.get("columns", {}), f"{name}.columns", problems)
    won_at, lost_after = _outcome_rules(section, name, columns, problems)
    return TableMapping(
        file=file,
        columns=columns,
        values=_mapping(section.get("values", {}), f"{name}.values", problems, nested=True),
        dates=_mapping(section.get("dates", {}), f"{name}.dates", problems),
        features=features,
        display=display,
        actionable=actionable,
        constant=_constants(section, name, problems),
        won_at=won_at,
        lost_after=lost_after,
    )


def _constants(section: dict[str, Any], name: str, problems: list[str]) -> dict[str, str]:
    """`constant`: contract column -> the value of every row (three-table sections only)."""
    if "constant" not in section:
        return {}
    if name not in _CONSTANT_COLUMNS:
        problems.append(f"{name}.constant: only the leads, activities and touches sections have it")
        return {}
    constant = _mapping(section["constant"], f"{name}.constant", problems)
    allowed = _CONSTANT_COLUMNS[name]
    for column in constant:
        if column not in allowed:
            problems.append(
                f"{name}.constant.{column}: not a column a constant can set; expected one of "
                + ", ".join(allowed)
            )
    return {c: v for c, v in constant.items() if c in allowed}


def _outcome_rules(
    section: dict[str, Any], name: str, columns: dict[str, str], problems: list[str]
) -> tuple[str | None, int | None]:
    """`won_at` (an export column) and `lost_after` (days), which only `leads` has."""
    for key in _LEADS_ONLY:
        if key in section and name != "leads":
            problems.append(f"{name}.{key}: only the leads section has {key}")
    if name != "leads":
        return None, None
    won_at = section.get("won_at")
    if won_at is not None and not isinstance(won_at, str | int):
        problems.append("leads.won_at: expected the name of the column holding won dates")
        won_at = None
    if won_at is not None:
        won_at = str(won_at)
        clashes = [
            f"{quoted(k)} to {v}"
            for k, v in columns.items()
            if k == won_at or v in ("outcome", "outcome_at")
        ]
        if clashes:
            problems.append(
                f"leads.won_at derives outcome and outcome_at from {quoted(won_at)}, but "
                f"leads.columns renames {', '.join(clashes)}; remove those renames"
            )
    lost_after = section.get("lost_after")
    if lost_after is not None and (
        isinstance(lost_after, bool) or not isinstance(lost_after, int) or lost_after < 1
    ):
        problems.append(
            f"leads.lost_after: {lost_after!r}; expected a whole number of days, 1 or more"
        )
        lost_after = None
    return won_at, lost_after
