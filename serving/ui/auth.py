"""Who may use the workspace: a login form that takes one of the API keys (LEADREADY_API_KEYS)
and sets a signed session cookie, a throttle on wrong keys, and the session every page route
takes as a dependency (`SessionDep`). With no keys configured the workspace is open, like the
API, and a session starts on the first visit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadready.serving.sessions import Revocations
from leadready.serving.throttle import KeyThrottle, client_address
from leadready.serving.ui.web import (
    COOKIE,
    PREFIX,
    SESSION_SECONDS,
    Session,
    api_keys,
    redirect,
    render,
    set_cookie,
    workspace,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_fingerprint(key: bytes) -> str:
    """Which key a session was opened with, without the key: it stops working when the key is
    removed from LEADREADY_API_KEYS (and the server restarted)."""
    return hashlib.sha256(b"leadready-ui:" + key).hexdigest()[:24]


@dataclass
class Auth:
    """Signs and checks session tokens with the secret every worker shares, refusing logged-out
    ones (`revocations`, on disk for every worker); counts wrong keys per client address (each
    worker its own)."""

    secret: bytes
    revocations: Revocations

    def sign(self, payload: dict[str, object]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        mac = hmac.new(self.secret, body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def verify(self, token: str | None) -> dict[str, Any] | None:
        """The token's payload when this secret signed it, it has not expired and its session was
        not logged out."""
        if not token or "." not in token:
            return None
        body, _, mac = token.partition(".")
        expected = _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, json.JSONDecodeError):
            return None
        if not isinstance(payload, dict) or payload.get("exp", 0) < time.time():
            return None
        if self.revocations.revoked(str(payload.get("sid", ""))):
            return None
        return payload

    def new_token(self, fingerprint: str) -> str:
        """A new session, valid for SESSION_SECONDS, opened with the key of `fingerprint`."""
        return self.sign(
            {
                "sid": secrets.token_urlsafe(16),
                "k": fingerprint,
                "exp": int(time.time()) + SESSION_SECONDS,
            }
        )


class LoginRequired(Exception):
    """No valid session: the app's handler redirects to the login form, then to `next_url`."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def to_login(_: Request, exc: LoginRequired) -> Response:
    return RedirectResponse(f"{PREFIX}/login?" + urlencode({"next": exc.next_url}), 303)


def current_session(request: Request) -> Session:
    """The signed session of this request, or a redirect to the login form. With no API keys
    configured the workspace is open and a session is started on the first visit."""
    auth = workspace(request).auth
    payload = auth.verify(request.cookies.get(COOKIE))
    keys = api_keys(request)
    if not keys:
        if payload is None:
            token = auth.new_token("open")
            return Session(auth.verify(token)["sid"], token)  # type: ignore[index]
        return Session(str(payload["sid"]))
    valid = payload is not None and any(
        hmac.compare_digest(str(payload.get("k", "")), key_fingerprint(k)) for k in keys
    )
    if not valid:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":  # a form posted after the session ended: start over
            target = f"{PREFIX}/leads"
        raise LoginRequired(target)
    return Session(str(payload["sid"]))  # type: ignore[index]


SessionDep = Annotated[Session, Depends(current_session)]


def _safe_next(url: str | None) -> str:
    if url and url.startswith(PREFIX) and not url.startswith("//") and "\\" not in url:
        return url
    return f"{PREFIX}/leads"


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return redirect(request, f"{PREFIX}/leads")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    if not api_keys(request):
        return redirect(request, _safe_next(next))
    return render(request, "login.html", {"next": _safe_next(next), "error": None}, None)


def _throttled(request: Request, target: str, wait: float) -> Response:
    """The login form again, 429: this address has had too many wrong keys."""
    minutes = math.ceil(wait / 60)
    refused = render(
        request,
        "login.html",
        {
            "next": target,
            "error": "Too many wrong keys from this address: try again in "
            f"{minutes} minute{'s' if minutes > 1 else ''}.",
        },
        None,
        status=429,
    )
    refused.headers["Retry-After"] = str(math.ceil(wait))
    return refused


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, key: Annotated[str, Form()] = "", next: Annotated[str, Form()] = ""
) -> Response:
    keys = api_keys(request)
    target = _safe_next(next)
    if not keys:
        return redirect(request, target)
    auth = workspace(request).auth
    throttle: KeyThrottle = request.app.state.throttle
    address = client_address(request)
    wait = throttle.wait(address)
    if wait:
        return _throttled(request, target, wait)
    supplied = key.strip().encode()
    matched: bytes | None = None
    for candidate in keys:  # every key, always, as the API does
        if hmac.compare_digest(supplied, candidate):
            matched = candidate
    if matched is None:
        if wait := throttle.failed(address):
            return _throttled(request, target, wait)
        return render(
            request,
            "login.html",
            {"next": target, "error": "That key is not one of this server's API keys."},
            None,
            status=401,
        )
    response = redirect(request, target)
    set_cookie(request, response, auth.new_token(key_fingerprint(matched)))
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session on every worker: its cookie is refused from now on, wherever it is sent."""
    auth = workspace(request).auth
    payload = auth.verify(request.cookies.get(COOKIE))
    if payload is not None:
        auth.revocations.revoke(str(payload["sid"]))
    response = redirect(request, f"{PREFIX}/login")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
