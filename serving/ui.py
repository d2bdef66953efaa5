"""The marketers' workspace at `/ui`: server-rendered pages over the API's own model and data.

- **Model**: the champion (version, training date, hold-out metrics, global drivers,
  calibration and cumulative gains on its hold-out, routing thresholds with the share and win
  rate of each route) beside the challenger.
- **Leads**: an uploaded CRM export, flat table or the sample folder, scored once and kept in
  this process's memory for the session (and on disk for the other workers,
  `serving.sessions`); filtered, paginated and downloaded on the server, so ten thousand leads
  cost the browser fifty rows.
- **Lead**: readiness, potential, route and reason, contributions, the timeline, and a what-if
  panel with the three single changes that would raise readiness most.
- **Outcomes**: audit-log scores against won and lost outcomes (`serving.outcomes`).

Everything is HTML from Jinja2 templates and SVG charts drawn here; the one script, in
`serving/static/`, only submits forms on change, so every page works without it. Access: a
login form takes one of the API keys (LEADREADY_API_KEYS) and sets a signed session cookie
(HttpOnly, SameSite=Lax, Secure over https); with no keys configured the workspace is open,
like the API. What-if scores are hypothetical and never written to the audit log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
from fastapi import APIRouter, FastAPI, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from leadready.features import table as table_columns
from leadready.features.build import to_seconds
from leadready.features.contract import (
    AUTHORITY,
    BANT_FIELDS,
    BUDGET,
    NEED,
    SOURCES,
    TIMEFRAME,
    ContractError,
    Crm,
    load_crm,
)
from leadready.features.registry import CHAMPION, NoChampionError
from leadready.features.routing import ROUTES, Thresholds, nurture_warning, route_rules
from leadready.features.schema import Schema
from leadready.serving import flat as flat_table
from leadready.serving import outcomes as outcome_store
from leadready.serving.batch import latest_time, score_export
from leadready.serving.explain import BANT_WORDS
from leadready.serving.schemas import ActivityIn, LeadIn, ScoreRequest, TouchIn
from leadready.serving.sessions import Saved, SavedExports, session_secret
from markupsafe import Markup, escape
from starlette.datastructures import UploadFile as StarletteUpload

PREFIX = "/ui"
UPLOAD_PATH = f"{PREFIX}/leads/upload"
COOKIE = "leadready_session"
SESSION_SECONDS = 8 * 3600
PAGE_SIZE = 50
MAX_EXPORTS = 16
"""Scored exports kept in memory (one per session, least recently used dropped first)."""
MAX_UPLOAD_BYTES = 200 << 20
"""Largest upload body accepted under /ui (the API's own limit stays 1 MiB)."""
TIMELINE_ROWS = 100
HOLDOUT = "holdout/holdout.parquet"
CHALLENGER = "challenger"
CALIBRATION_BINS = 10
REGISTRY_SECONDS = 15.0

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix=PREFIX, include_in_schema=False)

ROUTE_COLORS = {"sales": "#1f7a4d", "nurture": "#b7791f", "disqualify": "#9b2c2c"}
UP, DOWN, MUTED, INK, ACCENT = "#2f855a", "#c53030", "#a0aec0", "#2d3748", "#2b6cb0"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' "
    "'unsafe-inline'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# ------------------------------------------------------------------------------- formatting


def pct(value: object, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.{digits}%}"  # type: ignore[arg-type]


def num(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):,.{digits}f}"  # type: ignore[arg-type]


def count(value: object) -> str:
    return f"{int(value):,}"  # type: ignore[call-overload]


def words(value: object) -> str:
    """A contract value in plain words: '1_3m' -> '1-3 months', 'decision_maker' ->
    'decision maker'."""
    text = str(value)
    return BANT_WORDS.get(text, text.replace("_", " "))


