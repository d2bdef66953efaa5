"""A CRM's own field names and values in scoring requests, read with the champion's schema.

A champion trained with a schema (`leadready train --schema`) keeps it (`CrmDetails`), and the
API reads each request with it as `features.contract.load_crm` reads an export: renames, value
maps (`TableMapping.map_value`), date formats (`features.contract.parse_dates`) and constants,
in that order, for the lead (the `leads` section) and each activity and touch. Custom features
sent beside the lead's fields move into `lead.custom`; display columns are dropped (they are
never features). What was applied is said in the response (`schema_applied`); a vocabulary
value that is neither the contract's nor the schema's is a 422 listing both spellings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from leadready.features.contract import TABLES, VOCABULARIES, parse_dates, quoted, value_key
from leadready.features.schema import Schema, TableMapping

PARTS = {"leads": "lead", "activities": "activities", "touches": "touches"}
"""Where each table's records are in a request body."""


class MappingError(ValueError):
    """Fields the schema cannot read, as {field: the path as sent, message}."""

    def __init__(self, errors: list[dict[str, str]], body: Any) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors
        self.body = body


@dataclass(frozen=True)
class Mapped:
    body: Any
    """The request in the contract's names and values, for `ScoreRequest` to validate."""
    applied: dict[str, Any] | None
    """What the schema changed (`schemas.SchemaApplied`); None when nothing."""
    sent_as: dict[str, str]
    """Contract path -> the path as the client sent it, for the 422s of what is renamed."""


@dataclass
class _Changes:
    renamed: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    sent_as: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    pending_dates: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)
    """(table, column, record, path) of the dates to parse in the schema's format."""

    def summary(self) -> dict[str, Any] | None:
        shown = {
            "renamed": self.renamed,
            "values": self.values,
            "dates": self.dates,
            "constants": self.constants,
            "dropped": list(dict.fromkeys(self.dropped)),
        }
        return shown if any(shown.values()) else None

    def fail(self, path: str, message: str) -> None:
        self.errors.append({"field": self.sent_as.get(path, path), "message": message})


