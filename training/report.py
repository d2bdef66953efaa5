"""A self-contained HTML report of one training run, logged to MLflow and saved beside the model.

The report has to open anywhere, years later, offline and without a Python environment: in a
mail attachment, from an artifact store, on a laptop with no internet. So it is one HTML file
with inline CSS, charts drawn by matplotlib as inline SVG, no scripts and no external URLs.
Everything shown comes from `ReportData`, which the training pipeline fills in; nothing here
computes a metric the run did not already compute, except the chart points, which are plain
functions of the hold-out labels and scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from leadready.features.evaluation import (
    CALIBRATION_BINS,
    DECILES,
    calibration_table,
    gains_table,
)
from leadready.features.exclusions import Exclusions, LeftOut
from leadready.features.files import write_text
from leadready.training.report_html import (
    CSS,
    cell,
    escape,
    figure,
    fmt,
    humanize,
    interval,
    is_chosen,
    is_rate,
    kv_table,
    mpl,
    note,
    num_class,
    pct,
    svg,
    to_float,
    union_keys,
    width,
)

GAINS_POINTS = 501
TOP = 15  # rows of missing shares and bars of drivers: enough to read, few enough to scan

SECTIONS = (
    ("data-summary", "Data summary"),
    ("left-out", "Columns left out"),
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
    `exclusions`: the columns a flat model left out, its kept suspects and too-good warning
    (`features.exclusions`); None for a model trained on CRM exports with nothing suspect.
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
    exclusions: Exclusions | None = None


def render_report(data: ReportData) -> str:
    """The whole report as one HTML string; it fetches nothing when opened."""
    y = np.asarray(data.y_test, dtype=float)
    scores = {name: np.asarray(p, dtype=float) for name, p in data.scores.items()}
    for name, p in scores.items():
        if p.shape != y.shape:
            raise ValueError(f"scores[{name!r}] has shape {p.shape}, y_test has {y.shape}")
    bodies = {
        "data-summary": _data_summary(data.data_summary),
        "left-out": _left_out(data.exclusions),
        "leaderboard": _leaderboard(data.leaderboard),
        "metrics": _metrics(data.metrics),
        "calibration": _calibration(y, scores),
        "gains": _gains(y, scores),
        "drivers": _drivers(data.drivers, data.labels),
        "routing": _routing(data.thresholds, data.routes),
        "comparison": _comparison(data.comparison),
    }
    sections = "\n".join(
        f'<section id="{sid}">\n<h2>{escape(heading)}</h2>\n{bodies[sid]}\n</section>'
        for sid, heading in SECTIONS
    )
    nav = " · ".join(f'<a href="#{sid}">{escape(heading)}</a>' for sid, heading in SECTIONS)
    version = f"version {data.version}" if data.version else "not registered"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(data.title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{escape(data.title)}</h1>
<p class="meta">Model <strong>{escape(data.model_name)}</strong>, {escape(version)},
trained {escape(data.trained_at)}</p>
<nav>{nav}</nav>
</header>
<main>
{sections}
</main>
</body>
</html>
"""


def write_report(data: ReportData, path: Path) -> Path:
    """Render and write the report (utf-8, atomically), creating missing folders; returns the
    path."""
    return write_text(Path(path), render_report(data))


# --- sections ----------------------------------------------------------------------------------


