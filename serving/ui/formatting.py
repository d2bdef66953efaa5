"""Numbers, times and contract values as the workspace prints them (the templates' filters and
the charts' labels): one dash for anything missing."""

from __future__ import annotations

import math

import pandas as pd

from leadready.serving.explain import BANT_WORDS


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(value: object, digits: int = 1) -> str:
    """A share (0-1) as a percentage: 0.257 -> '25.7%'."""
    if _missing(value):
        return "—"
    return f"{float(value):.{digits}%}"  # type: ignore[arg-type]


def chance(value: object) -> str:
    """A probability as a whole percentage, the way the workspace shows readiness to
    marketers: 0.257 -> '26%'; below 0.5% '<1%', above 99.5% '>99%' (never a rounded 0% or
    100%, which would read as certain)."""
    if _missing(value):
        return "—"
    share = float(value)  # type: ignore[arg-type]
    if share < 0.005:
        return "<1%"
    if share > 0.995:
        return ">99%"
    return f"{share:.0%}"


def plural(n: object, one: str, many: str | None = None) -> str:
    """A count with its noun: (1, 'day') -> '1 day', (3, 'day') -> '3 days'."""
    number = int(n)  # type: ignore[call-overload]
    return f"{number:,} {one if number == 1 else many or one + 's'}"


def num(value: object, digits: int = 2) -> str:
    """A number with thousands separators: 1234.5 -> '1,234.50'."""
    if _missing(value):
        return "—"
    return f"{float(value):,.{digits}f}"  # type: ignore[arg-type]


def count(value: object) -> str:
    """A whole number with thousands separators: 10000 -> '10,000'."""
    return f"{int(value):,}"  # type: ignore[call-overload]


def words(value: object) -> str:
    """A contract value in plain words: '1_3m' -> '1-3 months', 'decision_maker' ->
    'decision maker'."""
    text = str(value)
    return BANT_WORDS.get(text, text.replace("_", " "))


def when(value: object) -> str:
    """A time as 'YYYY-MM-DD HH:MM' (UTC); text that is not a time (a flat model's "stratified
    random" test set) as it is."""
    if _missing(value):
        return "—"
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except ValueError:
        return str(value)
    if pd.isna(stamp):
        return "—"
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return (
        stamp.strftime("%Y-%m-%d %H:%M")
        if (stamp.hour or stamp.minute)
        else stamp.strftime("%Y-%m-%d")
    )


def waited(hours: object) -> str:
    """A waiting time in hours as people say it: 'under an hour', '5 hours', '3 days'."""
    if _missing(hours):
        return "—"
    value = float(hours)  # type: ignore[arg-type]
    if value < 1:
        return "under an hour"
    if value < 48:
        return plural(int(value), "hour")
    return plural(int(value // 24), "day")


def capital(text: str) -> str:
    """The first letter upper-cased, the rest kept ('readiness ≥ 0.40' -> 'Readiness ≥ 0.40')."""
    return text[:1].upper() + text[1:]


FILTERS = {
    "pct": pct,
    "chance": chance,
    "plural": plural,
    "num": num,
    "thousands": count,
    "words": words,
    "when": when,
    "capital": capital,
    "waited": waited,
}
"""The templates' filters, by the names the templates use."""
