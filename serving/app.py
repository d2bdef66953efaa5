"""The scoring server: settings, the app factory, and a lifespan that loads the champions once.

The routes live in routers: `/v1/*` in `api` (behind the API key), `/healthz`, `/readyz` and
`/metrics` in `ops`, the workspace in `ui`. What they share (settings, metrics, the reload lock)
is one `ServerState` on `app.state.server`, reached through typed dependencies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache, partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadready.features.registry import NoChampionError
from leadready.serving import api, ops, outcomes, ui
from leadready.serving.audit import AuditLog, default_url, journal_dir
from leadready.serving.fleet import Watcher
from leadready.serving.middleware import LimitsAndMetrics
from leadready.serving.schemas import MAX_BATCH_BODY_BYTES
from leadready.serving.state import ServerState
from leadready.serving.throttle import FOLDER, KeyThrottle


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


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the champions and open the audit log; SIGHUP reloads; shutdown writes the rest
    of the audit journal to its database.

    Under `serve` (a run folder), this worker loads the versions of the current generation and
    a watcher thread loads each one published later; a worker that cannot load any starts all
    the same, says so in `/readyz`, and its supervisor keeps the other workers serving."""
    server: ServerState = app.state.server
    settings = server.settings
    app.state.engine = None
    app.state.flat = None
    app.state.unavailable = {}
    app.state.keys = settings.keys()
    watcher = None
    if server.run is None:
        server.reload(app.state)
        if app.state.engine is None and app.state.flat is None:
            raise NoChampionError("; and ".join(app.state.unavailable.values()))
    else:
        generation = server.run.current()
        server.follow(app.state, generation)
        watcher = Watcher(server.run, generation.number, partial(server.follow, app.state))
        watcher.start()
    url = settings.audit_url or default_url(settings.models_dir)
    app.state.audit = AuditLog(url, journal_dir(settings.models_dir, url), server.metrics)
    outcomes.create_table(app.state.audit.engine)
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        loop.add_signal_handler(
            signal.SIGHUP, lambda: loop.run_in_executor(None, server.hup, app.state)
        )
    try:
        yield
    finally:
        if watcher is not None:
            watcher.stopping.set()
            watcher.run_folder.withdraw(os.getpid())
        app.state.audit.close()


async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": api.field_errors(list(exc.errors()))}, status_code=422)


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    app = FastAPI(
        title="leadready scoring API",
        version="1",
        description="Sales readiness of B2B leads: a calibrated probability, a route (sales, "
        "nurture, disqualify) and the reasons, from the champion model in the MLflow "
        "registry. `/v1/*` needs `Authorization: Bearer KEY` when LEADREADY_API_KEYS is set.",
        lifespan=lifespan,
    )
    settings = settings or get_settings()
    app.state.server = server = ServerState(settings)
    app.state.throttle = KeyThrottle(settings.models_dir / "workspace" / FOLDER)
    app.add_middleware(
        LimitsAndMetrics,
        metrics=server.metrics,
        known_paths=frozenset(
            r.path for r in (*api.router.routes, *ops.router.routes) if isinstance(r, APIRoute)
        ),
        # The workspace takes whole CRM exports as uploads, a batch up to 1,000 leads; the
        # rest of the API stays at 1 MiB.
        larger={ui.UPLOAD_PATH: ui.MAX_UPLOAD_BYTES, api.BATCH_PATH: MAX_BATCH_BODY_BYTES},
    )
    ui.mount(app, settings.models_dir, settings.sample_dir, settings.session_secret)
    app.exception_handler(RequestValidationError)(invalid)
    app.include_router(api.router)
    app.include_router(ops.router)
    return app
