"""`leadready monitor`: the champion's live traffic in the lead store against its own data.

The leads the champion scored in a window (their latest score, `current_scores`) are compared
with the profile training stored in the model (`features.metadata.Profile`): each monitored
input's population stability index and share of unseen categories (`features.drift`), the
readiness distribution against the hold-out's, and the route shares against the hold-out's.
Where outcomes have arrived, the scores the champion gave in the window (`score_history`) of
leads since won or lost are measured as training measured its hold-out: the label is a win
within the model's horizon of the score, ROC AUC and expected calibration error with 95%
bootstrap intervals over leads (`features.evaluation`). The scores of the exploration slice
(leads the policy would have kept in nurture, sent to sales at random: `features.routing.
Exploration`) whose outcome arrived give the win rate by readiness band free of the policy's
selection, each score weighted by 1 / its propensity. docs/monitoring.md says how to read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa

from leadready.features.drift import (
    MIN_ROWS,
    PSI_DRIFT,
    PSI_STABLE,
    FieldDrift,
    field_drift,
    input_drift,
    lead_inputs,
    psi,
)
from leadready.features.evaluation import (
    CalibrationTable,
    bootstrap_intervals,
    calibration_table,
    worse_than,
)
from leadready.features.leadstore.reading import lead_frame
from leadready.features.leadstore.tables import current_scores, leads, score_history
from leadready.features.metadata import ModelInfo
from leadready.features.routing import ROUTES
from leadready.serving.store import LoadedModel

HEALTHY = 0
DRIFT = 3
WORSE = 4
"""Exit statuses: healthy, input drift over the thresholds, performance or calibration worse
than the hold-out's beyond its interval (this one wins when both are true)."""
MIN_CLASS_LEADS = 20
"""Live AUC and calibration are judged with at least this many leads won within the horizon
and this many not."""
SEED = 0
EXPLORE_BANDS = 5
"""Readiness bands (of about equal weight) of the exploration slice's win rates."""
PSI_KEY = "monitor_psi_"
UNSEEN_KEY = "monitor_unseen_"
"""The MLflow metric keys of a field's PSI and unseen share: the prefix, then the field."""
REPORTS = "reports"
"""The models folder's subfolder where reports go by default (`report_path`), where the
workspace's Monitor page finds the latest one."""


def report_path(models_dir: Path, at: datetime) -> Path:
    """The default report of a run at `at`: names sort by time."""
    return models_dir / REPORTS / f"monitor-{at:%Y%m%dT%H%M%SZ}.html"


def latest_report(models_dir: Path) -> Path | None:
    """The newest report written to the default place, or None."""
    return max((models_dir / REPORTS).glob("monitor-*.html"), default=None)


class MonitorError(ValueError):
    """Nothing to monitor: a model without a profile, or no scores in the window."""


class Interval(NamedTuple):
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Performance:
    """Live scores of leads whose outcome arrived, against the hold-out's figures."""

    rows: int
    leads: int
    won_leads: int
    auc: Interval
    ece: Interval
    holdout_auc: Interval
    holdout_ece: Interval
    reliability: CalibrationTable

    @property
    def problems(self) -> list[str]:
        """Why the live scores are worse than the hold-out's beyond both intervals, if so."""
        return worse_than(
            self.auc, self.ece, self.holdout_auc, self.holdout_ece, "live", "the hold-out's"
        )


@dataclass(frozen=True)
class ExplorationSlice:
    """Scores of the exploration slice whose outcome arrived: the leads the policy would have
    kept in nurture that were sent to sales at random, each weighted by 1 / its propensity, so
    a band's share won estimates the true win rate of such leads (routed outcomes alone show
    only the leads the policy chose)."""

    rows: int
    leads: int
    won_leads: int
    bands: CalibrationTable
    """Per readiness band: mean readiness, weighted share won, weighted scores."""


