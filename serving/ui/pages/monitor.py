"""The Monitor page: whether the leads the champion scores still look like the leads it learned
from, and whether its scores came true, in plain words. It shows every monitoring check
logged to the champion's MLflow run (`serving.store.monitoring_history`, written by
`leadready monitor`), newest first, a chart of each lead field's shift over the checks, and
the latest report from the models folder (`serving.monitor.latest_report`), served as it is."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from mlflow.exceptions import MlflowException

from leadready.features.drift import PSI_DRIFT, UNSEEN_DRIFT
from leadready.serving.monitor import (
    DRIFT,
    HEALTHY,
    PSI_KEY,
    UNSEEN_KEY,
    WORSE,
    latest_report,
)
from leadready.serving.store import monitoring_history
from leadready.serving.ui.auth import SessionDep
from leadready.serving.ui.charts import line_chart
from leadready.serving.ui.web import MISSING, PREFIX, SECURITY_HEADERS, ChampionsDep, render

log = logging.getLogger("leadready.serve")
router = APIRouter(prefix=PREFIX, include_in_schema=False)

VERDICTS = {
    HEALTHY: "healthy",
    DRIFT: "the leads changed",
    WORSE: "scores worse than when tested",
}
COLORS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b", "#975a16", "#4a5568")
SHOWN = 50
"""Checks listed, newest first (the chart draws them all)."""
UNREADABLE = "The monitoring history cannot be read right now; try again in a moment."


def _field_names(history: list[dict[str, float]]) -> list[str]:
    """The lead fields any check measured."""
    return sorted(
        {key.removeprefix(PSI_KEY) for run in history for key in run if key.startswith(PSI_KEY)}
    )


def _check(run: dict[str, float], fields: list[str]) -> dict[str, Any]:
    """One check as the table shows it."""
    changed = [
        name
        for name in fields
        if run.get(PSI_KEY + name, 0.0) > PSI_DRIFT
        or run.get(UNSEEN_KEY + name, 0.0) > UNSEEN_DRIFT
    ]
    status = int(run.get("monitor_status", HEALTHY))
    return {
        "at": datetime.fromtimestamp(run["timestamp"] / 1000, UTC).replace(tzinfo=None),
        "leads": int(run.get("monitor_leads", 0)),
        "verdict": VERDICTS.get(status, "unknown"),
        "bad": status != HEALTHY,
        "changed": changed,
        "auc": run.get("monitor_auc", math.nan),
        "ece": run.get("monitor_ece", math.nan),
    }


def _chart(history: list[dict[str, float]], fields: list[str]) -> Markup:
    """Each field's PSI over the checks, with the drift line."""
    last = max(len(history) - 1, 1)
    shifts = [run.get(PSI_KEY + name, 0.0) for run in history for name in fields]
    top = max([PSI_DRIFT * 2, *shifts])
    series = [
        {
            "name": name,
            "points": [
                (i, run[PSI_KEY + name]) for i, run in enumerate(history) if PSI_KEY + name in run
            ],
            "color": COLORS[k % len(COLORS)],
            "markers": True,
        }
        for k, name in enumerate(fields)
    ]
    series.append(
        {
            "name": "drift above this",
            "points": [(0, PSI_DRIFT), (last, PSI_DRIFT)],
            "color": "#c53030",
            "dash": True,
            "markers": False,
        }
    )
    return line_chart(
        series,
        "How much each lead field shifted, check by check",
        "check (oldest to newest)",
        "shift (PSI)",
        x_ticks=[(i, str(i + 1)) for i in range(len(history))][-12:],
        x_max=last,
        y_max=top * 1.1,
        percent=False,
        width=760,
    )


@router.get("/monitor", response_class=HTMLResponse)
def monitor_page(request: Request, session: SessionDep, champions: ChampionsDep) -> Response:
    engine = champions.engine
    if engine is None:
        return render(
            request, "monitor.html", {"page": "monitor", "missing": MISSING["crm"]}, session
        )
    models_dir = request.app.state.server.settings.models_dir
    try:
        history = monitoring_history(models_dir, engine.loaded.run_id)
    except (MlflowException, OSError) as exc:  # the reason may name the store: log only
        log.error("the Monitor page cannot read the monitoring history: %s", exc)
        return render(
            request, "error.html", {"page": "monitor", "message": UNREADABLE}, session, status=503
        )
    fields = _field_names(history)
    checks = [_check(run, fields) for run in reversed(history)][:SHOWN]
    return render(
        request,
        "monitor.html",
        {
            "page": "monitor",
            "model": engine.loaded,
            "checks": checks,
            "total": len(history),
            "chart": _chart(history, fields) if history else None,
            "report": latest_report(models_dir) is not None,
            "psi_drift": PSI_DRIFT,
        },
        session,
    )


@router.get("/monitor/report", response_class=HTMLResponse)
def monitor_report(request: Request, session: SessionDep) -> Response:
    """The latest report as `leadready monitor` wrote it (one page, no script, nothing fetched)."""
    path = latest_report(request.app.state.server.settings.models_dir)
    if path is None:
        return render(
            request,
            "error.html",
            {"page": "monitor", "message": "No monitoring report has been written yet."},
            session,
            status=404,
        )
    return HTMLResponse(path.read_text(encoding="utf-8"), headers=SECURITY_HEADERS)
