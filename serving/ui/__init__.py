"""The marketers' workspace at `/ui`: server-rendered pages over the API's own model and data.

- **Model** (`pages.model`): the champion (version, training date, hold-out metrics, global
  drivers, calibration and cumulative gains on its hold-out, routing thresholds with the share
  and win rate of each route) beside the challenger.
- **Leads** (`pages.leads`): an uploaded CRM export, flat table or the sample folder, scored
  once with the loaded champions and kept for the session (`exports`); filtered, paginated and
  downloaded on the server, so ten thousand leads cost the browser fifty rows.
- **Lead** (`pages.lead`): readiness, potential, route and reason, contributions, the
  timeline, and a what-if panel (`whatif`) with the three single changes that would raise
  readiness most.
- **Outcomes** (`pages.outcomes`): audit-log scores against won and lost outcomes, and an
  upload form for an outcomes file.
- **Queue** (`pages.queue`): the live lead store's leads waiting for sales (waiting time, SLA
  state), past the SLA and taken back to nurture, and the webhook messages to the CRM (sent,
  waiting, failed for good); the Lead page adds a stored lead's readiness trend.
- **Monitor** (`pages.monitor`): every `leadready monitor` check of the champion (when, leads,
  verdict, the fields that changed, live AUC and calibration error), a chart of each lead
  field's shift over the checks, and the latest report.

Everything is HTML from Jinja2 templates (`templates/`) and SVG charts drawn on the server
(`charts`); the one script, in `static/`, only submits forms on change, so every page works
without it. Access (`auth`): a login form takes one of the API keys (LEADREADY_API_KEYS) and
sets a signed session cookie (HttpOnly, SameSite=Lax, Secure over https), and logging out
revokes it on every worker; with no keys configured the workspace is open, like the API. Every
state-changing request must come from the workspace's own origin (`origin`). What-if scores
are hypothetical and never written to the audit log.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from leadready.features.registry import NoChampionError
from leadready.serving.sessions import Revocations, SavedExports, session_secret
from leadready.serving.ui import auth, origin
from leadready.serving.ui.exports import Exports
from leadready.serving.ui.pages import lead, leads, model, monitor, outcomes, queue
from leadready.serving.ui.pages.leads import UPLOAD_PATH
from leadready.serving.ui.pages.outcomes import OUTCOMES_UPLOAD_PATH
from leadready.serving.ui.web import HERE, PREFIX, SESSION_SECONDS, Workspace, render

MAX_UPLOAD_BYTES = 200 << 20
"""Largest upload body accepted under /ui (the API takes 1 MiB, 16 MiB for a batch)."""

__all__ = ["MAX_UPLOAD_BYTES", "OUTCOMES_UPLOAD_PATH", "UPLOAD_PATH", "mount"]


def mount(app: FastAPI, models_dir: Path, sample_dir: Path, secret_setting: str = "") -> None:
    """Add the workspace to an app: its pages, its static files and its login redirect."""
    folder = models_dir / "workspace"
    secret = secret_setting.encode() if secret_setting else session_secret(folder)
    app.state.ui = Workspace(
        auth=auth.Auth(secret, Revocations(folder, max_age=SESSION_SECONDS)),
        exports=Exports(sample_dir, SavedExports(folder, max_age=SESSION_SECONDS)),
        model_reads=model.ModelReads(models_dir),
    )
    for page in (auth, model, leads, lead, outcomes, queue, monitor):
        app.include_router(page.router, dependencies=[Depends(origin.same_origin)])
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.add_exception_handler(auth.LoginRequired, auth.to_login)  # type: ignore[arg-type]
    app.add_exception_handler(origin.CrossOriginRefused, origin.refused)  # type: ignore[arg-type]

    @app.exception_handler(NoChampionError)
    async def no_model(request: Request, exc: NoChampionError) -> Response:
        return render(request, "error.html", {"page": "", "message": str(exc)}, None, status=503)
