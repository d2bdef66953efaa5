"""The report `leadready monitor` writes: one self-contained HTML page (inline CSS and SVG, no
script, nothing fetched), in plain words, from a `MonitorReport`."""

from __future__ import annotations

import html
import math
from datetime import datetime

from leadready.features.drift import (
    MIN_ROWS,
    PSI_DRIFT,
    PSI_STABLE,
    UNSEEN,
    UNSEEN_DRIFT,
    FieldDrift,
)
from leadready.features.evaluation import CalibrationTable
from leadready.serving.monitor import (
    DRIFT,
    WORSE,
    Interval,
    MonitorReport,
    Performance,
    psi_verdict,
)

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1f2328; max-width: 980px; margin: 2em auto;
  padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { margin-top: 1.8em; font-size: 1.2em; }
.meta { color: #57606a; margin-top: 0; }
.verdict { padding: .8em 1em; border-radius: 6px; font-weight: 600; }
.ok { background: #dafbe1; } .drift { background: #fff8c5; } .worse { background: #ffebe9; }
table { border-collapse: collapse; margin: .6em 0; } td, th { padding: .25em .7em;
  border-bottom: 1px solid #d0d7de; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bar { height: .55em; border-radius: 2px; margin: 1px 0; }
.ref { background: #8c959f; } .live { background: #0969da; }
.bars { width: 220px; } .flag { color: #cf222e; font-weight: 600; }
details { margin: .3em 0; } summary { cursor: pointer; }
.legend span { display: inline-block; width: .9em; height: .6em; margin: 0 .3em 0 1em; }
.note { color: #57606a; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.1f}%"


def _bar(share: float, kind: str) -> str:
    width = round(100 * min(1.0, max(0.0, share)), 1)
    return f'<div class="bar {kind}" style="width:{width}%"></div>'


def _bins(drift: FieldDrift) -> str:
    """Each bin's share in the model's data and live, as two bars."""
    labels = [*drift.profile.labels, UNSEEN] if drift.profile.kind == "categorical" else []
    labels = labels or drift.profile.labels
    rows = "".join(
        f"<tr><td>{_e(label)}</td><td class='n'>{_pct(ref)}</td><td class='n'>{_pct(live)}</td>"
        f"<td class='bars'>{_bar(ref, 'ref')}{_bar(live, 'live')}</td></tr>"
        for label, ref, live in zip(labels, drift.reference, drift.live, strict=True)
        if ref > 0 or live > 0
    )
    return (
        f"<table><tr><th>value</th><th>model's data</th><th>live</th><th></th></tr>{rows}</table>"
    )


def _inputs(report: MonitorReport) -> str:
    rows = []
    details = []
    for name, d in report.inputs.items():
        flag = " class='flag'" if d.drifted and report.judged else ""
        unseen = _pct(d.unseen) if d.profile.kind == "categorical" else "—"
        rows.append(
            f"<tr><td{flag}>{_e(name)}</td><td class='n'>{d.psi:.3f}</td>"
            f"<td{flag}>{psi_verdict(d.psi)}</td><td class='n'>{unseen}</td></tr>"
        )
        shown = " open" if flag else ""  # a drifted field's bins are shown at once
        details.append(f"<details{shown}><summary>{_e(name)}</summary>{_bins(d)}</details>")
    return (
        "<h2>What the leads are</h2><p>Each field of the leads scored in the window, against the "
        "leads the model learned from. The population stability index (PSI) is 0 when the mix is "
        f"the same; below {PSI_STABLE} reads as stable, up to {PSI_DRIFT} as a moderate shift, "
        f"above as drift. More than {_pct(UNSEEN_DRIFT)} of leads with a value the model never "
        "saw is drift too.</p>"
        "<table><tr><th>field</th><th>PSI</th><th>reading</th><th>unseen values</th></tr>"
        + "".join(rows)
        + "</table><p class='legend'>Shares per value:<span class='ref'></span>the model's data"
        "<span class='live'></span>live</p>" + "".join(details)
    )


def _scores(report: MonitorReport) -> str:
    routes = "".join(
        f"<tr><td>{_e(route)}</td><td class='n'>{_pct(ref)}</td><td class='n'>{_pct(live)}</td>"
        f"<td class='bars'>{_bar(ref, 'ref')}{_bar(live, 'live')}</td></tr>"
        for route, (ref, live) in report.routes.items()
    )
    return (
        "<h2>What the model says</h2>"
        f"<p>Mean readiness {_pct(report.mean_readiness)} live, "
        f"{_pct(report.holdout_mean_readiness)} on the hold-out; PSI of the readiness "
        f"distribution {report.readiness.psi:.3f} ({psi_verdict(report.readiness.psi)}). "
        "Live leads are open ones scored now, the hold-out held leads at every stage, so a shift "
        "here is a reason to look, not an alarm by itself.</p>"
        f"<details><summary>readiness by band</summary>{_bins(report.readiness)}</details>"
        "<table><tr><th>route</th><th>hold-out</th><th>live</th><th></th></tr>"
        f"{routes}</table><p>PSI of the route shares: {report.route_psi:.3f}.</p>"
    )


def _interval(ci: Interval) -> str:
    return f"{ci.value:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def _reliability_svg(table: CalibrationTable) -> str:
    """Predicted against observed win rate per score band; the diagonal is perfect."""
    size, pad = 240, 30
    span = size - 2 * pad

    def xy(p: float, o: float) -> tuple[float, float]:
        return pad + p * span, size - pad - o * span

    points = " ".join(
        f"{x:.1f},{y:.1f}"
        for x, y in (xy(p, o) for p, o in zip(table.predicted, table.observed, strict=True))
    )
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#0969da"/>'
        for x, y in (xy(p, o) for p, o in zip(table.predicted, table.observed, strict=True))
    )
    x0, y0 = xy(0, 0)
    x1, y1 = xy(1, 1)
    return (
        f'<svg width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" '
        'aria-label="reliability diagram">'
        f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" stroke="#d0d7de"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#8c959f" stroke-dasharray="4"/>'
        f'<polyline points="{points}" fill="none" stroke="#0969da"/>{dots}'
        f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle" font-size="11">readiness '
        "given</text>"
        f'<text x="10" y="{size / 2}" font-size="11" transform="rotate(-90 10 {size / 2})" '
        'text-anchor="middle">share won</text></svg>'
    )


def _performance(report: MonitorReport) -> str:
    head = "<h2>How the scores turned out</h2>"
    p: Performance | None = report.performance
    if p is None:
        return head + f"<p>Not judged: {_e(report.why_no_performance)}.</p>"
    bands = "".join(
        f"<tr><td class='n'>{_pct(pr)}</td><td class='n'>{_pct(ob)}</td>"
        f"<td class='n'>{int(round(n)):,}</td></tr>"
        for pr, ob, n in zip(
            p.reliability.predicted, p.reliability.observed, p.reliability.rows, strict=True
        )
    )
    problems = "".join(f"<li class='flag'>{_e(text)}</li>" for text in p.problems)
    return (
        head
        + f"<p>{p.rows:,} scores of {p.leads:,} leads whose outcome has arrived ({p.won_leads:,} "
        "won within the model's horizon of a score). Figures with 95% intervals (leads "
        "resampled), live against the hold-out the model was tested on:</p>"
        "<table><tr><th></th><th>live</th><th>hold-out</th></tr>"
        f"<tr><td>ROC AUC (ranking; higher is better)</td><td>{_interval(p.auc)}</td>"
        f"<td>{_interval(p.holdout_auc)}</td></tr>"
        f"<tr><td>calibration error (lower is better)</td><td>{_interval(p.ece)}</td>"
        f"<td>{_interval(p.holdout_ece)}</td></tr></table>"
        + (f"<ul>{problems}</ul>" if problems else "<p>Within the hold-out's intervals.</p>")
        + "<h3>Reliability: readiness given against the share won</h3>"
        + _reliability_svg(p.reliability)
        + "<table><tr><th>mean readiness</th><th>share won</th><th>scores</th></tr>"
        + bands
        + "</table>"
    )


def _exploration(report: MonitorReport) -> str:
    """The exploration slice's win rate by readiness band, in plain words."""
    x = report.exploration
    if x is None:
        return ""
    bands = "".join(
        f"<tr><td class='n'>{_pct(pr)}</td><td class='n'>{_pct(ob)}</td>"
        f"<td class='n'>{int(round(n)):,}</td></tr>"
        for pr, ob, n in zip(x.bands.predicted, x.bands.observed, x.bands.rows, strict=True)
    )
    return (
        "<h3>Leads sent to sales at random: readiness against the share won</h3>"
        f"<p>A small random share of the leads the model would have kept in nurture went to "
        f"sales instead, so their results show how often such leads really win; sales only "
        f"ever works the leads it is sent, so the other outcomes cannot show it. "
        f"{x.leads:,} of these leads have a result ({x.won_leads:,} won); each stands for "
        f"the nurture leads like it that were not sent. Where the share won is far from the "
        f"readiness, the scores of nurture leads are off.</p>"
        + _reliability_svg(x.bands)
        + "<table><tr><th>mean readiness</th><th>share won</th><th>scores stood for</th></tr>"
        + bands
        + "</table>"
    )


def _verdict(report: MonitorReport) -> str:
    if report.status == WORSE:
        assert report.performance is not None
        text = "The scores turned out worse than on the hold-out: " + "; ".join(
            report.performance.problems
        )
        kind = "worse"
    elif report.status == DRIFT:
        text = "The leads changed: " + ", ".join(report.drifted) + " drifted from the model's data"
        kind = "drift"
    else:
        text = "Healthy: the leads look like the model's data"
        if not report.judged:
            text = (
                f"Too few leads to judge drift ({report.leads:,} scored, at least {MIN_ROWS} "
                "needed); nothing found"
            )
        kind = "ok"
    if report.status != WORSE and report.performance is None:
        text += "; outcomes not judged yet"
    if report.status == DRIFT and report.performance is not None:
        text += "; the scores that have an outcome are within the hold-out's intervals"
    return f'<p class="verdict {kind}">{_e(text)}.</p>'


def render(report: MonitorReport, generated: datetime) -> str:
    """The whole report as one HTML document."""
    window = f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
    other = (
        f" {report.other_versions:,} leads last scored by another version are left out."
        if report.other_versions
        else ""
    )
    notes = "".join(f"<p class='note'>{_e(n)}</p>" for n in report.notes)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Monitoring {_e(report.name)} v{_e(report.version)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Monitoring {_e(report.name)} version {_e(report.version)}</h1>"
        f"<p class='meta'>{report.leads:,} leads scored from {window}; model trained "
        f"{_e(report.trained_at)}; report written {generated:%Y-%m-%d %H:%M} UTC.{other}</p>"
        + _verdict(report)
        + notes
        + _inputs(report)
        + _scores(report)
        + _performance(report)
        + _exploration(report)
        + "<p class='note'>Exit status of <code>leadready monitor</code>: 0 healthy, 3 the leads "
        "drifted, 4 the scores turned out worse than on the hold-out beyond its interval. The "
        "same figures are logged to the model's MLflow run as a time series "
        "(docs/monitoring.md).</p></body></html>"
    )
