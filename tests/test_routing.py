"""The routing policy: thresholds from each lead's own calibrated win rate, ordered, capped,
fitted to a sales capacity; route statistics at the margin; reasons that read right."""

from __future__ import annotations

import numpy as np
import pytest

from leadready.features.metadata import Policy
from leadready.features.routing import (
    Exploration,
    Thresholds,
    assign_routes,
    lead_draws,
    route_reason,
    route_rules,
    route_warning,
)
from leadready.training.evaluate import (
    DEFAULT_POLICY,
    choose_thresholds,
    leads_per_week,
    marginal_rate,
    route_statistics,
)

pytestmark = pytest.mark.unit


def calibrated(n: int, seed: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores that are their own win rates, around a base rate `base`."""
    rng = np.random.default_rng(seed)
    p = rng.beta(base * 2, (1 - base) * 2, size=n)
    return p, (rng.random(n) < p).astype(int)


def test_at_a_high_base_rate_sales_starts_where_leads_win_at_the_policy_rate():
    # Leads.csv converts 38.5%: the rows at or above 0.05 together win over half the time,
    # so the old cumulative rule sent nearly everyone to sales.
    p, y = calibrated(8000, 1, 0.6)
    chosen = choose_thresholds(p, p, y, y, DEFAULT_POLICY)
    t = chosen.thresholds
    assert 0.4 < t.sales < 0.6
    routes = assign_routes(p, p, np.zeros(len(p)), t)
    assert p[routes == "sales"].min() >= 0.2
    assert t.disqualify <= t.sales
    # The leads just above the threshold win about as often as the policy asks.
    near = (p >= t.sales) & (p < t.sales + 0.05)
    assert y[near].mean() == pytest.approx(0.5, abs=0.08)


def test_disqualify_stops_where_leads_start_winning_more_than_the_policy_rate():
    p, y = calibrated(20000, 2, 0.3)
    policy = Policy(disqualify_win_rate=0.1, max_disqualified_wins=0.5)  # the cap not binding
    t = choose_thresholds(p, p, y, y, policy).thresholds
    assert 0.05 < t.disqualify < 0.15
    rate = marginal_rate(p, y)
    assert rate[p < t.disqualify].max() <= 0.1 < rate[p >= t.disqualify].min()


def test_the_share_of_wins_caps_the_disqualify_threshold_and_says_so():
    p, y = calibrated(20000, 3, 0.3)
    chosen = choose_thresholds(p, p, y, y, Policy(disqualify_win_rate=0.1))
    wins_below = (p[y == 1] < chosen.thresholds.disqualify).mean()
    assert wins_below <= 0.02
    assert any("at most 2% of eventual wins are disqualified" in n for n in chosen.notes)


def test_thresholds_stay_ordered_and_the_adjustment_is_explained():
    p, y = calibrated(5000, 4, 0.5)
    policy = Policy(sales_precision=0.05, disqualify_win_rate=0.6, max_disqualified_wins=1.0)
    chosen = choose_thresholds(p, p, y, y, policy)
    assert chosen.thresholds.disqualify == chosen.thresholds.sales
    assert any("so that the thresholds stay ordered" in n for n in chosen.notes)


def test_when_no_band_wins_at_the_policy_rate_only_hand_raises_go_to_sales():
    p, y = calibrated(3000, 5, 0.05)
    p = p * 0.4  # nobody scores near 50%
    chosen = choose_thresholds(
        p, p, (np.random.default_rng(0).random(3000) < p).astype(int), y, DEFAULT_POLICY
    )
    assert chosen.thresholds.sales == 1.0
    assert "only hand-raises go to sales" in chosen.notes[0]


def test_a_sales_capacity_raises_the_threshold_until_the_weekly_volume_fits():
    p, y = calibrated(10000, 6, 0.6)
    free = choose_thresholds(p, p, y, y, DEFAULT_POLICY).thresholds.sales
    per_week = 500.0  # 10,000 leads over 20 weeks
    capped = choose_thresholds(
        p, p, y, y, Policy(disqualify_win_rate=0.1, sales_capacity=100), leads_per_week=per_week
    )
    assert capped.thresholds.sales > free
    assert (p >= capped.thresholds.sales).mean() * per_week <= 100
    assert any("fit the sales capacity of 100" in n for n in capped.notes)
    # A lead counts once, at its best snapshot: two snapshots of one lead are one hand-over.
    groups = np.repeat(np.arange(5000), 2)
    once = choose_thresholds(
        p, p, y, y, Policy(sales_capacity=100), groups=groups, leads_per_week=250.0
    )
    best = np.maximum(p[0::2], p[1::2])
    assert (best >= once.thresholds.sales).mean() * 250 <= 100


def test_leads_per_week_over_the_span_of_creation():
    created = np.array(["2026-01-01", "2026-01-15", "2026-01-29"], dtype="datetime64[ns]")
    assert leads_per_week(created) == pytest.approx(3 / 4)
    assert leads_per_week(created[:1]) is None


def test_route_statistics_give_the_win_rate_at_each_margin():
    readiness = np.linspace(0, 1, 1000)
    ready = (readiness > 0.95).astype(int)  # only the top 5% win
    t = Thresholds(sales=0.9, disqualify=0.2)
    stats = route_statistics(readiness, readiness, np.zeros(1000), ready, ready, t)
    assert stats["sales"]["win_rate"] == pytest.approx(0.5, abs=0.02)
    # The lowest 30 of the ~100 sales leads: none of them wins.
    assert stats["sales"]["margin_win_rate"] == 0.0
    assert stats["nurture"]["margin_win_rate"] == 0.0
    assert stats["disqualify"]["rows"] == 200
    assert sum(s["share"] for s in stats.values()) == pytest.approx(1.0)


def test_reasons_never_read_a_score_and_its_threshold_as_the_same_number():
    t = Thresholds(sales=0.25249, disqualify=0.1)
    reason = route_reason("nurture", 0.25241, 0.3, t)
    assert reason.startswith("readiness 0.2524 is below the sales threshold 0.2525;")
    assert "potential 0.300 is at or above the disqualify threshold 0.100" in reason
    assert route_reason("sales", 0.5, 0.5, t) == (
        "readiness 0.500 is at or above the sales threshold 0.252"
    )


def test_rules_and_warning_in_plain_words():
    t = Thresholds(sales=0.55, disqualify=0.07)
    assert route_rules(t, flat=True)["disqualify"] == "readiness < 0.070"
    assert route_warning({"sales": 0.3, "nurture": 0.5, "disqualify": 0.2}) is None
    warning = route_warning({"sales": 0.731, "nurture": 0.0, "disqualify": 0.269})
    assert warning is not None and "nurture 0.0%" in warning and "--" not in warning


def test_the_workspace_reads_a_reason_in_percentages_never_a_certain_zero():
    t = Thresholds(sales=0.25249, disqualify=0.004)
    assert route_reason("nurture", 0.2524, 0.3, t, percent=True) == (
        "readiness 25.24% is below the sales threshold 25.25%; potential 30% is at or above "
        "the disqualify threshold <1%"
    )
    assert route_reason("disqualify", 0.001, 0.001, t, percent=True) == (
        "potential 0.1% is below the disqualify threshold 0.4%"
    )
    wide = Thresholds(sales=0.9996, disqualify=0.05)
    assert route_reason("disqualify", 0.7, 0.001, wide, percent=True) == (
        "potential <1% is below the disqualify threshold 5%"
    )
    assert route_reason("nurture", 0.7, 0.5, wide, percent=True).startswith(
        "readiness 70% is below the sales threshold >99%"
    )


def test_the_exploration_slice_takes_only_eligible_leads_and_names_each_propensity():
    ids = [f"lead-{i}" for i in range(20_000)]
    routes = np.array(["nurture", "sales", "disqualify", "nurture"] * 5000, dtype=object)
    explored, propensity = Exploration(0.1).choose(ids, routes)
    nurture = routes == "nurture"
    assert not explored[~nurture].any()  # sales (hand-raises too) and disqualify never explored
    share = explored[nurture].mean()
    assert abs(share - 0.1) < 3 * np.sqrt(0.1 * 0.9 / nurture.sum())
    assert np.all(propensity[explored] == 0.1)
    assert np.all(propensity[nurture & ~explored] == 0.9)
    assert np.all(propensity[~nurture] == 1.0)
    with_disqualify, weights = Exploration(0.1, disqualify=True).choose(ids, routes)
    assert with_disqualify[routes == "disqualify"].any()
    assert np.array_equal(with_disqualify[nurture], explored[nurture])
    assert np.all(weights[(routes == "disqualify") & ~with_disqualify] == 0.9)


def test_a_lead_keeps_its_place_in_the_slice_and_a_larger_share_keeps_the_smaller_ones():
    ids = [f"L{i}" for i in range(5000)]
    routes = np.full(len(ids), "nurture", dtype=object)
    small, _ = Exploration(0.02).choose(ids, routes)
    again, _ = Exploration(0.02).choose(list(reversed(ids)), routes)
    assert np.array_equal(small, again[::-1])  # by id, not by position or call
    large, _ = Exploration(0.2).choose(ids, routes)
    assert small.any() and np.all(large[small])
    assert np.array_equal(lead_draws(["L7"]), lead_draws(["L7"]))
    off, propensity = Exploration().choose(ids, routes)
    assert not off.any() and np.all(propensity == 1.0)


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5])
def test_an_exploration_share_outside_0_to_1_is_refused_in_words(share):
    with pytest.raises(ValueError, match="at least 0 and below 1"):
        Exploration(share)


def test_an_explored_lead_says_it_is_in_the_slice_and_what_the_policy_said():
    reason = Exploration(0.02).reason("nurture", "readiness 0.100 is below the sales threshold")
    assert reason.startswith("exploration: one of a random 2% of the leads the policy would")
    assert "keep in nurture" in reason and "readiness 0.100 is below" in reason
