"""`leadready train`: from a validated CRM export to a fitted, evaluated `LeadScorer`.

Nothing here writes anything: `training.registry` logs and registers the result afterwards, so
a failure at any step leaves no run, model or registry entry behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from leadready.features.baselines import FrequencyMargin, ScorecardMargin
from leadready.features.build import (
    CATEGORICAL,
    HAND_RAISE_WINDOW,
    NUMERIC,
)
from leadready.features.contract import BANT_FIELDS, Crm
from leadready.features.drift import lead_inputs
from leadready.features.labels import FEATURE_LABELS
from leadready.features.metadata import CrmDetails, Policy
from leadready.features.model import Calibrated, FeatureEncoder, Margin
from leadready.features.routing import Thresholds
from leadready.training import SEARCH_SECONDS
from leadready.training.evaluate import DEFAULT_POLICY, Chosen, choose_thresholds, leads_per_week
from leadready.training.examples import (
    Snapshots,
    make_snapshots,
    snapshot_features,
    split_by_time,
)
from leadready.training.fit import fit_candidates, platt
from leadready.training.flat_table import CustomScan, scan_custom_features
from leadready.training.result import (
    Holdout,
    TrainingError,
    TrainResult,
    assemble,
    config_params,
    take,
)

MIN_WON = 40
MIN_LOST = 40
"""Below 40 won or 40 lost leads (the minimum CRM suites ask for), train registers the BANT
scorecard, calibrated on what history there is, instead of a learned model (cold start)."""
COLD_START_DEFAULT = (0.05, -3.0)
"""Points-to-log-odds mapping when even calibration has too little data: 60 points = 50%."""
SEARCH_SHARE = {"ready": 2 / 3, "potential": 1 / 3}
"""How the hyperparameter-search budget is shared: readiness is what routes leads."""
STEPS = (
    "Building snapshots",
    "Building features",
    "Fitting readiness models",
    "Fitting potential models",
    "Scoring the test set",
    "Explaining global drivers",
)


@dataclass(frozen=True)
class TrainConfig:
    step_days: int = 14
    horizon_days: int = 90
    policy: Policy = DEFAULT_POLICY
    test_share: float = 0.2
    seed: int = 0
    threads: int = 2
    search_seconds: float = SEARCH_SECONDS


def fingerprint(crm: Crm) -> dict[str, str | int]:
    """Row counts, date range and a content hash of the export, for traceability."""
    digest = hashlib.sha256()
    for frame in (crm.leads, crm.activities, crm.touches):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    created = crm.leads["created_at"]
    return {
        "leads": len(crm.leads),
        "activities": len(crm.activities),
        "touches": len(crm.touches),
        "closed_leads": int(crm.leads["outcome"].isin(("won", "lost")).sum()),
        "first_created_at": str(created.min()),
        "last_created_at": str(created.max()),
        "sha256": digest.hexdigest()[:16],
    }


def _empty_inputs(crm: Crm) -> list[str]:
    """The inputs the export holds no information in: an events table without rows, a BANT
    field unknown for every lead. The model learns nothing from them."""
    tables = [name for name in ("activities", "touches") if getattr(crm, name).empty]
    bant = [name for name in BANT_FIELDS if (crm.leads[name] == "unknown").all()]
    return tables + bant


def _lopsided(snaps: Snapshots, masks: dict[str, np.ndarray]) -> str | None:
    """Why the time split cannot train a learned model (a part without both outcomes of a
    label), or None."""
    for part, mask in masks.items():
        for label in ("ready", "potential"):
            values = getattr(snaps, label)[mask]
            if len(values) == 0 or values.min() == values.max():
                lacking = "positive" if len(values) and values.min() == 0 else "negative"
                if len(values) == 0:
                    lacking = "any"
                return f"the {part} part of the time split has no {lacking} '{label}' examples"
    return None


def _calibrated(base: Margin, x: np.ndarray, y: np.ndarray) -> Calibrated:
    """Platt-scale a margin model on (x, y), or use the default mapping without both classes."""
    if len(y) and 0 < y.sum() < len(y):
        return Calibrated(base, *platt(base.margin(x), y))
    return Calibrated(base, *COLD_START_DEFAULT)


def _baselines(
    encoder: FeatureEncoder, parts: dict[str, np.ndarray], y: dict[str, np.ndarray]
) -> dict[str, Calibrated]:
    """The BANT scorecard and the frequency score, fitted on the fit slice, Platt-scaled on
    the validation slice."""
    frequency = FrequencyMargin(len(encoder.categorical)).fit(parts["fit"], y["fit"])
    return {
        "bant_scorecard": _calibrated(
            ScorecardMargin(encoder), parts["validation"], y["validation"]
        ),
        "frequency_score": _calibrated(frequency, parts["validation"], y["validation"]),
    }


def _is_cold_start(leads: pd.DataFrame) -> bool:
    outcome = leads["outcome"]
    return int((outcome == "won").sum()) < MIN_WON or int((outcome == "lost").sum()) < MIN_LOST


def _nothing_to_learn(outcome: pd.Series) -> str:
    """Why an export without won leads to learn from cannot train, by what it does hold."""
    won, lost = int((outcome == "won").sum()), int((outcome == "lost").sum())
    if won + lost == 0:
        return (
            f"the export has no closed leads ({len(outcome):,} leads, all open): readiness "
            "learns from leads that were won or lost. If leads that never closed count as lost "
            "after a while, give --lost-after DAYS"
        )
    if won == 0:
        return (
            f"the export has no won leads ({lost:,} lost, {len(outcome) - lost:,} open): "
            "readiness learns what the won ones had in common"
        )
    return (
        f"the export's {won:,} won leads have no history to learn from (each was won the "
        "moment it was created); readiness needs won leads seen while they were still open"
    )


def train(
    crm: Crm,
    config: TrainConfig,
    step: Callable[[str], None] = lambda _: None,
    scan: CustomScan | None = None,
    features: Callable[[Crm, Snapshots], dict[str, np.ndarray]] = snapshot_features,
) -> TrainResult:
    """Fit, select, calibrate and evaluate; see docs/training.md for the method. `scan` is
    the id and leakage checks on the export's custom features when the caller already ran
    them (to print their warnings first). `features` builds the snapshots' feature table
    (`training.spark` builds it on Spark)."""
    step(STEPS[0])
    if scan is None:
        scan = scan_custom_features(crm, config.seed)
    snaps = make_snapshots(crm.leads, config.step_days, config.horizon_days)
    if len(snaps) == 0 or snaps.potential.sum() == 0:
        raise TrainingError(_nothing_to_learn(crm.leads["outcome"]))
    notes: list[str] = []
    cold = _is_cold_start(crm.leads)
    split = split_by_time(snaps, config.test_share)
    masks = {"fit": split.fit, "validation": split.validation, "test": split.test}
    lopsided = None if cold else _lopsided(snaps, masks)
    if lopsided:
        cold = True
        notes.append(
            f"cold start: {lopsided} (won and lost leads are not spread over the export's "
            "date range), so the BANT scorecard is registered instead of a learned model"
        )

    step(STEPS[1])
    columns = features(crm, snaps)
    custom = crm.custom
    encoder = FeatureEncoder(
        categorical=(*CATEGORICAL, *(c for c, k in custom.items() if k == "categorical")),
        numeric=(*NUMERIC, *(c for c, k in custom.items() if k == "numeric")),
        min_count=2 if cold else 20,
    ).fit(take(columns, split.fit | split.validation if cold else split.fit))
    x = encoder.transform(columns)
    vocab_sizes = [len(encoder.vocabulary_[name]) for name in encoder.vocabulary_]
    parts = {name: x[mask] for name, mask in masks.items()}
    labels = {
        name: {part: getattr(snaps, name)[mask] for part, mask in masks.items()}
        for name in ("ready", "potential")
    }

    leaderboard: list[dict[str, object]] = []
    models: dict[str, Calibrated] = {}
    kinds: dict[str, str] = {}
    for target, label in ((STEPS[2], "ready"), (STEPS[3], "potential")):
        step(target)
        if cold:
            # Too little history to learn from: the documented points, calibrated on all of it.
            seen = split.fit | split.validation
            models[label] = _calibrated(
                ScorecardMargin(encoder), x[seen], getattr(snaps, label)[seen]
            )
            kinds[label] = "bant_scorecard (cold start)"
            continue
        selection = fit_candidates(
            parts["fit"],
            labels[label]["fit"],
            snaps.created_at[split.fit],
            parts["validation"],
            labels[label]["validation"],
            vocab_sizes,
            config.seed,
            config.threads,
            config.search_seconds * SEARCH_SHARE[label],
        )
        candidates = selection.candidates
        notes += [f"{label}: {note}" for note in selection.notes]
        best = candidates[0]
        assert best.model is not None  # fit_candidates puts its explainable candidates first
        models[label], kinds[label] = best.model, best.name
        leaderboard += [
            {
                "target": label,
                "candidate": c.name,
                "cv_roc_auc": round(c.cv_auc, 4),
                "validation_roc_auc": round(c.validation_auc, 4),
                "explainable": c.explainable,
                "chosen": c is candidates[0],
                "params": json.dumps(c.params, sort_keys=True),
            }
            for c in candidates
        ]

    step(STEPS[4])
    readiness, potential = models["ready"], models["potential"]
    hand_raise = columns[f"hand_raise_{HAND_RAISE_WINDOW}d"]
    tuning = split.fit | split.validation if cold else split.validation
    if cold and not 0 < snaps.ready[tuning].sum() < tuning.sum():
        routing = Chosen(
            Thresholds(sales=0.5, disqualify=0.0),
            ("too few won leads to choose thresholds: sales from 0.5, nothing disqualified",),
        )
    else:
        routing = choose_thresholds(
            readiness.proba(x[tuning]),
            potential.proba(x[tuning]),
            snaps.ready[tuning],
            snaps.potential[tuning],
            config.policy,
            groups=snaps.lead[tuning],
            leads_per_week=leads_per_week(crm.leads["created_at"]),
        )
    test = split.test
    baselines = _baselines(encoder, parts, labels["ready"]) if not cold else {}
    scored = {"readiness": readiness, "potential": potential, **baselines}
    holdout = Holdout(
        columns=take(columns, test),
        ready=snaps.ready[test],
        won=snaps.potential[test],
        hand_raise=hand_raise[test],
        scores={name: model.proba(parts["test"]) for name, model in scored.items()},
        groups=snaps.lead[test],
        lead_ids=crm.leads["lead_id"].to_numpy()[snaps.lead[test]],
    )
    data = fingerprint(crm)
    fitted = snaps.lead[split.fit | split.validation if cold else split.fit]
    return assemble(
        cold_start=cold,
        encoder=encoder,
        models=models,
        kinds=kinds,
        routing=routing,
        config=config,
        leaderboard=leaderboard,
        explained=x,
        labels={**FEATURE_LABELS, **{name: name for name in custom}},
        holdout=holdout,
        details=CrmDetails.model_validate(
            {
                "horizon_days": config.horizon_days,
                "step_days": config.step_days,
                "schema_tables": crm.schema.stored() if crm.schema else {},
                "lost_after_days": crm.lost_after,
                "closed_as_lost": crm.closed_as_lost,
                "empty_inputs": _empty_inputs(crm),
                "suspected_leakage": scan.leakage,
                "single_feature_auc": scan.single_auc,
                "data": data,
                "split": {
                    "validation_from": datetime.fromtimestamp(
                        split.validation_from, UTC
                    ).isoformat(),
                    "test_from": datetime.fromtimestamp(split.test_from, UTC).isoformat(),
                    **{f"{k}_rows": int(m.sum()) for k, m in masks.items()},
                },
            }
        ),
        custom=dict(custom),
        fingerprint=data,
        params={
            **config_params(config),
            "readiness_model": kinds["ready"],
            "potential_model": kinds["potential"],
            "cold_start": cold,
        },
        explaining=lambda: step(STEPS[5]),
        notes=notes,
        trained_ids=crm.leads["lead_id"].to_numpy()[
            np.unique(snaps.lead[split.fit | split.validation])
        ],
        monitored={
            name: (kind, values[fitted])
            for name, (kind, values) in lead_inputs(crm.leads, custom).items()
        }
        if len(fitted)
        else None,  # a cold start without history: nothing to profile
    )
