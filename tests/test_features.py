"""Point-in-time features: agree with an obvious per-row reference, and never leak the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadready.features.build import (
    DAY,
    FEATURES,
    NUMERIC,
    Events,
    Leads,
    build_features,
    to_seconds,
)
from leadready.features.contract import ACTIVITY_TYPES, CHANNELS, TEAMS, load_crm

pytestmark = pytest.mark.unit

START = pd.Timestamp("2025-01-01")


def random_crm(seed: int, n_leads: int = 40, n_activities: int = 800, n_touches: int = 300):
    rng = np.random.default_rng(seed)
    ids = [f"L{i}" for i in range(n_leads)]
    created = START + pd.to_timedelta(rng.integers(0, 200, n_leads), unit="D")
    leads = pd.DataFrame(
        {
            "lead_id": ids,
            "created_at": created,
            "source": rng.choice(["referral", "web_form", "trade_show"], n_leads),
            "industry": rng.choice(["software", "retail"], n_leads),
            "company_size": np.where(
                rng.random(n_leads) < 0.3, np.nan, rng.integers(1, 9000, n_leads)
            ),
            "budget": rng.choice(["confirmed", "unknown"], n_leads),
            "authority": rng.choice(["user", "unknown"], n_leads),
            "need": rng.choice(["none", "unknown"], n_leads),
            "timeframe": rng.choice(["lt_1m", "unknown"], n_leads),
        }
    )

    def events(n: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "lead_id": rng.choice(ids, n),
                "occurred_at": START + pd.to_timedelta(rng.integers(0, 300 * DAY, n), unit="s"),
            }
        )

    activities = events(n_activities).assign(type=rng.choice(ACTIVITY_TYPES, n_activities))
    touches = events(n_touches).assign(
        channel=rng.choice(CHANNELS, n_touches),
        team=rng.choice(TEAMS, n_touches),
        responded=rng.choice([0.0, 1.0, np.nan], n_touches),
    )
    return leads, activities, touches


def compute(leads, activities, touches, lead, as_of):
    ids = pd.Index(leads["lead_id"])
    return build_features(
        Leads.from_frame(leads),
        Events.activities_from_frame(activities, ids),
        Events.touches_from_frame(touches, ids),
        lead,
        as_of,
    )


def reference_row(leads, activities, touches, i: int, as_of: pd.Timestamp) -> dict[str, float]:
    """The obvious, slow definition of a few features for one (lead, as_of)."""
    lead_id = leads["lead_id"][i]
    acts = activities[(activities.lead_id == lead_id) & (activities.occurred_at <= as_of)]
    tch = touches[(touches.lead_id == lead_id) & (touches.occurred_at <= as_of)]

    def recent(frame, days):
        return frame[frame.occurred_at > as_of - pd.Timedelta(days=days)]

    known = tch.responded.dropna()
    return {
        "lead_age_days": (as_of - leads["created_at"][i]) / pd.Timedelta(days=1),
        "activity_pricing_page_view_30d": float(
            (recent(acts, 30).type == "pricing_page_view").sum()
        ),
        "activity_email_open_7d": float((recent(acts, 7).type == "email_open").sum()),
        "activity_demo_request_90d": float((recent(acts, 90).type == "demo_request").sum()),
        "activities_30d": float(len(recent(acts, 30))),
        "days_since_last_activity": (
            (as_of - acts.occurred_at.max()) / pd.Timedelta(days=1) if len(acts) else np.nan
        ),
        "touches_total": float(len(tch)),
        "touches_30d": float(len(recent(tch, 30))),
        "touches_sales_30d": float((recent(tch, 30).team == "sales").sum()),
        "touches_call_total": float((tch.channel == "call").sum()),
        "touches_responded_share": known.mean() if len(known) else np.nan,
        "days_since_last_touch": (
            (as_of - tch.occurred_at.max()) / pd.Timedelta(days=1) if len(tch) else np.nan
        ),
        "hand_raise_7d": float(
            recent(acts, 7).type.isin(["demo_request", "contact_request"]).any()
        ),
        "buying_signal_14d": float(
            recent(acts, 14).type.isin(["demo_request", "contact_request"]).any()
        ),
        "days_since_hand_raise": hand_raise_days(acts, as_of),
    }


def hand_raise_days(acts: pd.DataFrame, as_of: pd.Timestamp) -> float:
    raised = acts[acts.type.isin(["demo_request", "contact_request"])]
    return (as_of - raised.occurred_at.max()) / pd.Timedelta(days=1) if len(raised) else np.nan


def test_features_match_the_per_row_reference():
    leads, activities, touches = random_crm(seed=1)
    rng = np.random.default_rng(2)
    lead = rng.integers(0, len(leads), 150)
    as_of = START + pd.to_timedelta(rng.integers(0, 320 * DAY, 150), unit="s")
    features = compute(leads, activities, touches, lead, to_seconds(as_of))
    assert list(features) == list(FEATURES)
    for row in range(len(lead)):
        expected = reference_row(leads, activities, touches, lead[row], as_of[row])
        for name, value in expected.items():
            np.testing.assert_allclose(features[name][row], value, err_msg=f"{name} row {row}")


def test_events_after_as_of_change_no_feature():
    leads, activities, touches = random_crm(seed=3)
    lead = np.arange(len(leads))
    as_of = to_seconds(leads["created_at"]) + 60 * DAY
    before = compute(leads, activities, touches, lead, as_of)
    rng = np.random.default_rng(4)
    cutoff = pd.to_datetime(as_of, unit="s")
    future_acts = pd.DataFrame(
        {
            "lead_id": leads["lead_id"].repeat(20).to_numpy(),
            "occurred_at": np.repeat(cutoff, 20)
            + pd.to_timedelta(rng.integers(1, 90 * DAY, 20 * len(leads)), unit="s"),
            "type": rng.choice(ACTIVITY_TYPES, 20 * len(leads)),
        }
    )
    future_touches = future_acts.rename(columns={"type": "channel"}).assign(
        channel=rng.choice(CHANNELS, len(future_acts)), team="sales", responded=1.0
    )
    after = compute(
        leads,
        pd.concat([activities, future_acts]),
        pd.concat([touches, future_touches]),
        lead,
        as_of,
    )
    for name in FEATURES:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)
    # The future events are real: at a later as_of they do count.
    later = compute(
        leads,
        pd.concat([activities, future_acts]),
        pd.concat([touches, future_touches]),
        lead,
        as_of + 91 * DAY,
    )
    assert later["touches_total"].sum() > before["touches_total"].sum()


def test_one_lead_gives_the_same_features_as_the_batch():
    leads, activities, touches = random_crm(seed=5)
    lead = np.arange(len(leads))
    as_of = to_seconds(leads["created_at"]) + 45 * DAY
    batch = compute(leads, activities, touches, lead, as_of)
    i = 7
    one = compute(
        leads.iloc[[i]].reset_index(drop=True),
        activities[activities.lead_id == leads.lead_id[i]],
        touches[touches.lead_id == leads.lead_id[i]],
        np.array([0]),
        as_of[[i]],
    )
    for name in FEATURES:
        np.testing.assert_array_equal(one[name], batch[name][[i]], err_msg=name)


def test_a_lead_without_events_has_zero_counts_and_no_recency(tiny_crm):
    crm = load_crm(tiny_crm)
    features = compute(
        crm.leads,
        crm.activities.iloc[:0],
        crm.touches.iloc[:0],
        np.array([2]),
        to_seconds(pd.to_datetime(["2025-03-01"])),
    )
    counts = [n for n in NUMERIC if "_total" in n or n.endswith("d") and "days" not in n]
    assert all(features[n][0] == 0 for n in counts)
    assert np.isnan(features["days_since_last_activity"][0])
    assert np.isnan(features["days_since_last_touch"][0])
    assert np.isnan(features["touches_responded_share"][0])
    assert features["budget"][0] == "indicated" and features["company_size_band"][0] == "1-10"


@pytest.mark.parametrize(
    "size,band",
    [
        (1, "1-10"),
        (10, "1-10"),
        (11, "11-50"),
        (5000, "1001-5000"),
        (5001, "5000+"),
        (np.nan, "unknown"),
    ],
)
def test_company_size_bands(size, band):
    from leadready.features.build import size_band

    assert size_band(np.array([size], dtype=float))[0] == band
