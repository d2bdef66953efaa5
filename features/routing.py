"""The routing policy: which team acts on a lead now, and why, in words a rep understands.

- `sales` when the lead raised its hand (a demo or contact request in the last 7 days),
  whatever its score, or when readiness >= the sales threshold;
- `disqualify` when potential (will it ever be won) < the disqualify threshold;
- `nurture` otherwise.

Thresholds are chosen in training on the validation slice (see `training.evaluate`) and travel
with the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

import numpy as np


class Route(StrEnum):
    SALES = "sales"
    NURTURE = "nurture"
    DISQUALIFY = "disqualify"


ROUTES = tuple(Route)
SALES_PRECISION = 0.5
DISQUALIFY_WIN_RATE = 0.1
MAX_DISQUALIFIED_WINS = 0.02
"""The default routing policy (see `features.metadata.Policy`)."""


@dataclass(frozen=True)
class Thresholds:
    sales: float
    disqualify: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def assign_routes(
    readiness: np.ndarray, potential: np.ndarray, hand_raise: np.ndarray, t: Thresholds
) -> np.ndarray:
    """Vectorised policy: an array of route names, one per lead."""
    routes = np.full(len(readiness), Route.NURTURE.value, dtype=object)
    routes[potential < t.disqualify] = Route.DISQUALIFY.value
    routes[(readiness >= t.sales) | (hand_raise > 0)] = Route.SALES.value
    return routes


def route_reason(
    route: str,
    readiness: float,
    potential: float,
    t: Thresholds,
    hand_raise_days: float = float("nan"),
    potential_name: str = "potential",
    percent: bool = False,
) -> str:
    """Why a lead got its route, with the numbers (as percentages with `percent`, as the
    workspace shows scores). `potential_name` names the score compared with the disqualify
    threshold (the flat mode has one score for both)."""
    if route == Route.SALES and readiness < t.sales:
        days = hand_raise_days
        when = "today" if days < 1 else f"{days:.0f} day{'s' if days >= 1.5 else ''} ago"
        return f"hand-raise: demo or contact request {when}"
    if route == Route.SALES:
        score, sales = _apart(readiness, t.sales, percent)
        return f"readiness {score} is at or above the sales threshold {sales}"
    if route == Route.DISQUALIFY:
        score, disqualify = _apart(potential, t.disqualify, percent)
        return f"{potential_name} {score} is below the disqualify threshold {disqualify}"
    score, sales = _apart(readiness, t.sales, percent)
    other, disqualify = _apart(potential, t.disqualify, percent)
    return (
        f"readiness {score} is below the sales threshold {sales}; "
        f"{potential_name} {other} is at or above the disqualify threshold {disqualify}"
    )


def _apart(score: float, threshold: float, percent: bool) -> tuple[str, str]:
    """`score` and `threshold` to 3 decimals (whole percentages with `percent`), or with as many
    more places (3 more at most) as it takes for different numbers to read differently
    ("0.2524 is below 0.2525", not "0.252 is below 0.252")."""
    first, kind = (0, "%") if percent else (3, "f")
    for places in range(first, first + 4):
        shown = f"{score:.{places}{kind}}", f"{threshold:.{places}{kind}}"
        if shown[0] != shown[1]:
            break
    if percent:  # a score is never shown as a certain 0% or 100%
        return _uncertain(score, shown[0]), _uncertain(threshold, shown[1])
    return shown


def _uncertain(value: float, shown: str) -> str:
    if shown == "0%" and value > 0:
        return "<1%"
    return ">99%" if shown == "100%" and value < 1 else shown


def route_rules(t: Thresholds, flat: bool) -> dict[str, str]:
    """Each route's rule in words, as assign_routes applies it (sales is decided first)."""
    if flat:  # one score: potential is readiness, and a table has no hand-raise signal
        return {
            "sales": f"readiness ≥ {t.sales:.3f}",
            "nurture": "everything else",
            "disqualify": f"readiness < {t.disqualify:.3f}",
        }
    return {
        "sales": f"demo or contact request in the last 7 days, or readiness ≥ {t.sales:.3f}",
        "nurture": "everything else",
        "disqualify": f"potential < {t.disqualify:.3f}, unless sent to sales",
    }


MIN_ROUTE_SHARE = 0.02
"""A route holding less of the hold-out than this is named in a warning: it holds almost
nothing (the sample's sales route, at the default policy, holds 4.6% of test snapshots)."""


def route_warning(shares: dict[str, float]) -> str | None:
    """A warning in plain words when a route holds almost no leads: `shares` is each route's
    share of the hold-out (0-1)."""
    small = [f"{route} {share:.1%}" for route, share in shares.items() if share < MIN_ROUTE_SHARE]
    if not small:
        return None
    return (
        f"some routes hold few hold-out leads ({', '.join(small)}). When nearly every score is "
        "close to 0 or 1, as happens when a column was filled in after the outcome, little "
        "falls between the thresholds whatever the policy; otherwise the policy's win rates "
        "decide the shares."
    )
