"""The scoring server: settings, the app factory, and a lifespan that loads the champions once.

The routes live in routers: `/v1/*` in `api` (behind the API key), `/healthz`, `/readyz` and
`/metrics` in `ops`, the workspace in `ui`. What they share (settings, metrics, the reload lock)
is one `ServerState` on `app.state.server`, reached through typed dependencies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import Field, PositiveFloat
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadready.features.auditdb import default_url
from leadready.features.leadstore.database import database_url, open_store
from leadready.features.registry import NoChampionError
from leadready.features.routing import Exploration
from leadready.serving import api, leads_api, live, ops, ui
from leadready.serving.audit import AuditLog, journal_dir
from leadready.serving.fleet import Watcher
from leadready.serving.middleware import LimitsAndMetrics
from leadready.serving.schemas import MAX_BATCH_BODY_BYTES, MAX_EVENTS_BODY_BYTES
from leadready.serving.shadow import Shadow
from leadready.serving.state import ServerState
from leadready.serving.throttle import FOLDER, KeyThrottle
from leadready.serving.webhooks import Dispatcher, WebhookConfig

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
    database_url: str | None = None
    """The lead store (docs/store.md); default: SQLite `leads.db` in the models folder."""
    sweep_minutes: float = Field(default=60.0, ge=0)
    """How often every open lead of the store is scored again (readiness decays with time,
    SLAs pass); 0: never on a schedule (`leadready store sweep` still does it)."""
    sales_sla_hours: float = Field(default=48.0, gt=0)
    """A lead routed to sales with no sales touch within this becomes `at_risk`."""
    take_back_days: float = Field(default=14.0, gt=0)
    """... and after this many days without a sales touch it returns to nurture."""
    shadow: bool = True
    """Score the `challenger` version too, when it is not the champion, after each API answer
    left, and record its readiness and route under the same request id (`shadow_scores` in the
    audit log; `leadready models compare --live`); false: the champion only."""
    sales_capacity: int | None = Field(default=None, ge=0)
    """Most leads routed to sales per rolling 7 days (hand-raises always go); none: no limit."""
    webhook_urls: str = ""
    """Comma-separated URLs every webhook delivery is POSTed to; none: nothing is sent."""
    webhook_secret: str = ""
    """The HMAC-SHA256 key of X-Leadready-Signature; required with webhook_urls."""
    webhook_timeout_seconds: PositiveFloat = 5.0
    webhook_max_age_seconds: PositiveFloat = 86_400.0
    """A delivery is retried for this long after its creation, then dead."""
    webhook_backoff_seconds: PositiveFloat = 1.0
    """The pause after a delivery's first failed attempt, doubled after each next one ..."""
    webhook_backoff_max_seconds: PositiveFloat = 3_600.0
    """... up to this."""
    webhook_poll_seconds: PositiveFloat = 1.0
    explore_share: float = Field(default=0.0, ge=0, lt=1)
    """The exploration slice: this share of the leads the policy keeps in nurture goes to
    sales instead (`features.routing.Exploration`; 0.02 recommended, docs/monitoring.md)."""
    explore_disqualify: bool = False
    """... and of the leads it disqualifies too."""

    def keys(self) -> list[bytes]:
        return [k.strip().encode() for k in self.api_keys.split(",") if k.strip()]

    def policy(self) -> live.LivePolicy:
        return live.LivePolicy(self.sales_sla_hours, self.take_back_days, self.sales_capacity)

    def exploration(self) -> Exploration:
        return Exploration(self.explore_share, self.explore_disqualify)

    def store_url(self) -> str:
        return database_url(self.models_dir, self.database_url)

    def webhooks(self) -> WebhookConfig | None:
        """Where deliveries go (None: nowhere); `WebhookSettingsError` when they cannot."""
        return WebhookConfig.parse(
            self.webhook_urls,
            self.webhook_secret,
            timeout_seconds=self.webhook_timeout_seconds,
            max_age_seconds=self.webhook_max_age_seconds,
            backoff_seconds=self.webhook_backoff_seconds,
            backoff_max_seconds=self.webhook_backoff_max_seconds,
            poll_seconds=self.webhook_poll_seconds,
        )


