"""The Lead page: a lead's readiness, potential, route and reason, its contributions, its
timeline, and a what-if panel with the three single changes that would raise readiness most, and
the readiness trend of a lead the live lead store follows (`queue.lead_trend`);
for a row of a flat table, its score, reasons and values, and a what-if over its inputs. The
lead, the user's change and every candidate change are scored in one model call, from arrays
built by `ui.whatif`; none of it is written to the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from leadready.features.contract import BANT_FIELDS
from leadready.features.table import MISSING_CATEGORY, flat_columns
from leadready.serving.explain import themed
from leadready.serving.flat import FlatModel, explain_rows
from leadready.serving.ui import whatif
from leadready.serving.ui.auth import SessionDep
from leadready.serving.ui.charts import (
    ACCENT,
    DOWN,
    INK,
    ROUTE_COLORS,
    UP,
    hbars,
    timeline_chart,
)
from leadready.serving.ui.exports import Export
from leadready.serving.ui.formatting import words
from leadready.serving.ui.pages.queue import lead_trend
from leadready.serving.ui.web import (
    PREFIX,
    ChampionsDep,
    Session,
    crm_model,
    flat_model,
    lead_url,
    render,
    workspace,
)

TIMELINE_ROWS = 100
HAND_RAISES = ("demo_request", "contact_request")

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _timeline(
    activities: pd.DataFrame, touches: pd.DataFrame, as_of: int
) -> tuple[list[dict[str, Any]], int]:
    """The lead's activities and touches, newest first, and how many came after `as_of`."""
    events = [
        {
            "at": at,
            "kind": "activity",
            "what": words(kind),
            "color": UP if kind in HAND_RAISES else ACCENT,
            "hand_raise": kind in HAND_RAISES,
        }
        for at, kind in zip(activities["occurred_at"], activities["type"], strict=True)
    ]
    for at, channel, team, responded in zip(
        touches["occurred_at"],
        touches["channel"],
        touches["team"],
        touches["responded"],
        strict=True,
    ):
        answered = "" if pd.isna(responded) else " (responded)" if responded else " (no response)"
        events.append(
            {
                "at": at,
                "kind": "touch",
                "what": f"{team} {words(channel)}{answered}",
                "color": ROUTE_COLORS["nurture"] if team == "marketing" else "#553c9a",
                "hand_raise": False,
            }
        )
    for e in events:
        e["t"] = _seconds(e["at"])
        e["later"] = e["t"] > as_of
    events.sort(key=lambda e: e["t"], reverse=True)
    return events, sum(1 for e in events if e["later"])


def _seconds(at: object) -> float:
    """Unix seconds of a time (naive times are UTC)."""
    stamp = pd.Timestamp(at)  # type: ignore[arg-type]
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).timestamp()


def _reason_rows(result: dict[str, Any]) -> list[tuple[str, float, str]]:
    """The reasons chart's bars: each group's total push, then (CRM themes, in dark bars) its
    strongest inputs, marked with a dot."""
    rows = []
    for group in result["themes"]:
        total = group["total"]
        rows.append((group["title"], total, INK if group["items"] else UP if total > 0 else DOWN))
        rows += [
            (f"· {label}", value, UP if value > 0 else DOWN) for label, value in group["items"]
        ]
    return rows


def _contributions(title: str, shown: dict[str, Any]) -> Any:
    return hbars(
        _reason_rows(shown),
        f"What pushes the readiness of {title} up or down",
        "push on readiness: right raises it, left lowers it",
    )


def _suggestions(
    lead_id: str,
    before: dict[str, Any],
    candidates: Sequence[whatif.Candidate],
    results: Sequence[dict[str, Any]],
    by: str,
) -> list[dict[str, Any]]:
    """The best single changes of one side (`whatif.SIDES`) as the page lists them, each with
    the link that applies it."""
    best = whatif.best_changes(
        before["readiness"], candidates, [r["readiness"] for r in results], by
    )
    return [
        {
            "text": candidate.text,
            "gain": gain,
            "after": results[i]["readiness"],
            "route": results[i]["route"],
            "url": lead_url(lead_id, **candidate.params),
        }
        for candidate, gain, i in best
    ]


