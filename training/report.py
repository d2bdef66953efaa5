"""A self-contained HTML report of one training run, logged to MLflow and saved beside the model.

The report has to open anywhere, years later, offline and without a Python environment: in a
mail attachment, from an artifact store, on a laptop with no internet. So it is one HTML file
with inline CSS, charts drawn by matplotlib as inline SVG, no scripts and no external URLs.
Everything shown comes from `ReportData`, which the training pipeline fills in; nothing here
computes a metric the run did not already compute, except the chart points, which are plain
functions of the hold-out labels and scores.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from leadready.features.evaluation import (
    CALIBRATION_BINS,
    DECILES,
    calibration_table,
    gains_table,
)

GAINS_POINTS = 501
TOP = 15  # rows of missing shares and bars of drivers: enough to read, few enough to scan

SECTIONS = (
    ("data-summary", "Data summary"),
    ("leaderboard", "Candidate leaderboard"),
    ("metrics", "Hold-out metrics"),
    ("calibration", "Calibration"),
    ("gains", "Cumulative gains and lift"),
    ("drivers", "Global drivers"),
    ("routing", "Routing thresholds"),
    ("comparison", "Champion vs challenger"),
)


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, already computed by the training run.

    `metrics`: model name -> metric name -> (value, interval low, interval high).
    `scores`: model name -> hold-out probabilities, aligned with `y_test` (0/1).
    `drivers`: feature -> mean |contribution| in log-odds; `labels` gives the plain words.
    `routes`: route -> {share, win_rate, eventual_win_rate, ...}; empty without routing.
    `comparison`: champion vs challenger on the same hold-out, None when there was no champion.
    """

    title: str
    model_name: str
    version: str | None
    trained_at: str
    data_summary: dict[str, object]
    leaderboard: list[dict[str, object]]
    metrics: dict[str, dict[str, tuple[float, float, float]]]
    y_test: np.ndarray
    scores: dict[str, np.ndarray]
    drivers: dict[str, float]
    labels: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    routes: dict[str, dict[str, float]] = field(default_factory=dict)
    comparison: dict[str, object] | None = None


def render_report(data: ReportData) -> str:
    """The whole report as one HTML string; it fetches nothing when opened."""
    y = np.asarray(data.y_test, dtype=float)
    scores = {name: np.asarray(p, dtype=float) for name, p in data.scores.items()}
    for name, p in scores.items():
        if p.shape != y.shape:
            raise ValueError(f"scores[{name!r}] has shape {p.shape}, y_test has {y.shape}")
    bodies = {
        "data-summary": _data_summary(data.data_summary),
        "leaderboard": _leaderboard(data.leaderboard),
        "metrics": _metrics(data.metrics),
        "calibration": _calibration(y, scores),
        "gains": _gains(y, scores),
        "drivers": _drivers(data.drivers, data.labels),
        "routing": _routing(data.thresholds, data.routes),
        "comparison": _comparison(data.comparison),
    }
    sections = "\n".join(
        f'<section id="{sid}">\n<h2>{_e(heading)}</h2>\n{bodies[sid]}\n</section>'
        for sid, heading in SECTIONS
    )
    nav = " · ".join(f'<a href="#{sid}">{_e(heading)}</a>' for sid, heading in SECTIONS)
    version = f"version {data.version}" if data.version else "not registered"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(data.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_e(data.title)}</h1>
<p class="meta">Model <strong>{_e(data.model_name)}</strong>, {_e(version)},
trained {_e(data.trained_at)}</p>
<nav>{nav}</nav>
</header>
<main>
{sections}
</main>
</body>
</html>
"""


def write_report(data: ReportData, path: Path) -> Path:
    """Render and write the report (utf-8), creating missing folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data), encoding="utf-8")
    return path


# --- sections ----------------------------------------------------------------------------------


