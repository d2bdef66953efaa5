"""Reasons in plain words: contributions to readiness, labelled for marketers and sales reps."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from leadready.features.labels import FEATURE_LABELS

TOP_REASONS = 5
BANT_WORDS = {
    "lt_1m": "under 1 month",
    "1_3m": "1-3 months",
    "3_6m": "3-6 months",
    "6_12m": "6-12 months",
    "gt_12m": "over 12 months",
}
_BANT = ("budget", "authority", "need", "timeframe")
_NEVER = {
    "days_since_last_activity": "No activity yet",
    "days_since_last_touch": "Never touched",
    "days_since_hand_raise": "No demo or contact request yet",
    "touches_responded_share": "No known responses to touches",
}


THEMES = {
    "bant": "BANT (budget, authority, need, timeframe)",
    "engagement": "Engagement (what the lead did)",
    "touches": "Touches (what sales and marketing did)",
    "profile": "Profile (source, industry, size, age)",
}
"""The groups the workspace's reasons chart sums a CRM lead's contributions into."""
THEME_ITEMS = 3
"""Inputs listed under each theme of the chart, strongest first."""
FLAT_LISTED = 12
"""Columns of a flat row the chart lists on their own before "the other N inputs"."""
_SINGULAR = {
    "views": "view",
    "visits": "visit",
    "opens": "open",
    "clicks": "click",
    "downloads": "download",
    "webinars": "webinar",
    "events": "event",
    "requests": "request",
    "chats": "chat",
    "forms": "form",
    "unsubscribes": "unsubscribe",
    "days": "day",
    "touches": "touch",
    "emails": "email",
    "calls": "call",
    "meetings": "meeting",
    "activities": "activity",
}
"""Plural words of the built-in labels and their singular, for a count of one."""


def theme(feature: str) -> str:
    """The THEMES key of a CRM model's feature (a custom schema feature describes the lead:
    profile)."""
    if feature in _BANT:
        return "bant"
    if feature.startswith("touches_") or feature == "days_since_last_touch":
        return "touches"
    if feature.startswith(("activit", "buying_signal_", "hand_raise_", "days_since_")):
        return "engagement"
    return "profile"


def _one(label: str) -> str:
    """A count label for exactly one: 'pricing-page views in the last 30 days' -> 'pricing-page
    view in the last 30 days' (only the first plural word changes)."""
    words = label.split(" ")
    for i, word in enumerate(words):
        last = word.rsplit("-", 1)
        if last[-1] in _SINGULAR:
            last[-1] = _SINGULAR[last[-1]]
            words[i] = "-".join(last)
            return " ".join(words)
    return label


def _words(value: str) -> str:
    return BANT_WORDS.get(value, value.replace("_", " "))


def describe(feature: str, value: object, labels: dict[str, str]) -> str:
    """'Budget confirmed', '4 pricing-page views in the last 30 days', 'Never touched'."""
    label = labels.get(feature, feature)
    if isinstance(value, str):
        text = _words(value)
        if feature == "company_size_band" and value != "unknown":
            text += " employees"
        return f"{label} {text}" if feature in _BANT else f"{label}: {text}"
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        return _NEVER.get(feature, f"{label}: unknown")
    if not _is_count(feature):
        if feature not in FEATURE_LABELS:  # a custom feature from the schema
            return f"{label}: {number:g}"
        if feature == "touches_responded_share":
            return f"{number:.0%} of touches responded to"
        return label[0].upper() + label[1:] if number else f"No {label}"  # a signal: 1 or 0
    count = round(number)
    if feature == "lead_age_days":
        return (
            "Lead created today"
            if count == 0
            else f"Lead created {count:,} day{'s' * (count != 1)} ago"
        )
    return f"{count:,} {_one(label) if count == 1 else label}"


def _is_count(feature: str) -> bool:
    """A built-in numeric feature `describe` words as a whole number (days, counts): its
    words depend only on the value rounded."""
    return (
        feature in FEATURE_LABELS
        and feature != "touches_responded_share"
        and not feature.startswith(("buying_signal_", "hand_raise_"))
    )


def describe_many(feature: str, values: np.ndarray, labels: dict[str, str]) -> np.ndarray:
    """`describe` of each of a feature's `values`, as an object array; each distinct value (of
    a count feature: each distinct whole number) is worded once."""
    if values.dtype.kind == "f" and _is_count(feature):
        values = np.round(values)  # half to even, as `round` in `describe`
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    words = np.array([describe(feature, v, labels) for v in distinct], dtype=object)
    return words[codes]


def _value(value: object) -> str | float | None:
    if isinstance(value, str):
        return value
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else round(number, 4)


def _strongest(terms: np.ndarray, top: int) -> tuple[np.ndarray, ...]:
    """Per row of (n, n_features) contributions: the `top` feature indices pushing readiness
    up (largest first) and whether each pushes up (is positive), and the `top` pushing it down
    (most negative first) and whether each is negative; four (n, top) arrays."""
    order = np.argsort(-terms, axis=1, kind="stable")
    up, down = order[:, :top], order[:, ::-1][:, :top]
    rows = np.arange(len(terms))[:, None]
    return up, terms[rows, up] > 0, down, terms[rows, down] < 0


