"""The operators' routes: liveness, readiness and Prometheus metrics; no API key needed."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from leadready.serving.fleet import readiness
from leadready.serving.state import ServerDep, served_models

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, server: ServerDep) -> JSONResponse:
    """Ready when this process serves a champion, the audit log is being written (see
    `serving.audit`: rows kept in the journal for over STALL_SECONDS make this a 503) and,
    under `serve`, every worker serves the versions of the current generation (`workers`: each
    one, whichever worker answers). With webhooks, `deliveries` counts the outbox's pending and
    dead deliveries, with a note when one waits long (never a 503: the receiver is down, not
    this server)."""
    state = request.app.state
    if state.engine is None and state.flat is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    audit, problem = state.audit.health()
    body: dict[str, Any] = {**served_models(state), "audit": audit}
    if state.dispatcher is not None:
        body["deliveries"] = state.dispatcher.health()
    problems: list[str] = [problem] if problem else []
    if server.run is not None:
        body["workers"], stale = readiness(server.run)
        problems += stale
    if problems:
        return JSONResponse({"status": "not ready", "problems": problems, **body}, 503)
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