def _data_summary(summary: Mapping[str, object]) -> str:
    facts = [(k, v) for k, v in summary.items() if k != "missing_shares"]
    parts = [kv_table(facts)] if facts else []
    missing = summary.get("missing_shares")
    if isinstance(missing, Mapping) and missing:
        top = sorted(missing.items(), key=lambda kv: -to_float(kv[1], 0.0))[:TOP]
        rows = "".join(
            f'<tr><td>{escape(col)}</td><td class="num">{pct(share)}</td>'
            f'<td class="bar"><span style="width:{width(share)}%"></span></td></tr>'
            for col, share in top
        )
        shown = f"top {len(top)} of {len(missing)}" if len(missing) > len(top) else "all"
        parts.append(
            f"<h3>Missing values by column ({shown})</h3>"
            '<table class="missing"><thead><tr><th>Column</th><th class="num">Missing</th>'
            f"<th></th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return "\n".join(parts) or note("No data summary was recorded for this run.")


def _columns(rows: list[LeftOut]) -> str:
    body = "".join(
        f"<tr><td>{escape(r.column)}</td><td>{escape(r.why)}</td><td>{escape(r.evidence)}</td></tr>"
        for r in rows
    )
    return (
        "<table><thead><tr><th>Column</th><th>Why</th><th>As measured</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _left_out(exclusions: Exclusions | None) -> str:
    if exclusions is None:
        return note(
            "Trained on a CRM export: the model reads the data contract's columns and the "
            "schema's custom features only, so no column was left out."
        )
    parts = []
    if exclusions.too_good:
        parts.append(f'<p class="verdict warning">Warning: {escape(exclusions.too_good)}</p>')
    parts.append(
        _columns(exclusions.left_out)
        if exclusions.left_out
        else note("Training left no column out.")
    )
    if exclusions.kept:
        parts.append(
            "<h3>Read although suspected of leakage (the schema declares them)</h3>"
            + _columns(exclusions.kept)
        )
    return "\n".join(parts)


def _leaderboard(rows: list[dict[str, object]]) -> str:
    if not rows:
        return note("No candidates were recorded for this run.")
    columns = union_keys(rows)
    head = "".join(f"<th{num_class(rows, c)}>{escape(humanize(c))}</th>" for c in columns)
    body = []
    for row in rows:
        chosen = any(is_chosen(k, v) for k, v in row.items())
        cells = "".join(cell(row.get(c)) for c in columns)
        body.append(f'<tr class="chosen">{cells}</tr>' if chosen else f"<tr>{cells}</tr>")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        '<p class="caption">Candidates scored on the validation slice; the chosen one is '
        "highlighted.</p>"
    )


def _metrics(metrics: Mapping[str, Mapping[str, tuple[float, float, float]]]) -> str:
    if not metrics:
        return note("No hold-out metrics were recorded for this run.")
    models = list(metrics)
    names = union_keys(metrics.values())
    head = "<th>Metric</th>" + "".join(f'<th class="num">{escape(m)}</th>' for m in models)
    body = []
    for name in names:
        cells = []
        for model in models:
            triple = metrics[model].get(name)
            text = "—" if triple is None else interval(*triple)
            cells.append(f'<td class="num">{escape(text)}</td>')
        body.append(f"<tr><td>{escape(humanize(name))}</td>{''.join(cells)}</tr>")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        '<p class="caption">Value on the hold-out set [interval low, high].</p>'
    )


def _calibration(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> str:
    if not scores or len(y) == 0:
        return note("No hold-out scores were recorded, so there is no calibration plot.")
    fig = figure(5.2, 5.0)
    ax = fig.add_subplot()
    top = 0.0
    for name, p in scores.items():
        table = calibration_table(y, p, CALIBRATION_BINS)  # the bins of the ECE metric
        ax.plot(table.predicted, table.observed, "o-", label=mpl(name))
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
        svg(fig, "cal")
        + f'<p class="caption">{CALIBRATION_BINS} equal-frequency bins of the predicted '
        "probability; points on the dotted line mean the probabilities can be read as win "
        "rates.</p>"
    )