def _data_summary(summary: Mapping[str, object]) -> str:
    facts = [(k, v) for k, v in summary.items() if k != "missing_shares"]
    parts = [_kv_table(facts)] if facts else []
    missing = summary.get("missing_shares")
    if isinstance(missing, Mapping) and missing:
        top = sorted(missing.items(), key=lambda kv: -_float(kv[1], 0.0))[:TOP]
        rows = "".join(
            f'<tr><td>{_e(col)}</td><td class="num">{_pct(share)}</td>'
            f'<td class="bar"><span style="width:{_width(share)}%"></span></td></tr>'
            for col, share in top
        )
        shown = f"top {len(top)} of {len(missing)}" if len(missing) > len(top) else "all"
        parts.append(
            f"<h3>Missing values by column ({shown})</h3>"
            '<table class="missing"><thead><tr><th>Column</th><th class="num">Missing</th>'
            f"<th></th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return "\n".join(parts) or _note("No data summary was recorded for this run.")


def _leaderboard(rows: list[dict[str, object]]) -> str:
    if not rows:
        return _note("No candidates were recorded for this run.")
    columns = _union_keys(rows)
    head = "".join(f"<th{_num_class(rows, c)}>{_e(_humanize(c))}</th>" for c in columns)
    body = []
    for row in rows:
        chosen = any(_is_chosen(k, v) for k, v in row.items())
        cells = "".join(_cell(row.get(c)) for c in columns)
        body.append(f'<tr class="chosen">{cells}</tr>' if chosen else f"<tr>{cells}</tr>")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        '<p class="caption">Candidates scored on the validation slice; the chosen one is '
        "highlighted.</p>"
    )


def _metrics(metrics: Mapping[str, Mapping[str, tuple[float, float, float]]]) -> str:
    if not metrics:
        return _note("No hold-out metrics were recorded for this run.")
    models = list(metrics)
    names = _union_keys(metrics.values())
    head = "<th>Metric</th>" + "".join(f'<th class="num">{_e(m)}</th>' for m in models)
    body = []
    for name in names:
        cells = []
        for model in models:
            triple = metrics[model].get(name)
            text = "—" if triple is None else _interval(*triple)
            cells.append(f'<td class="num">{_e(text)}</td>')
        body.append(f"<tr><td>{_e(_humanize(name))}</td>{''.join(cells)}</tr>")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        '<p class="caption">Value on the hold-out set [interval low, high].</p>'
    )


