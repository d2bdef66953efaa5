"""What every workspace page shares: the URL prefix, the templates, the response headers, the
session cookie a response may carry, the workspace's per-process state and the champions the
server has loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from leadready.features.registry import NoChampionError
from leadready.serving.engine import Champions, Engine
from leadready.serving.flat import FlatModel
from leadready.serving.ui.charts import ROUTE_COLORS
from leadready.serving.ui.formatting import FILTERS

if TYPE_CHECKING:
    from leadready.serving.ui.auth import Auth
    from leadready.serving.ui.exports import Exports
    from leadready.serving.ui.pages.model import ModelReads

PREFIX = "/ui"
COOKIE = "leadready_session"
SESSION_SECONDS = 8 * 3600
HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' "
    "'unsafe-inline'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def lead_url(lead_id: str, **params: object) -> str:
    """A lead's page, with what-if values in the query (empty and zero ones left out)."""
    url = f"{PREFIX}/leads/{quote(str(lead_id), safe='')}"
    shown = {k: v for k, v in params.items() if v not in (None, "", 0)}
    return url + ("?" + urlencode(shown) if shown else "")


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(FILTERS)
templates.env.globals.update(lead_url=lead_url, route_colors=ROUTE_COLORS, prefix=PREFIX)


@dataclass
class Workspace:
    """Per-process state of the workspace (in `app.state.ui`): who may log in, the sessions'
    scored exports, and what the Model page read from the registry."""

    auth: Auth
    exports: Exports
    model_reads: ModelReads


def workspace(request: Request) -> Workspace:
    return request.app.state.ui


@dataclass
class Session:
    sid: str
    fresh_token: str | None = None
    """Set when the cookie must be (re)issued with this response (open mode)."""


def api_keys(request: Request) -> list[bytes]:
    """The server's API keys (LEADREADY_API_KEYS); none means the workspace is open."""
    return list(getattr(request.app.state, "keys", []) or [])


def set_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    session: Session | None,
    status: int = 200,
) -> HTMLResponse:
    state = request.app.state
    loaded = (getattr(state, "engine", None), getattr(state, "flat", None))
    response = templates.TemplateResponse(
        request,
        template,
        {
            "models": [m.model_ref for m in loaded if m is not None],
            "keys_required": bool(api_keys(request)),
            **context,
        },
        status_code=status,
        headers=SECURITY_HEADERS,
    )
    if session is not None and session.fresh_token:
        set_cookie(request, response, session.fresh_token)
    return response


def redirect(request: Request, url: str, session: Session | None = None) -> RedirectResponse:
    response = RedirectResponse(url, 303, headers=SECURITY_HEADERS)
    if session is not None and session.fresh_token:
        set_cookie(request, response, session.fresh_token)
    return response


def loaded_champions(request: Request) -> Champions:
    """The champions this process serves now (a reload swaps them in `app.state`)."""
    state = request.app.state
    return Champions(
        getattr(state, "engine", None),
        getattr(state, "flat", None),
        getattr(state, "unavailable", {}),
    )


ChampionsDep = Annotated[Champions, Depends(loaded_champions)]

MISSING = {
    "crm": "no model trained on CRM exports is in use on this server yet",
    "flat": "no model trained on flat tables is in use on this server yet",
}
"""What pages say of a champion the server could not load. Why it could not (which may name a
tracking URI with credentials in it, or a path) is in the server log only."""


def crm_model(champions: Champions) -> Engine:
    """The champion trained on CRM exports (scores exports, the sample and lead pages)."""
    if champions.engine is None:
        raise NoChampionError(MISSING["crm"])
    return champions.engine


def flat_model(champions: Champions) -> FlatModel:
    """The flat-table champion (scores uploaded flat tables)."""
    if champions.flat is None:
        raise NoChampionError(MISSING["flat"])
    return champions.flat
