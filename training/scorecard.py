"""The classic BANT points scorecard: what teams do by hand, kept as the baseline to beat.

Points (documented in docs/training.md):
- budget: confirmed 20, indicated 10, none -10, unknown 0
- authority: decision_maker 20, influencer 10, user 0, unknown 0
- need: confirmed 20, indicated 10, none -10, unknown 0
- timeframe: lt_1m 20, 1_3m 15, 3_6m 5, 6_12m 0, gt_12m -10, unknown 0
- engagement: 2 per activity in the last 30 days (at most 20), 10 per buying signal (pricing-page
  view, webinar, demo or contact request) in the last 30 days (at most 30), and 1 per touch in
  the last 30 days (at most 10).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

POINTS = {
    "budget": {"confirmed": 20, "indicated": 10, "none": -10},
    "authority": {"decision_maker": 20, "influencer": 10},
    "need": {"confirmed": 20, "indicated": 10, "none": -10},
    "timeframe": {"lt_1m": 20, "1_3m": 15, "3_6m": 5, "gt_12m": -10},
}
SIGNALS_30D = ("pricing_page_view", "webinar_attended", "demo_request", "contact_request")


def scorecard_points(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Points per row from the feature columns of `features.build.build_features`."""
    points = np.zeros(len(columns["budget"]))
    for field, table in POINTS.items():
        points += np.array([table.get(v, 0) for v in columns[field]], dtype=np.float64)
    points += np.minimum(2 * columns["activities_30d"], 20)
    signals = sum(columns[f"activity_{s}_30d"] for s in SIGNALS_30D)
    points += np.minimum(10 * signals, 30)
    points += np.minimum(columns["touches_30d"], 10)
    return points
