"""The scoring API: an app factory, a lifespan that loads the champion once, thin handlers.

Handlers that score are plain `def` (CPU-bound, run in the thread pool). The engine is reached
through `app.state.engine`; a reload builds a new engine and swaps the reference, so requests
in flight finish on the model they started with.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from leadready.features.registry import NoChampionError
from leadready.serving import outcomes, ui
from leadready.serving.audit import AuditLog, default_url
from leadready.serving.engine import Champions, Engine, load_champions
from leadready.serving.flat import FlatModel
from leadready.serving.schemas import (
    MAX_BODY_BYTES,
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    Message,
    ScoreRequest,
    ScoreResponse,
)
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("leadready.serve")


class ServeSettings(BaseSettings):
    """Read from LEADREADY_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="LEADREADY_")
    models_dir: Path = Path("models")
    api_keys: str = ""
    audit_url: str | None = None
    sample_dir: Path = Path("data/sample")
    """The export the workspace's "use the sample" button scores (`make demo` writes it)."""
    session_secret: str = ""
    """Signs workspace session cookies; a random one per process when empty."""

    def keys(self) -> list[bytes]:
        return [k.strip().encode() for k in self.api_keys.split(",") if k.strip()]


@lru_cache
def get_settings() -> ServeSettings:
    return ServeSettings()


class Metrics:
    """Prometheus metrics of one app: requests, latency and scores by route."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "leadready_requests_total",
            "HTTP requests",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "leadready_request_seconds",
            "Request latency",
            ("endpoint", "status"),
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.scores = Counter(
            "leadready_scores_total", "Leads scored, by route", ("route",), registry=self.registry
        )


class LimitsAndMetrics:
    """ASGI middleware: 413 for bodies over 1 MiB, and request counts and latency."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        route = scope.get("path", "")

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        # The workspace takes whole CRM exports as uploads; the API stays at 1 MiB.
        limit = ui.MAX_UPLOAD_BYTES if route == ui.UPLOAD_PATH else MAX_BODY_BYTES
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _too_large(send_wrapper)
        else:
            received = {"bytes": 0}

            async def limited_receive() -> dict:
                message = await receive()
                received["bytes"] += len(message.get("body", b""))
                if received["bytes"] > limit:
                    raise _BodyTooLarge
                return message

            try:
                await self.app(scope, limited_receive, send_wrapper)
            except _BodyTooLarge:
                await _too_large(send_wrapper)
        elapsed = time.perf_counter() - started
        code = str(status["code"])
        endpoint = route if route in _KNOWN_PATHS else "other"
        self.metrics.requests.labels(endpoint, code).inc()
        self.metrics.latency.labels(endpoint, code).observe(elapsed)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Any) -> None:
    body = (
        b'{"detail":[{"field":"body","message":"request body is larger than 1 MiB; '
        b'send fewer leads per batch"}]}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_KNOWN_PATHS = {
    "/v1/score",
    "/v1/score/batch",
    "/v1/model",
    "/v1/admin/reload",
    "/v1/outcomes",
    "/healthz",
    "/readyz",
    "/metrics",
}


def _field_errors(errors: list[dict]) -> list[dict[str, str]]:
    """Pydantic errors as {field: dotted path, message: what was wrong and expected}."""
    out = []
    for error in errors:
        path = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        out.append({"field": path, "message": error.get("msg", "invalid value")})
    return out


def require_key(request: Request) -> None:
    keys: list[bytes] = request.app.state.keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    supplied = token.strip().encode()
    # Compare against every key, always, so timing says nothing about which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(supplied, key)
    if scheme.lower() != "bearer" or not matched:
        raise HTTPException(
            401,
            "missing or invalid API key; send 'Authorization: Bearer KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorized = Annotated[None, Depends(require_key)]
V1_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "Missing or invalid API key"},
    413: {"model": ErrorResponse, "description": "Body over 1 MiB"},
    422: {
        "model": ErrorResponse,
        "description": "Invalid input: each wrong field's path and what was expected",
    },
    503: {"model": Message, "description": "No champion trained on a CRM export is loaded"},
}