def when(value: object) -> str:
    """A time as 'YYYY-MM-DD HH:MM' (UTC); text that is not a time (a flat model's "stratified
    random" test set) as it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except ValueError:
        return str(value)
    if pd.isna(stamp):
        return "—"
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return (
        stamp.strftime("%Y-%m-%d %H:%M")
        if (stamp.hour or stamp.minute)
        else stamp.strftime("%Y-%m-%d")
    )


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def lead_url(lead_id: str, **params: object) -> str:
    url = f"{PREFIX}/leads/{quote(str(lead_id), safe='')}"
    shown = {k: v for k, v in params.items() if v not in (None, "", 0)}
    return url + ("?" + urlencode(shown) if shown else "")


templates.env.filters.update(
    pct=pct, num=num, thousands=count, words=words, when=when, capital=capital
)
templates.env.globals.update(lead_url=lead_url, route_colors=ROUTE_COLORS, prefix=PREFIX)


# ----------------------------------------------------------------------------------- charts


def _svg(width: int, height: int, body: str, label: str) -> Markup:
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def _text(
    x: float,
    y: float,
    text: object,
    anchor: str = "start",
    size: int = 12,
    fill: str = INK,
    extra: str = "",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="{fill}"{extra}>{escape(str(text))}</text>'
    )


def empty_chart(label: str, message: str, width: int = 640, height: int = 160) -> Markup:
    """A chart with nothing to show yet still draws a frame and says why."""
    body = (
        f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" fill="#f7fafc" '
        f'stroke="#e2e8f0" rx="6"/>'
        + _text(width / 2, height / 2 + 4, message, "middle", 14, "#718096")
    )
    return _svg(width, height, body, label)


def hbars(
    rows: Sequence[tuple[str, float, str]],
    label: str,
    axis: str,
    digits: int = 2,
    width: int = 760,
    label_width: int = 330,
) -> Markup:
    """Horizontal bars, negative values to the left of zero: (label, value, color) rows."""
    if not rows:
        return empty_chart(label, "Nothing to show")
    bar, gap, top = 22, 8, 10
    height = top + len(rows) * (bar + gap) + 34
    values = [v for _, v, _ in rows]
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    pad = 58 if low < 0 else 10  # room for the values printed left of negative bars
    plot = width - label_width - pad - 60

    def x_of(v: float) -> float:
        return label_width + pad + (v - low) / span * plot

    zero = x_of(0.0)
    parts = []
    for i, (name, value, color) in enumerate(rows):
        y = top + i * (bar + gap)
        x0, x1 = sorted((zero, x_of(value)))
        shown = name if len(name) <= 46 else name[:45] + "…"
        parts.append(_text(label_width, y + bar * 0.7, shown, "end", 13))
        parts.append(
            f'<rect class="bar" x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1.5):.1f}" '
            f'height="{bar}" fill="{color}" rx="3"><title>{escape(name)}: '
            f"{value:+.{digits}f}</title></rect>"
        )
        parts.append(
            _text(
                x1 + 6 if value >= 0 else x0 - 6,
                y + bar * 0.7,
                f"{value:+.{digits}f}" if low < 0 else f"{value:.{digits}f}",
                "start" if value >= 0 else "end",
                12,
                "#4a5568",
            )
        )
    bottom = top + len(rows) * (bar + gap)
    parts.append(
        f'<line x1="{zero:.1f}" y1="{top - 4}" x2="{zero:.1f}" y2="{bottom}" '
        f'stroke="#4a5568" stroke-width="1"/>'
    )
    parts.append(_text(label_width + pad + plot / 2, bottom + 22, axis, "middle", 12, "#718096"))
    return _svg(width, height, "".join(parts), label)


def _ticks(top: float) -> list[float]:
    """Round tick values from 0 to `top`: steps of 10% up to 60%, else 20%."""
    tenths = round(top * 10)
    if abs(tenths - top * 10) > 1e-9 or tenths == 0:
        return [top * k / 5 for k in range(6)]
    step = 1 if tenths <= 6 else 2
    return [k / 10 for k in range(0, tenths + 1, step)]


def line_chart(
    series: Sequence[dict[str, Any]],
    label: str,
    x_label: str,
    y_label: str,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    x_max: float = 1.0,
    y_max: float = 1.0,
    diagonal: bool = False,
    percent: bool = True,
    width: int = 460,
    height: int = 340,
) -> Markup:
    """Lines over x in [0, x_max] and y in [0, y_max]; each series has name, points, color and
    optionally dash and markers."""
    if not any(s["points"] for s in series):
        return empty_chart(label, "No data yet", width, 160)
    left, right, top, bottom = 56, 30, 14, 58
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(x: float, y: float) -> tuple[float, float]:
        return left + x / (x_max or 1) * plot_w, top + plot_h - y / (y_max or 1) * plot_h

    parts = [
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fbfdff" '
        f'stroke="#e2e8f0"/>'
    ]
    for value in _ticks(y_max):
        _, y = xy(0, value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#edf2f7"/>'
        )
        parts.append(
            _text(
                left - 6, y + 4, f"{value:.0%}" if percent else f"{value:.2f}", "end", 11, "#718096"
            )
        )
    ticks = x_ticks or [(v, f"{v:.0%}" if percent else f"{v:.2f}") for v in _ticks(x_max)]
    for value, text in ticks:
        x, _ = xy(value, 0)
        parts.append(_text(x, top + plot_h + 16, text, "middle", 11, "#718096"))
    if diagonal:
        x0, y0 = xy(0, 0)
        x1, y1 = xy(x_max, min(x_max, y_max))
        parts.append(
            f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" '
            f'stroke="#a0aec0" stroke-dasharray="4 4"/>'
        )
    legend_x = left + 8
    for s in series:
        points = [(x, y) for x, y in s["points"] if y is not None and not math.isnan(y)]
        if not points:
            continue
        coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in (xy(x, y) for x, y in points))
        dash = ' stroke-dasharray="6 4"' if s.get("dash") else ""
        parts.append(
            f'<polyline class="series" points="{coords}" fill="none" '
            f'stroke="{s["color"]}" stroke-width="2.2"{dash}/>'
        )
        if s.get("markers", len(points) <= 24):
            for x, y in points:
                cx, cy = xy(x, y)
                parts.append(
                    f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.2" fill="{s["color"]}">'
                    f"<title>{escape(s['name'])}: {pct(y) if percent else num(y)}"
                    "</title></circle>"
                )
        parts.append(
            f'<rect x="{legend_x}" y="{top + 8}" width="12" height="4" fill="{s["color"]}"/>'
        )
        parts.append(_text(legend_x + 16, top + 13, s["name"], "start", 11))
        legend_x += 24 + 7 * len(s["name"])
    parts.append(_text(left + plot_w / 2, height - 18, x_label, "middle", 12, "#4a5568"))
    parts.append(
        _text(
            14,
            top + plot_h / 2,
            y_label,
            "middle",
            12,
            "#4a5568",
            f' transform="rotate(-90 14 {top + plot_h / 2:.1f})"',
        )
    )
    return _svg(width, height, "".join(parts), label)


def vbars(
    bars: Sequence[dict[str, Any]],
    label: str,
    y_label: str,
    y_max: float | None = None,
    marker_name: str | None = None,
    width: int = 520,
    height: int = 300,
) -> Markup:
    """Vertical bars of rates (0-1): each has label, value (or None), color, note, and
    optionally a marker value drawn as a dot (e.g. the mean readiness)."""
    if not bars or all(b["value"] is None for b in bars):
        return empty_chart(label, "No outcomes yet", width, 160)
    left, right, top, bottom = 50, 12, 24, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = y_max or max(
        max((b["value"] or 0) for b in bars), max((b.get("marker") or 0) for b in bars), 0.05
    )
    peak = min(1.0, math.ceil(peak * 10 + 0.5) / 10)
    slot = plot_w / len(bars)
    parts = []
    for value in _ticks(peak):
        y = top + plot_h - value / peak * plot_h
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#edf2f7"/>'
        )
        parts.append(_text(left - 6, y + 4, f"{value:.0%}", "end", 11, "#718096"))
    for i, b in enumerate(bars):
        x = left + i * slot + slot * 0.18
        w = slot * 0.64
        if b["value"] is not None:
            h = b["value"] / peak * plot_h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{w:.1f}" height="{max(h, 1.5):.1f}" fill="{b["color"]}" '
                f'rx="3"><title>{escape(b["label"])}: {pct(b["value"])} '
                f"{escape(b.get('note', ''))}</title></rect>"
            )
            parts.append(
                _text(x + w / 2, top + plot_h - h - 5, pct(b["value"], 0), "middle", 11, INK)
            )
        if b.get("marker") is not None:
            my = top + plot_h - b["marker"] / peak * plot_h
            parts.append(
                f'<circle cx="{x + w / 2:.1f}" cy="{my:.1f}" r="4" fill="#fff" '
                f'stroke="{INK}" stroke-width="2"><title>{escape(marker_name or "")}: '
                f"{pct(b['marker'])}</title></circle>"
            )
        parts.append(_text(x + w / 2, top + plot_h + 16, b["label"], "middle", 11, "#4a5568"))
        if b.get("note"):
            parts.append(_text(x + w / 2, top + plot_h + 30, b["note"], "middle", 10, "#a0aec0"))
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
        f'y2="{top + plot_h}" stroke="#4a5568"/>'
    )
    parts.append(
        _text(
            14,
            top + plot_h / 2,
            y_label,
            "middle",
            12,
            "#4a5568",
            f' transform="rotate(-90 14 {top + plot_h / 2:.1f})"',
        )
    )
    if marker_name:
        parts.append(
            f'<circle cx="{left + 10}" cy="{top - 12}" r="4" fill="#fff" '
            f'stroke="{INK}" stroke-width="2"/>'
        )
        parts.append(_text(left + 20, top - 8, marker_name, "start", 11, "#4a5568"))
    return _svg(width, height, "".join(parts), label)


def route_strip(routes: dict[str, dict[str, float]], label: str, width: int = 1140) -> Markup:
    """One bar split by the share of each route."""
    height, x, parts = 44, 0.0, []
    for route in ROUTES:
        share = float(routes.get(route.value, {}).get("share") or 0.0)
        w = share * width
        if w <= 0:
            continue
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="4" width="{w:.1f}" height="36" '
            f'fill="{ROUTE_COLORS[route.value]}"><title>{route.value}: '
            f"{pct(share)}</title></rect>"
        )
        if w > 70:
            parts.append(
                _text(x + w / 2, 27, f"{route.value} {pct(share, 0)}", "middle", 13, "#fff")
            )
        x += w
    if not parts:
        return empty_chart(label, "No route statistics", width, 60)
    return _svg(width, height, "".join(parts), label)


def timeline_chart(
    events: Sequence[dict[str, Any]], start: float, end: float, label: str, width: int = 760
) -> Markup:
    """Activities (top row) and touches (bottom row) as dots between creation and as_of."""
    if not events:
        return empty_chart(label, "No activities or touches before the scoring time", width, 90)
    left, right, height = 90, 16, 104
    span = (end - start) or 1.0
    plot = width - left - right

    def x_of(t: float) -> float:
        return left + min(max((t - start) / span, 0.0), 1.0) * plot

    rows = {"activity": 30, "touch": 66}
    parts = [
        _text(left - 10, rows["activity"] + 4, "activities", "end", 12),
        _text(left - 10, rows["touch"] + 4, "touches", "end", 12),
    ]
    for y in rows.values():
        parts.append(f'<line x1="{left}" y1="{y}" x2="{left + plot}" y2="{y}" stroke="#e2e8f0"/>')
    for e in events:
        color = e["color"]
        parts.append(
            f'<circle cx="{x_of(e["t"]):.1f}" cy="{rows[e["kind"]]}" r="5" '
            f'fill="{color}" fill-opacity="0.8"><title>{escape(when(e["at"]))} '
            f"{escape(e['what'])}</title></circle>"
        )
    for t, anchor in ((start, "start"), (end, "end")):
        parts.append(
            _text(x_of(t), height - 8, when(pd.Timestamp(t, unit="s")), anchor, 11, "#718096")
        )
    return _svg(width, height, "".join(parts), label)


# --------------------------------------------------------------------------------- sessions


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_fingerprint(key: bytes) -> str:
    """Which key a session was opened with, without the key: it stops working when the key is
    removed from LEADREADY_API_KEYS (and the server restarted)."""
    return hashlib.sha256(b"leadready-ui:" + key).hexdigest()[:24]


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


@dataclass
class Session:
    sid: str
    fresh_token: str | None = None
    """Set when the cookie must be (re)issued with this response (open mode)."""


@dataclass
class Export:
    """A scored export kept for a session: one row per scored lead, highest readiness first."""

    name: str
    table: pd.DataFrame
    crm: Crm | None
    as_of: int
    model_version: str
    id_column: str = "lead_id"
    positions: dict[str, int] = field(default_factory=dict)
    activity_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    touch_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    sample: bool = False
    scored: frozenset[str] = frozenset()
    frame: pd.DataFrame | None = None
    """A flat table as uploaded (after the schema), kept to score again with a new champion."""


MAX_FAILED_LOGINS = 10
LOGIN_WINDOW = 300.0
"""A client address with MAX_FAILED_LOGINS wrong keys within LOGIN_WINDOW seconds waits until
the oldest of them is that old (HTTP 429), so keys cannot be guessed through the form."""


@dataclass
class LoginThrottle:
    failures: dict[str, deque[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, address: str, now: float) -> float:
        """Seconds this address must wait before its next attempt (0: it may try now)."""
        with self.lock:
            recent = self.failures.get(address)
            while recent and now - recent[0] >= LOGIN_WINDOW:
                recent.popleft()
            if not recent:
                self.failures.pop(address, None)
                return 0.0
            return (
                max(0.0, recent[0] + LOGIN_WINDOW - now)
                if len(recent) >= MAX_FAILED_LOGINS
                else 0.0
            )

    def failed(self, address: str, now: float) -> None:
        with self.lock:
            if len(self.failures) > 10_000:  # forget addresses with nothing recent
                self.failures = {
                    a: q for a, q in self.failures.items() if q and now - q[-1] < LOGIN_WINDOW
                }
            self.failures.setdefault(address, deque()).append(now)

    def succeeded(self, address: str) -> None:
        with self.lock:
            self.failures.pop(address, None)


@dataclass
class Workspace:
    """Per-process state of the workspace (in `app.state.ui`)."""

    models_dir: Path
    sample_dir: Path
    secret: bytes
    saved: SavedExports
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    exports: OrderedDict[str, Export] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sample: tuple[tuple, Export] | None = None
    curves: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    infos: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    versions: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def sign(self, payload: dict[str, object]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        mac = hmac.new(self.secret, body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def verify(self, token: str | None) -> dict[str, Any] | None:
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
        return payload

    def new_token(self, fingerprint: str) -> str:
        return self.sign(
            {
                "sid": secrets.token_urlsafe(16),
                "k": fingerprint,
                "exp": int(time.time()) + SESSION_SECONDS,
            }
        )

    def export_for(self, sid: str) -> Export | None:
        with self.lock:
            export = self.exports.get(sid)
            if export is not None:
                self.exports.move_to_end(sid)
            return export

    def keep(self, sid: str, export: Export) -> None:
        with self.lock:
            self.exports[sid] = export
            self.exports.move_to_end(sid)
            while len(self.exports) > MAX_EXPORTS:
                self.exports.popitem(last=False)

    def sample_available(self) -> bool:
        return any((self.sample_dir / f"leads.{ext}").is_file() for ext in ("csv", "parquet"))


def mount(app: FastAPI, models_dir: Path, sample_dir: Path, secret_setting: str = "") -> None:
    """Add the workspace to an app: its pages, its static files and its login redirect."""
    folder = models_dir / "workspace"
    secret = secret_setting.encode() if secret_setting else session_secret(folder)
    app.state.ui = Workspace(
        models_dir=models_dir,
        sample_dir=sample_dir,
        secret=secret,
        saved=SavedExports(folder, max_age=SESSION_SECONDS),
    )
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    @app.exception_handler(LoginRequired)
    async def to_login(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"{PREFIX}/login?" + urlencode({"next": exc.next_url}), 303)

    @app.exception_handler(NoChampionError)
    async def no_model(request: Request, exc: NoChampionError) -> Response:
        return render(request, "error.html", {"page": "", "message": str(exc)}, None, status=503)


def _workspace(request: Request) -> Workspace:
    return request.app.state.ui


def _keys(request: Request) -> list[bytes]:
    return list(getattr(request.app.state, "keys", []) or [])


def current_session(request: Request) -> Session:
    """The signed session of this request, or a redirect to the login form. With no API keys
    configured the workspace is open and a session is started on the first visit."""
    ws = _workspace(request)
    payload = ws.verify(request.cookies.get(COOKIE))
    keys = _keys(request)
    if not keys:
        if payload is None:
            token = ws.new_token("open")
            return Session(ws.verify(token)["sid"], token)  # type: ignore[index]
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


def _set_cookie(request: Request, response: Response, token: str) -> None:
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
    served = (getattr(state, "engine", None), getattr(state, "flat", None))
    response = templates.TemplateResponse(
        request,
        template,
        {
            "models": [m.model_ref for m in served if m is not None],
            "keys_required": bool(_keys(request)),
            **context,
        },
        status_code=status,
        headers=SECURITY_HEADERS,
    )
    if session is not None and session.fresh_token:
        _set_cookie(request, response, session.fresh_token)
    return response


def redirect(request: Request, url: str, session: Session | None = None) -> RedirectResponse:
    response = RedirectResponse(url, 303, headers=SECURITY_HEADERS)
    if session is not None and session.fresh_token:
        _set_cookie(request, response, session.fresh_token)
    return response


def _engine(request: Request) -> Any:
    """The champion trained on CRM exports (scores exports, the sample and lead pages)."""
    return _served(request, "engine", "crm")


def _flat_model(request: Request) -> Any:
    """The flat-table champion (scores uploaded flat tables)."""
    return _served(request, "flat", "flat")


def _served(request: Request, attribute: str, kind: str) -> Any:
    state = request.app.state
    model = getattr(state, attribute, None)
    if model is None:
        raise NoChampionError(getattr(state, "unavailable", {}).get(kind, "no model loaded"))
    return model


def _safe_next(url: str | None) -> str:
    if url and url.startswith(PREFIX) and not url.startswith("//") and "\\" not in url:
        return url
    return f"{PREFIX}/leads"


# ------------------------------------------------------------------------------ login pages


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return redirect(request, f"{PREFIX}/leads")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    if not _keys(request):
        return redirect(request, _safe_next(next))
    return render(request, "login.html", {"next": _safe_next(next), "error": None}, None)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, key: Annotated[str, Form()] = "", next: Annotated[str, Form()] = ""
) -> Response:
    keys = _keys(request)
    target = _safe_next(next)
    if not keys:
        return redirect(request, target)
    throttle = _workspace(request).throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.wait(address, time.monotonic())
    if wait:
        minutes = math.ceil(wait / 60)
        refused = render(
            request,
            "login.html",
            {
                "next": target,
                "error": f"Too many wrong keys from this address: try again in "
                f"{minutes} minute{'s' if minutes > 1 else ''}.",
            },
            None,
            status=429,
        )
        refused.headers["Retry-After"] = str(math.ceil(wait))
        return refused
    supplied = key.strip().encode()
    matched: bytes | None = None
    for candidate in keys:  # every key, always, as the API does
        if hmac.compare_digest(supplied, candidate):
            matched = candidate
    if matched is None:
        throttle.failed(address, time.monotonic())
        return render(
            request,
            "login.html",
            {"next": target, "error": "That key is not one of this server's API keys."},
            None,
            status=401,
        )
    throttle.succeeded(address)
    response = redirect(request, target)
    _set_cookie(request, response, _workspace(request).new_token(key_fingerprint(matched)))
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = redirect(request, f"{PREFIX}/login")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# ------------------------------------------------------------------------------- model page


def _download_holdout(run_id: str) -> pd.DataFrame | None:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=HOLDOUT)
        return pd.read_parquet(path)
    except (MlflowException, OSError, ValueError):
        return None


def holdout_curves(ws: Workspace, engine: Any) -> dict[str, Any] | None:
    """Calibration bins and the cumulative gains curve of a champion on its hold-out, from the
    scores the hold-out test gave (logged with the run: a flat model is refitted on all rows
    afterwards, so rescoring the hold-out would reuse seen rows); computed once per version."""
    from leadready.features.registry import use_store

    key = (engine.loaded.name, engine.loaded.run_id)
    if key in ws.curves:
        return ws.curves[key]
    use_store(ws.models_dir)
    frame = _download_holdout(engine.loaded.run_id)
    result = None
    if frame is not None and {"__ready", "__readiness"} <= set(frame) and frame["__ready"].any():
        y = frame["__ready"].to_numpy(dtype=float)
        p = frame["__readiness"].to_numpy(dtype=float)
        chunks = [
            c for c in np.array_split(np.argsort(p, kind="stable"), CALIBRATION_BINS) if len(c)
        ]
        bins = [(float(p[c].mean()), float(y[c].mean())) for c in chunks]
        order = np.argsort(-p, kind="stable")
        captured = np.cumsum(y[order]) / y.sum()
        share = np.arange(1, len(y) + 1) / len(y)
        steps = np.unique(np.linspace(0, len(y) - 1, min(len(y), 60)).astype(int))
        gains = [(0.0, 0.0)] + [(float(share[i]), float(captured[i])) for i in steps]
        top = captured[max(0, len(y) // 5 - 1)]
        result = {
            "bins": bins,
            "gains": gains,
            "rows": len(y),
            "base_rate": float(y.mean()),
            "top20": float(top),
        }
    ws.curves[key] = result
    return result


def version_info(ws: Workspace, run_id: str) -> dict[str, Any] | None:
    """The `model_info.json` training logged with a version's run (metrics, thresholds...)."""
    if run_id in ws.infos:
        return ws.infos[run_id]
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        info = mlflow.artifacts.load_dict(f"runs:/{run_id}/model_info.json")
    except (MlflowException, OSError, ValueError):
        info = None
    ws.infos[run_id] = info
    return info