def strongest(terms: np.ndarray, top: int) -> tuple[list[list[int]], list[list[int]]]:
    """Per row of (n, n_features) contributions: the `top` feature indices pushing readiness
    up (largest first, positive only) and down (most negative first, negative only)."""
    up, up_ok, down, down_ok = (a.tolist() for a in _strongest(terms, top))
    return (
        [[j for j, ok in zip(u, oks, strict=True) if ok] for u, oks in zip(up, up_ok, strict=True)],
        [
            [j for j, ok in zip(d, oks, strict=True) if ok]
            for d, oks in zip(down, down_ok, strict=True)
        ],
    )


def reason_column_names(top: int) -> list[str]:
    """The file columns of `reason_columns`, in order: reason_up_1, reason_down_1, ..."""
    return [f"reason_{side}_{k + 1}" for k in range(top) for side in ("up", "down")]


def reason_columns(
    contributions: np.ndarray,
    columns: dict[str, np.ndarray],
    features: list[str],
    labels: dict[str, str],
    top: int,
) -> dict[str, np.ndarray]:
    """For many leads at once, the plain-words labels of their strongest reasons as file
    columns: reason_up_1, reason_down_1, ... reason_down_`top` ("" where a lead has fewer).
    Worded per feature, for the leads it is a reason of (`describe_many`)."""
    up, up_ok, down, down_ok = _strongest(contributions[:, :-1], top)
    n = len(contributions)
    out = {name: np.full(n, "", dtype=object) for name in reason_column_names(top)}
    for j in np.unique(np.concatenate((up[up_ok], down[down_ok]))):
        at_up, at_down = (up == j) & up_ok, (down == j) & down_ok
        rows = np.flatnonzero(at_up.any(axis=1) | at_down.any(axis=1))
        words = np.empty(n, dtype=object)
        words[rows] = describe_many(features[j], columns[features[j]][rows], labels)
        for k in range(up.shape[1]):  # fewer than `top` when the model has fewer features
            out[f"reason_up_{k + 1}"][at_up[:, k]] = words[at_up[:, k]]
            out[f"reason_down_{k + 1}"][at_down[:, k]] = words[at_down[:, k]]
    return out


def reasons(
    contributions: np.ndarray,
    columns: dict[str, np.ndarray],
    features: list[str],
    labels: dict[str, str],
    rows: Sequence[int] | None = None,
    top: int = TOP_REASONS,
) -> list[dict[str, object]]:
    """The `reasons` objects of leads from their rows of contributions (last column = base
    value) and feature columns: every row, or those in `rows`. Many leads are done at once:
    their strongest terms sorted in one call, and each (feature, value) worded once."""
    picked = np.arange(len(contributions)) if rows is None else np.asarray(rows, dtype=np.int64)
    terms = contributions[picked, :-1]
    ups, downs = strongest(terms, top)
    totals = terms.sum(axis=1)
    said: dict[tuple[int, object], tuple[str, str | float | None]] = {}

    def item(k: int, j: int) -> dict[str, object]:
        name = features[j]
        value = columns[name][picked[k]]
        if (shown := said.get((j, value))) is None:
            shown = said[j, value] = (describe(name, value, labels), _value(value))
        return {
            "feature": name,
            "label": shown[0],
            "value": shown[1],
            "contribution": float(terms[k, j]),
        }

    out: list[dict[str, object]] = []
    for k, (up, down) in enumerate(zip(ups, downs, strict=True)):
        listed = terms[k, up].sum() + terms[k, down].sum()
        out.append(
            {
                "scale": "log-odds",
                "base_value": float(contributions[picked[k], -1]),
                "up": [item(k, j) for j in up],
                "down": [item(k, j) for j in down],
                "others": float(totals[k] - listed),
            }
        )
    return out


def themed(
    contributions: np.ndarray,
    columns: dict[str, np.ndarray],
    row: int,
    features: list[str],
    labels: dict[str, str],
    grouped: bool,
) -> list[dict[str, object]]:
    """One lead's contributions (its row, last = base value) for the reasons chart, as groups
    `{"title", "total", "items": [(label, contribution)]}`, the largest push first.

    With `grouped` (a CRM model), every input falls in one of THEMES and each theme lists its
    THEME_ITEMS strongest inputs, so nothing is left in an "everything else" bar. A flat model's
    columns have no themes: each is a group of its own, FLAT_LISTED at least and then more until
    the rest together push less than the smallest one listed."""
    terms = contributions[:-1]
    label = [describe(name, columns[name][row], labels) for name in features]
    if grouped:
        groups: dict[str, list[int]] = {key: [] for key in THEMES}
        for j, name in enumerate(features):
            groups[theme(name)].append(j)
        out = [
            {
                "title": THEMES[key],
                "total": float(terms[members].sum()),
                "items": [
                    (label[j], float(terms[j]))
                    for j in sorted(members, key=lambda j: -abs(terms[j]))[:THEME_ITEMS]
                    if abs(terms[j]) >= 0.005
                ],
            }
            for key, members in groups.items()
            if members
        ]
        return sorted(out, key=lambda g: -abs(float(g["total"])))  # type: ignore[arg-type]
    order = sorted(range(len(features)), key=lambda j: -abs(terms[j]))
    shown = min(FLAT_LISTED, len(order))
    while shown < len(order) and abs(terms[order[shown:]].sum()) >= abs(terms[order[shown - 1]]):
        shown += 1
    out = [{"title": label[j], "total": float(terms[j]), "items": []} for j in order[:shown]]
    rest = order[shown:]
    if rest and abs(terms[rest].sum()) >= 0.005:
        n = len(rest)
        out.append(
            {
                "title": f"The other {n} input{'s' * (n != 1)} together",
                "total": float(terms[rest].sum()),
                "items": [],
            }
        )
    return out