def get_engine(request: Request) -> Engine:
    engine: Engine | None = request.app.state.engine
    if engine is None:
        raise HTTPException(503, request.app.state.unavailable.get("crm", "no model loaded"))
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def _models(engine: Engine | None, flat: FlatModel | None) -> dict[str, Any]:
    """The loaded champions as the ops endpoints name them: `model` scores CRM leads (the API),
    `flat_model` flat tables (the workspace); null when there is none."""
    return {
        "model": engine.model_ref if engine is not None else None,
        "flat_model": flat.model_ref if flat is not None else None,
    }


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()
    reload_lock = threading.Lock()

    def reload_model(app: FastAPI) -> Champions:
        with reload_lock:
            champions = load_champions(settings.models_dir)
            app.state.engine = champions.engine
            app.state.flat = champions.flat
            app.state.unavailable = champions.unavailable
            for model in (champions.engine, champions.flat):
                if model is not None:
                    log.info("serving %s version %s", model.loaded.name, model.loaded.version)
            return champions

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = None
        app.state.flat = None
        app.state.unavailable = {}
        app.state.keys = settings.keys()
        reload_model(app)
        app.state.audit = AuditLog(settings.audit_url or default_url(settings.models_dir))
        outcomes.create_table(app.state.audit.engine)
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            loop.add_signal_handler(
                signal.SIGHUP, lambda: loop.run_in_executor(None, reload_model, app)
            )
        try:
            yield
        finally:
            app.state.audit.close()

    app = FastAPI(
        title="leadready scoring API",
        version="1",
        description="Sales readiness of B2B leads: a calibrated probability, a route (sales, "
        "nurture, disqualify) and the reasons, from the champion model in the MLflow "
        "registry. `/v1/*` needs `Authorization: Bearer KEY` when LEADREADY_API_KEYS is set.",
        lifespan=lifespan,
    )
    app.add_middleware(LimitsAndMetrics, metrics=metrics)
    ui.mount(app, settings.models_dir, settings.sample_dir, settings.session_secret)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _field_errors(list(exc.errors()))}, status_code=422)

    def audit_and_count(results: list[dict], app: FastAPI) -> None:
        scored = [r for r in results if "route" in r]
        app.state.audit.record(
            [
                {**r, "model_name": r["model"]["name"], "model_version": r["model"]["version"]}
                for r in scored
            ]
        )
        for r in scored:
            metrics.scores.labels(r["route"]).inc()

    @app.post("/v1/score", response_model=ScoreResponse, tags=["scoring"], responses=V1_ERRORS)
    def score(
        body: ScoreRequest, engine: EngineDep, _: Authorized, request: Request
    ) -> JSONResponse:
        """Score one lead: readiness, potential, route and reasons, with context for the rep."""
        results = engine.score_requests([body], datetime.now(UTC))
        audit_and_count(results, request.app)
        return JSONResponse(results[0])

    @app.post(
        "/v1/score/batch", response_model=BatchResponse, tags=["scoring"], responses=V1_ERRORS
    )
    def score_batch(
        body: BatchRequest, engine: EngineDep, _: Authorized, request: Request
    ) -> JSONResponse:
        """Score up to 1,000 leads; a lead that fails validation gets its errors, in place."""
        valid: list[ScoreRequest] = []
        slots: list[dict | int] = []
        for i, item in enumerate(body.leads):
            try:
                valid.append(ScoreRequest.model_validate(item))
                slots.append(len(valid) - 1)
            except ValidationError as exc:
                lead = item.get("lead") if isinstance(item, dict) else None
                lead_id = lead.get("lead_id") if isinstance(lead, dict) else None
                slots.append(
                    {
                        "index": i,
                        "lead_id": lead_id if isinstance(lead_id, str) else None,
                        "errors": _field_errors(list(exc.errors())),
                    }
                )
        scored = engine.score_requests(valid, datetime.now(UTC)) if valid else []
        audit_and_count(scored, request.app)
        results = [scored[s] if isinstance(s, int) else s for s in slots]
        return JSONResponse({"results": results})

    @app.get("/v1/model", tags=["model"], responses=V1_ERRORS)
    def model(engine: EngineDep, _: Authorized) -> dict[str, Any]:
        """The champion: version, test metrics, routing thresholds and global drivers."""
        info = engine.info
        return {
            "model": engine.model_ref,
            "trained_at": info["trained_at"],
            "horizon_days": info["horizon_days"],
            "metrics": info["metrics"],
            "thresholds": info["thresholds"],
            "policy": info["policy"],
            "routes": info["routes"],
            "drivers": [
                {"feature": f, "label": engine.labels.get(f, f), "mean_abs": v}
                for f, v in info["drivers"].items()
            ],
            "data": info["data"],
        }

    @app.post(
        "/v1/outcomes",
        response_model=outcomes.OutcomesImported,
        tags=["outcomes"],
        responses=V1_ERRORS,
    )
    def post_outcomes(
        body: Annotated[list[outcomes.OutcomeIn], Body(max_length=outcomes.MAX_OUTCOMES)],
        _: Authorized,
        request: Request,
    ) -> JSONResponse:
        """Record won or lost outcomes of leads (up to 10,000; a lead sent again is replaced).
        The workspace's Outcomes page compares them with the scores in the audit log."""
        try:
            stored = outcomes.store(request.app.state.audit.engine, body)
        except outcomes.OutcomeError as exc:
            return JSONResponse(
                {"detail": [{"field": "lead_id", "message": str(exc)}]}, status_code=422
            )
        return JSONResponse(stored.model_dump())

    @app.post(
        "/v1/admin/reload",
        tags=["model"],
        responses={**V1_ERRORS, 409: {"model": Message, "description": "No champion"}},
    )
    def reload(_: Authorized, request: Request) -> dict[str, Any]:
        """Load the versions the champion aliases point to now (of the CRM-export model and of
        the flat-table model); requests in flight finish on the old ones."""
        try:
            champions = reload_model(request.app)
        except NoChampionError as exc:
            raise HTTPException(409, str(exc)) from None
        return _models(champions.engine, champions.flat)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(request: Request) -> JSONResponse:
        state = request.app.state
        if state.engine is None and state.flat is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready", **_models(state.engine, state.flat)})

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        """Counters and histograms of this server: with several workers (`serve --workers N`
        sets PROMETHEUS_MULTIPROC_DIR) the sum over all of them, whichever one answers."""
        registry = metrics.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
