"""Point-in-time features: the one function that turns leads and their events into model inputs.

Training (millions of snapshots) and serving (one lead per request) both call `build_features`.
It works on plain numpy arrays, so a single lead costs a few dozen microseconds and a million
snapshots a few seconds; nothing here builds a DataFrame, reads a clock or does I/O.

Point in time: a feature for `(lead, as_of)` only sees events with `occurred_at <= as_of`.
Windows are half-open on the left: "last 7 days" means `as_of - 7 days < occurred_at <= as_of`.
Times are whole seconds since the Unix epoch (UTC), as int64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadready.features.contract import (
    ACTIVITY_TYPES,
    BANT_FIELDS,
    CHANNELS,
    TEAMS,
    encode,
    positions,
)

DAY = 86_400
ACTIVITY_WINDOWS = (7, 30, 90)
TOUCH_WINDOW = 30
SIGNAL_WINDOW = 14
HAND_RAISE_WINDOW = 7
BUYING_SIGNALS = ("demo_request", "contact_request")
SIZE_BANDS = (
    (10, "1-10"),
    (50, "11-50"),
    (200, "51-200"),
    (1000, "201-1000"),
    (5000, "1001-5000"),
    (np.inf, "5000+"),
)

# Composite sort keys pack (lead, kind, time) into one int64: time is offset so that any date
# from 1900 to 2170 fits in 33 bits.
_TIME_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
_SPAN = np.int64(1 << 33)

CATEGORICAL = ("source", "industry", "company_size_band", *BANT_FIELDS)
NUMERIC = (
    "lead_age_days",
    *(f"activity_{kind}_{w}d" for kind in ACTIVITY_TYPES for w in ACTIVITY_WINDOWS),
    "activities_30d",
    "days_since_last_activity",
    "touches_total",
    f"touches_{TOUCH_WINDOW}d",
    *(f"touches_{team}_{span}" for team in TEAMS for span in ("total", f"{TOUCH_WINDOW}d")),
    *(f"touches_{ch}_{span}" for ch in CHANNELS for span in ("total", f"{TOUCH_WINDOW}d")),
    "touches_responded_share",
    "days_since_last_touch",
    f"buying_signal_{SIGNAL_WINDOW}d",
    f"hand_raise_{HAND_RAISE_WINDOW}d",
    "days_since_hand_raise",
)
FEATURES = CATEGORICAL + NUMERIC
SORTED_QUERIES = 10_000
"""From this many (lead, as_of) queries on, `build_features` answers them in lead order."""


def to_seconds(values: object) -> np.ndarray:
    """Timestamps (datetime64 arrays, pandas Series, datetimes) as int64 Unix seconds."""
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind != "M":
        array = np.asarray(pd.to_datetime(array).values)
    return array.astype("datetime64[s]").astype(np.int64)


@dataclass(frozen=True)
class Leads:
    """Lead attributes, one array entry per lead; enum fields hold contract values.

    `extra` holds custom features declared in a schema (float arrays for numeric ones, object
    arrays of strings for categorical ones); they pass through to the features unchanged."""

    created_at: np.ndarray  # int64 seconds
    source: np.ndarray
    industry: np.ndarray
    company_size: np.ndarray  # float64 employees, NaN when unknown
    budget: np.ndarray
    authority: np.ndarray
    need: np.ndarray
    timeframe: np.ndarray
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, custom: Mapping[str, str] | None = None) -> Leads:
        """From a loaded leads table; `custom` maps custom feature columns to their kind."""
        return cls(
            created_at=to_seconds(frame["created_at"]),
            company_size=frame["company_size"].to_numpy(dtype=np.float64),
            **{c: frame[c].to_numpy(dtype=object) for c in ("source", "industry", *BANT_FIELDS)},
            extra={
                name: frame[name].to_numpy(dtype=np.float64 if kind == "numeric" else object)
                for name, kind in (custom or {}).items()
            },
        )


@dataclass(frozen=True)
class Events:
    """Events of one kind family (activities by type, or touches by channel and team).

    `lead` is the position of the event's lead in `Leads`; `kind` the code of its type or
    channel; `team` the team code for touches (zeros for activities); `responded` 1/0/NaN.
    Arrays are sorted by (lead, time); `by_time` and `by_kind` are the sort keys searched.
    """

    lead: np.ndarray
    time: np.ndarray
    kind: np.ndarray
    team: np.ndarray
    responded: np.ndarray
    n_kinds: int
    by_time: np.ndarray
    by_kind: np.ndarray
    by_team: np.ndarray
    known_cum: np.ndarray
    responded_cum: np.ndarray

    @classmethod
    def build(
        cls,
        lead: np.ndarray,
        time: np.ndarray,
        kind: np.ndarray,
        n_kinds: int,
        team: np.ndarray | None = None,
        responded: np.ndarray | None = None,
    ) -> Events:
        """Index events given as int arrays (lead position, Unix seconds, kind code)."""
        lead = np.asarray(lead, dtype=np.int64)
        time = np.asarray(time, dtype=np.int64) + _TIME_OFFSET
        kind = np.asarray(kind, dtype=np.int64)
        team = np.zeros_like(kind) if team is None else np.asarray(team, dtype=np.int64)
        responded = (
            np.full(len(kind), np.nan)
            if responded is None
            else np.asarray(responded, dtype=np.float64)
        )
        by_time = lead * _SPAN + time
        # Not stable (twice as fast): events of one lead at the same second may come in any
        # order, which no feature depends on (each counts or sums whole runs of equal keys).
        if len(by_time) and not (by_time[1:] >= by_time[:-1]).all():  # a loaded export is sorted
            order = np.argsort(by_time)
            lead, time, kind, team, responded, by_time = (
                a[order] for a in (lead, time, kind, team, responded, by_time)
            )
        known = ~np.isnan(responded)
        return cls(
            lead=lead,
            time=time,
            kind=kind,
            team=team,
            responded=responded,
            n_kinds=n_kinds,
            by_time=by_time,
            by_kind=np.sort((lead * n_kinds + kind) * _SPAN + time),
            by_team=np.sort((lead * len(TEAMS) + team) * _SPAN + time),
            known_cum=np.concatenate(([0], np.cumsum(known))),
            responded_cum=np.concatenate(([0], np.cumsum(np.where(known, responded, 0.0)))),
        )

    @classmethod
    def activities_from_frame(cls, frame: pd.DataFrame, lead_ids: pd.Index) -> Events:
        return cls.build(
            positions(frame["lead_id"], lead_ids),
            to_seconds(frame["occurred_at"]),
            encode(frame["type"], ACTIVITY_TYPES),
            len(ACTIVITY_TYPES),
        )

    @classmethod
    def touches_from_frame(cls, frame: pd.DataFrame, lead_ids: pd.Index) -> Events:
        return cls.build(
            positions(frame["lead_id"], lead_ids),
            to_seconds(frame["occurred_at"]),
            encode(frame["channel"], CHANNELS),
            len(CHANNELS),
            team=encode(frame["team"], TEAMS),
            responded=frame["responded"].to_numpy(dtype=np.float64),
        )

    def window_counts(
        self,
        keys: np.ndarray,
        n_kinds: int,
        lead: np.ndarray,
        as_of: np.ndarray,
        windows_days: Sequence[int | None],
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Per window, an (n_queries, n_kinds) array of event counts (None = all time); and
        the days since the last event of each kind (NaN when none)."""
        base = (lead[:, None] * n_kinds + np.arange(n_kinds)[None, :]) * _SPAN
        upper = np.searchsorted(keys, base + as_of[:, None], side="right")
        counts = []
        for days in windows_days:
            start = base if days is None else base + as_of[:, None] - days * DAY
            counts.append(
                upper - np.searchsorted(keys, start, side="left" if days is None else "right")
            )
        last = keys[np.maximum(upper - 1, 0)] - base if len(keys) else np.zeros_like(base)
        seen = (last >= 0) & (last < _SPAN) & (upper > 0)
        since = np.where(seen, (as_of[:, None] - last) / DAY, np.nan)
        return counts, since

    def last_and_range(self, lead: np.ndarray, as_of: np.ndarray) -> tuple[np.ndarray, ...]:
        """(days since the last event or NaN, first index, end index) per query."""
        first = np.searchsorted(self.by_time, lead * _SPAN, side="left")
        end = np.searchsorted(self.by_time, lead * _SPAN + as_of, side="right")
        has = end > first
        last_time = self.time[np.maximum(end - 1, 0)] if len(self.time) else np.zeros(len(end))
        days = np.where(has, (as_of - last_time) / DAY, np.nan)
        return days, first, end


