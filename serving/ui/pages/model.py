"""The Model page: each champion the server has (version, training date, hold-out metrics with
intervals, the columns a flat model left out and why, global drivers, calibration and
cumulative gains on its hold-out, routing thresholds with the share and win rate of each
route) beside the challenger. What it reads from the
registry is cached per process (`ModelReads`)."""

from __future__ import annotations

import math
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from leadready.features.evaluation import CALIBRATION_BINS, calibration_table, gains_table
from leadready.features.exclusions import distrust_words, exclusions
from leadready.features.metadata import ModelInfo
from leadready.features.registry import CHALLENGER, CHAMPION
from leadready.features.routing import ROUTES, Route, route_rules, route_warning
from leadready.serving.engine import Champions, Engine
from leadready.serving.flat import FlatModel
from leadready.serving.store import (
    holdout_scores,
    registry_versions,
    version_info,
)
from leadready.serving.ui.auth import SessionDep
from leadready.serving.ui.charts import ACCENT, MUTED, empty_chart, hbars, line_chart, route_strip
from leadready.serving.ui.formatting import capital
from leadready.serving.ui.web import (
    PREFIX,
    ChampionsDep,
    crm_model,
    flat_model,
    render,
    workspace,
)

REGISTRY_SECONDS = 15.0
METRICS = (
    (
        "roc_auc",
        "Ranking (ROC AUC)",
        "how often a lead that converted is scored above one that did not: 0.5 is a coin "
        "toss, 1 is perfect",
    ),
    (
        "pr_auc",
        "Precision at the top (PR AUC)",
        "the share of converting leads among the highest scored, averaged over every cut-off; "
        "higher is better",
    ),
    (
        "top_decile_lift",
        "Top-10% lift",
        "how many times more often the top 10% by score convert than leads on average",
    ),
    (
        "ece",
        "Calibration error",
        "how far the scores are from the rates observed, on average (0.02 = 2 points); "
        "lower is better",
    ),
    (
        "brier",
        "Brier score",
        "the mean squared gap between score and outcome; 0 is perfect, lower is better",
    ),
    (
        "log_loss",
        "Log loss",
        "like the Brier score, but punishing confident mistakes harder; lower is better",
    ),
)
SCORERS = (
    ("readiness", "readiness model"),
    ("bant_scorecard", "BANT scorecard"),
    ("frequency_score", "frequency score"),
    ("potential", "potential model (eventual win)"),
)
MODEL_KINDS = {"crm": "trained on CRM exports", "flat": "trained on flat tables"}

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def holdout_curves(scores: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any] | None:
    """Calibration bins (mean predicted, observed rate; CALIBRATION_BINS equal-size groups)
    and the cumulative gains curve (share contacted, share of wins captured) of the scores a
    hold-out got (`scores`: its labels and readiness); None without them or without a
    positive among the labels."""
    if scores is None or not scores[0].any():
        return None
    y, p = (np.asarray(values, dtype=float) for values in scores)
    table = calibration_table(y, p, CALIBRATION_BINS)
    bins = list(zip(table.predicted.tolist(), table.observed.tolist(), strict=True))
    curve = gains_table(y, p)
    steps = np.unique(np.linspace(0, len(y) - 1, min(len(y), 60)).astype(int)) + 1
    gains = [(0.0, 0.0)] + [(float(curve.share[i]), float(curve.captured[i])) for i in steps]
    top = curve.captured[max(1, len(y) // 5)]
    return {
        "bins": bins,
        "gains": gains,
        "rows": len(y),
        "base_rate": float(y.mean()),
        "top20": float(top),
    }


@dataclass
class ModelReads:
    """What the Model page read from the registry, per process: hold-out curves and training
    info per run (they never change), alias targets for REGISTRY_SECONDS."""

    models_dir: Path
    curves_by_run: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    infos: dict[str, ModelInfo | None] = field(default_factory=dict)
    versions_by_name: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def curves(self, model: Engine | FlatModel) -> dict[str, Any] | None:
        """Calibration and gains of a champion from the scores the hold-out test gave (logged
        with the run: a flat model is refitted on all rows afterwards, so rescoring the
        hold-out would reuse seen rows)."""
        key = (model.loaded.name, model.loaded.run_id)
        if key not in self.curves_by_run:
            scores = holdout_scores(self.models_dir, model.loaded.run_id)
            self.curves_by_run[key] = holdout_curves(scores)
        return self.curves_by_run[key]

    def info(self, run_id: str) -> ModelInfo | None:
        """The `model_info.json` training logged with a version's run."""
        if run_id not in self.infos:
            self.infos[run_id] = version_info(self.models_dir, run_id)
        return self.infos[run_id]

    def versions(self, name: str) -> dict[str, Any]:
        """Champion and challenger versions of a registered model (the alias may have moved
        since the server loaded it); looked up at most every REGISTRY_SECONDS."""
        cached = self.versions_by_name.get(name)
        if cached is not None and time.monotonic() - cached[0] < REGISTRY_SECONDS:
            return cached[1]
        out = registry_versions(self.models_dir, name, (CHAMPION, CHALLENGER))
        self.versions_by_name[name] = (time.monotonic(), out)
        return out


def _side(info: ModelInfo, version: str) -> dict[str, Any]:
    metrics = info.metrics
    sales = info.routes[Route.SALES]
    return {
        "version": version,
        "trained_at": info.trained_at,
        "kind": info.model_kind.readiness,
        "roc_auc": metrics.get("test_readiness_roc_auc"),
        "ece": metrics.get("test_readiness_ece"),
        "lift": metrics.get("test_readiness_top_decile_lift"),
        "bant": metrics.get("test_bant_scorecard_roc_auc"),
        "sales": info.thresholds.sales,
        "disqualify": info.thresholds.disqualify,
        "sales_share": sales.share,
        "sales_win": sales.win_rate,
        "test_from": info.details.split.test_from,
        "leads": info.details.data.leads,
        "suspect": distrust_words(info),
    }


def _outcome_words(info: ModelInfo) -> str:
    """What a positive means for this model, for the page's plain-words lines."""
    if info.flat is not None:
        return f"had {info.flat.label.column} = {info.flat.label.positive}"
    days = info.crm.horizon_days if info.crm is not None else 0
    return f"were won within {days} days"


def _compare_command(request: Request, flat: bool, sides: list[dict[str, Any]]) -> str | None:
    """The command that compares the champion with the challenger on one hold-out, exactly as
    it runs (against this server's models folder); None when there is one version only."""
    if len(sides) < 2:
        return None
    models_dir = request.app.state.server.settings.models_dir
    words = ["leadready", "models", "compare", sides[0]["version"], sides[1]["version"]]
    if flat:
        words.append("--flat")
    if Path(models_dir) != Path("models"):
        words += ["--models-dir", shlex.quote(str(models_dir))]
    return " ".join(words)


def _page_model(request: Request, champions: Champions) -> tuple[str, Engine | FlatModel]:
    """The champion the Model page shows: `?model=flat` or `crm`, else the API's one when the
    server has it, else the flat-table one."""
    asked = request.query_params.get("model", "")
    kind = asked if asked in MODEL_KINDS else ("crm" if champions.engine is not None else "flat")
    return kind, crm_model(champions) if kind == "crm" else flat_model(champions)


def _calibration_and_gains(curves: dict[str, Any] | None, flat: bool) -> tuple[Any, Any]:
    if curves is None:
        missing = "No hold-out scores were logged with this version: retrain to draw this"
        return empty_chart("Calibration", missing), empty_chart("Cumulative gains", missing)
    calibration = line_chart(
        [{"name": "model", "points": curves["bins"], "color": ACCENT}],
        "Calibration on the hold-out: predicted readiness against observed win rate",
        "predicted readiness (10 equal-size groups)",
        "observed positive rate" if flat else "won within horizon",
        x_max=max(0.1, math.ceil(max(x for x, _ in curves["bins"]) * 10) / 10),
        y_max=max(
            0.1,
            math.ceil(
                max(max(y for _, y in curves["bins"]), max(x for x, _ in curves["bins"])) * 10
            )
            / 10,
        ),
        diagonal=True,
    )
    gains = line_chart(
        [
            {"name": "model", "points": curves["gains"], "color": ACCENT, "markers": False},
            {
                "name": "random order",
                "points": [(0.0, 0.0), (1.0, 1.0)],
                "color": MUTED,
                "dash": True,
                "markers": False,
            },
        ],
        "Cumulative gains on the hold-out: share of wins captured by contacting the "
        "highest-scored leads first",
        "share of leads contacted, highest readiness first",
        "share of wins captured",
    )
    return calibration, gains


def _metric_rows(info: ModelInfo, flat: bool) -> tuple[list[dict], list[tuple[str, str]]]:
    """The hold-out metrics table: a row per metric, a cell (value, 95% interval) per scorer
    the version was tested with (a flat table has one label, so no potential model)."""
    metrics = info.metrics
    intervals = info.intervals
    present = [
        (name, title)
        for name, title in SCORERS
        if f"test_{name}_roc_auc" in metrics and not (flat and name == "potential")
    ]
    rows = []
    for metric, title, hint in METRICS:
        cells = []
        for name, _ in present:
            ci = intervals.get(name, {}).get(metric)
            cells.append(
                {
                    "value": metrics.get(f"test_{name}_{metric}"),
                    "low": ci[1] if ci else None,
                    "high": ci[2] if ci else None,
                }
            )
        rows.append({"title": title, "hint": hint, "cells": cells})
    return rows, present


@router.get("/model", response_class=HTMLResponse)
def model_page(request: Request, session: SessionDep, champions: ChampionsDep) -> Response:
    kind, engine = _page_model(request, champions)
    flat = kind == "flat"
    reads = workspace(request).model_reads
    info = engine.info
    labels = engine.labels
    drivers = sorted(info.drivers.items(), key=lambda kv: -kv[1])[:15]
    drivers_chart = hbars(
        [(capital(labels.get(f, f)), v, ACCENT) for f, v in drivers],
        "Global drivers: mean absolute contribution to readiness by input",
        "average push on readiness, up or down",
    )
    curves = reads.curves(engine)
    calibration, gains = _calibration_and_gains(curves, flat)
    rows, present = _metric_rows(info, flat)
    rules = route_rules(info.thresholds, flat)
    routes = [
        {"route": r.value, **info.routes[r.value].model_dump(), "rule": rules[r.value]}
        for r in ROUTES
    ]
    versions = reads.versions(engine.loaded.name)
    sides = []
    for alias in (CHAMPION, CHALLENGER):
        entry = versions.get(alias)
        if entry is None:
            continue
        side_info = (
            info if entry["version"] == engine.loaded.version else reads.info(entry["run_id"])
        )
        if side_info is not None:
            sides.append({"alias": alias, **_side(side_info, entry["version"])})
    same = len(sides) == 2 and sides[0]["version"] == sides[1]["version"]
    if same:
        sides = sides[:1]
    served = {"crm": champions.engine, "flat": champions.flat}
    return render(
        request,
        "model.html",
        {
            "page": "model",
            "kind": kind,
            "flat": flat,
            "kinds": {k: v for k, v in MODEL_KINDS.items() if served[k] is not None},
            "info": info,
            "engine": engine,
            "metric_rows": rows,
            "scorers": present,
            "drivers_chart": drivers_chart,
            "calibration": calibration,
            "gains": gains,
            "curves": curves,
            "routes": routes,
            "routing_warning": route_warning({r: s.share for r, s in info.routes.items()}),
            "routing_notes": info.routing_notes,
            "exclusions": exclusions(info),
            "outcome_words": _outcome_words(info),
            "compare": _compare_command(request, flat, sides),
            "route_chart": route_strip(info.routes, "Share of hold-out leads by route"),
            "sides": sides,
            "same": same,
            "stale": versions.get(CHAMPION, {}).get("version") not in (None, engine.loaded.version),
            "registry_champion": versions.get(CHAMPION, {}).get("version"),
        },
        session,
    )
