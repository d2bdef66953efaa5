"""HTML building blocks of the training report (`training.report`): matplotlib figures as
inline SVG, number formatting for people, small tables and the report's stylesheet. Pure
functions of their arguments; nothing here reads a run or computes a metric."""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Iterable, Mapping

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# --- charts ------------------------------------------------------------------------------------


def figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas, without pyplot: no global state, nothing left open."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


_SVG_START = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def svg(fig: Figure, prefix: str) -> str:
    """The figure as inline SVG markup.

    Text stays text (smaller, searchable, crisp at any zoom). The XML prolog, DOCTYPE and
    metadata are dropped because they carry URLs that are not fetches but look like them, and
    element ids get a per-chart prefix because ids of inline SVGs share the page's namespace.
    """
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "leadready-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = _SVG_METADATA.sub("", _SVG_START.sub("", buf.getvalue(), count=1))
    svg = (
        svg.replace(' id="', f' id="{prefix}-')
        .replace('href="#', f'href="#{prefix}-')
        .replace("url(#", f"url(#{prefix}-")
    )
    return f'<figure class="chart">{svg}</figure>'


def mpl(text: str) -> str:
    """Plain text for matplotlib: a `$` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


# --- formatting --------------------------------------------------------------------------------


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def to_float(value: object, default: float = float("nan")) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def fmt(value: object, digits: int = 3, signed: bool = False) -> str:
    """Numbers for people: thousands separators, a fixed number of decimals, '—' for missing."""
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):+,}" if signed else f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "—"
        if v != 0 and abs(v) < 10**-digits:
            return f"{v:+.2e}" if signed else f"{v:.2e}"
        return f"{v:+,.{digits}f}" if signed else f"{v:,.{digits}f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{humanize(k)}: {fmt(v, digits)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if len(value) == 2 and not any(is_number(v) for v in value):
            return f"{value[0]} to {value[1]}"
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def interval(value: object, low: object, high: object, signed: bool = False) -> str:
    return f"{fmt(value, signed=signed)} [{fmt(low, signed=signed)}, {fmt(high, signed=signed)}]"


def pct(value: object) -> str:
    v = to_float(value)
    return "—" if math.isnan(v) else f"{100 * v:.1f}%"


def width(value: object) -> float:
    return round(100 * min(1.0, max(0.0, to_float(value, 0.0))), 1)


def is_rate(key: str) -> bool:
    return key == "share" or key.endswith(("_rate", "_share"))


def is_chosen(key: str, value: object) -> bool:
    return key.lower() in {"chosen", "selected", "best"} and bool(value) and value != "no"


def cell(value: object, percent: bool = False) -> str:
    if isinstance(value, bool | np.bool_):
        return f'<td class="flag">{"✓" if value else ""}</td>'
    if is_number(value):
        return f'<td class="num">{escape(pct(value) if percent else fmt(value))}</td>'
    return f"<td>{escape(fmt(value))}</td>"


def num_class(rows: Iterable[Mapping[str, object]], column: str) -> str:
    values = [r.get(column) for r in rows if r.get(column) is not None]
    return ' class="num"' if values and all(is_number(v) for v in values) else ""


def kv_table(items: Iterable[tuple[str, object]], digits: int = 3) -> str:
    rows = "".join(
        f'<tr><th scope="row">{escape(humanize(k))}</th>'
        + (
            f'<td class="num">{escape(fmt(v, digits))}</td>'
            if is_number(v)
            else f"<td>{escape(fmt(v, digits))}</td>"
        )
        + "</tr>"
        for k, v in items
    )
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def union_keys(rows: Iterable[Mapping[str, object]]) -> list[str]:
    """Keys of all rows in first-seen order, so a key missing from some rows still shows."""
    return list(dict.fromkeys(k for row in rows for k in row))


_WORDS = {
    "auc": "AUC",
    "roc": "ROC",
    "pr": "PR",
    "ece": "ECE",
    "id": "ID",
    "ci": "CI",
    "cv": "CV",
    "f1": "F1",
}


def humanize(key: object) -> str:
    """`roc_auc` -> `ROC AUC`, `base_rate` -> `Base rate`; other text is left as it is."""
    text = str(key)
    if " " in text or "_" not in text and not text.islower():
        return text
    words = [_WORDS.get(w.lower(), w) for w in text.split("_") if w]
    if words and words[0] == words[0].lower():
        words[0] = words[0].capitalize()
    return " ".join(words)


CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --soft: #f5f7fa; --accent: #3b6ea5; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header, main { max-width: 1080px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; padding-bottom: 8px; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 0 0 12px; padding-bottom: 4px; border-bottom: 2px solid
  var(--accent); display: inline-block; }
h3 { font-size: 1rem; margin: 18px 0 8px; color: var(--muted); }
.meta { margin: 0 0 10px; color: var(--muted); }
nav { font-size: 0.85rem; margin-bottom: 8px; }
nav a { color: var(--accent); text-decoration: none; }
section { padding: 22px 0 8px; border-bottom: 1px solid var(--line); }
table { border-collapse: collapse; margin: 4px 0 8px; font-size: 0.9rem; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; border-bottom: 2px solid var(--line); }
tbody tr:nth-child(even) { background: #fbfcfd; }
.kv th { font-weight: 500; color: var(--muted); background: none; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.flag { text-align: center; color: var(--accent); font-weight: 700; }
tr.chosen td { background: #e8f0f8; font-weight: 600; }
td.bar { width: 200px; }
td.bar span { display: block; height: 10px; margin-top: 5px; background: var(--accent);
  border-radius: 2px; min-width: 1px; }
figure.chart { margin: 0; }
figure.chart svg { max-width: 100%; height: auto; }
.caption, .note { color: var(--muted); font-size: 0.85rem; }
.note { font-style: italic; }
.verdict { font-size: 1rem; padding: 8px 12px; border-left: 4px solid var(--muted);
  background: var(--soft); }
.verdict.promoted { border-left-color: #2f855a; }
.verdict.kept { border-left-color: #b7791f; }
.verdict.warning { border-left-color: #c53030; }
@media print { nav { display: none; } section { break-inside: avoid; } }
"""
