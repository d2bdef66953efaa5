"""The Outcomes page: audit-log scores against won and lost outcomes (`serving.outcomes`), by
route, by readiness decile and by month of the score."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from leadready.features.registry import NoChampionError
from leadready.features.routing import ROUTES
from leadready.serving import outcomes as outcome_store
from leadready.serving.ui.auth import SessionDep
from leadready.serving.ui.charts import ACCENT, INK, ROUTE_COLORS, line_chart, vbars
from leadready.serving.ui.formatting import count
from leadready.serving.ui.web import PREFIX, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _month_points(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float | None]]:
    return [(float(i), r[key]) for i, r in enumerate(rows) if r[key] is not None]


@router.get("/outcomes", response_class=HTMLResponse)
def outcomes_page(request: Request, session: SessionDep) -> Response:
    audit = getattr(request.app.state, "audit", None)
    if audit is None:
        raise NoChampionError("the audit log is not open")
    analysis = outcome_store.analyse(audit.engine)
    by_route = vbars(
        [
            {
                "label": r["route"],
                "value": r["rate"],
                "color": ROUTE_COLORS[str(r["route"])],
                "note": f"{count(r['leads'])} leads",
                "marker": r["mean_readiness"],
            }
            for r in analysis.by_route
        ],
        "Conversion rate by route",
        "won",
        marker_name="mean readiness at scoring",
    )
    by_decile = vbars(
        [
            {
                "label": f"D{d['decile']}" if d["bins"] == 10 else str(d["decile"]),
                "value": d["rate"],
                "color": ACCENT,
                "note": f"≤{d['high']:.2f}",
                "marker": d["mean_readiness"],
            }
            for d in analysis.by_decile
        ],
        "Conversion rate by readiness decile (D1 lowest, D10 highest)",
        "won",
        marker_name="mean readiness",
        width=640,
    )
    months = analysis.by_month
    step = max(1, math.ceil(len(months) / 8))
    over_time = line_chart(
        [{"name": "all", "points": _month_points(months, "rate"), "color": INK}]
        + [
            {
                "name": r.value,
                "points": _month_points(months, r.value),
                "color": ROUTE_COLORS[r.value],
            }
            for r in ROUTES
        ],
        "Conversion rate by month of the score, by route",
        "month scored",
        "won",
        x_ticks=[(float(i), str(m["month"])) for i, m in enumerate(months)][::step],
        x_max=float(max(1, len(months) - 1)),
        width=1100,
        height=320,
    )
    return render(
        request,
        "outcomes.html",
        {
            "page": "outcomes",
            "a": analysis,
            "by_route": by_route,
            "by_decile": by_decile,
            "over_time": over_time,
            "sales": analysis.route("sales") if analysis.by_route else None,
            "missed": analysis.missed.to_dict("records"),
        },
        session,
    )