def _identity(export: Export, frame: pd.DataFrame) -> tuple[str, dict[str, str]]:
    """A lead's name (its first display column; '' without one or when empty) and the values
    of its display columns, from its one-row frame."""
    display = {column: str(frame[column].iloc[0]) for column in export.display}
    return (display[export.display[0]] if export.display else ""), display


def _readiness_note(readiness: float, outcome: str) -> str:
    """What a readiness means, in one line: 'Of 100 leads scored like this, about 25 are won
    within 90 days.'"""
    n = round(readiness * 100)
    about = "fewer than 1" if n < 1 else "more than 99" if n > 99 else f"about {n}"
    return f"Of 100 leads scored like this, {about} {outcome}."


@router.get("/leads/{lead_id:path}", response_class=HTMLResponse)
def lead_page(
    request: Request, lead_id: str, session: SessionDep, champions: ChampionsDep
) -> Response:
    export = workspace(request).exports.session_export(session.sid, champions)
    if export is not None and export.crm is None and lead_id in export.positions:
        return _flat_lead_page(request, session, export, lead_id, flat_model(champions))
    rows = export.lead_rows(lead_id) if export is not None else None
    trend = lead_trend(request, lead_id)
    if rows is None or export is None:
        return render(
            request,
            "lead.html",
            {
                "page": "leads",
                "lead_id": lead_id,
                "missing": True,
                "export": export,
                "trend": trend,
            },
            session,
            status=404 if trend is None else 200,
        )
    engine = crm_model(champions)
    lead_row, activities, touches = rows
    horizon = engine.info.crm.horizon_days if engine.info.crm is not None else 0
    row = lead_row.iloc[0]
    lead_name, display = _identity(export, lead_row)
    current = {field: row[field] for field in BANT_FIELDS}
    change = whatif.parse_change(request.query_params, current)
    changed = bool(change.bant or change.added)
    candidates = whatif.crm_candidates(current)
    history = whatif.LeadHistory.from_frames(
        lead_row, activities, touches, engine.info.custom, export.as_of
    )
    changes = [whatif.Change(), change, *(c for _, c in candidates)]
    n = len(changes)
    prediction = engine.predict(
        *whatif.crm_variants(history, changes), np.arange(n), np.full(n, export.as_of)
    )
    results = engine.explain(prediction, percent=True)
    for i in (0, 1):  # the lead and the user's change: the two the chart can show
        results[i]["themes"] = themed(
            prediction.contributions[i],
            prediction.columns,
            i,
            engine.info.features,
            engine.labels,
            grouped=True,
        )
    before, after = results[0], results[1]
    shown = after if changed else before
    events, later = _timeline(activities, touches, export.as_of)
    visible = [e for e in events if not e["later"]]
    lead = {
        "lead_id": lead_id,
        "created_at": row["created_at"],
        "source": row["source"],
        "industry": row["industry"],
        "country": row.get("country") or None,
        "company_size": None if pd.isna(row["company_size"]) else float(row["company_size"]),
        **current,
    }
    return render(
        request,
        "lead.html",
        {
            "page": "leads",
            "lead_id": lead_id,
            "name": lead_name,
            "display": display,
            "missing": False,
            "export": export,
            "trend": trend,
            "lead": lead,
            "before": before,
            "after": after,
            "changed": changed,
            "shown": shown,
            "changes": whatif.change_words(change),
            "bant": change.bant,
            "added": change.added,
            "bant_fields": BANT_FIELDS,
            "sides": {
                side: {
                    "title": title,
                    "additions": {k: a for k, a in whatif.ADDITIONS.items() if a.by == side},
                    "suggestions": _suggestions(
                        lead_id, before, [c for c, _ in candidates], results[2:], side
                    ),
                }
                for side, title in whatif.SIDES.items()
            },
            "readiness_note": _readiness_note(
                before["readiness"], f"are won within {horizon} days"
            ),
            "potential_note": _readiness_note(before["potential"], "are won eventually"),
            "contributions": _contributions(lead_name or lead_id, shown),
            "timeline_chart": timeline_chart(
                visible,
                _seconds(row["created_at"]),
                float(export.as_of),
                f"Timeline of {lead_name or lead_id}",
            ),
            "events": events[:TIMELINE_ROWS],
            "events_total": len(events),
            "later": later,
            "as_of": datetime.fromtimestamp(export.as_of, UTC),
            "delta": after["readiness"] - before["readiness"],
        },
        session,
    )


