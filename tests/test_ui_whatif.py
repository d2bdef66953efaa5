"""The workspace's what-if as pure functions (serving.ui.whatif): reading the change from a
query, the candidates, the changed leads as model inputs, and the suggestions kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadready.features.build import Events, Leads, build_features, to_seconds
from leadready.features.contract import BANT_FIELDS, load_crm
from leadready.features.table import flat_columns
from leadready.serving.explain import THEMES, describe, themed
from leadready.serving.ui.whatif import (
    ADDITIONS,
    FLAT_PREFIX,
    MAX_ADDED,
    MIN_GAIN,
    Candidate,
    Change,
    LeadHistory,
    best_changes,
    change_words,
    crm_candidates,
    crm_variants,
    flat_candidates,
    flat_changes,
    flat_variants,
    parse_change,
)

pytestmark = pytest.mark.unit

UNKNOWN = dict.fromkeys(BANT_FIELDS, "unknown")


def test_a_change_keeps_only_allowed_new_values_and_positive_counts():
    current = {**UNKNOWN, "budget": "none", "authority": "user"}
    query = {
        "budget": "confirmed",
        "authority": "user",  # the lead's own value: no change
        "need": "maybe",  # not a contract value
        "demo_requests": "3",
        "meetings": "99",
        "webinars": "many",
        "pricing_views": "-2",
        "unrelated": "1",
    }
    change = parse_change(query, current)
    assert change.bant == {"budget": "confirmed"}
    assert change.added == {"demo_requests": 3, "meetings": MAX_ADDED}
    assert change_words(change) == [
        "confirm budget",
        f"+{MAX_ADDED} sales meetings",
        "+3 demo requests",
    ]
    assert parse_change({}, current) == Change()


def test_candidates_try_every_other_known_bant_value_and_one_more_of_each_event():
    current = {**UNKNOWN, "timeframe": "lt_1m"}
    candidates = crm_candidates(current)
    bant = [(c, change) for c, change in candidates if change.bant]
    assert len(bant) == 3 + 3 + 3 + 4  # budget, authority, need, timeframe: not now, not unknown
    assert all(v not in ("unknown", current[k]) for _, ch in bant for k, v in ch.bant.items())
    added = [change.added for _, change in candidates if change.added]
    assert added == [{name: 1} for name in ADDITIONS]
    first, _ = candidates[0]
    assert first == Candidate("budget", "confirm budget", {"budget": "confirmed"}, "lead")
    # What sales and marketing can do is kept apart from what only the lead does.
    sides = {c.group: c.by for c, _ in candidates}
    assert {g for g, by in sides.items() if by == "us"} == {
        "sales_calls",
        "meetings",
        "marketing_emails",
        "event_invites",
        "webinars",
        "downloads",
    }
    assert sides["demo_requests"] == sides["contact_requests"] == sides["budget"] == "lead"


def test_the_best_change_of_each_group_is_kept_and_the_top_three_shown():
    candidates = [Candidate(group, group, {}) for group in ("a", "a", "b", "c", "d", "e")]
    before = 0.5
    readiness = [0.6, 0.7, 0.5 + MIN_GAIN / 2, 0.8, 0.55, 0.4]
    best = best_changes(before, candidates, readiness)
    assert [(c.group, i) for c, _, i in best] == [("c", 3), ("a", 1), ("d", 4)]
    assert [round(gain, 6) for _, gain, _ in best] == [0.3, 0.2, 0.05]
    assert best_changes(before, candidates[:1], [0.5]) == []  # nothing raises readiness
    sided = [Candidate("a", "a", {}, "us"), Candidate("b", "b", {}, "lead")]
    assert [c.group for c, _, _ in best_changes(before, sided, [0.6, 0.9], "us")] == ["a"]
    assert [c.group for c, _, _ in best_changes(before, sided, [0.6, 0.9], "lead")] == ["b"]


def test_changed_leads_are_the_batch_features_of_the_lead_with_the_change(tiny_crm):
    crm = load_crm(tiny_crm, require_outcome=False)
    as_of = int(to_seconds(pd.Series(pd.to_datetime(["2025-02-05"])))[0])
    ids = pd.Index(crm.leads["lead_id"])
    batch = build_features(
        Leads.from_frame(crm.leads),
        Events.activities_from_frame(crm.activities, ids),
        Events.touches_from_frame(crm.touches, ids),
        np.array([0]),
        np.array([as_of]),
    )
    history = LeadHistory.from_frames(
        crm.leads.iloc[[0]],
        crm.activities[crm.activities["lead_id"] == "L1"],
        crm.touches[crm.touches["lead_id"] == "L1"],
        {},
        as_of,
    )
    changes = [
        Change(),
        Change(bant={"budget": "none"}),
        Change(added={"demo_requests": 2, "sales_calls": 1}),
    ]
    columns = build_features(*crm_variants(history, changes), np.arange(3), np.full(3, as_of))
    for name, values in batch.items():
        np.testing.assert_array_equal(columns[name][:1], values, err_msg=name)
        if name != "budget":
            np.testing.assert_array_equal(columns[name][1:2], values, err_msg=name)
    assert columns["budget"][1] == "none" and batch["budget"][0] == "confirmed"
    # Events added at the scoring time: two demo requests (a hand-raise today) and an answered
    # sales call.
    assert columns["activity_demo_request_7d"][2] == batch["activity_demo_request_7d"][0] + 2
    assert columns["hand_raise_7d"][2] == 1 and columns["days_since_hand_raise"][2] == 0
    assert columns["touches_sales_total"][2] == batch["touches_sales_total"][0] + 1
    assert columns["touches_call_total"][2] == batch["touches_call_total"][0] + 1
    assert columns["days_since_last_touch"][2] == 0


def test_a_lead_without_events_can_still_be_changed(tiny_crm):
    crm = load_crm(tiny_crm, require_outcome=False)
    as_of = int(to_seconds(crm.leads["created_at"]).max()) + 86_400
    history = LeadHistory.from_frames(
        crm.leads.iloc[[2]], crm.activities.iloc[:0], crm.touches.iloc[:0], {}, as_of
    )
    assert history.activities.shape == (0, 2) and history.touches.shape == (0, 4)
    changes = [Change(), Change(added={"meetings": 3}), Change(added={"marketing_emails": 2})]
    leads, activities, touches = crm_variants(history, changes)
    columns = build_features(leads, activities, touches, np.arange(3), np.full(3, as_of))
    assert list(columns["touches_total"]) == [0, 3, 2]
    assert list(columns["touches_marketing_total"]) == [0, 0, 2]
    assert list(columns["touches_email_total"]) == [0, 0, 2]
    assert list(columns["activities_30d"]) == [0, 0, 0]


TYPES = {"visits": "numeric", "source": "categorical", "share": "numeric"}
CHOICES = {"source": ["ads", "referral", "web"]}


def test_flat_changes_keep_finite_numbers_and_known_categories():
    row = {"visits": "7", "source": "web", "share": ""}
    query = {
        FLAT_PREFIX + "visits": " 7 ",  # the row's own value
        FLAT_PREFIX + "source": "podcast",  # a value the model does not know
        FLAT_PREFIX + "share": "0.50",
        "visits": "9",  # not a what-if field
    }
    assert flat_changes(query, row, CHOICES, TYPES) == {"share": "0.5"}
    for bad in ("inf", "nan", "lots"):
        assert flat_changes({FLAT_PREFIX + "visits": bad}, row, CHOICES, TYPES) == {}
    assert flat_changes({FLAT_PREFIX + "visits": "1e3"}, row, CHOICES, TYPES) == {"visits": "1000"}


def test_flat_candidates_try_quantiles_above_the_row_and_every_other_category():
    frame = pd.DataFrame({"visits": ["2"], "source": ["web"], "share": [""]})
    columns = flat_columns(frame, TYPES)
    file_numbers = {
        "visits": np.array([0.0, 1.0, 2.0, 3.0, 4.0, np.nan]),
        "share": np.array([0.1, 0.2, np.nan]),
    }
    row = {"visits": "2", "source": "web", "share": ""}
    candidates = flat_candidates(row, columns, file_numbers, list(TYPES), CHOICES, TYPES)
    changes = [change for _, change in candidates]
    # visits: the median (2) is not above the row's 2; the 75th (3) and 90th (3.6) are.
    assert changes[:2] == [{"visits": "3"}, {"visits": "3.6"}]
    assert changes[2:4] == [{"source": "ads"}, {"source": "referral"}]
    # share is empty in the row: every quantile is tried.
    assert changes[4:] == [{"share": "0.15"}, {"share": "0.175"}, {"share": "0.19"}]
    first, _ = candidates[0]
    assert first.params == {FLAT_PREFIX + "visits": "3"}
    assert first.text == "visits 3 (the file's 75th percentile)"


def test_flat_variants_are_the_columns_of_the_row_with_the_change():
    frame = pd.DataFrame({"visits": ["3"], "source": ["web"], "share": [""]})
    columns = flat_columns(frame, TYPES)
    changes = [{}, {"visits": "1000"}, {"source": "referral", "share": "0.5"}]
    variants = flat_variants(columns, changes, TYPES)
    for i, change in enumerate(changes):
        changed = frame.copy()
        for name, value in change.items():
            changed.at[0, name] = value
        for name, values in flat_columns(changed, TYPES).items():
            np.testing.assert_array_equal(variants[name][i : i + 1], values, err_msg=name)
    np.testing.assert_array_equal(columns["visits"], [3.0])  # the row itself is not changed


def test_counts_of_one_are_singular_and_reasons_group_by_theme():
    labels = {
        "activity_pricing_page_view_30d": "pricing-page views in the last 30 days",
        "days_since_last_activity": "days since the last activity",
        "touches_marketing_total": "marketing touches so far",
        "lead_age_days": "days since the lead was created",
        "budget": "Budget",
        "source": "Lead source",
    }
    assert describe("activity_pricing_page_view_30d", 1.0, labels) == (
        "1 pricing-page view in the last 30 days"
    )
    assert describe("activity_pricing_page_view_30d", 2.0, labels) == (
        "2 pricing-page views in the last 30 days"
    )
    assert describe("days_since_last_activity", 1.0, labels) == "1 day since the last activity"
    assert describe("touches_marketing_total", 1.0, labels) == "1 marketing touch so far"
    assert describe("lead_age_days", 1.0, labels) == "Lead created 1 day ago"
    assert describe("lead_age_days", 1200.0, labels) == "Lead created 1,200 days ago"
    features = list(labels)
    columns = {name: np.array([1.0]) for name in features}
    columns["budget"] = np.array(["confirmed"], dtype=object)
    columns["source"] = np.array(["webinar"], dtype=object)
    # Many small pushes the same way: no "everything else" bar, each theme sums its inputs.
    terms = np.array([0.2, 0.1, -0.3, 0.05, 0.6, 0.02, -1.0])  # last: the base value
    groups = themed(terms, columns, 0, features, labels, grouped=True)
    assert [g["title"] for g in groups] == [
        THEMES["bant"],
        THEMES["engagement"],
        THEMES["touches"],
        THEMES["profile"],
    ]
    assert [round(g["total"], 6) for g in groups] == [0.6, 0.3, -0.3, 0.07]
    assert groups[3]["items"] == [("Lead created 1 day ago", 0.05), ("Lead source: webinar", 0.02)]

    # A flat row's columns are their own groups; the rest never outweighs the last one shown.
    def flat(terms: list[float]) -> list[dict]:
        names = [f"c{i}" for i in range(len(terms))]
        columns = {name: np.array([1.0]) for name in names}
        return themed(np.array([*terms, 0.0]), columns, 0, names, {}, grouped=False)

    many_small = flat([0.5] + [0.01] * 20)
    assert len(many_small) == 21 and many_small[0]["title"] == "c0: 1"
    few_small = flat([1.0] * 12 + [0.002] * 5)
    assert len(few_small) == 13 and few_small[-1]["title"] == "The other 5 inputs together"
