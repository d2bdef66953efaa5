"""SVG charts drawn on the server: pure functions from numbers to markup, so every page works
without JavaScript and with no chart library to load. Sizes are SVG user units (pixels at 100%
zoom); every chart has a title and an aria-label, and one with nothing to show says why."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from markupsafe import Markup, escape

from leadready.features.metadata import RouteStats
from leadready.features.routing import ROUTES
from leadready.serving.ui.formatting import num, pct, when

ROUTE_COLORS = {"sales": "#1f7a4d", "nurture": "#b7791f", "disqualify": "#9b2c2c"}
UP, DOWN, MUTED, INK, ACCENT = "#2f855a", "#c53030", "#a0aec0", "#2d3748", "#2b6cb0"


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


def _y_label(text: object, middle: float) -> str:
    """A chart's vertical axis title, centred at height `middle` (pixels from the top)."""
    return _text(
        14, middle, text, "middle", 12, "#4a5568", f' transform="rotate(-90 14 {middle:.1f})"'
    )


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
    optionally dash, markers and line (False: markers only)."""
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
        if s.get("line", True):
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
    parts.append(_y_label(y_label, top + plot_h / 2))
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
    parts.append(_y_label(y_label, top + plot_h / 2))
    if marker_name:
        parts.append(
            f'<circle cx="{left + 10}" cy="{top - 12}" r="4" fill="#fff" '
            f'stroke="{INK}" stroke-width="2"/>'
        )
        parts.append(_text(left + 20, top - 8, marker_name, "start", 11, "#4a5568"))
    return _svg(width, height, "".join(parts), label)


def route_strip(routes: Mapping[str, RouteStats], label: str, width: int = 1140) -> Markup:
    """One bar split by the share of each route."""
    height, x, parts = 44, 0.0, []
    for route in ROUTES:
        stats = routes.get(route.value)
        share = stats.share if stats is not None else 0.0
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
