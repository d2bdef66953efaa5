"""Training examples: snapshots of closed leads as they were, their labels, and the time split.

A snapshot is `(lead, as_of)` for `as_of = created_at + k * step` while `as_of < outcome_at`.
Labels: `ready` = the lead was won within `horizon` days after `as_of` (ready to buy now, not
someday); `potential` = the lead was eventually won.

The split is by time and by lead: leads created on or after the cut-off `T` form the test set
(about the newest 20% of snapshots); the training side keeps older leads' snapshots taken before
`T`. The same rule inside the training side gives the validation slice, its newest leads: the
fit slice keeps the older leads' snapshots taken before that second cut-off, and the validation
slice keeps its leads' whole histories, as the test set does, because calibration and routing
thresholds are chosen on it and must see leads the way the test set (and production) does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadready.features.build import DAY, Events, Leads, build_features, to_seconds
from leadready.features.contract import Crm


@dataclass(frozen=True)
class Snapshots:
    """Parallel arrays, one entry per snapshot; `lead` indexes the leads frame."""

    lead: np.ndarray
    as_of: np.ndarray  # Unix seconds
    created_at: np.ndarray  # the lead's creation, Unix seconds
    ready: np.ndarray
    potential: np.ndarray

    def __len__(self) -> int:
        return len(self.lead)

    def subset(self, mask: np.ndarray) -> Snapshots:
        return Snapshots(
            *(getattr(self, f)[mask] for f in ("lead", "as_of", "created_at", "ready", "potential"))
        )


@dataclass(frozen=True)
class Split:
    """Masks over snapshots, and the cut-off dates (Unix seconds) that made them."""

    fit: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    validation_from: int
    test_from: int


def make_snapshots(leads: pd.DataFrame, step_days: int, horizon_days: int) -> Snapshots:
    """Snapshots of every closed lead; vectorised over leads."""
    closed = leads["outcome"].isin(("won", "lost")).to_numpy()
    positions = np.flatnonzero(closed)
    created = to_seconds(leads["created_at"])[positions]
    ended = to_seconds(leads["outcome_at"].iloc[positions])
    won = leads["outcome"].to_numpy()[positions] == "won"
    step = step_days * DAY
    counts = np.maximum(np.ceil((ended - created) / step).astype(np.int64), 0)
    lead = np.repeat(positions, counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    k = np.arange(counts.sum()) - starts
    created_rep = np.repeat(created, counts)
    as_of = created_rep + k * step
    ended_rep = np.repeat(ended, counts)
    won_rep = np.repeat(won, counts)
    ready = won_rep & (ended_rep - as_of <= horizon_days * DAY)
    return Snapshots(lead, as_of, created_rep, ready.astype(np.int64), won_rep.astype(np.int64))


def snapshot_features(crm: Crm, snaps: Snapshots) -> dict[str, np.ndarray]:
    """The feature columns of every snapshot, each as its lead was at `as_of` (the custom
    features the export was read with included)."""
    lead_ids = pd.Index(crm.leads["lead_id"])
    return build_features(
        Leads.from_frame(crm.leads, crm.custom),
        Events.activities_from_frame(crm.activities, lead_ids),
        Events.touches_from_frame(crm.touches, lead_ids),
        snaps.lead,
        snaps.as_of,
    )


def _cutoff(created_at: np.ndarray, share: float) -> int:
    """The creation date from which leads hold about `share` of the given snapshots."""
    return int(np.quantile(created_at, 1.0 - share, method="higher"))


def split_by_time(
    snaps: Snapshots, test_share: float = 0.2, validation_share: float = 0.2
) -> Split:
    test_from = _cutoff(snaps.created_at, test_share)
    test = snaps.created_at >= test_from
    train = (snaps.created_at < test_from) & (snaps.as_of < test_from)
    # Without any older snapshot (one closed lead, or all created the same day) the training
    # side is empty: a cold start calibrates nothing, and says so.
    validation_from = (
        _cutoff(snaps.created_at[train], validation_share) if train.any() else test_from
    )
    validation = (snaps.created_at < test_from) & (snaps.created_at >= validation_from)
    fit = train & (snaps.created_at < validation_from) & (snaps.as_of < validation_from)
    return Split(fit, validation, test, validation_from, test_from)
