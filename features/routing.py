"""The routing policy: which team acts on a lead now, and why, in words a rep understands.

- `sales` when the lead raised its hand (a demo or contact request in the last 7 days),
  whatever its score, or when readiness >= the sales threshold;
- `disqualify` when potential (will it ever be won) < the disqualify threshold;
- `nurture` otherwise.

An exploration slice (`Exploration`, off by default) sends a random share of the leads the
policy keeps in nurture to sales instead, so their outcomes show the model's true win rate
where the policy alone would never look (docs/monitoring.md).

Thresholds are chosen in training on the validation slice (see `training.evaluate`) and travel
with the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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


RECOMMENDED_EXPLORE_SHARE = 0.02
"""The share docs/monitoring.md recommends: a few weak leads to sales, unbiased win rates."""


def lead_draws(lead_ids: Sequence[str]) -> np.ndarray:
    """A uniform number in [0, 1) per lead, fixed by its id (BLAKE2b of the id): the same lead
    draws the same number on every rescore, in every process."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "big")
            for i in lead_ids
        ],
        dtype=np.float64,
    ) / float(1 << 64)


@dataclass(frozen=True)
class Exploration:
    """The exploration slice: a random `share` of the leads the policy keeps in nurture (and
    of those it disqualifies, with `disqualify`) goes to sales instead. Hand-raises and leads
    the policy sends to sales are never touched. A lead is in the slice when its draw
    (`lead_draws`) is below `share`, so a lead keeps its place on every rescore, and a larger
    share keeps every lead a smaller one explored."""

    share: float = 0.0
    disqualify: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.share < 1:
            raise ValueError(
                f"the exploration share must be at least 0 and below 1 (got {self.share:g}); "
                f"{RECOMMENDED_EXPLORE_SHARE:g} is recommended"
            )

    def eligible(self, routes: np.ndarray) -> np.ndarray:
        """The leads exploration may send to sales, from the policy's routes."""
        mask: np.ndarray = routes == Route.NURTURE.value
        return mask | (routes == Route.DISQUALIFY.value) if self.disqualify else mask

    def choose(self, lead_ids: Sequence[str], routes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(explored, propensity) per lead, from the policy's routes: explored leads go to
        sales; propensity is the probability of the route each lead got: `share` for explored
        leads, 1 - `share` for eligible leads left where the policy put them, 1 for the rest."""
        eligible = self.eligible(np.asarray(routes, dtype=object))
        explored = np.zeros(len(eligible), dtype=bool)
        if self.share > 0:  # no hashing when off
            explored = eligible & (lead_draws(lead_ids) < self.share)
        propensity = np.where(explored, self.share, np.where(eligible, 1 - self.share, 1.0))
        return explored, propensity

    def reason(self, route: str, policy_reason: str) -> str:
        """The route reason of an explored lead the policy routed `route` for `policy_reason`."""
        kept = "keep in nurture" if route == Route.NURTURE else "disqualify"
        return (
            f"exploration: one of a random {self.share * 100:g}% of the leads the policy would "
            f"{kept}, sent to sales so the model learns their true win rate (the policy says: "
            f"{policy_reason})"
        )


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
