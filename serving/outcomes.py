"""Outcomes of scored leads: which were won or lost, stored beside the audit log, and how the
scores the API gave compare with them.

An outcome is `(lead_id, outcome won|lost, outcome_at)`. They come from a CSV or parquet file
(`leadready outcomes import FILE`) or from `POST /v1/outcomes`; a lead has one outcome, so
importing a lead again replaces its outcome. Both paths validate every row first and store
nothing when one is wrong.

The analysis joins each lead with an outcome to the **last score the API gave it at or before
the outcome** (the decision in force when the lead was won or lost), so a lead scored many
times counts once, and a score given after the outcome never counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, get_args

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from leadready.features.auditdb import engine_for, last_scores_before_outcomes, outcomes, scores
from leadready.features.contract import (
    DATE_RANGE,
    EARLIEST,
    LATEST,
    CheckedTable,
    ContractError,
    cell_text,
    quoted,
    read_table,
    value_keys,
)
from leadready.features.routing import ROUTES
from leadready.serving.schemas import IdText, LeadId, Moment, Vocabulary, unix_seconds

Outcome = Literal["won", "lost"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
COLUMNS = ("lead_id", "outcome", "outcome_at")
MAX_OUTCOMES = 10_000
"""Most outcomes accepted in one `POST /v1/outcomes` request."""
MISSED_LISTED = 200


class OutcomeError(ValueError):
    """Outcome rows that cannot be stored; the message names the rows and what was expected."""


def _lead_id(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("expected text without lone surrogate characters") from None
    if "\x00" in value:
        raise ValueError("expected text without NUL characters")
    return value


class OutcomeIn(BaseModel):
    """One lead's outcome. Times without an offset are taken as UTC."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"lead_id": "L-10442", "outcome": "won", "outcome_at": "2026-07-01T12:00:00Z"}
            ]
        },
    )
    lead_id: Annotated[LeadId, IdText, AfterValidator(_lead_id)]
    outcome: Annotated[Outcome, Vocabulary]
    outcome_at: Moment


class OutcomesImported(BaseModel):
    imported: int = Field(description="Outcomes stored by this request.")
    replaced: int = Field(description="Of those, leads that already had an outcome.")


def _iso(moment: datetime) -> str:
    """UTC ISO 8601 with an explicit offset, like the audit log's `scored_at`."""
    return datetime.fromtimestamp(unix_seconds(moment), UTC).isoformat()


def store(engine: sa.Engine, rows: list[OutcomeIn]) -> OutcomesImported:
    """Insert or replace the outcomes of these leads, in one transaction."""
    by_lead = {row.lead_id: row for row in rows}
    if len(by_lead) < len(rows):
        seen: set[str] = set()
        twice = []
        for row in rows:
            if row.lead_id in seen:
                twice.append(row.lead_id)
            seen.add(row.lead_id)
        raise OutcomeError(
            f"lead_id {', '.join(map(repr, dict.fromkeys(twice)))} appears more "
            "than once; expected one outcome per lead"
        )
    now = datetime.now(UTC).isoformat(timespec="seconds")
    records = [
        {
            "lead_id": r.lead_id,
            "outcome": r.outcome,
            "outcome_at": _iso(r.outcome_at),
            "imported_at": now,
        }
        for r in by_lead.values()
    ]
    ids = list(by_lead)
    replaced = 0
    with engine.begin() as connection:
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            replaced += (
                connection.execute(outcomes.delete().where(outcomes.c.lead_id.in_(chunk))).rowcount
                or 0
            )
        if records:
            connection.execute(outcomes.insert(), records)
    return OutcomesImported(imported=len(records), replaced=replaced)


def read_file(path: Path) -> list[OutcomeIn]:
    """Validate an outcomes file (columns lead_id, outcome, outcome_at; CSV or parquet).

    Every problem is collected, then raised at once as an OutcomeError naming the file, the
    lines (header = line 1), the column, the bad values and what was expected."""
    if not path.is_file():
        raise OutcomeError(
            f"{path}: no such file; expected a .csv or .parquet file with columns "
            f"{', '.join(COLUMNS)}"
        )
    try:
        frame = read_table(path)
    except ContractError as exc:
        raise OutcomeError(str(exc)) from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise OutcomeError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{c}'" for c in missing)
            + f"; expected columns {', '.join(COLUMNS)} "
            f"(found {', '.join(map(quoted, frame.columns)) or 'none'})"
        )
    table = CheckedTable.of(str(path), frame)
    report = table.report

    def text(column: str) -> pd.Series:
        return cell_text(frame[column])

    lead_id, outcome, outcome_at = text("lead_id"), value_keys(text("outcome")), text("outcome_at")
    empty = (lead_id == "").to_numpy()
    if empty.any():
        report(empty, "lead_id", "empty id", "the lead_id the lead was scored with")
    long = (lead_id.str.len() > 200).to_numpy()
    if long.any():
        report(long, "lead_id", "id longer than 200 characters", "at most 200")
    twice = lead_id.duplicated(keep=False).to_numpy() & ~empty
    if twice.any():
        report(twice, "lead_id", "lead listed more than once", "one outcome per lead")
    bad = ~outcome.isin(OUTCOMES).to_numpy()
    if bad.any():
        report(bad, "outcome", "value not allowed", "won | lost")
    parsed = pd.to_datetime(outcome_at, format="ISO8601", utc=True, errors="coerce")
    undated = parsed.isna().to_numpy()
    if undated.any():
        report(
            undated,
            "outcome_at",
            "date that does not parse or is empty",
            "an ISO 8601 date or time, the day the lead was won or lost",
        )
    stamps = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[s]").astype(np.int64)
    out_of_range = ~undated & ((stamps < EARLIEST) | (stamps >= LATEST))
    if out_of_range.any():
        report(
            out_of_range,
            "outcome_at",
            "date out of range",
            DATE_RANGE,
        )
    if problems := table.problems:
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        raise OutcomeError(
            f"The outcomes in {path} cannot be imported ({count}):\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    return [
        OutcomeIn.model_construct(lead_id=i, outcome=o, outcome_at=t.to_pydatetime())
        for i, o, t in zip(lead_id, outcome, parsed, strict=True)
    ]


