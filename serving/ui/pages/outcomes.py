"""The Outcomes page: audit-log scores against won and lost outcomes (`serving.outcomes`), by
route, by readiness decile and by month of the score; and the form that imports an outcomes
file (validated and stored by the code of `leadready outcomes import`)."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from leadready.features.registry import NoChampionError
from leadready.features.routing import ROUTES
from leadready.serving import outcomes as outcome_store
from leadready.serving.ui.auth import SessionDep
from leadready.serving.ui.charts import ACCENT, INK, ROUTE_COLORS, line_chart, vbars
from leadready.serving.ui.formatting import plural
from leadready.serving.ui.web import PREFIX, Session, redirect, render

OUTCOMES_UPLOAD_PATH = f"{PREFIX}/outcomes/upload"
SUFFIXES = (".csv", ".parquet")

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _month_points(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float | None]]:
    return [(float(i), r[key]) for i, r in enumerate(rows) if r[key] is not None]


def _audit_engine(request: Request) -> Any:
    audit = getattr(request.app.state, "audit", None)
    if audit is None:
        raise NoChampionError("the audit log is not open")
    return audit.engine


def _count(query: str) -> int | None:
    return int(query) if query.isdigit() else None


@router.get("/outcomes", response_class=HTMLResponse)
def outcomes_page(request: Request, session: SessionDep) -> Response:
    query = request.query_params
    imported = _count(query.get("imported", ""))
    done = (imported, _count(query.get("replaced", "")) or 0) if imported is not None else None
    return _page(request, session, imported=done)


@router.post(OUTCOMES_UPLOAD_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
async def upload_outcomes(request: Request, session: SessionDep) -> Response:
    """An outcomes file (lead_id, outcome, outcome_at; CSV or parquet), validated whole and
    stored, or the page with every problem it has and nothing stored. The session is checked,
    and the request's origin (`ui.origin`), before the body is read."""
    async with request.form(max_files=1, max_fields=4) as form:
        file = form.get("file")
        upload = file if isinstance(file, UploadFile) and file.filename else None
        return await run_in_threadpool(_import, request, session, upload)


def _import(request: Request, session: Session, upload: UploadFile | None) -> Response:
    engine = _audit_engine(request)
    if upload is None:
        return _page(request, session, error="choose a file of outcomes to import", status=422)
    name = Path(upload.filename or "").name
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        message = f"{name}: expected a .csv or .parquet file with columns " + ", ".join(
            outcome_store.COLUMNS
        )
        return _page(request, session, error=message, status=422)
    folder = Path(tempfile.mkdtemp(prefix="leadready-outcomes-"))
    path = folder / f"outcomes{suffix}"
    try:
        with path.open("wb") as out:
            shutil.copyfileobj(upload.file, out)
        result = outcome_store.store(engine, outcome_store.read_file(path))
    except outcome_store.OutcomeError as exc:
        message = str(exc).replace(str(path), name).replace(str(folder), "the upload")
        return _page(request, session, error=message, status=422)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return redirect(
        request,
        f"{PREFIX}/outcomes?imported={result.imported}&replaced={result.replaced}",
        session,
    )


def _page(
    request: Request,
    session: Session,
    error: str | None = None,
    imported: tuple[int, int] | None = None,
    status: int = 200,
) -> Response:
    analysis = outcome_store.analyse(_audit_engine(request))
    by_route = vbars(
        [
            {
                "label": r["route"],
                "value": r["rate"],
                "color": ROUTE_COLORS[str(r["route"])],
                "note": plural(r["leads"], "lead"),
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
            "error": error,
            "imported": imported,
            "columns": outcome_store.COLUMNS,
        },
        session,
        status=status,
    )
