"""Drift of live traffic from a model's data: the profile training stores with a model
(`features.metadata.Profile`) and what `leadready monitor` measures against it.

A profile holds, per monitored value, bins and the share of the model's rows in each: a numeric
value is cut at the deciles of its known values (ties merged, so a count that is mostly zero
has fewer bins), plus a bin of missing values; a categorical value has one bin per category.
Live values are put into the same bins; a category the profile does not have counts in a bin
of its own, unseen. The population stability index (PSI) then sums (live - reference) x
ln(live / reference) over the bins, with shares floored at SHARE_FLOOR so an empty bin costs a
finite amount. Common practice reads a PSI below 0.1 as stable, up to 0.25 as a moderate shift,
above as drift (docs/monitoring.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadready.features.contract import BANT_FIELDS
from leadready.features.metadata import FeatureKind, FieldProfile, Profile

BINS = 10
"""Numeric values are cut at their deciles on the reference rows."""
SHARE_FLOOR = 1e-4
"""A bin's share counts as at least this in the PSI: an empty bin would make it infinite."""
PSI_STABLE = 0.1
PSI_DRIFT = 0.25
"""A PSI above this is drift (`leadready monitor` exits 3); from PSI_STABLE to it, a moderate
shift worth watching."""
UNSEEN_DRIFT = 0.05
"""More than this share of live leads with a category the model's rows never had is drift."""
MIN_ROWS = 100
"""Fewer rows than this are too few to judge drift (the figures are still shown)."""
MISSING = "missing"
UNSEEN = "unseen"
LEAD_FIELDS: dict[str, FeatureKind] = {
    "source": "categorical",
    "industry": "categorical",
    "company_size": "numeric",
    **dict.fromkeys(BANT_FIELDS, "categorical"),
}
"""The contract fields of a lead that are monitored (with the custom features): what a lead is,
as marketing sends it. Engagement (activity and touch counts, days since...) is not: see
docs/monitoring.md."""


def lead_inputs(
    leads: pd.DataFrame, custom: Mapping[str, str]
) -> dict[str, tuple[FeatureKind, np.ndarray]]:
    """The monitored values of a leads frame (contract columns, custom features as columns):
    name -> (kind, one value per row: floats with NaN for numeric ones, text for the others)."""
    kinds: dict[str, FeatureKind] = {
        **LEAD_FIELDS,
        **{n: "numeric" if kind == "numeric" else "categorical" for n, kind in custom.items()},
    }
    return {
        name: (
            kind,
            leads[name].to_numpy(dtype=np.float64)
            if kind == "numeric"
            else leads[name].astype(str).to_numpy(dtype=object),
        )
        for name, kind in kinds.items()
    }


def _edge(value: float) -> str:
    return f"{value:.4g}"


def field_profile(kind: FeatureKind, values: np.ndarray, bins: int = BINS) -> FieldProfile:
    """The bins of `values` (the reference rows) and each bin's share of them."""
    if kind == "categorical":
        categories, counts = np.unique(values.astype(str), return_counts=True)
        return FieldProfile(
            kind=kind,
            labels=[str(c) for c in categories],
            shares=(counts / counts.sum()).tolist(),
        )
    known = values[~np.isnan(values)]
    cuts = np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1]) if len(known) else []
    edges = [float(e) for e in np.unique(cuts)]
    labels = (
        [f"<= {_edge(edges[0])}"]
        + [f"{_edge(a)} to {_edge(b)}" for a, b in zip(edges, edges[1:], strict=False)]
        + [f"> {_edge(edges[-1])}"]
        if edges
        else ["any"]
    )
    profile = FieldProfile(kind=kind, labels=[*labels, MISSING], shares=[], edges=edges)
    return profile.model_copy(update={"shares": bin_shares(profile, values).tolist()})


def bin_index(profile: FieldProfile, values: np.ndarray) -> np.ndarray:
    """Each value's bin in `profile`: 0 to len(labels) - 1, or len(labels) for a category the
    profile does not have (unseen)."""
    if profile.kind == "categorical":
        position = pd.Index(profile.labels).get_indexer(pd.Index(values.astype(str)))
        return np.where(position < 0, len(profile.labels), position)
    numbers = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(np.asarray(profile.edges, dtype=np.float64), numbers, side="left")
    return np.where(np.isnan(numbers), len(profile.labels) - 1, index)


def bin_shares(profile: FieldProfile, values: np.ndarray) -> np.ndarray:
    """The share of `values` in each bin of `profile`, then (categorical) the unseen share."""
    extra = 1 if profile.kind == "categorical" else 0
    size = len(profile.labels) + extra
    counts = np.bincount(bin_index(profile, values), minlength=size)[:size]
    return counts / max(len(values), 1)


def psi(reference: np.ndarray, live: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    ref = np.maximum(np.asarray(reference, dtype=np.float64), SHARE_FLOOR)
    now = np.maximum(np.asarray(live, dtype=np.float64), SHARE_FLOOR)
    return float(((now - ref) * np.log(now / ref)).sum())


@dataclass(frozen=True)
class FieldDrift:
    """One monitored value, live against its profile: the shares per bin of both (the reference
    with 0 for unseen), the PSI, and the live share of unseen categories (0 for numbers)."""

    profile: FieldProfile
    reference: np.ndarray
    live: np.ndarray
    psi: float
    unseen: float

    @property
    def drifted(self) -> bool:
        return self.psi > PSI_DRIFT or self.unseen > UNSEEN_DRIFT


def field_drift(profile: FieldProfile, values: np.ndarray) -> FieldDrift:
    live = bin_shares(profile, values)
    reference = np.zeros(len(live))
    reference[: len(profile.shares)] = profile.shares
    unseen = float(live[len(profile.labels)]) if profile.kind == "categorical" else 0.0
    return FieldDrift(profile, reference, live, psi(reference, live), unseen)


def input_drift(
    profile: Profile, inputs: Mapping[str, tuple[FeatureKind, np.ndarray]]
) -> dict[str, FieldDrift]:
    """Each monitored input of `profile` that `inputs` (`lead_inputs`) has, against its bins."""
    return {
        name: field_drift(reference, inputs[name][1])
        for name, reference in profile.inputs.items()
        if name in inputs
    }


def drift_problems(drift: Mapping[str, FieldDrift], rows: int, against: str) -> list[str]:
    """Why `rows` rows drifted from `against` (a model's data), one line per drifted input;
    none with fewer than MIN_ROWS rows."""
    if rows < MIN_ROWS:
        return []
    return [
        f"'{name}' drifted from {against}: PSI {d.psi:.2f}"
        + (f", {d.unseen:.0%} unseen values" if d.unseen > UNSEEN_DRIFT else "")
        + f" (drift above PSI {PSI_DRIFT} or {UNSEEN_DRIFT:.0%} unseen)"
        for name, d in drift.items()
        if d.drifted
    ]


def reference_profile(
    inputs: Mapping[str, tuple[FeatureKind, np.ndarray]], readiness: np.ndarray
) -> Profile:
    """The profile of a model: its monitored inputs on its fit rows (`lead_inputs`, one entry
    per row) and the readiness it gave its hold-out."""
    rows = {len(values) for _, values in inputs.values()}
    return Profile(
        inputs={name: field_profile(kind, values) for name, (kind, values) in inputs.items()},
        readiness=field_profile("numeric", np.asarray(readiness, dtype=np.float64)),
        readiness_mean=float(np.mean(readiness)),
        fit_rows=rows.pop() if rows else 0,
        holdout_rows=len(readiness),
    )