def registry_versions(ws: Workspace, name: str) -> dict[str, Any]:
    """Champion and challenger versions of a registered model (the alias may have moved since
    the server loaded it); looked up at most every REGISTRY_SECONDS."""
    cached = ws.versions.get(name)
    if cached is not None and time.monotonic() - cached[0] < REGISTRY_SECONDS:
        return cached[1]
    from leadready.features.registry import use_store
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    use_store(ws.models_dir)
    client = MlflowClient()
    out: dict[str, Any] = {}
    for alias in (CHAMPION, CHALLENGER):
        try:
            v = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            continue
        out[alias] = {
            "version": str(v.version),
            "run_id": str(v.run_id),
            "created": pd.Timestamp(v.creation_timestamp, unit="ms"),
            "tags": dict(v.tags or {}),
        }
    ws.versions[name] = (time.monotonic(), out)
    return out


METRICS = (
    ("roc_auc", "ROC AUC", "higher is better"),
    ("pr_auc", "PR AUC", "higher is better"),
    ("top_decile_lift", "top-decile lift", "higher is better"),
    ("ece", "expected calibration error", "lower is better"),
    ("brier", "Brier score", "lower is better"),
    ("log_loss", "log loss", "lower is better"),
)
SCORERS = (
    ("readiness", "readiness model"),
    ("bant_scorecard", "BANT scorecard"),
    ("frequency_score", "frequency score"),
    ("potential", "potential model (eventual win)"),
)