def _gains(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> str:
    if not scores or len(y) == 0 or y.sum() == 0:
        return note("The hold-out set has no scores or no wins, so gains are undefined.")
    fig = figure(10.0, 4.4)
    gains, lift = fig.subplots(1, 2)
    # The curve at <= 501 evenly spaced cut-offs (exact there): a point per row would put
    # megabytes of path into the file for a large hold-out set, with no visible difference.
    cuts = np.unique(np.linspace(0, len(y), GAINS_POINTS).round().astype(int))
    bar_width = 0.8 / len(scores)
    deciles = np.arange(1, DECILES + 1)
    for i, (name, p) in enumerate(scores.items()):
        table = gains_table(y, p, DECILES)
        gains.plot(table.share[cuts], table.captured[cuts], label=mpl(name))
        lift.bar(
            deciles[: len(table.lift)] + (i - (len(scores) - 1) / 2) * bar_width,
            table.lift,
            bar_width,
            label=mpl(name),
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
        svg(fig, "gains") + f'<p class="caption">Hold-out set: {len(y):,} rows, overall win rate '
        f"{pct(y.mean())}.</p>"
    )


def _drivers(drivers: Mapping[str, float], labels: Mapping[str, str]) -> str:
    if not drivers:
        return note("No global drivers were recorded for this run.")
    top = sorted(drivers.items(), key=lambda kv: -to_float(kv[1], 0.0))[:TOP][::-1]
    fig = figure(8.0, 0.6 + 0.32 * len(top))
    ax = fig.add_subplot()
    ax.barh(
        [mpl(str(labels.get(name, name))) for name, _ in top], [v for _, v in top], color="#3b6ea5"
    )
    ax.set(xlabel="Mean |contribution| to the score (log-odds)")
    ax.grid(alpha=0.3, axis="x")
    ax.spines[["top", "right"]].set_visible(False)
    shown = f"top {len(top)} of {len(drivers)}" if len(drivers) > len(top) else "all"
    return (
        svg(fig, "drivers")
        + f'<p class="caption">Features that move the score most across the hold-out set '
        f"({shown}); the direction depends on each lead.</p>"
    )


def _routing(thresholds: Mapping[str, float], routes: Mapping[str, Mapping[str, float]]) -> str:
    if not thresholds and not routes:
        return note("This model has no routing thresholds.")
    parts = []
    if thresholds:
        parts.append(
            "<h3>Thresholds</h3>" + kv_table([(k, v) for k, v in thresholds.items()], digits=3)
        )
    if routes:
        columns = union_keys(routes.values())
        head = "<th>Route</th>" + "".join(
            f'<th class="num">{escape(humanize(c))}</th>' for c in columns
        )
        body = "".join(
            f"<tr><td>{escape(route)}</td>"
            + "".join(cell(stats.get(c), percent=is_rate(c)) for c in columns)
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
    "reason",
    "rule",
)


def _comparison(comparison: Mapping[str, object] | None) -> str:
    if comparison is None:
        return note(
            "There was no champion to compare with: no earlier version was serving "
            "when this model was trained."
        )
    c = comparison
    champion = escape(fmt(c.get("champion_version")))
    challenger = escape(fmt(c.get("challenger_version")))
    decision = str(c.get("decision") or "").strip().lower()
    if decision == "promoted":
        verdict = (
            f"Challenger version {challenger} was <strong>promoted</strong>; it replaces "
            f"champion version {champion}."
        )
    elif decision == "gated":
        verdict = (
            f"Challenger version {challenger} was <strong>held back</strong> by the drift "
            f"gate; champion version {champion} keeps serving."
        )
    elif decision:
        verdict = (
            f"Champion version {champion} was <strong>{escape(decision)}</strong>; "
            f"challenger version {challenger} was not promoted."
        )
    else:
        verdict = f"Champion version {champion} vs challenger version {challenger}."
    diff = c.get("difference")
    if diff is not None and c.get("ci_low") is not None and c.get("ci_high") is not None:
        diff_text = interval(diff, c["ci_low"], c["ci_high"], signed=True)
    else:
        diff_text = fmt(diff, signed=True)
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
            fmt(c.get("p_value")),
        )
    ]
    if c.get("champion_ece") is not None or c.get("challenger_ece") is not None:
        ece = fmt(to_float(c.get("challenger_ece")) - to_float(c.get("champion_ece")), signed=True)
        rows.append(
            ("Expected calibration error", c.get("champion_ece"), c.get("challenger_ece"), ece, "—")
        )
    body = "".join(
        f'<tr><td>{escape(name)}</td><td class="num">{escape(fmt(a))}</td>'
        f'<td class="num">{escape(fmt(b))}</td><td class="num">{escape(d)}</td>'
        f'<td class="num">{escape(p)}</td></tr>'
        for name, a, b, d, p in rows
    )
    tone = {"promoted": "promoted", "kept": "kept", "gated": "kept"}.get(decision, "")
    parts = [
        f'<p class="verdict {tone}">{verdict}</p>',
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
        '<p class="caption">Both models scored on the same hold-out set; the '
        "difference is shown with its interval.</p>",
    ]
    if c.get("reason"):
        parts.append(f"<p><strong>Why:</strong> {escape(str(c['reason']))}</p>")
    if c.get("rule"):
        parts.append(f"<p><strong>Promotion rule:</strong> {escape(c['rule'])}</p>")
    extra = [(k, v) for k, v in c.items() if k not in _COMPARED]
    if extra:
        parts.append("<h3>Other details</h3>" + kv_table(extra))
    return "\n".join(parts)
