"""The routing thresholds policy and route statistics (the hold-out metrics and their bootstrap
are `features.evaluation`'s)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from leadready.features.metadata import Policy
from leadready.features.routing import (
    DISQUALIFY_WIN_RATE,
    ROUTES,
    Route,
    Thresholds,
    assign_routes,
)

MIN_SALES_ROWS = 30
MARGIN_SHARE = 0.1
MARGIN_ROWS = 30
DEFAULT_POLICY = Policy(disqualify_win_rate=DISQUALIFY_WIN_RATE)


@dataclass(frozen=True)
class Chosen:
    """Thresholds chosen by the policy, and one line per adjustment the policy made to them."""

    thresholds: Thresholds
    notes: tuple[str, ...]


def marginal_rate(scores: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Per row, the win rate of rows scored like it: an isotonic (non-decreasing) fit of the
    0/1 `outcome` on `scores`. Unlike the rate of all rows at or above a score, it is the rate
    of the band *at* that score, so a threshold placed with it holds for the last lead let in."""
    if len(scores) == 0:
        return np.zeros(0)
    return IsotonicRegression(increasing=True, out_of_bounds="clip").fit_transform(
        scores, outcome.astype(np.float64)
    )


def choose_thresholds(
    readiness: np.ndarray,
    potential: np.ndarray,
    ready: np.ndarray,
    won: np.ndarray,
    policy: Policy,
    groups: np.ndarray | None = None,
    leads_per_week: float | None = None,
) -> Chosen:
    """The documented policy, applied to tuning rows (validation snapshots, or out-of-fold
    scores of a flat table).

    Sales: the lowest readiness at which leads scored like it (`marginal_rate`) win within the
    horizon at `policy.sales_precision` or more, with at least MIN_SALES_ROWS rows at or above
    it (1.0 when no band reaches it: only hand-raises go to sales). With a
    `policy.sales_capacity` (leads a week) and the `leads_per_week` the data arrived at, the
    threshold is raised until the leads that ever reach it (`groups` tells the rows of one lead
    apart) fit the capacity.

    Disqualify: the lowest potential at which leads scored like it eventually win more often
    than `policy.disqualify_win_rate`, lowered if needed so that at most
    `policy.max_disqualified_wins` of the eventually won rows fall below it, and never above the
    sales threshold.
    """
    notes: list[str] = []
    sales = _sales_threshold(readiness, ready, policy.sales_precision, notes)
    if policy.sales_capacity is not None:
        sales = _within_capacity(
            readiness, groups, sales, policy.sales_capacity, leads_per_week, notes
        )
    disqualify = _disqualify_threshold(potential, won, policy, notes)
    if disqualify > sales:
        notes.append(
            f"disqualify threshold {disqualify:.3f} lowered to the sales threshold {sales:.3f} "
            "so that the thresholds stay ordered"
        )
        disqualify = sales
    return Chosen(Thresholds(sales=sales, disqualify=disqualify), tuple(notes))


def _sales_threshold(
    readiness: np.ndarray, ready: np.ndarray, precision: float, notes: list[str]
) -> float:
    order = np.argsort(-readiness, kind="stable")
    rate = marginal_rate(readiness, ready)[order]
    supported = np.arange(1, len(order) + 1) >= MIN_SALES_ROWS
    # The rate never rises as the score falls: the rows qualifying are a prefix of `order`.
    ok = (rate >= precision) & supported
    if not ok.any():
        notes.append(
            f"no band of readiness scores wins {precision:.0%} of the time within the horizon "
            f"over at least {MIN_SALES_ROWS} rows, so only hand-raises go to sales"
        )
        return 1.0
    return float(readiness[order][np.flatnonzero(ok)[-1]])