def _flat_lead_page(
    request: Request, session: Session, export: Export, lead_id: str, model: FlatModel
) -> Response:
    """A flat table's row: its score and reasons, its values, and a what-if over its inputs."""
    info = model.info
    types = model.details.feature_types
    assert export.frame is not None
    frame = export.frame.iloc[[export.positions[lead_id]]]
    row = {name: str(frame[name].iloc[0]).strip() for name in types}
    columns = flat_columns(frame, types)
    label = model.details.label
    lead_name, display = _identity(export, frame)
    title = lead_name or lead_id
    vocabulary = model.scorer.encoder.vocabulary_
    choices = {
        name: sorted(vocabulary.get(name, {}), key=str.lower)
        for name in types
        if types[name] == "categorical"
    }
    drivers = info.drivers
    by_drive = sorted(types, key=lambda name: -drivers.get(name, 0.0))
    # Only columns the schema marks actionable are suggested: a flat table's columns may be
    # filled after the outcome (a "Lost to ..." tag), which no one can act on.
    actionable = [name for name in model.details.table_mapping.actionable if name in types]
    others = [name for name in by_drive if name not in actionable][: whatif.FLAT_EDITABLE]
    file_numbers = flat_columns(
        export.frame, {name: "numeric" for name in actionable if types[name] == "numeric"}
    )
    change = whatif.flat_changes(request.query_params, row, choices, types)
    candidates = whatif.flat_candidates(row, columns, file_numbers, actionable, choices, types)
    variants = whatif.flat_variants(columns, [{}, change, *(c for _, c in candidates)], types)
    results = explain_rows(variants, model.loaded)
    before, after = results[0], results[1]
    changed = bool(change)
    shown = after if changed else before
    return render(
        request,
        "flat_lead.html",
        {
            "page": "leads",
            "lead_id": lead_id,
            "name": lead_name,
            "title": title,
            "export": export,
            "info": info,
            "before": before,
            "after": after,
            "changed": changed,
            "shown": shown,
            "changes": [
                f"{name} {value}" if types[name] == "numeric" else f"{name}: {value}"
                for name, value in change.items()
            ],
            "editable": {
                group: [
                    {
                        "name": name,
                        "kind": types[name],
                        "now": row[name],
                        "value": change.get(name, row[name]),
                        "choices": choices.get(name, []),
                        "field": whatif.FLAT_PREFIX + name,
                    }
                    for name in names
                ]
                for group, names in (("actionable", actionable), ("others", others))
            },
            "display": display,
            "readiness_note": _readiness_note(
                before["readiness"], f"have {label.column} = {label.positive}"
            ),
            "sides": {
                "us": {
                    "title": "What you can change",
                    "suggestions": _suggestions(
                        lead_id, before, [c for c, _ in candidates], results[2:], "us"
                    ),
                }
            },
            "values": [
                {
                    "name": name,
                    "value": row[name] or MISSING_CATEGORY,
                    "kind": types[name],
                    "drive": drivers.get(name, 0.0),
                }
                for name in by_drive
            ],
            "delta": after["readiness"] - before["readiness"],
            "contributions": _contributions(title, shown),
        },
        session,
    )
