"""The operators' routes: liveness, readiness and Prometheus metrics; no API key needed."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from leadready.serving.state import ServerDep, served_models

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Ready when a champion is loaded and the audit log is being written (see
    `serving.audit`: rows kept in the journal for over STALL_SECONDS make this a 503)."""
    state = request.app.state
    if state.engine is None and state.flat is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    audit, problem = state.audit.health()
    body = {**served_models(state.engine, state.flat), "audit": audit}
    if problem:
        return JSONResponse({"status": "not ready", "problems": [problem], **body}, status_code=503)
    return JSONResponse({"status": "ready", **body})


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(server: ServerDep) -> PlainTextResponse:
    """Counters and histograms of this server: with several workers (`serve --workers N`
    sets PROMETHEUS_MULTIPROC_DIR) the sum over all of them, whichever one answers."""
    registry = server.metrics.registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