@dataclass(frozen=True)
class MonitorReport:
    """Everything `leadready monitor` found, in the order the report shows it."""

    name: str
    version: str
    run_id: str
    trained_at: str
    since: datetime
    until: datetime
    leads: int
    other_versions: int
    """Leads whose latest score in the window came from another version: left out."""
    inputs: dict[str, FieldDrift]
    readiness: FieldDrift
    mean_readiness: float
    holdout_mean_readiness: float
    routes: dict[str, tuple[float, float]]
    """Route -> (share on the hold-out, live share)."""
    route_psi: float
    performance: Performance | None
    why_no_performance: str = ""
    notes: list[str] = field(default_factory=list)
    exploration: ExplorationSlice | None = None
    """None: no score of the exploration slice has an outcome yet."""

    @property
    def judged(self) -> bool:
        """Enough leads in the window to judge drift."""
        return self.leads >= MIN_ROWS

    @property
    def drifted(self) -> list[str]:
        """The monitored inputs over a threshold (none when too few leads to judge)."""
        return [name for name, d in self.inputs.items() if d.drifted] if self.judged else []

    @property
    def status(self) -> int:
        if self.performance is not None and self.performance.problems:
            return WORSE
        return DRIFT if self.drifted else HEALTHY

    def metrics(self) -> dict[str, float]:
        """The figures logged to the champion's MLflow run, by key."""
        out = {
            "monitor_status": float(self.status),
            "monitor_leads": float(self.leads),
            "monitor_readiness_psi": self.readiness.psi,
            "monitor_readiness_mean": self.mean_readiness,
            "monitor_route_psi": self.route_psi,
        }
        for name, d in self.inputs.items():
            out[PSI_KEY + name] = d.psi
            if d.profile.kind == "categorical":
                out[UNSEEN_KEY + name] = d.unseen
        for route, (_, live) in self.routes.items():
            out[f"monitor_route_share_{route}"] = live
        if self.performance is not None:
            p = self.performance
            out["monitor_outcome_leads"] = float(p.leads)
            for metric, ci in (("auc", p.auc), ("ece", p.ece)):
                out[f"monitor_{metric}"] = ci.value
                out[f"monitor_{metric}_low"] = ci.low
                out[f"monitor_{metric}_high"] = ci.high
        if self.exploration is not None:
            out["monitor_explore_leads"] = float(self.exploration.leads)
            out["monitor_explore_ece"] = self.exploration.bands.error
        return out


def monitor(
    store: sa.Engine, loaded: LoadedModel, since: datetime, until: datetime
) -> MonitorReport:
    """Compare the champion's scores in the lead store from `since` to `until` (naive UTC) with
    its profile; a MonitorError when it has none or scored nothing in the window."""
    info = loaded.scorer.info
    profile = info.profile
    if profile is None or info.crm is None:
        raise MonitorError(
            f"version {loaded.version} of '{loaded.name}' was trained before monitoring (its "
            "metadata holds no profile of its training data to compare with); retrain it with "
            "`leadready train --data DIR` or `--from-store`"
        )
    c = current_scores.c
    with store.connect() as connection, connection.begin():
        latest = pd.DataFrame(
            connection.execute(
                sa.select(c.lead_id, c.readiness, c.route, c.model_version).where(
                    c.scored_at >= since, c.scored_at <= until
                )
            ).all(),
            columns=["lead_id", "readiness", "route", "model_version"],
        )
        ours = latest[latest["model_version"] == loaded.version]
        if ours.empty:
            raise MonitorError(
                f"the lead store has no lead scored by version {loaded.version} of "
                f"'{loaded.name}' from {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC "
                f"({len(latest):,} by other versions); widen --since, or score leads first "
                "(`leadready store sweep` or the API's /v1/leads)"
            )
        frame = lead_frame(connection, list(ours["lead_id"]), info.custom)
        outcomes = _outcome_rows(connection, loaded.version, since, until)
    ours = ours.sort_values("lead_id", ignore_index=True)
    inputs = lead_inputs(frame, info.custom)
    notes = []
    if missing := [name for name in profile.inputs if name not in inputs]:
        notes.append(f"not in the store, so not compared: {', '.join(missing)}")
    drift = input_drift(profile, inputs)
    routes = {
        str(route): (
            info.routes[str(route)].share,
            float((ours["route"] == str(route)).mean()),
        )
        for route in ROUTES
    }
    won = _won(outcomes, info)
    performance, why = _performance(outcomes, won, info)
    readiness = ours["readiness"].to_numpy(dtype=np.float64)
    return MonitorReport(
        name=loaded.name,
        version=loaded.version,
        run_id=loaded.run_id,
        trained_at=info.trained_at,
        since=since,
        until=until,
        leads=len(ours),
        other_versions=len(latest) - len(ours),
        inputs=drift,
        readiness=field_drift(profile.readiness, readiness),
        mean_readiness=float(readiness.mean()),
        holdout_mean_readiness=profile.readiness_mean,
        routes=routes,
        route_psi=psi(
            np.array([r for r, _ in routes.values()]), np.array([v for _, v in routes.values()])
        ),
        performance=performance,
        why_no_performance=why,
        notes=notes,
        exploration=_exploration(outcomes, won),
    )