def _side(info: dict[str, Any], version: str) -> dict[str, Any]:
    metrics = info.get("metrics", {})
    routes = info.get("routes", {})
    return {
        "version": version,
        "trained_at": info.get("trained_at"),
        "kind": info.get("model_kind", {}).get("readiness"),
        "roc_auc": metrics.get("test_readiness_roc_auc"),
        "ece": metrics.get("test_readiness_ece"),
        "lift": metrics.get("test_readiness_top_decile_lift"),
        "bant": metrics.get("test_bant_scorecard_roc_auc"),
        "sales": info.get("thresholds", {}).get("sales"),
        "disqualify": info.get("thresholds", {}).get("disqualify"),
        "sales_share": routes.get("sales", {}).get("share"),
        "sales_win": routes.get("sales", {}).get("win_rate"),
        "test_from": info.get("split", {}).get("test_from"),
        "leads": info.get("data", {}).get("leads"),
    }


MODEL_KINDS = {"crm": "trained on CRM exports", "flat": "trained on flat tables"}


def _page_model(request: Request) -> tuple[str, Any]:
    """The champion the Model page shows: `?model=flat` or `crm`, else the API's one when the
    server has it, else the flat-table one."""
    asked = request.query_params.get("model", "")
    kind = (
        asked
        if asked in MODEL_KINDS
        else ("crm" if getattr(request.app.state, "engine", None) is not None else "flat")
    )
    return kind, _engine(request) if kind == "crm" else _flat_model(request)


@router.get("/model", response_class=HTMLResponse)
def model_page(request: Request) -> Response:
    session = current_session(request)
    kind, engine = _page_model(request)
    flat = kind == "flat"
    ws = _workspace(request)
    info = engine.info
    labels = engine.labels
    drivers = sorted(info["drivers"].items(), key=lambda kv: -kv[1])[:15]
    drivers_chart = hbars(
        [(capital(labels.get(f, f)), v, ACCENT) for f, v in drivers],
        "Global drivers: mean absolute contribution to readiness by input",
        "mean absolute push on readiness (log-odds)",
    )
    curves = holdout_curves(ws, engine)
    if curves is None:
        missing = "No hold-out scores were logged with this version: retrain to draw this"
        calibration = empty_chart("Calibration", missing)
        gains = empty_chart("Cumulative gains", missing)
    else:
        calibration = line_chart(
            [{"name": "model", "points": curves["bins"], "color": ACCENT}],
            "Calibration on the hold-out: predicted readiness against observed win rate",
            "predicted readiness (10 equal-size groups)",
            "observed positive rate" if flat else "won within horizon",
            x_max=max(0.1, math.ceil(max(x for x, _ in curves["bins"]) * 10) / 10),
            y_max=max(
                0.1,
                math.ceil(
                    max(max(y for _, y in curves["bins"]), max(x for x, _ in curves["bins"])) * 10
                )
                / 10,
            ),
            diagonal=True,
        )
        gains = line_chart(
            [
                {"name": "model", "points": curves["gains"], "color": ACCENT, "markers": False},
                {
                    "name": "random order",
                    "points": [(0.0, 0.0), (1.0, 1.0)],
                    "color": MUTED,
                    "dash": True,
                    "markers": False,
                },
            ],
            "Cumulative gains on the hold-out: share of wins captured by contacting the "
            "highest-scored leads first",
            "share of leads contacted, highest readiness first",
            "share of wins captured",
        )
    metrics = info.get("metrics", {})
    intervals = info.get("intervals", {})
    rows = []
    present = [
        (name, title)
        for name, title in SCORERS
        if f"test_{name}_roc_auc" in metrics and not (flat and name == "potential")
    ]  # a flat table has one label
    for metric, title, hint in METRICS:
        cells = []
        for name, _ in present:
            ci = intervals.get(name, {}).get(metric)
            cells.append(
                {
                    "value": metrics.get(f"test_{name}_{metric}"),
                    "low": ci[1] if ci else None,
                    "high": ci[2] if ci else None,
                }
            )
        rows.append({"title": title, "hint": hint, "cells": cells})
    rules = route_rules(Thresholds(**info["thresholds"]), flat)
    routes = [
        {"route": r.value, **info.get("routes", {}).get(r.value, {}), "rule": rules[r.value]}
        for r in ROUTES
    ]
    versions = registry_versions(ws, engine.loaded.name)
    sides = []
    for alias in (CHAMPION, CHALLENGER):
        entry = versions.get(alias)
        if entry is None:
            continue
        side_info = (
            info if entry["version"] == engine.loaded.version else version_info(ws, entry["run_id"])
        )
        if side_info is not None:
            sides.append({"alias": alias, **_side(side_info, entry["version"])})
    same = len(sides) == 2 and sides[0]["version"] == sides[1]["version"]
    if same:
        sides = sides[:1]
    state = request.app.state
    return render(
        request,
        "model.html",
        {
            "page": "model",
            "kind": kind,
            "flat": flat,
            "kinds": {
                k: v
                for k, v in MODEL_KINDS.items()
                if getattr(state, "flat" if k == "flat" else "engine", None) is not None
            },
            "info": info,
            "engine": engine,
            "metric_rows": rows,
            "scorers": present,
            "drivers_chart": drivers_chart,
            "calibration": calibration,
            "gains": gains,
            "curves": curves,
            "routes": routes,
            "routing_warning": nurture_warning(
                info.get("routes", {}), Thresholds(**info["thresholds"])
            ),
            "route_chart": route_strip(info.get("routes", {}), "Share of hold-out leads by route"),
            "sides": sides,
            "same": same,
            "stale": versions.get(CHAMPION, {}).get("version") not in (None, engine.loaded.version),
            "registry_champion": versions.get(CHAMPION, {}).get("version"),
        },
        session,
    )