@lru_cache
def get_settings() -> ServeSettings:
    return ServeSettings()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the champions, open the audit log and, with webhook URLs, start the webhook
    dispatcher (`app.state.dispatcher`, else None: call its `wake()` after committing a
    delivery); SIGHUP reloads; shutdown writes the rest of the audit journal to its database.

    Under `serve` (a run folder), this worker loads the versions of the current generation and
    a watcher thread loads each one published later; a worker that cannot load any starts all
    the same, says so in `/readyz`, and its supervisor keeps the other workers serving."""
    server: ServerState = app.state.server
    settings = server.settings
    app.state.engine = None
    app.state.flat = None
    app.state.shadow = None
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
    app.state.shadowing = Shadow(app.state.audit, server.metrics)
    sweeper = None
    if settings.sweep_minutes > 0:
        sweeper = live.Sweeper(
            partial(scheduled_sweep, app), timedelta(minutes=settings.sweep_minutes)
        )
        sweeper.start()
    webhooks = settings.webhooks()
    app.state.dispatcher = None
    if webhooks is not None:
        store = open_store(settings.store_url())
        app.state.dispatcher = Dispatcher(store, webhooks, server.metrics)
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        loop.add_signal_handler(
            signal.SIGHUP, lambda: loop.run_in_executor(None, server.hup, app.state)
        )
    try:
        yield
    finally:
        if sweeper is not None:
            sweeper.stopping.set()
        app.state.leadstore.close()
        if watcher is not None:
            watcher.stopping.set()
            watcher.run_folder.withdraw(os.getpid())
        app.state.shadowing.close()
        app.state.audit.close()
        if app.state.dispatcher is not None:
            app.state.dispatcher.close()
            app.state.dispatcher.engine.dispose()


def scheduled_sweep(app: FastAPI) -> None:
    """The scheduled sweep, when this worker wins its claim (`live.claim_sweep`), has a
    CRM-export champion to score with and a store with leads."""
    engine = app.state.engine
    store = app.state.leadstore.existing()
    if engine is None or store is None:
        return
    server: ServerState = app.state.server
    every = timedelta(minutes=server.settings.sweep_minutes)
    now = datetime.now(UTC)
    if live.claim_sweep(store, now, every):
        done = live.sweep(store, engine, now, server.settings.policy())
        if app.state.dispatcher is not None:
            app.state.dispatcher.wake()
        log.info("swept %d open leads in %.1f s", done.leads, done.seconds)


DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
"""Swagger UI's script and stylesheet, shipped by the `fastapi-offline` package, so `/docs`
draws with no internet access (FastAPI's default page loads them from a CDN)."""


def docs_page() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="leadready scoring API",
        swagger_js_url="/docs-assets/swagger-ui-bundle.js",
        swagger_css_url="/docs-assets/swagger-ui.css",
        swagger_favicon_url="/ui/static/favicon.svg",
    )


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
        docs_url=None,
        redoc_url=None,
    )
    settings = settings or get_settings()
    app.state.server = server = ServerState(settings)
    app.state.leadstore = leads_api.LeadStore(settings.store_url())
    app.state.throttle = KeyThrottle(settings.models_dir / "workspace" / FOLDER)
    app.add_middleware(
        LimitsAndMetrics,
        metrics=server.metrics,
        known_paths=frozenset(
            r.path
            for r in (*api.router.routes, *leads_api.router.routes, *ops.router.routes)
            if isinstance(r, APIRoute)
        ),
        # The workspace takes whole CRM exports and outcome files as uploads, a batch up to
        # 1,000 leads; the rest of the API stays at 1 MiB.
        larger={
            ui.UPLOAD_PATH: ui.MAX_UPLOAD_BYTES,
            ui.OUTCOMES_UPLOAD_PATH: ui.MAX_UPLOAD_BYTES,
            api.BATCH_PATH: MAX_BATCH_BODY_BYTES,
            leads_api.EVENTS_PATH: MAX_EVENTS_BODY_BYTES,
        },
    )
    ui.mount(app, settings.models_dir, settings.sample_dir, settings.session_secret)
    app.exception_handler(RequestValidationError)(invalid)
    app.include_router(api.router)
    app.include_router(leads_api.router)
    app.include_router(ops.router)
    app.get("/docs", include_in_schema=False)(docs_page)
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    return app
