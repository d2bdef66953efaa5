"""What if one thing about a lead were different: the changes a lead page offers, read from its
query, and the changed leads built straight as model inputs (the arrays `build_features` takes
for a CRM lead, the feature columns for a flat row), so a page scores the lead, the user's
change and every single-change suggestion in one model call. Pure functions: no request, no
model, no clock. What-if scores are hypothetical and never written to the audit log."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import numpy as np
import pandas as pd

from leadready.features.build import Events, Leads, to_seconds
from leadready.features.contract import ACTIVITY_TYPES, BANT_FIELDS, CHANNELS, TEAMS, encode
from leadready.serving.engine import ACTIVITY_CODES, CHANNEL_CODES, TEAM_CODES, event_arrays
from leadready.serving.ui.formatting import words


class Addition(NamedTuple):
    """An event a what-if can add at the scoring time: its words for one and for several, an
    activity of `what` type or a touch on the `what` channel by `team` (`responded` 1, 0 or
    NaN), and `by` whom: "us" (sales and marketing: touches, content and events offered) or
    "lead" (what only the lead does: hand-raises, pricing-page views, clicks)."""

    one: str
    many: str
    kind: str
    what: str
    by: str
    team: str = "sales"
    responded: float = 1.0


ADDITIONS = {
    # form field: what it adds
    "sales_calls": Addition("answered sales call", "answered sales calls", "touch", "call", "us"),
    "meetings": Addition("sales meeting", "sales meetings", "touch", "meeting", "us"),
    "marketing_emails": Addition(
        "marketing email", "marketing emails", "touch", "email", "us", "marketing", math.nan
    ),
    "event_invites": Addition(
        "event invitation", "event invitations", "touch", "event", "us", "marketing", math.nan
    ),
    "webinars": Addition(
        "webinar attended", "webinars attended", "activity", "webinar_attended", "us"
    ),
    "downloads": Addition(
        "content download", "content downloads", "activity", "content_download", "us"
    ),
    "demo_requests": Addition("demo request", "demo requests", "activity", "demo_request", "lead"),
    "contact_requests": Addition(
        "contact request", "contact requests", "activity", "contact_request", "lead"
    ),
    "pricing_views": Addition(
        "pricing-page view", "pricing-page views", "activity", "pricing_page_view", "lead"
    ),
    "email_clicks": Addition("email click", "email clicks", "activity", "email_click", "lead"),
}
SIDES = {
    "us": "What sales and marketing can do",
    "lead": "What the lead would do or tell you",
}
"""The what-if's two sides, kept apart in its form and its suggestions: touches, content and
events offered; and hand-raises, clicks and BANT answers, which only the lead gives."""
MAX_ADDED = 20
"""Most events of one kind a what-if adds (more in the query count as this many)."""
BANT_ACTIONS = {
    ("budget", "confirmed"): "confirm budget",
    ("budget", "indicated"): "get a budget indication",
    ("budget", "none"): "learn there is no budget",
    ("budget", "unknown"): "forget the budget",
    ("authority", "decision_maker"): "reach the decision maker",
    ("authority", "influencer"): "reach an influencer",
    ("authority", "user"): "reach a user",
    ("authority", "unknown"): "forget the contact's role",
    ("need", "confirmed"): "confirm the need",
    ("need", "indicated"): "get the need indicated",
    ("need", "none"): "learn there is no need",
    ("need", "unknown"): "forget the need",
    ("timeframe", "unknown"): "forget the timeframe",
}
MIN_GAIN = 0.0005
"""Readiness gain below which a single change is not suggested."""
SUGGESTIONS = 3
FLAT_EDITABLE = 12
"""Inputs of a flat row the what-if panel offers, the strongest global drivers first."""
FLAT_PREFIX = "x."
"""What-if values of a flat row travel in the query as `x.<column>=<value>`."""
FLAT_QUANTILES = (0.5, 0.75, 0.9)
"""Numeric what-ifs suggested: the column's median, upper quartile and 90th percentile in the
uploaded table (only those above the row's own value)."""


@dataclass(frozen=True)
class Change:
    """BANT values replaced, and events added at the scoring time (counts by ADDITIONS name)."""

    bant: Mapping[str, str] = field(default_factory=dict)
    added: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """A single change a page tries as a suggestion: the best gain of each `group` (a BANT
    field, an event kind, a column) is kept; `params` is the query that applies it; `by` is
    the SIDES key of who makes it happen."""

    group: str
    text: str
    params: dict[str, str]
    by: str = "us"


def bant_action(name: str, value: str) -> str:
    """A BANT change as something a rep does: ('budget', 'confirmed') -> 'confirm budget'."""
    if (name, value) in BANT_ACTIONS:
        return BANT_ACTIONS[(name, value)]
    return f"set timeframe to {words(value)}"


def parse_change(query: Mapping[str, str], current: Mapping[str, str]) -> Change:
    """The what-if in a lead page's query: BANT values that are allowed and differ from the
    lead's `current` ones, and positive counts of ADDITIONS (capped at MAX_ADDED); anything
    else is ignored."""
    bant = {
        name: query[name]
        for name, allowed in BANT_FIELDS.items()
        if query.get(name) in allowed and query[name] != current[name]
    }
    added: dict[str, int] = {}
    for name in ADDITIONS:
        try:
            n = int(query.get(name, "0") or 0)
        except ValueError:
            n = 0
        if n > 0:
            added[name] = min(n, MAX_ADDED)
    return Change(bant, added)


def change_words(change: Change) -> list[str]:
    out = [bant_action(name, value) for name, value in change.bant.items()]
    for name, n in change.added.items():
        addition = ADDITIONS[name]
        out.append(f"+{n} {addition.one if n == 1 else addition.many}")
    return out


def crm_candidates(current: Mapping[str, str]) -> list[tuple[Candidate, Change]]:
    """Every single change the suggestions try: each other known value of each BANT field,
    and one more event of each ADDITIONS kind."""
    out = [
        (
            Candidate(name, bant_action(name, value), {name: value}, "lead"),
            Change(bant={name: value}),
        )
        for name, allowed in BANT_FIELDS.items()
        for value in allowed
        if value != current[name] and value != "unknown"
    ]
    out += [
        (Candidate(name, f"+1 {a.one}", {name: "1"}, a.by), Change(added={name: 1}))
        for name, a in ADDITIONS.items()
    ]
    return out


def best_changes(
    before: float,
    candidates: Sequence[Candidate],
    readiness: Sequence[float],
    by: str | None = None,
) -> list[tuple[Candidate, float, int]]:
    """The SUGGESTIONS single changes that raise readiness most, one per group, as
    (candidate, gain, its position in `candidates`); `readiness` is each candidate's score.
    With `by`, only the candidates of that side."""
    best: dict[str, tuple[Candidate, float, int]] = {}
    for i, (candidate, score) in enumerate(zip(candidates, readiness, strict=True)):
        if by is not None and candidate.by != by:
            continue
        gain = score - before
        if gain > MIN_GAIN and (candidate.group not in best or gain > best[candidate.group][1]):
            best[candidate.group] = (candidate, gain, i)
    return sorted(best.values(), key=lambda b: -b[1])[:SUGGESTIONS]


@dataclass(frozen=True)
class LeadHistory:
    """One lead as model inputs: its attributes (a one-row `Leads`), its activities as rows of
    (Unix seconds, ACTIVITY_CODES code), its touches as rows of (Unix seconds, CHANNEL_CODES
    code, TEAM_CODES code, responded 1/0/NaN), and the time it is scored at (Unix seconds)."""

    lead: Leads
    activities: np.ndarray
    touches: np.ndarray
    as_of: int

    @classmethod
    def from_frames(
        cls,
        lead: pd.DataFrame,
        activities: pd.DataFrame,
        touches: pd.DataFrame,
        custom: Mapping[str, str],
        as_of: int,
    ) -> LeadHistory:
        """From a loaded export's rows of one lead (`Crm` tables); `custom` as in the model."""
        return cls(
            Leads.from_frame(lead, custom),
            np.column_stack(
                [
                    to_seconds(activities["occurred_at"]),
                    encode(activities["type"].to_numpy(), ACTIVITY_TYPES),
                ]
            ),
            np.column_stack(
                [
                    to_seconds(touches["occurred_at"]),
                    encode(touches["channel"].to_numpy(), CHANNELS),
                    encode(touches["team"].to_numpy(), TEAMS),
                    touches["responded"].to_numpy(dtype=np.float64),
                ]
            ),
            as_of,
        )


def crm_variants(history: LeadHistory, changes: Sequence[Change]) -> tuple[Leads, Events, Events]:
    """The lead once per change, as `build_features` inputs: lead position i is the lead with
    `changes[i]` applied (score them at `history.as_of`)."""
    n = len(changes)
    first = np.zeros(n, dtype=np.int64)
    base = history.lead
    bant = {
        name: np.array(
            [change.bant.get(name, getattr(base, name)[0]) for change in changes], dtype=object
        )
        for name in BANT_FIELDS
    }
    leads = Leads(
        **{
            f.name: getattr(base, f.name)[first]
            for f in fields(Leads)
            if f.name != "extra" and f.name not in bant
        },
        **bant,
        extra={name: values[first] for name, values in base.extra.items()},
    )
    positions = np.arange(n)
    activities = [_per_variant(history.activities, positions)]
    touches = [_per_variant(history.touches, positions)]
    for i, change in enumerate(changes):
        for name, count in change.added.items():
            a = ADDITIONS[name]
            if a.kind == "activity":
                activity = [i, history.as_of, ACTIVITY_CODES[a.what]]
                activities.append(np.tile(activity, (count, 1)))
            else:
                touch = [i, history.as_of, CHANNEL_CODES[a.what], TEAM_CODES[a.team], a.responded]
                touches.append(np.tile(touch, (count, 1)))
    return (leads, *event_arrays(np.concatenate(activities), np.concatenate(touches)))


def _per_variant(events: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Every event once per lead position, the position as the first column."""
    return np.column_stack(
        [np.repeat(positions, len(events)), np.tile(events, (len(positions), 1))]
    )


def flat_changes(
    query: Mapping[str, str],
    row: Mapping[str, str],
    choices: Mapping[str, Sequence[str]],
    types: Mapping[str, str],
) -> dict[str, str]:
    """The what-if values in a flat row page's query (`x.<column>`) that differ from the row's
    text and that the model can take: finite numbers for numeric columns, values it knows for
    categorical ones."""
    changes = {}
    for name, kind in types.items():
        value = query.get(FLAT_PREFIX + name)
        if value is None or value.strip() == row[name]:
            continue
        value = value.strip()
        if kind == "numeric":
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                changes[name] = f"{number:g}"
        elif value in choices.get(name, []):
            changes[name] = value
    return changes


def flat_candidates(
    row: Mapping[str, str],
    columns: Mapping[str, np.ndarray],
    file_numbers: Mapping[str, np.ndarray],
    features: Sequence[str],
    choices: Mapping[str, Sequence[str]],
    types: Mapping[str, str],
) -> list[tuple[Candidate, dict[str, str]]]:
    """Every single change of a flat row the suggestions try, with the values it sets: each
    other known value of a categorical input; for a numeric one, its FLAT_QUANTILES in the
    uploaded file (`file_numbers`, NaN where empty) above the row's own value (`columns`, the
    row's feature columns)."""
    out = []
    for name in features:
        if types[name] == "numeric":
            known = file_numbers[name][~np.isnan(file_numbers[name])]
            mine = columns[name][0]
            for q in FLAT_QUANTILES if len(known) else ():
                value = float(np.quantile(known, q))
                if math.isnan(mine) or value > mine:
                    shown = f"{value:g}"
                    text = f"{name} {shown} (the file's {round(q * 100)}th percentile)"
                    out.append((Candidate(name, text, {FLAT_PREFIX + name: shown}), {name: shown}))
        else:
            out.extend(
                (Candidate(name, f"{name}: {value}", {FLAT_PREFIX + name: value}), {name: value})
                for value in choices.get(name, [])
                if value != row[name]
            )
    return out


def flat_variants(
    columns: Mapping[str, np.ndarray],
    changes: Sequence[Mapping[str, str]],
    types: Mapping[str, str],
) -> dict[str, np.ndarray]:
    """A flat row's feature columns (one row) once per change, row i with `changes[i]`
    applied: numbers as float, categories as text, as `serving.flat.flat_columns` reads them."""
    out = {name: np.repeat(values, len(changes)) for name, values in columns.items()}
    for i, change in enumerate(changes):
        for name, value in change.items():
            out[name][i] = float(value) if types[name] == "numeric" else value
    return out