def _outcome_rows(
    connection: sa.Connection, version: str, since: datetime, until: datetime
) -> pd.DataFrame:
    """The version's scores in the window of leads since won or lost, given before the outcome
    (a won lead without an outcome date cannot say whether it was won within the horizon)."""
    h, lead = score_history.c, leads.c
    query = (
        sa.select(
            h.lead_id,
            h.readiness,
            h.scored_at,
            h.route,
            h.explore,
            h.propensity,
            lead.outcome,
            lead.outcome_at,
        )
        .join(leads, lead.lead_id == h.lead_id)
        .where(
            h.model_version == version,
            h.scored_at >= since,
            h.scored_at <= until,
            lead.outcome.in_(("won", "lost")),
            sa.or_(lead.outcome_at.is_(None), h.scored_at < lead.outcome_at),
            sa.or_(lead.outcome_at.is_not(None), lead.outcome == "lost"),
        )
    )
    return pd.DataFrame(
        connection.execute(query).all(),
        columns=[
            "lead_id",
            "readiness",
            "scored_at",
            "route",
            "explore",
            "propensity",
            "outcome",
            "outcome_at",
        ],
    )


def _won(rows: pd.DataFrame, info: ModelInfo) -> np.ndarray:
    """1 per score of a lead won within the model's horizon of it, else 0."""
    assert info.crm is not None  # monitor checked it is a CRM-export model
    horizon = timedelta(days=info.crm.horizon_days)
    won = (rows["outcome"] == "won") & (
        pd.to_datetime(rows["outcome_at"]) - pd.to_datetime(rows["scored_at"]) <= horizon
    )
    return won.to_numpy(dtype=np.int64)


def _exploration(rows: pd.DataFrame, won: np.ndarray) -> ExplorationSlice | None:
    """The exploration slice's scores sent to sales whose outcome arrived, by readiness band,
    weighted by 1 / propensity; None when there are none."""
    mine = (rows["explore"].eq(True) & rows["route"].eq("sales")).to_numpy()
    if not mine.any():
        return None
    y = won[mine]
    weights = 1 / rows["propensity"].to_numpy(dtype=np.float64)[mine]
    p = rows["readiness"].to_numpy(dtype=np.float64)[mine]
    by_lead = pd.Series(y).groupby(rows["lead_id"].to_numpy()[mine]).max()
    return ExplorationSlice(
        rows=int(mine.sum()),
        leads=len(by_lead),
        won_leads=int(by_lead.sum()),
        bands=calibration_table(y, p, EXPLORE_BANDS, weights),
    )


def _performance(
    rows: pd.DataFrame, y: np.ndarray, info: ModelInfo
) -> tuple[Performance | None, str]:
    """Live AUC and calibration of the scores whose outcome arrived (`y`: won within the
    horizon of each), or why there are none."""
    assert info.crm is not None  # monitor checked it is a CRM-export model
    by_lead = pd.Series(y).groupby(rows["lead_id"].to_numpy()).max()
    positives, negatives = int(by_lead.sum()), int((by_lead == 0).sum())
    holdout = info.intervals.get("readiness", {})
    if "roc_auc" not in holdout or "ece" not in holdout:
        return None, "the model's metadata holds no hold-out ROC AUC and calibration to compare"
    if positives < MIN_CLASS_LEADS or negatives < MIN_CLASS_LEADS:
        return None, (
            f"too few outcomes yet: {positives:,} leads won within {info.crm.horizon_days} days "
            f"of a score and {negatives:,} not; at least {MIN_CLASS_LEADS} of each are needed"
        )
    p = rows["readiness"].to_numpy(dtype=np.float64)
    groups = rows["lead_id"].to_numpy()
    live = bootstrap_intervals(y, p, groups, seed=SEED)
    return (
        Performance(
            rows=len(rows),
            leads=int(len(by_lead)),
            won_leads=positives,
            auc=Interval(*live["roc_auc"]),
            ece=Interval(*live["ece"]),
            holdout_auc=Interval(*holdout["roc_auc"]),
            holdout_ece=Interval(*holdout["ece"]),
            reliability=calibration_table(y, p),
        ),
        "",
    )


def psi_verdict(value: float) -> str:
    """A PSI in words (docs/monitoring.md)."""
    if value > PSI_DRIFT:
        return "drift"
    return "moderate shift" if value >= PSI_STABLE else "stable"
