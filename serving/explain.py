"""Reasons in plain words: contributions to readiness, labelled for marketers and sales reps."""

from __future__ import annotations

import math

import numpy as np

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
    if feature not in FEATURE_LABELS:  # a custom feature from the schema
        return f"{label}: {number:g}"
    if feature == "touches_responded_share":
        return f"{number:.0%} of touches responded to"
    if feature.startswith(("buying_signal_", "hand_raise_")):
        return label[0].upper() + label[1:] if number else f"No {label}"
    if feature == "lead_age_days":
        return f"Lead created {number:.0f} days ago"
    return f"{number:.0f} {label}"


def _value(value: object) -> str | float | None:
    if isinstance(value, str):
        return value
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else round(number, 4)


def strongest(terms: np.ndarray, top: int) -> tuple[list[list[int]], list[list[int]]]:
    """Per row of (n, n_features) contributions: the `top` feature indices pushing readiness
    up (largest first, positive only) and down (most negative first, negative only)."""
    order = np.argsort(-terms, axis=1, kind="stable")
    up, down = order[:, :top], order[:, ::-1][:, :top]
    rows = np.arange(len(terms))[:, None]
    up_ok, down_ok = terms[rows, up] > 0, terms[rows, down] < 0
    return (
        [list(u[ok]) for u, ok in zip(up, up_ok, strict=True)],
        [list(d[ok]) for d, ok in zip(down, down_ok, strict=True)],
    )


def top_labels(
    contributions: np.ndarray,
    columns: dict[str, np.ndarray],
    features: list[str],
    labels: dict[str, str],
    top: int,
) -> tuple[list[list[str]], list[list[str]]]:
    """For many leads at once: the plain-words labels of their strongest reasons."""
    up, down = strongest(contributions[:, :-1], top)

    def words(indices: list[list[int]]) -> list[list[str]]:
        return [
            [describe(features[j], columns[features[j]][row], labels) for j in row_indices]
            for row, row_indices in enumerate(indices)
        ]

    return words(up), words(down)


def reasons(
    contributions: np.ndarray,
    columns: dict[str, np.ndarray],
    row: int,
    features: list[str],
    labels: dict[str, str],
    top: int = TOP_REASONS,
) -> dict[str, object]:
    """The `reasons` object of one lead from its row of contributions (last = base value)."""
    terms = contributions[:-1]
    (up,), (down,) = strongest(terms[None, :], top)
    listed = set(up) | set(down)

    def item(j: int) -> dict[str, object]:
        name = features[j]
        value = columns[name][row]
        return {
            "feature": name,
            "label": describe(name, value, labels),
            "value": _value(value),
            "contribution": float(terms[j]),
        }

    return {
        "scale": "log-odds",
        "base_value": float(contributions[-1]),
        "up": [item(j) for j in up],
        "down": [item(j) for j in down],
        "others": float(sum(terms[j] for j in range(len(terms)) if j not in listed)),
    }