def _within_capacity(
    readiness: np.ndarray,
    groups: np.ndarray | None,
    sales: float,
    capacity: float,
    leads_per_week: float | None,
    notes: list[str],
) -> float:
    """The sales threshold raised until the expected leads a week sent to sales by score fit
    `capacity`: the share of leads whose best tuning score reaches it, times `leads_per_week`."""
    if not leads_per_week or leads_per_week <= 0:
        notes.append(
            "the sales capacity is not applied: the data has no dates to tell how many leads "
            "arrive a week"
        )
        return sales
    best = (
        readiness
        if groups is None
        else pd.Series(readiness).groupby(np.asarray(groups)).max().to_numpy()
    )
    allowed = int(np.floor(capacity / leads_per_week * len(best)))
    expected = float((best >= sales).mean() * leads_per_week)
    if expected <= capacity:
        return sales
    ranked = np.sort(best)[::-1]
    # The lowest score letting in at most `allowed` leads (ties at a score all count).
    raised = float(np.nextafter(ranked[allowed], np.inf)) if allowed < len(ranked) else sales
    raised = max(raised, sales)
    notes.append(
        f"sales threshold raised from {sales:.3f} to {raised:.3f} so that about "
        f"{(best >= raised).mean() * leads_per_week:,.0f} leads a week (not {expected:,.0f}) fit "
        f"the sales capacity of {capacity:,.0f}; hand-raises come on top"
    )
    return raised


def _disqualify_threshold(
    potential: np.ndarray, won: np.ndarray, policy: Policy, notes: list[str]
) -> float:
    if not len(potential):
        return 0.0
    # A policy without a win rate (versions before the marginal rule) disqualifies by the cap.
    limit = 1.0 if policy.disqualify_win_rate is None else policy.disqualify_win_rate
    above = marginal_rate(potential, won) > limit
    by_rate = float(potential[above].min() if above.any() else np.nextafter(potential.max(), 2))
    won_scores = potential[won == 1]
    if not len(won_scores):
        return by_rate
    cap = float(np.quantile(won_scores, policy.max_disqualified_wins, method="lower"))
    if cap < by_rate:
        notes.append(
            f"disqualify threshold lowered from {by_rate:.3f} to {cap:.3f} so that at most "
            f"{policy.max_disqualified_wins:.0%} of eventual wins are disqualified"
        )
        return cap
    return by_rate


def leads_per_week(created: np.ndarray | pd.Series) -> float | None:
    """How many leads a week the data holds, over the span of their creation times (None when
    they span less than a week: too short to tell)."""
    times = pd.to_datetime(pd.Series(np.asarray(created))).dropna()
    weeks = (times.max() - times.min()) / pd.Timedelta(weeks=1) if len(times) else 0.0
    return len(times) / weeks if weeks >= 1 else None


def route_statistics(
    readiness: np.ndarray,
    potential: np.ndarray,
    hand_raise: np.ndarray,
    ready: np.ndarray,
    won: np.ndarray,
    thresholds: Thresholds,
) -> dict[str, dict[str, float]]:
    """Per route: share of rows, win rate within the horizon, eventual win rate, and both rates
    at the margin: in the MARGIN_SHARE of the route's rows (at least MARGIN_ROWS) nearest the
    threshold it borders. That is the lowest readiness sent to sales by score, the highest
    readiness kept in nurture (the leads just short of sales) and the highest potential
    disqualified."""
    routes = assign_routes(readiness, potential, hand_raise, thresholds)
    by_score = readiness >= thresholds.sales
    edge = {  # per route: its rows bordering a threshold, and the score ordering them inward
        Route.SALES: (by_score, readiness),
        Route.NURTURE: (routes == Route.NURTURE.value, -readiness),
        Route.DISQUALIFY: (routes == Route.DISQUALIFY.value, -potential),
    }
    stats = {}
    for route in ROUTES:
        mask = routes == route.value
        n = int(mask.sum())
        rows, inward = edge[route]
        band = np.flatnonzero(rows)[np.argsort(inward[rows], kind="stable")]
        band = band[: max(MARGIN_ROWS, int(np.ceil(MARGIN_SHARE * len(band))))]
        stats[route.value] = {
            "share": n / len(routes),
            "win_rate": _rate(ready, mask),
            "eventual_win_rate": _rate(won, mask),
            "rows": n,
            "margin_win_rate": _rate(ready, band),
            "margin_eventual_win_rate": _rate(won, band),
        }
    return stats


def _rate(outcome: np.ndarray, rows: np.ndarray) -> float:
    """The mean of `outcome` over `rows` (a mask or indices), NaN over none."""
    picked = outcome[rows]
    return float(picked.mean()) if len(picked) else float("nan")