def _calibration(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> str:
    if not scores or len(y) == 0:
        return _note("No hold-out scores were recorded, so there is no calibration plot.")
    fig = _figure(5.2, 5.0)
    ax = fig.add_subplot()
    top = 0.0
    for name, p in scores.items():
        table = calibration_table(y, p, CALIBRATION_BINS)  # the bins of the ECE metric
        ax.plot(table.predicted, table.observed, "o-", label=_mpl(name))
        top = max(top, *table.predicted, *table.observed)
    top = min(1.0, top * 1.05) or 1.0
    ax.plot([0, top], [0, top], "k:", lw=1, label="perfect calibration")
    ax.set(
        xlabel="Predicted probability (bin mean)",
        ylabel="Observed win rate (bin)",
        xlim=(0, top),
        ylim=(0, top),
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", frameon=False)
    return (
        _svg(fig, "cal")
        + f'<p class="caption">{CALIBRATION_BINS} equal-frequency bins of the predicted '
        "probability; points on the dotted line mean the probabilities can be read as win "
        "rates.</p>"
    )


def _gains(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> str:
    if not scores or len(y) == 0 or y.sum() == 0:
        return _note("The hold-out set has no scores or no wins, so gains are undefined.")
    fig = _figure(10.0, 4.4)
    gains, lift = fig.subplots(1, 2)
    # The curve at <= 501 evenly spaced cut-offs (exact there): a point per row would put
    # megabytes of path into the file for a large hold-out set, with no visible difference.
    cuts = np.unique(np.linspace(0, len(y), GAINS_POINTS).round().astype(int))
    width = 0.8 / len(scores)
    deciles = np.arange(1, DECILES + 1)
    for i, (name, p) in enumerate(scores.items()):
        table = gains_table(y, p, DECILES)
        gains.plot(table.share[cuts], table.captured[cuts], label=_mpl(name))
        lift.bar(
            deciles[: len(table.lift)] + (i - (len(scores) - 1) / 2) * width,
            table.lift,
            width,
            label=_mpl(name),
        )
    gains.plot([0, 1], [0, 1], "k:", lw=1, label="random order")
    gains.set(
        xlabel="Share of leads contacted, highest score first",
        ylabel="Share of wins captured",
        title="Cumulative gains",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    gains.grid(alpha=0.3)
    gains.legend(loc="lower right", frameon=False)
    lift.axhline(1.0, color="k", ls=":", lw=1)
    lift.set(
        xlabel="Score decile (1 = highest 10%)",
        ylabel="Win rate / overall win rate",
        title="Lift by decile",
        xticks=deciles,
    )
    lift.grid(alpha=0.3, axis="y")
    lift.legend(loc="upper right", frameon=False)
    return (
        _svg(fig, "gains") + f'<p class="caption">Hold-out set: {len(y):,} rows, overall win rate '
        f"{_pct(y.mean())}.</p>"
    )


def _drivers(drivers: Mapping[str, float], labels: Mapping[str, str]) -> str:
    if not drivers:
        return _note("No global drivers were recorded for this run.")
    top = sorted(drivers.items(), key=lambda kv: -_float(kv[1], 0.0))[:TOP][::-1]
    fig = _figure(8.0, 0.6 + 0.32 * len(top))
    ax = fig.add_subplot()
    ax.barh(
        [_mpl(str(labels.get(name, name))) for name, _ in top], [v for _, v in top], color="#3b6ea5"
    )
    ax.set(xlabel="Mean |contribution| to the score (log-odds)")
    ax.grid(alpha=0.3, axis="x")
    ax.spines[["top", "right"]].set_visible(False)
    shown = f"top {len(top)} of {len(drivers)}" if len(drivers) > len(top) else "all"
    return (
        _svg(fig, "drivers")
        + f'<p class="caption">Features that move the score most across the hold-out set '
        f"({shown}); the direction depends on each lead.</p>"
    )


def _routing(thresholds: Mapping[str, float], routes: Mapping[str, Mapping[str, float]]) -> str:
    if not thresholds and not routes:
        return _note("This model has no routing thresholds.")
    parts = []
    if thresholds:
        parts.append(
            "<h3>Thresholds</h3>" + _kv_table([(k, v) for k, v in thresholds.items()], digits=3)
        )
    if routes:
        columns = _union_keys(routes.values())
        head = "<th>Route</th>" + "".join(
            f'<th class="num">{_e(_humanize(c))}</th>' for c in columns
        )
        body = "".join(
            f"<tr><td>{_e(route)}</td>"
            + "".join(_cell(stats.get(c), percent=_is_rate(c)) for c in columns)
            + "</tr>"
            for route, stats in routes.items()
        )
        parts.append(
            "<h3>Expected share and win rate per route (hold-out set)</h3>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
    return "\n".join(parts)


_COMPARED = (
    "champion_version",
    "challenger_version",
    "champion_auc",
    "challenger_auc",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "champion_ece",
    "challenger_ece",
    "decision",
    "rule",
)


def _comparison(comparison: Mapping[str, object] | None) -> str:
    if comparison is None:
        return _note(
            "There was no champion to compare with: no earlier version was serving "
            "when this model was trained."
        )
    c = comparison
    champion = _e(_fmt(c.get("champion_version")))
    challenger = _e(_fmt(c.get("challenger_version")))
    decision = str(c.get("decision") or "").strip().lower()
    if decision == "promoted":
        verdict = (
            f"Challenger version {challenger} was <strong>promoted</strong>; it replaces "
            f"champion version {champion}."
        )
    elif decision:
        verdict = (
            f"Champion version {champion} was <strong>{_e(decision)}</strong>; "
            f"challenger version {challenger} was not promoted."
        )
    else:
        verdict = f"Champion version {champion} vs challenger version {challenger}."
    diff = c.get("difference")
    if diff is not None and c.get("ci_low") is not None and c.get("ci_high") is not None:
        diff_text = _interval(diff, c["ci_low"], c["ci_high"], signed=True)
    else:
        diff_text = _fmt(diff, signed=True)
    head = (
        '<th>Measure</th><th class="num">Champion '
        f'(version {champion})</th><th class="num">Challenger '
        f'(version {challenger})</th><th class="num">Challenger − champion</th>'
        '<th class="num">p-value</th>'
    )
    rows = [
        (
            "ROC AUC",
            c.get("champion_auc"),
            c.get("challenger_auc"),
            diff_text,
            _fmt(c.get("p_value")),
        )
    ]
    if c.get("champion_ece") is not None or c.get("challenger_ece") is not None:
        ece = _fmt(_float(c.get("challenger_ece")) - _float(c.get("champion_ece")), signed=True)
        rows.append(
            ("Expected calibration error", c.get("champion_ece"), c.get("challenger_ece"), ece, "—")
        )
    body = "".join(
        f'<tr><td>{_e(name)}</td><td class="num">{_e(_fmt(a))}</td>'
        f'<td class="num">{_e(_fmt(b))}</td><td class="num">{_e(d)}</td>'
        f'<td class="num">{_e(p)}</td></tr>'
        for name, a, b, d, p in rows
    )
    tone = decision if decision in {"promoted", "kept"} else ""
    parts = [
        f'<p class="verdict {tone}">{verdict}</p>',
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
        '<p class="caption">Both models scored on the same hold-out set; the '
        "difference is shown with its interval.</p>",
    ]
    if c.get("rule"):
        parts.append(f"<p><strong>Promotion rule:</strong> {_e(c['rule'])}</p>")
    extra = [(k, v) for k, v in c.items() if k not in _COMPARED]
    if extra:
        parts.append("<h3>Other details</h3>" + _kv_table(extra))
    return "\n".join(parts)


# --- charts ------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas, without pyplot: no global state, nothing left open."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


_SVG_START = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def _svg(fig: Figure, prefix: str) -> str:
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


def _mpl(text: str) -> str:
    """Plain text for matplotlib: a `$` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


# --- formatting --------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _float(value: object, default: float = float("nan")) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _fmt(value: object, digits: int = 3, signed: bool = False) -> str:
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
        return ", ".join(f"{_humanize(k)}: {_fmt(v, digits)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if len(value) == 2 and not any(_is_number(v) for v in value):
            return f"{value[0]} to {value[1]}"
        return ", ".join(_fmt(v, digits) for v in value)
    return str(value)


def _interval(value: object, low: object, high: object, signed: bool = False) -> str:
    return f"{_fmt(value, signed=signed)} [{_fmt(low, signed=signed)}, {_fmt(high, signed=signed)}]"


def _pct(value: object) -> str:
    v = _float(value)
    return "—" if math.isnan(v) else f"{100 * v:.1f}%"


def _width(value: object) -> float:
    return round(100 * min(1.0, max(0.0, _float(value, 0.0))), 1)


def _is_rate(key: str) -> bool:
    return key == "share" or key.endswith(("_rate", "_share"))


def _is_chosen(key: str, value: object) -> bool:
    return key.lower() in {"chosen", "selected", "best"} and bool(value) and value != "no"


def _cell(value: object, percent: bool = False) -> str:
    if isinstance(value, bool | np.bool_):
        return f'<td class="flag">{"✓" if value else ""}</td>'
    if _is_number(value):
        return f'<td class="num">{_e(_pct(value) if percent else _fmt(value))}</td>'
    return f"<td>{_e(_fmt(value))}</td>"


def _num_class(rows: Iterable[Mapping[str, object]], column: str) -> str:
    values = [r.get(column) for r in rows if r.get(column) is not None]
    return ' class="num"' if values and all(_is_number(v) for v in values) else ""


def _kv_table(items: Iterable[tuple[str, object]], digits: int = 3) -> str:
    rows = "".join(
        f'<tr><th scope="row">{_e(_humanize(k))}</th>'
        + (
            f'<td class="num">{_e(_fmt(v, digits))}</td>'
            if _is_number(v)
            else f"<td>{_e(_fmt(v, digits))}</td>"
        )
        + "</tr>"
        for k, v in items
    )
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def _union_keys(rows: Iterable[Mapping[str, object]]) -> list[str]:
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


def _humanize(key: object) -> str:
    """`roc_auc` -> `ROC AUC`, `base_rate` -> `Base rate`; other text is left as it is."""
    text = str(key)
    if " " in text or "_" not in text and not text.islower():
        return text
    words = [_WORDS.get(w.lower(), w) for w in text.split("_") if w]
    if words and words[0] == words[0].lower():
        words[0] = words[0].capitalize()
    return " ".join(words)


_CSS = """
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
@media print { nav { display: none; } section { break-inside: avoid; } }
"""
