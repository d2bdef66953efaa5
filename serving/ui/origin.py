"""Cross-site request forgery: every state-changing workspace request (login, logout, upload,
the sample button, any POST, PUT, PATCH or DELETE under /ui) must come from a page this server
served. The session cookie is SameSite=Lax, but a page on another port of the same host is the
same *site*, so the browser still sends the cookie with its requests: the check is on the origin
(scheme, host and port), which browsers state in `Origin` and `Sec-Fetch-Site` and scripts
cannot forge.

- `Sec-Fetch-Site`, when sent, must be `same-origin`.
- `Origin`, when sent, must be this server's own scheme://host:port (`null` is refused).
- Without `Origin`, the `Referer` must start with this server's origin.
- With neither, a browser (its User-Agent starts with `Mozilla/`, as every browser's does) is
  refused; a script (curl, httpx) is let through: it sends no cookie it was not given.

The check runs before the route reads the body, so a refused upload is never read."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from leadready.serving.ui.web import render

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}


class CrossOriginRefused(Exception):
    """A state-changing request that did not come from this server's own pages."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL, the default port filled in; None when it names none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def same_origin(request: Request) -> None:
    """Raise CrossOriginRefused unless this request may change state (see the module)."""
    if request.method in SAFE_METHODS:
        return
    headers = request.headers
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        raise CrossOriginRefused(f"the browser says it was sent from a {fetch_site} page")
    own = _origin(f"{request.url.scheme}://{headers.get('host', '')}")
    origin = headers.get("origin")
    if origin is not None:
        if own is None or _origin(origin) != own:
            raise CrossOriginRefused(f"it was sent from {origin}")
        return
    referer = headers.get("referer")
    if referer is not None:
        if own is None or _origin(referer) != own:
            raise CrossOriginRefused("it was sent from another site's page")
        return
    if headers.get("user-agent", "").startswith("Mozilla/"):
        raise CrossOriginRefused("the browser did not say which page sent it")


async def refused(request: Request, exc: CrossOriginRefused) -> Response:
    """403 with a page that says what happened and what to do."""
    message = (
        f"This request was refused because {exc.reason}: the workspace only accepts forms sent "
        "from its own pages. Nothing was changed. Open the workspace again and use its forms."
    )
    return render(request, "error.html", {"page": "", "message": message}, None, status=403)
