"""The Leads page: the session's scored export, filtered, paginated and downloaded on the
server (ten thousand leads cost the browser fifty rows), and the forms that upload an export
or score the sample."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from leadready.features.contract import BANT_FIELDS, ContractError
from leadready.features.files import csv_text
from leadready.features.routing import ROUTES
from leadready.serving.engine import Champions
from leadready.serving.ui.auth import SessionDep
from leadready.serving.ui.exports import UPLOAD_TABLES, Export, UploadRefused
from leadready.serving.ui.web import (
    MISSING,
    PREFIX,
    SECURITY_HEADERS,
    ChampionsDep,
    Session,
    redirect,
    render,
    workspace,
)

UPLOAD_PATH = f"{PREFIX}/leads/upload"
PAGE_SIZE = 50

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _filtered(table: pd.DataFrame, params: dict[str, str], export: Export) -> pd.DataFrame:
    """The rows matching every filter, and the search (`q`) in the id and display columns."""
    mask = np.ones(len(table), dtype=bool)
    for name, allowed in export.filters.items():
        value = params.get(name, "")
        if value in allowed and name in table:
            mask &= (table[name].astype(str) == value).to_numpy()
    q = params.get("q", "").strip().lower()
    if q:
        found = np.zeros(len(table), dtype=bool)
        for column in (export.id_column, *export.display):
            text = table[column].astype(str).str.lower()
            found |= text.str.contains(q, regex=False).to_numpy()
        mask &= found
    return table[mask]


def _filter_params(request: Request, export: Export | None) -> dict[str, str]:
    query = request.query_params
    filters = export.filters if export is not None else {}
    params = {name: query.get(name, "") for name in filters}
    params = {k: v for k, v in params.items() if v in filters[k]}
    q = query.get("q", "").strip()[:200]
    if q:
        params["q"] = q
    return params


def _leads_context(
    request: Request,
    export: Export | None,
    champions: Champions,
    error: str | None = None,
) -> dict[str, Any]:
    exports = workspace(request).exports
    params = _filter_params(request, export)
    context: dict[str, Any] = {
        "page": "leads",
        "export": export,
        "error": error,
        "params": params,
        "sample_available": exports.sample_available(),
        "unavailable": {kind: MISSING[kind] for kind in champions.unavailable},
    }
    if export is None:
        return context
    table = export.table
    filtered = _filtered(table, params, export)
    total = len(filtered)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    try:
        page = min(max(1, int(request.query_params.get("page", "1"))), pages)
    except ValueError:
        page = 1
    rows = filtered.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    without_route = _filtered(table, {k: v for k, v in params.items() if k != "route"}, export)
    counts = without_route["route"].value_counts().to_dict()

    def link(**changes: object) -> str:
        merged = {**params, **changes}
        shown = {k: v for k, v in merged.items() if v not in (None, "") and (k, v) != ("page", 1)}
        return f"{PREFIX}/leads" + ("?" + urlencode(shown) if shown else "")

    context.update(
        {
            **_outcome_words(export, champions),
            "search_label": " or ".join(
                ("lead id" if export.crm is not None else export.id_column, *export.display)
            ),
            "rows": rows.to_dict("records"),
            "total": total,
            "all": len(table),
            "page_no": page,
            "pages": pages,
            "route_counts": {r.value: int(counts.get(r.value, 0)) for r in ROUTES},
            "link": link,
            "csv_url": f"{PREFIX}/leads.csv" + ("?" + urlencode(params) if params else ""),
            "as_of": datetime.fromtimestamp(export.as_of, UTC),
            "filters": export.filters,
            "bant": [c for c in BANT_FIELDS if c in table],
            "first": (page - 1) * PAGE_SIZE + 1 if total else 0,
            "last": min(page * PAGE_SIZE, total),
        }
    )
    return context


def _outcome_words(export: Export, champions: Champions) -> dict[str, str]:
    """What readiness predicts, in words for the Leads page ("... are won within 90 days"),
    and the label column whose filled rows are left out (flat mode)."""
    if export.crm is not None and champions.engine is not None:
        crm = champions.engine.info.crm
        days = crm.horizon_days if crm is not None else 0
        return {"outcome_words": f"are won within {days} days", "info_label": ""}
    if champions.flat is not None:
        label = champions.flat.details.label
        return {
            "outcome_words": f"have {label.column} = {label.positive}",
            "info_label": label.column,
        }
    return {"outcome_words": "convert", "info_label": ""}


def _refused(
    request: Request, session: Session, champions: Champions, message: str
) -> HTMLResponse:
    """The Leads page with why an upload or the sample could not be scored; the session's last
    export stays."""
    export = workspace(request).exports.session_export(session.sid, champions)
    return render(
        request,
        "leads.html",
        _leads_context(request, export, champions, message),
        session,
        status=422,
    )


@router.get("/leads", response_class=HTMLResponse)
def leads_page(request: Request, session: SessionDep, champions: ChampionsDep) -> Response:
    export = workspace(request).exports.session_export(session.sid, champions)
    return render(request, "leads.html", _leads_context(request, export, champions), session)


@router.get("/leads.csv")
def leads_csv(request: Request, session: SessionDep, champions: ChampionsDep) -> Response:
    export = workspace(request).exports.session_export(session.sid, champions)
    if export is None:
        return redirect(request, f"{PREFIX}/leads", session)
    filtered = _filtered(export.table, _filter_params(request, export), export)
    out = filtered.copy()
    if "created_at" in out:
        out["created_at"] = out["created_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    stamp = datetime.fromtimestamp(export.as_of, UTC).strftime("%Y%m%d")
    return Response(
        csv_text(out),
        media_type="text/csv",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="leadready-leads-{stamp}.csv"',
        },
    )


@router.post(UPLOAD_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
async def upload(request: Request, session: SessionDep, champions: ChampionsDep) -> Response:
    """A CRM export (leads, optional events and schema) or a flat table, scored for this session.

    The session is checked before the body is read: only a logged-in user can send the large
    bodies this path accepts (MAX_UPLOAD_BYTES)."""
    async with request.form(max_files=8, max_fields=16) as form:
        files = {name: form.get(name) for name in UPLOAD_TABLES}
        uploads = {k: v if isinstance(v, UploadFile) else None for k, v in files.items()}
        as_of = str(form.get("as_of") or "").strip()
        return await run_in_threadpool(_upload, request, session, champions, uploads, as_of)


def _upload(
    request: Request,
    session: Session,
    champions: Champions,
    uploads: dict[str, UploadFile | None],
    as_of: str,
) -> Response:
    try:
        workspace(request).exports.upload(session.sid, uploads, as_of, champions)
    except UploadRefused as exc:
        return _refused(request, session, champions, str(exc))
    return redirect(request, f"{PREFIX}/leads", session)


@router.post("/leads/sample")
def use_sample(request: Request, session: SessionDep, champions: ChampionsDep) -> Response:
    """Score the sample export (LEADREADY_SAMPLE_DIR) for this session."""
    try:
        workspace(request).exports.use_sample(session.sid, champions)
    except (ContractError, OSError, ValueError) as exc:
        return _refused(request, session, champions, str(exc))
    return redirect(request, f"{PREFIX}/leads", session)