class RequestMapping:
    """The champion's schema as the API applies it; a no-op without one."""

    def __init__(self, schema: Schema | None, custom: Mapping[str, str]) -> None:
        self.tables: dict[str, TableMapping] = (
            {name: schema.table(name) for name in TABLES} if schema is not None else {}
        )
        self.custom = dict(custom)

    def apply(self, body: Any) -> Mapped:
        """`body` in the contract's names and values; MappingError listing every field the
        schema cannot read. Anything not shaped like a request is left for validation."""
        if not self.tables or not isinstance(body, dict):
            return Mapped(body, None, {})
        changes = _Changes()
        out = dict(body)
        for table, part in PARTS.items():
            value = body.get(part)
            if table == "leads" and isinstance(value, dict):
                out[part] = self._record(value, table, part, changes)
            elif table != "leads" and isinstance(value, list) and self.tables[table] != _NOTHING:
                out[part] = [
                    self._record(item, table, f"{part}.{i}", changes)
                    if isinstance(item, dict)
                    else item
                    for i, item in enumerate(value)
                ]
        self._parse_dates(changes)
        if changes.errors:
            raise MappingError(changes.errors, out)
        return Mapped(out, changes.summary(), changes.sent_as)

    def _record(
        self, record: dict[str, Any], table: str, where: str, changes: _Changes
    ) -> dict[str, Any]:
        mapping = self.tables[table]
        summary = PARTS[table]  # events are summed up per field, not per item
        out: dict[str, Any] = {}
        for key, value in record.items():
            if key in mapping.display:
                changes.dropped.append(f"{summary}.{key}")
                continue
            target = mapping.columns.get(key, key)
            if target in out or (target != key and target in record):
                sent = [k for k in record if mapping.columns.get(k, k) == target]
                changes.errors.append(
                    {
                        "field": f"{where}.{key}",
                        "message": f"sent twice, as {' and '.join(map(quoted, sent))}, which "
                        f"the schema reads as {target}; send one",
                    }
                )
                continue
            out[target] = value
            if target != key:
                changes.renamed[f"{summary}.{key}"] = f"{summary}.{target}"
                changes.sent_as[f"{where}.{target}"] = f"{where}.{key}"
        if table == "leads":
            self._move_custom(out, where, changes)
        custom = out.get("custom") if table == "leads" else None
        for column in mapping.values:
            holder, path = out, f"{where}.{column}"
            if column in self.custom and isinstance(custom, dict):
                holder, path = custom, f"{where}.custom.{column}"
            value = holder.get(column)
            if column not in holder or not _one_value(value):
                continue
            mapped = mapping.map_value(column, value)
            if mapped is not None:
                if mapped != value:  # the contract's value sent as it is changes nothing
                    holder[column] = mapped
                    shown = path.replace(where, summary, 1)
                    changes.values.setdefault(shown, {})[str(value)] = mapped
                continue
            allowed = VOCABULARIES[table].get(column)
            if allowed and value_key(str(value)) not in allowed:
                changes.fail(
                    path,
                    f"value not allowed; got {quoted(value)}; expected one of "
                    f"{', '.join(allowed)} or, as the schema spells them, "
                    + ", ".join(map(quoted, mapping.values[column])),
                )
        for column in mapping.dates:
            if isinstance(out.get(column), str) and out[column].strip():
                changes.pending_dates.append((table, column, out, f"{where}.{column}"))
        for column, value in mapping.constant.items():
            if column not in out:
                out[column] = value
                changes.constants[f"{summary}.{column}"] = value
        return out

    def _move_custom(self, lead: dict[str, Any], where: str, changes: _Changes) -> None:
        """Custom features sent beside the lead's fields, as an export has them, into
        `lead.custom`; a copy of it, so the request is left as it was."""
        custom = lead.get("custom", {})
        if not isinstance(custom, dict):
            return  # not a mapping: validation says so
        custom = dict(custom)
        for name in [n for n in self.custom if n in lead and n != "custom"]:
            sent = changes.sent_as.get(f"{where}.{name}", f"{where}.{name}")
            if name in custom:
                changes.errors.append(
                    {
                        "field": sent,
                        "message": f"sent twice, as {sent} and {where}.custom.{name}; send one",
                    }
                )
                continue
            custom[name] = lead.pop(name)
            changes.renamed[sent] = f"{where}.custom.{name}"
            changes.sent_as[f"{where}.custom.{name}"] = sent
        if custom or "custom" in lead:
            lead["custom"] = custom

    def _parse_dates(self, changes: _Changes) -> None:
        """The dates in the schema's formats, parsed together per column (one call per column,
        however many activities); a date in neither that format nor ISO 8601 is a 422."""
        groups: dict[tuple[str, str], list[tuple[dict[str, Any], str]]] = {}
        for table, column, record, path in changes.pending_dates:
            groups.setdefault((table, column), []).append((record, path))
        for (table, column), cells in groups.items():
            fmt = self.tables[table].dates[column]
            text = pd.Series([record[column].strip() for record, _ in cells], dtype=object)
            parsed = parse_dates(text, fmt)
            unread = parsed.isna()
            neither = parse_dates(text[unread], None).isna().reindex(text.index, fill_value=False)
            rows = zip(cells, parsed.tolist(), neither.tolist(), text.tolist(), strict=True)
            for (record, path), stamp, wrong, sent in rows:
                if wrong:
                    changes.fail(
                        path,
                        f"not a date in the schema's format '{fmt}', nor an ISO 8601 time; "
                        f"got {quoted(sent)}",
                    )
                elif not pd.isna(stamp):
                    record[column] = stamp.isoformat()
                    changes.dates[f"{PARTS[table]}.{column}"] = fmt


_NOTHING = TableMapping()
"""A section the schema does not have (or leaves empty): its records are left as sent."""


def _one_value(value: object) -> bool:
    """A value a schema's value map can match: text that is not empty, or a number."""
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float) and not isinstance(value, bool)
