"""Outcomes an export does not state: the lost-after rule (docs/data-contract.md).

Real CRMs often record when a deal was won but never when a lead was lost: a lead that simply
stopped answering stays "open" forever. With a rule of `days` (`leadready train --lost-after`,
or the schema's `leads.lost_after`), a lead still open `days` or more after its creation at the
export's end counts as lost at `created_at + days`; a lead exported as lost without a date is
lost at `created_at + days` too, or at the export's end when that comes first. Training and
`score --data` apply the same rule, so a lead training counts as lost is never scored as open.
"""

from __future__ import annotations

import pandas as pd


def export_end(leads: pd.DataFrame, *events: pd.DataFrame) -> pd.Timestamp | None:
    """The latest time an export records (creation, outcome or event), None when it has none."""
    times = [leads["created_at"].max(), *(frame["occurred_at"].max() for frame in events)]
    if "outcome_at" in leads:
        times.append(leads["outcome_at"].max())
    known = [t for t in times if pd.notna(t)]
    return max(known) if known else None


def close_lost_after(leads: pd.DataFrame, days: int, end: pd.Timestamp) -> tuple[pd.DataFrame, int]:
    """`leads` (a loaded table, with outcome and outcome_at) with the rule applied at `end`,
    a new frame, and how many leads it closed or dated."""
    outcome, created = leads["outcome"], leads["created_at"]
    lost_at = created + pd.Timedelta(days=days)
    stale = (outcome == "open") & (lost_at <= end)
    undated = (outcome == "lost") & leads["outcome_at"].isna()
    changed = stale | undated
    out = leads.copy()
    out.loc[changed, "outcome"] = "lost"
    out.loc[changed, "outcome_at"] = lost_at[changed].where(lost_at[changed] <= end, end)
    return out, int(changed.sum())