def size_band(company_size: np.ndarray) -> np.ndarray:
    """Employee counts as readable bands; NaN becomes 'unknown'."""
    bands = np.full(len(company_size), "unknown", dtype=object)
    lower = -np.inf
    for upper, label in SIZE_BANDS:
        bands[(company_size > lower) & (company_size <= upper)] = label
        lower = upper
    return bands


def build_features(
    leads: Leads, activities: Events, touches: Events, lead: np.ndarray, as_of: np.ndarray
) -> dict[str, np.ndarray]:
    """Features of each `(leads[lead[i]], as_of[i])`, as named columns: `FEATURES`, then the
    custom features of `leads.extra`.

    `lead` holds positions into `leads`, `as_of` Unix seconds. Categorical columns are object
    arrays of contract values, the others float64 (NaN where undefined, such as days since the
    last touch of a lead never touched).
    """
    lead = np.asarray(lead, dtype=np.int64)
    as_of_raw = np.asarray(as_of, dtype=np.int64)
    if len(lead) >= SORTED_QUERIES and (np.diff(lead) < 0).any():
        # Searched in lead order, the events' sorted keys are read in order, not at random.
        order = np.argsort(lead, kind="stable")
        columns = build_features(leads, activities, touches, lead[order], as_of_raw[order])
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return {name: values[back] for name, values in columns.items()}
    at = as_of_raw + _TIME_OFFSET
    out: dict[str, np.ndarray] = {
        "source": leads.source[lead],
        "industry": leads.industry[lead],
        "company_size_band": size_band(leads.company_size[lead]),
        **{field: getattr(leads, field)[lead] for field in BANT_FIELDS},
        "lead_age_days": (as_of_raw - leads.created_at[lead]) / DAY,
    }

    windows = (*ACTIVITY_WINDOWS, SIGNAL_WINDOW)
    counts, since = activities.window_counts(
        activities.by_kind, len(ACTIVITY_TYPES), lead, at, windows
    )
    by_window = dict(zip(windows, counts, strict=True))
    for k, kind in enumerate(ACTIVITY_TYPES):
        for w in ACTIVITY_WINDOWS:
            out[f"activity_{kind}_{w}d"] = by_window[w][:, k].astype(np.float64)
    out["activities_30d"] = by_window[30].sum(axis=1).astype(np.float64)
    out["days_since_last_activity"] = activities.last_and_range(lead, at)[0]

    signals = [ACTIVITY_TYPES.index(s) for s in BUYING_SIGNALS]
    hand_raise = by_window[HAND_RAISE_WINDOW][:, signals].sum(axis=1) > 0
    buying = by_window[SIGNAL_WINDOW][:, signals].sum(axis=1) > 0
    with np.errstate(invalid="ignore"):
        out["days_since_hand_raise"] = np.fmin.reduce(since[:, signals], axis=1)

    days_touch, first, end = touches.last_and_range(lead, at)
    out["touches_total"] = (end - first).astype(np.float64)
    (total_by_channel, recent_by_channel), _ = touches.window_counts(
        touches.by_kind, len(CHANNELS), lead, at, (None, TOUCH_WINDOW)
    )
    (total_by_team, recent_by_team), _ = touches.window_counts(
        touches.by_team, len(TEAMS), lead, at, (None, TOUCH_WINDOW)
    )
    out[f"touches_{TOUCH_WINDOW}d"] = recent_by_team.sum(axis=1).astype(np.float64)
    for groups, total, recent in (
        (TEAMS, total_by_team, recent_by_team),
        (CHANNELS, total_by_channel, recent_by_channel),
    ):
        for g, name in enumerate(groups):
            out[f"touches_{name}_total"] = total[:, g].astype(np.float64)
            out[f"touches_{name}_{TOUCH_WINDOW}d"] = recent[:, g].astype(np.float64)
    known = touches.known_cum[end] - touches.known_cum[first]
    responded = touches.responded_cum[end] - touches.responded_cum[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["touches_responded_share"] = np.where(known > 0, responded / known, np.nan)
    out["days_since_last_touch"] = days_touch
    out[f"buying_signal_{SIGNAL_WINDOW}d"] = buying.astype(np.float64)
    out[f"hand_raise_{HAND_RAISE_WINDOW}d"] = hand_raise.astype(np.float64)
    ordered = {name: out[name] for name in FEATURES}
    ordered.update({name: values[lead] for name, values in leads.extra.items()})
    return ordered
