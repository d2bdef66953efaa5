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
) -> str:
    """Why a lead got its route, with the numbers. `potential_name` names the score compared
    with the disqualify threshold (the flat mode has one score for both)."""
    if route == Route.SALES and readiness < t.sales:
        days = hand_raise_days
        when = "today" if days < 1 else f"{days:.0f} day{'s' if days >= 1.5 else ''} ago"
        return f"hand-raise: demo or contact request {when}"
    if route == Route.SALES:
        return f"readiness {readiness:.3f} is at or above the sales threshold {t.sales:.3f}"
    if route == Route.DISQUALIFY:
        return (
            f"{potential_name} {potential:.3f} is below the disqualify threshold {t.disqualify:.3f}"
        )
    return (
        f"readiness {readiness:.3f} is below the sales threshold {t.sales:.3f}; "
        f"{potential_name} {potential:.3f} is at or above the disqualify threshold "
        f"{t.disqualify:.3f}"
    )


def route_rules(t: Thresholds, flat: bool) -> dict[str, str]:
    """Each route's rule in words, as assign_routes applies it (sales is decided first)."""
    if flat:  # one score: potential is readiness, and a table has no hand-raise signal
        return {
            "sales": f"readiness ≥ {t.sales:.3f}",
            "nurture": "everything else",
            "disqualify": f"readiness < {min(t.disqualify, t.sales):.3f}",
        }
    return {
        "sales": f"demo or contact request in the last 7 days, or readiness ≥ {t.sales:.3f}",
        "nurture": "everything else",
        "disqualify": f"potential < {t.disqualify:.3f}, unless sent to sales",
    }


MIN_NURTURE_SHARE = 0.02


def nurture_warning(share: float, t: Thresholds) -> str | None:
    """A warning, with what to try, when the thresholds leave (almost) nothing to nurture:
    `share` is the nurture route's share of the hold-out (0-1)."""
    if share >= MIN_NURTURE_SHARE:
        return None
    return (
        f"only {share:.1%} of hold-out leads fall between the thresholds to be nurtured "
        f"(sales from readiness {t.sales:.3f}, disqualify below {t.disqualify:.3f}). A "
        "higher --sales-precision raises the sales threshold and a lower "
        "--max-disqualified-wins lowers the disqualify one; when nearly every score is "
        "close to 0 or 1 (as with columns filled in after the outcome), little is left to "
        "nurture whatever the thresholds."
    )