# ------------------------------------------------------------------------------- leads page


FILTERS = {
    "route": tuple(r.value for r in ROUTES),
    "source": SOURCES,
    "budget": BUDGET,
    "authority": AUTHORITY,
    "need": NEED,
    "timeframe": TIMEFRAME,
}
LEAD_COLUMNS = ("source", "industry", "company_size", "created_at", *BANT_FIELDS)


def _build_export(
    name: str, crm: Crm, engine: Any, as_of: str | None, sample: bool = False
) -> Export:
    if as_of:
        try:
            stamp = pd.to_datetime([as_of], format="ISO8601", utc=True).tz_localize(None)
        except ValueError:
            raise ValueError(f"scoring time {as_of!r} is not an ISO 8601 date or time") from None
        moment = int(to_seconds(stamp)[0])
    else:
        moment = latest_time(crm)
    scored = score_export(crm, engine.loaded, as_of or None)
    attributes = crm.leads[["lead_id", *LEAD_COLUMNS]]
    table = scored.merge(attributes, on="lead_id", how="left")
    table = table.sort_values(
        ["readiness", "lead_id"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    return Export(
        name=name,
        table=table,
        crm=crm,
        as_of=moment,
        model_version=engine.loaded.version,
        positions={lead: i for i, lead in enumerate(crm.leads["lead_id"])},
        activity_ids=crm.activities["lead_id"].to_numpy(dtype=object),
        touch_ids=crm.touches["lead_id"].to_numpy(dtype=object),
        sample=sample,
        scored=frozenset(table["lead_id"]),
    )


def _as_of_text(export: Export) -> str:
    return datetime.fromtimestamp(export.as_of, UTC).isoformat()


def _session_export(request: Request, sid: str) -> Export | None:
    """This session's export, scored by the champion now served: from this process's memory,
    else from the copy saved on disk (uploaded through another worker, or before a restart)."""
    export = _workspace(request).export_for(sid)
    if export is not None:
        return _rescored(request, sid, export)
    saved = _workspace(request).saved.load(sid)
    if saved is None:
        return None
    try:
        if saved.kind == "sample":
            export = _sample_export(request)
        elif saved.crm is not None:
            export = _build_export(saved.name, saved.crm, _engine(request), saved.as_of)
        else:
            assert saved.frame is not None
            export = _flat_table_export(saved.name, saved.frame, _flat_model(request))
    except (ContractError, OSError, ValueError):
        return None  # e.g. the sample folder is gone: start over
    _workspace(request).keep(sid, export)
    return export


def _rescored(request: Request, sid: str, export: Export) -> Export:
    """An export scored by an older champion is scored again by the one now served."""
    model = _engine(request) if export.crm is not None else _flat_model(request)
    if export.model_version == model.loaded.version:
        return export
    if export.crm is not None:
        fresh = _build_export(export.name, export.crm, model, _as_of_text(export), export.sample)
    else:
        assert export.frame is not None  # flat exports keep their table
        fresh = _flat_table_export(export.name, export.frame, model)
    _workspace(request).keep(sid, fresh)
    return fresh


def _filtered(table: pd.DataFrame, params: dict[str, str], id_column: str) -> pd.DataFrame:
    mask = np.ones(len(table), dtype=bool)
    for name, allowed in FILTERS.items():
        value = params.get(name, "")
        if value in allowed and name in table:
            mask &= (table[name] == value).to_numpy()
    q = params.get("q", "").strip().lower()
    if q:
        mask &= table[id_column].astype(str).str.lower().str.contains(q, regex=False).to_numpy()
    return table[mask]


def _filter_params(request: Request) -> dict[str, str]:
    query = request.query_params
    params = {name: query.get(name, "") for name in FILTERS}
    params = {k: v for k, v in params.items() if v in FILTERS[k]}
    q = query.get("q", "").strip()[:200]
    if q:
        params["q"] = q
    return params


def _leads_context(
    request: Request,
    session: Session,
    export: Export | None,
    error: str | None = None,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    ws = _workspace(request)
    params = params if params is not None else _filter_params(request)
    context: dict[str, Any] = {
        "page": "leads",
        "export": export,
        "error": error,
        "params": params,
        "filters": FILTERS,
        "sample_available": ws.sample_available(),
        "sample_dir": str(ws.sample_dir),
        "unavailable": getattr(request.app.state, "unavailable", {}),
    }
    if export is None:
        return context
    table = export.table
    filtered = _filtered(table, params, export.id_column)
    total = len(filtered)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    try:
        page = min(max(1, int(request.query_params.get("page", "1"))), pages)
    except ValueError:
        page = 1
    rows = filtered.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    without_route = _filtered(
        table, {k: v for k, v in params.items() if k != "route"}, export.id_column
    )
    counts = without_route["route"].value_counts().to_dict()

    def link(**changes: object) -> str:
        merged = {**params, **changes}
        shown = {k: v for k, v in merged.items() if v not in (None, "") and (k, v) != ("page", 1)}
        return f"{PREFIX}/leads" + ("?" + urlencode(shown) if shown else "")

    context.update(
        {
            "rows": rows.to_dict("records"),
            "total": total,
            "all": len(table),
            "page_no": page,
            "pages": pages,
            "route_counts": {r.value: int(counts.get(r.value, 0)) for r in ROUTES},
            "link": link,
            "csv_url": f"{PREFIX}/leads.csv" + ("?" + urlencode(params) if params else ""),
            "as_of": datetime.fromtimestamp(export.as_of, UTC),
            "columns_present": {c: c in table for c in (*FILTERS, *LEAD_COLUMNS)},
            "first": (page - 1) * PAGE_SIZE + 1 if total else 0,
            "last": min(page * PAGE_SIZE, total),
        }
    )
    return context


@router.get("/leads", response_class=HTMLResponse)
def leads_page(request: Request) -> Response:
    session = current_session(request)
    export = _session_export(request, session.sid)
    return render(request, "leads.html", _leads_context(request, session, export), session)


@router.get("/leads.csv")
def leads_csv(request: Request) -> Response:
    session = current_session(request)
    export = _session_export(request, session.sid)
    if export is None:
        return redirect(request, f"{PREFIX}/leads", session)
    filtered = _filtered(export.table, _filter_params(request), export.id_column)
    out = filtered.copy()
    if "created_at" in out:
        out["created_at"] = out["created_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    stamp = datetime.fromtimestamp(export.as_of, UTC).strftime("%Y%m%d")
    return Response(
        out.to_csv(index=False),
        media_type="text/csv",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="leadready-leads-{stamp}.csv"',
        },
    )


def _save_upload(upload: UploadFile, folder: Path, name: str) -> Path:
    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ContractError(
            f"{upload.filename or name}: expected a .csv or .parquet file for the {name} table"
        )
    path = folder / f"{name}{suffix}"
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out)
    return path


def _schema(upload: UploadFile | None) -> Schema | None:
    if upload is None or not upload.filename:
        return None
    import yaml

    text = upload.file.read().decode("utf-8", errors="replace")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{upload.filename}: not valid YAML ({exc})") from None
    schema = Schema.parse(raw or {}, upload.filename)
    # Uploaded tables are saved under the contract's names, whatever the schema calls them.
    return replace(schema, tables={k: replace(v, file=None) for k, v in schema.tables.items()})


def _present(upload: UploadFile | None) -> bool:
    return upload is not None and bool(upload.filename)


@router.post(UPLOAD_PATH.removeprefix(PREFIX), response_class=HTMLResponse)
async def upload(request: Request) -> Response:
    """A CRM export (three tables, optional schema) or a flat table, scored for this session.

    The session is checked before the body is read: only a logged-in user can send the large
    bodies this path accepts (MAX_UPLOAD_BYTES)."""
    session = current_session(request)
    async with request.form(max_files=8, max_fields=16) as form:
        files = {
            name: form.get(name) for name in ("leads", "activities", "touches", "table", "schema")
        }
        uploads = {k: v if isinstance(v, StarletteUpload) else None for k, v in files.items()}
        as_of = str(form.get("as_of") or "").strip()
        return await run_in_threadpool(_upload, request, session, uploads, as_of)


def _upload(
    request: Request, session: Session, uploads: dict[str, UploadFile | None], as_of: str
) -> Response:
    ws = _workspace(request)
    leads, activities, touches, table, schema_file = (
        uploads[k] for k in ("leads", "activities", "touches", "table", "schema")
    )
    folder = Path(tempfile.mkdtemp(prefix="leadready-ui-"))
    try:
        mapping = _schema(schema_file)
        if _present(table):
            if any(_present(u) for u in (leads, activities, touches)):
                raise ContractError(
                    "give either the three tables of a CRM export or one flat table, not both"
                )
            export = _flat_export(
                _flat_model(request),
                table,
                folder,  # type: ignore[arg-type]
                mapping,
            )
        else:
            files = {"leads": leads, "activities": activities, "touches": touches}
            missing = [name for name, u in files.items() if not _present(u)]
            if missing:
                raise ContractError(
                    f"missing the {' and '.join(missing)} table{'s' if len(missing) > 1 else ''};"
                    " a CRM export has three: leads, activities and touches (.csv or .parquet)"
                )
            for name, u in files.items():
                _save_upload(u, folder, name)  # type: ignore[arg-type]
            crm = load_crm(folder, require_outcome=False, schema=mapping)
            names = ", ".join(str(u.filename) for u in files.values() if u is not None)
            export = _build_export(names, crm, _engine(request), as_of or None)
        ws.saved.save(
            session.sid,
            Saved(export.name, "crm", as_of or None, crm=crm)
            if export.crm is not None
            else Saved(export.name, "flat", frame=export.frame),
        )
    except (ContractError, NoChampionError, ValueError) as exc:
        message = str(exc).replace(str(folder) + "/", "").replace(str(folder), "the upload")
        return render(
            request,
            "leads.html",
            _leads_context(request, session, _session_export(request, session.sid), message),
            session,
            status=422,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ws.keep(session.sid, export)
    return redirect(request, f"{PREFIX}/leads", session)


def _flat_export(model: Any, upload: UploadFile, folder: Path, schema: Schema | None) -> Export:
    """A flat table (one row per lead), scored by the flat-table champion (`serving.flat`)."""
    path = _save_upload(upload, folder, "table")
    mapping = (
        schema.table("table") if schema is not None else table_columns.stored_mapping(model.info)
    )
    return _flat_table_export(str(upload.filename), table_columns.read_flat(path, mapping), model)


def _flat_table_export(name: str, frame: pd.DataFrame, model: Any) -> Export:
    scored = flat_table.score_table(frame, model.loaded, where=name)
    table = scored.sort_values("readiness", ascending=False, kind="stable").reset_index(drop=True)
    id_column = model.info["id_column"]
    ids = scored[id_column].tolist()
    return Export(
        name=name,
        table=table,
        crm=None,
        as_of=int(time.time()),
        model_version=model.loaded.version,
        id_column=id_column,
        frame=frame,
        positions={lead: i for i, lead in reversed(list(enumerate(ids)))},
    )


@router.post("/leads/sample")
def use_sample(request: Request) -> Response:
    """Score the sample export (LEADREADY_SAMPLE_DIR) for this session."""
    session = current_session(request)
    ws = _workspace(request)
    try:
        export = _sample_export(request)
    except (ContractError, OSError, ValueError) as exc:
        return render(
            request,
            "leads.html",
            _leads_context(request, session, _session_export(request, session.sid), str(exc)),
            session,
            status=422,
        )
    ws.saved.save(session.sid, Saved(export.name, "sample"))
    ws.keep(session.sid, export)
    return redirect(request, f"{PREFIX}/leads", session)


def _sample_export(request: Request) -> Export:
    """The sample scored by the champion; shared by every session, scored once per version
    and change of the folder."""
    ws = _workspace(request)
    engine = _engine(request)
    folder = ws.sample_dir
    stamps = tuple(p.stat().st_mtime_ns for p in sorted(folder.glob("*.*")))
    key = (str(folder.resolve()), stamps, engine.loaded.version)
    if ws.sample is not None and ws.sample[0] == key:
        return ws.sample[1]
    crm = load_crm(folder, require_outcome=False)
    export = _build_export(f"sample ({folder})", crm, engine, None, sample=True)
    ws.sample = (key, export)
    return export


# -------------------------------------------------------------------------------- lead page


ADDITIONS = {
    # form field: (plain words for one, for several, activity type or touch (channel, team))
    "demo_requests": ("demo request", "demo requests", ("activity", "demo_request")),
    "contact_requests": ("contact request", "contact requests", ("activity", "contact_request")),
    "pricing_views": ("pricing-page view", "pricing-page views", ("activity", "pricing_page_view")),
    "webinars": ("webinar attended", "webinars attended", ("activity", "webinar_attended")),
    "downloads": ("content download", "content downloads", ("activity", "content_download")),
    "email_clicks": ("email click", "email clicks", ("activity", "email_click")),
    "sales_calls": ("answered sales call", "answered sales calls", ("touch", "call")),
    "meetings": ("sales meeting", "sales meetings", ("touch", "meeting")),
}
MAX_ADDED = 20
BANT_ACTIONS = {
    ("budget", "confirmed"): "confirm budget",
    ("budget", "indicated"): "get a budget indication",
    ("budget", "none"): "learn there is no budget",
    ("budget", "unknown"): "forget the budget",
    ("authority", "decision_maker"): "reach the decision maker",
    ("authority", "influencer"): "reach an influencer",
    ("authority", "user"): "reach a user",
    ("authority", "unknown"): "forget the contact's role",
    ("need", "confirmed"): "confirm the need",
    ("need", "indicated"): "get the need indicated",
    ("need", "none"): "learn there is no need",
    ("need", "unknown"): "forget the need",
    ("timeframe", "unknown"): "forget the timeframe",
}


def _bant_action(name: str, value: str) -> str:
    if (name, value) in BANT_ACTIONS:
        return BANT_ACTIONS[(name, value)]
    return f"set timeframe to {words(value)}"


def lead_request(export: Export, lead_id: str) -> ScoreRequest | None:
    """The lead as a /v1/score request, rebuilt from the stored export (already validated)."""
    crm = export.crm
    if crm is None or lead_id not in export.positions or lead_id not in export.scored:
        return None
    row = crm.leads.iloc[export.positions[lead_id]]

    def events(ids: np.ndarray) -> slice:
        return slice(
            int(np.searchsorted(ids, lead_id, "left")), int(np.searchsorted(ids, lead_id, "right"))
        )

    acts = crm.activities.iloc[events(export.activity_ids)]
    tch = crm.touches.iloc[events(export.touch_ids)]
    custom = {
        name: (
            None
            if pd.isna(row[name])
            else float(row[name])
            if kind == "numeric"
            else str(row[name])
        )
        for name, kind in crm.custom.items()
    }
    lead = LeadIn.model_construct(
        lead_id=lead_id,
        created_at=row["created_at"].to_pydatetime(),
        source=row["source"],
        industry=row["industry"],
        country=row.get("country") or None,
        company_size=None if pd.isna(row["company_size"]) else float(row["company_size"]),
        custom=custom,
        **{name: row[name] for name in BANT_FIELDS},
    )
    activities = [
        ActivityIn.model_construct(occurred_at=t.to_pydatetime(), type=k)
        for t, k in zip(acts["occurred_at"], acts["type"], strict=True)
    ]
    touches = [
        TouchIn.model_construct(
            occurred_at=t.to_pydatetime(),
            channel=c,
            team=team,
            responded=None if pd.isna(r) else bool(r),
        )
        for t, c, team, r in zip(
            tch["occurred_at"], tch["channel"], tch["team"], tch["responded"], strict=True
        )
    ]
    return ScoreRequest.model_construct(
        lead=lead,
        activities=activities,
        touches=touches,
        as_of=datetime.fromtimestamp(export.as_of, UTC),
    )


def with_changes(base: ScoreRequest, bant: dict[str, str], added: dict[str, int]) -> ScoreRequest:
    """The request with BANT values replaced and events added at the scoring time."""
    lead = base.lead.model_copy(update=bant) if bant else base.lead
    moment = base.as_of
    activities, touches = list(base.activities), list(base.touches)
    for name, n in added.items():
        kind, what = ADDITIONS[name][2]
        for _ in range(n):
            if kind == "activity":
                activities.append(ActivityIn.model_construct(occurred_at=moment, type=what))
            else:
                touches.append(
                    TouchIn.model_construct(
                        occurred_at=moment, channel=what, team="sales", responded=True
                    )
                )
    return base.model_copy(update={"lead": lead, "activities": activities, "touches": touches})


def _what_if(request: Request, base: ScoreRequest) -> tuple[dict[str, str], dict[str, int]]:
    query = request.query_params
    bant = {
        name: query[name]
        for name, allowed in BANT_FIELDS.items()
        if query.get(name) in allowed and query[name] != getattr(base.lead, name)
    }
    added: dict[str, int] = {}
    for name in ADDITIONS:
        try:
            n = int(query.get(name, "0") or 0)
        except ValueError:
            n = 0
        if n > 0:
            added[name] = min(n, MAX_ADDED)
    return bant, added


def _change_words(bant: dict[str, str], added: dict[str, int]) -> list[str]:
    out = [_bant_action(name, value) for name, value in bant.items()]
    for name, n in added.items():
        one, many, _ = ADDITIONS[name]
        out.append(f"+{n} {one if n == 1 else many}")
    return out


def _timeline(request: ScoreRequest, as_of: int) -> tuple[list[dict[str, Any]], int]:
    events = []
    for a in request.activities:
        hand = a.type in ("demo_request", "contact_request")
        events.append(
            {
                "at": a.occurred_at,
                "kind": "activity",
                "what": words(a.type),
                "color": UP if hand else ACCENT,
                "hand_raise": hand,
            }
        )
    for t in request.touches:
        answered = (
            "" if t.responded is None else " (responded)" if t.responded else " (no response)"
        )
        events.append(
            {
                "at": t.occurred_at,
                "kind": "touch",
                "what": f"{t.team} {words(t.channel)}{answered}",
                "color": ROUTE_COLORS["nurture"] if t.team == "marketing" else "#553c9a",
                "hand_raise": False,
            }
        )
    for e in events:
        stamp = pd.Timestamp(e["at"])
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        e["t"] = stamp.timestamp()
        e["later"] = e["t"] > as_of
    events.sort(key=lambda e: e["t"], reverse=True)
    return events, sum(1 for e in events if e["later"])


def _reason_rows(result: dict[str, Any]) -> list[tuple[str, float, str]]:
    reasons = result["reasons"]
    rows = [(r["label"], r["contribution"], UP) for r in reasons["up"]]
    rows += [(r["label"], r["contribution"], DOWN) for r in reasons["down"]][::-1]
    if abs(reasons["others"]) >= 0.005:
        rows.append(("All other inputs together", reasons["others"], MUTED))
    return rows


@router.get("/leads/{lead_id:path}", response_class=HTMLResponse)
def lead_page(request: Request, lead_id: str) -> Response:
    session = current_session(request)
    export = _session_export(request, session.sid)
    if export is not None and export.crm is None and lead_id in export.positions:
        return _flat_lead_page(request, session, export, lead_id)
    engine = _engine(request)
    base = lead_request(export, lead_id) if export is not None else None
    if base is None or export is None:
        return render(
            request,
            "lead.html",
            {"page": "leads", "lead_id": lead_id, "missing": True, "export": export},
            session,
            status=404,
        )
    bant, added = _what_if(request, base)
    changed = bool(bant or added)
    candidates: list[tuple[str, str, ScoreRequest, dict[str, str]]] = []
    for name, allowed in BANT_FIELDS.items():
        for value in allowed:
            if value != getattr(base.lead, name) and value != "unknown":
                candidates.append(
                    (
                        name,
                        _bant_action(name, value),
                        with_changes(base, {name: value}, {}),
                        {name: value},
                    )
                )
    for name, (one, _, _) in ADDITIONS.items():
        candidates.append((name, f"+1 {one}", with_changes(base, {}, {name: 1}), {name: "1"}))
    requests = [base, with_changes(base, bant, added), *(c[2] for c in candidates)]
    results = engine.score_requests(requests, datetime.now(UTC))
    before, after = results[0], results[1]
    best: dict[str, dict[str, Any]] = {}
    for (group, text, _, params), result in zip(candidates, results[2:], strict=True):
        gain = result["readiness"] - before["readiness"]
        if gain > 0.0005 and (group not in best or gain > best[group]["gain"]):
            best[group] = {
                "text": text,
                "gain": gain,
                "after": result["readiness"],
                "route": result["route"],
                "url": lead_url(lead_id, **params),
            }
    suggestions = sorted(best.values(), key=lambda s: -s["gain"])[:3]
    shown = after if changed else before
    events, later = _timeline(base, export.as_of)
    created = pd.Timestamp(base.lead.created_at)
    start = (created.tz_localize("UTC") if created.tzinfo is None else created).timestamp()
    visible = [e for e in events if not e["later"]]
    return render(
        request,
        "lead.html",
        {
            "page": "leads",
            "lead_id": lead_id,
            "missing": False,
            "export": export,
            "lead": base.lead,
            "before": before,
            "after": after,
            "changed": changed,
            "shown": shown,
            "changes": _change_words(bant, added),
            "bant": bant,
            "added": added,
            "bant_fields": BANT_FIELDS,
            "additions": ADDITIONS,
            "suggestions": suggestions,
            "contributions": hbars(
                _reason_rows(shown),
                f"What pushes the readiness of {lead_id} up or down",
                "push on readiness (log-odds): right raises it, left lowers it",
            ),
            "timeline_chart": timeline_chart(
                visible, start, float(export.as_of), f"Timeline of {lead_id}"
            ),
            "events": events[:TIMELINE_ROWS],
            "events_total": len(events),
            "later": later,
            "as_of": datetime.fromtimestamp(export.as_of, UTC),
            "delta": after["readiness"] - before["readiness"],
        },
        session,
    )


FLAT_EDITABLE = 12
"""Inputs of a flat row the what-if panel offers, the strongest global drivers first."""
FLAT_PREFIX = "x."
"""What-if values of a flat row travel in the query as `x.<column>=<value>`."""
FLAT_QUANTILES = (0.5, 0.75, 0.9)
"""Numeric what-ifs suggested: the column's median, upper quartile and 90th percentile in the
uploaded table (only those above the row's own value)."""


def _flat_changes(
    request: Request, row: pd.DataFrame, choices: dict[str, list[str]], types: dict[str, str]
) -> dict[str, str]:
    """The what-if values in the query that differ from the row and that the model can take."""
    changes = {}
    for name, kind in types.items():
        value = request.query_params.get(FLAT_PREFIX + name)
        if value is None or value.strip() == str(row.at[0, name]).strip():
            continue
        value = value.strip()
        if kind == "numeric":
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                changes[name] = f"{number:g}"
        elif value in choices.get(name, []):
            changes[name] = value
    return changes


def _flat_candidates(
    export: Export,
    row: pd.DataFrame,
    features: list[str],
    choices: dict[str, list[str]],
    types: dict[str, str],
) -> list[tuple[str, str, str]]:
    """(column, value, words) of every single change the suggestions try."""
    assert export.frame is not None
    out = []
    for name in features:
        current = str(row.at[0, name]).strip()
        if types[name] == "numeric":
            column = table_columns.numbers(table_columns.text(export.frame[name])).dropna()
            mine = table_columns.numbers(row[name].astype(str)).iloc[0]
            for q in FLAT_QUANTILES if len(column) else ():
                value = float(column.quantile(q))
                if math.isnan(mine) or value > mine:
                    out.append(
                        (
                            name,
                            f"{value:g}",
                            f"{name} {value:g} (the file's {round(q * 100)}th percentile)",
                        )
                    )
        else:
            out.extend(
                (name, value, f"{name}: {value}")
                for value in choices.get(name, [])
                if value != current
            )
    return out


def _flat_lead_page(request: Request, session: Session, export: Export, lead_id: str) -> Response:
    """A flat table's row: its score and reasons, its values, and a what-if over its inputs."""
    model = _flat_model(request)
    info = model.info
    types: dict[str, str] = info["feature_types"]
    assert export.frame is not None
    row = export.frame.iloc[[export.positions[lead_id]]].reset_index(drop=True)
    vocabulary = model.scorer.encoder.vocabulary_
    choices = {
        name: sorted(vocabulary.get(name, {}), key=str.lower)
        for name in types
        if types[name] == "categorical"
    }
    drivers = info.get("drivers", {})
    editable = sorted(types, key=lambda name: -drivers.get(name, 0.0))[:FLAT_EDITABLE]
    changes = _flat_changes(request, row, choices, types)
    changed_row = row.copy()
    for name, value in changes.items():
        changed_row.at[0, name] = value
    candidates = _flat_candidates(export, row, editable, choices, types)
    variants = []
    for name, value, _ in candidates:
        variant = row.copy()
        variant.at[0, name] = value
        variants.append(variant)
    results = flat_table.explain_rows(
        pd.concat([row, changed_row, *variants], ignore_index=True), model.loaded
    )
    before, after = results[0], results[1]
    best: dict[str, dict[str, Any]] = {}
    for (name, value, text), result in zip(candidates, results[2:], strict=True):
        gain = result["readiness"] - before["readiness"]
        if gain > 0.0005 and (name not in best or gain > best[name]["gain"]):
            best[name] = {
                "text": text,
                "gain": gain,
                "after": result["readiness"],
                "route": result["route"],
                "url": lead_url(lead_id, **{FLAT_PREFIX + name: value}),
            }
    changed = bool(changes)
    shown = after if changed else before
    values = [
        {
            "name": name,
            "value": str(row.at[0, name]).strip() or table_columns.MISSING_CATEGORY,
            "kind": types[name],
            "drive": drivers.get(name, 0.0),
        }
        for name in sorted(types, key=lambda name: -drivers.get(name, 0.0))
    ]
    return render(
        request,
        "flat_lead.html",
        {
            "page": "leads",
            "lead_id": lead_id,
            "export": export,
            "info": info,
            "before": before,
            "after": after,
            "changed": changed,
            "shown": shown,
            "changes": [
                f"{name} {value}" if types[name] == "numeric" else f"{name}: {value}"
                for name, value in changes.items()
            ],
            "editable": [
                {
                    "name": name,
                    "kind": types[name],
                    "now": str(row.at[0, name]).strip(),
                    "value": changes.get(name, str(row.at[0, name]).strip()),
                    "choices": choices.get(name, []),
                    "field": FLAT_PREFIX + name,
                }
                for name in editable
            ],
            "suggestions": sorted(best.values(), key=lambda s: -s["gain"])[:3],
            "values": values,
            "delta": after["readiness"] - before["readiness"],
            "contributions": hbars(
                _reason_rows(shown),
                f"What pushes the readiness of {lead_id} up or down",
                "push on readiness (log-odds): right raises it, left lowers it",
            ),
        },
        session,
    )


# ---------------------------------------------------------------------------- outcomes page


def _month_points(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float | None]]:
    return [(float(i), r[key]) for i, r in enumerate(rows) if r[key] is not None]


@router.get("/outcomes", response_class=HTMLResponse)
def outcomes_page(request: Request) -> Response:
    session = current_session(request)
    audit = getattr(request.app.state, "audit", None)
    if audit is None:
        raise NoChampionError("the audit log is not open")
    analysis = outcome_store.analyse(audit.engine)
    by_route = vbars(
        [
            {
                "label": r["route"],
                "value": r["rate"],
                "color": ROUTE_COLORS[str(r["route"])],
                "note": f"{count(r['leads'])} leads",
                "marker": r["mean_readiness"],
            }
            for r in analysis.by_route
        ],
        "Conversion rate by route",
        "won",
        marker_name="mean readiness at scoring",
    )
    by_decile = vbars(
        [
            {
                "label": f"D{d['decile']}" if d["bins"] == 10 else str(d["decile"]),
                "value": d["rate"],
                "color": ACCENT,
                "note": f"≤{d['high']:.2f}",
                "marker": d["mean_readiness"],
            }
            for d in analysis.by_decile
        ],
        "Conversion rate by readiness decile (D1 lowest, D10 highest)",
        "won",
        marker_name="mean readiness",
        width=640,
    )
    months = analysis.by_month
    step = max(1, math.ceil(len(months) / 8))
    over_time = line_chart(
        [{"name": "all", "points": _month_points(months, "rate"), "color": INK}]
        + [
            {
                "name": r.value,
                "points": _month_points(months, r.value),
                "color": ROUTE_COLORS[r.value],
            }
            for r in ROUTES
        ],
        "Conversion rate by month of the score, by route",
        "month scored",
        "won",
        x_ticks=[(float(i), m["month"]) for i, m in enumerate(months)][::step],
        x_max=float(max(1, len(months) - 1)),
        width=1100,
        height=320,
    )
    return render(
        request,
        "outcomes.html",
        {
            "page": "outcomes",
            "a": analysis,
            "by_route": by_route,
            "by_decile": by_decile,
            "over_time": over_time,
            "sales": analysis.route("sales") if analysis.by_route else None,
            "missed": analysis.missed.to_dict("records"),
        },
        session,
    )