def import_file(path: Path, url: str) -> OutcomesImported:
    """`leadready outcomes import FILE`: validate the whole file, then store it."""
    rows = read_file(path)
    engine = engine_for(url)
    try:
        return store(engine, rows)
    finally:
        engine.dispose()


@dataclass
class Analysis:
    """The outcomes page: the last score before each outcome, against the outcome."""

    leads: pd.DataFrame
    """One row per lead with an outcome and a score before it: lead_id, readiness, potential,
    route, model_version, scored_at, outcome_at, won (bool)."""
    outcomes_total: int = 0
    unscored: int = 0
    """Outcomes of leads the API never scored before the outcome."""
    open_scored: int = 0
    """Leads the API scored that have no outcome yet."""
    by_route: list[dict[str, object]] = field(default_factory=list)
    by_decile: list[dict[str, object]] = field(default_factory=list)
    by_month: list[dict[str, object]] = field(default_factory=list)
    """Per month scored: conversion overall and by route, and `deciles` (rate and leads per
    readiness decile, the deciles of by_decile)."""
    missed: pd.DataFrame = field(default_factory=pd.DataFrame)
    missed_total: int = 0

    @property
    def matched(self) -> int:
        return len(self.leads)

    @property
    def won(self) -> int:
        return int(self.leads["won"].sum()) if len(self.leads) else 0

    @property
    def rate(self) -> float | None:
        return self.won / len(self.leads) if len(self.leads) else None

    def route(self, name: str) -> dict[str, object]:
        return next(r for r in self.by_route if r["route"] == name)


def _rate(won: pd.Series) -> float | None:
    return float(won.mean()) if len(won) else None


def analyse(engine: sa.Engine) -> Analysis:
    """Join audit scores with outcomes: conversion by route, by readiness decile and by month
    of the score, and the won leads that had been routed to disqualify (missed sales)."""
    with engine.connect() as connection:
        last = last_scores_before_outcomes(connection)
        total = connection.execute(sa.select(sa.func.count()).select_from(outcomes)).scalar()
        scored_leads = connection.execute(
            sa.select(sa.func.count(sa.distinct(scores.c.lead_id)))
        ).scalar()
        with_outcome = connection.execute(
            sa.select(sa.func.count(sa.distinct(scores.c.lead_id))).where(
                scores.c.lead_id.in_(sa.select(outcomes.c.lead_id))
            )
        ).scalar()
    last["won"] = last["outcome"] == "won"
    analysis = Analysis(
        leads=last,
        outcomes_total=int(total or 0),
        unscored=int(total or 0) - len(last),
        open_scored=int(scored_leads or 0) - int(with_outcome or 0),
    )
    for route in ROUTES:
        part = last[last["route"] == route.value]
        analysis.by_route.append(
            {
                "route": route.value,
                "leads": len(part),
                "won": int(part["won"].sum()),
                "rate": _rate(part["won"]),
                "mean_readiness": float(part["readiness"].mean()) if len(part) else None,
            }
        )
    if len(last):
        bins = min(10, len(last))
        ranks = last["readiness"].rank(method="first")
        decile = pd.qcut(ranks, bins, labels=False)
        for k in range(bins):
            part = last[decile == k]
            analysis.by_decile.append(
                {
                    "decile": k + 1,
                    "bins": bins,
                    "leads": len(part),
                    "won": int(part["won"].sum()),
                    "rate": _rate(part["won"]),
                    "low": float(part["readiness"].min()),
                    "high": float(part["readiness"].max()),
                    "mean_readiness": float(part["readiness"].mean()),
                }
            )
        month = last["scored_at"].dt.strftime("%Y-%m")
        for name in sorted(month.unique()):
            part = last[month == name]
            row: dict[str, object] = {"month": name, "leads": len(part), "rate": _rate(part["won"])}
            for route in ROUTES:
                in_route = part[part["route"] == route.value]["won"]
                row[route.value] = _rate(in_route)
                row[f"{route.value}_leads"] = len(in_route)
            in_month = decile[month == name]
            row["deciles"] = [
                {"rate": _rate(part["won"][in_month == k]), "leads": int((in_month == k).sum())}
                for k in range(bins)
            ]
            analysis.by_month.append(row)
    missed = last[(last["route"] == "disqualify") & last["won"]]
    analysis.missed_total = len(missed)
    analysis.missed = missed.sort_values("outcome_at", ascending=False).head(MISSED_LISTED)
    return analysis
