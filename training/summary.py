"""What `leadready train` shows: the inferred columns of a flat table, and the closing summary
of a run (hold-out metrics with intervals, routing, registration). Rich renderables, built from
a `TrainResult` and its publication; only the CLI prints them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from leadready.features.contract import BANT_FIELDS
from leadready.features.metadata import ModelInfo
from leadready.features.routing import route_rules, route_warning
from leadready.training.flat_table import FlatData

if TYPE_CHECKING:
    from leadready.training.registry import Published
    from leadready.training.result import TrainResult

SHOWN_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "ece")


def inference_table(data: FlatData) -> Table:
    """What became of every column, with how to override it."""
    table = Table(
        title=f"Columns of {Path(data.path).name}: {len(data.y):,} labelled rows, "
        f"{int(data.y.sum()):,} converted"
        + (f", {data.unlabelled_rows:,} without a label left out" if data.unlabelled_rows else ""),
        caption="Override in a schema (--schema FILE): table: {features: {COLUMN: "
        "numeric | categorical | ignore}}",
    )
    for column in ("column", "used as", "how", "details", "AUC alone"):
        table.add_column(
            column, justify="right" if column == "AUC alone" else "left", overflow="fold"
        )
    for t in data.types:
        auc = data.single_auc.get(t.name)
        shown = "" if auc is None else f"{auc:.3f}"
        if t.name in data.leakage:
            shown = f"[bold red]{shown} leak?[/]"
        table.add_row(
            escape(t.name),  # names and values from the table: brackets are no markup
            "[dim]excluded[/]" if t.kind == "excluded" else t.kind,
            "schema" if t.source == "schema" else "inferred",
            escape(t.note),
            shown,
        )
    return table


def _metrics_table(title: str, result: TrainResult, names: dict[str, str]) -> Table:
    """Hold-out metrics of the models `names` (key -> column heading), value [95% interval]."""
    table = Table(title=title)
    table.add_column("metric")
    for heading in names.values():
        table.add_column(heading, justify="right")
    for metric in SHOWN_METRICS:
        table.add_row(
            metric,
            *("{:.3f} [{:.3f}, {:.3f}]".format(*result.intervals[n][metric]) for n in names),
        )
    return table


def _routing(info: ModelInfo, title: str, flat: bool) -> list[Any]:
    """The routing table (per route: rule, share, win rates, and the win rate at the margin:
    of the route's leads nearest its threshold), the policy's adjustments, and a warning when
    a route holds almost nothing."""
    table = Table(title=title, caption=_MARGIN_CAPTION)
    rates = ("conversion rate",) if flat else ("win rate in horizon", "eventual win rate")
    for column in ("route", "rule", "share", *rates, "win rate at the margin"):
        table.add_column(column, justify="left" if column in ("route", "rule") else "right")
    rules = route_rules(info.thresholds, flat=flat)
    for route, stats in info.routes.items():
        values = (stats.win_rate,) if flat else (stats.win_rate, stats.eventual_win_rate)
        margin = stats.margin_eventual_win_rate if route == "disqualify" else stats.margin_win_rate
        table.add_row(route, rules[route], _pct(stats.share), *map(_pct, values), _pct(margin))
    out: list[Any] = [table]
    out += [f"[yellow]Routing adjusted:[/] {escape(note)}" for note in info.routing_notes]
    warning = route_warning({route: stats.share for route, stats in info.routes.items()})
    return out + ([f"[bold yellow]Routing warning:[/] {warning}"] if warning else [])


_MARGIN_CAPTION = (
    "win rate at the margin: of the route's tenth of leads nearest its threshold (the lowest "
    "sent to sales, the highest nurtured, the highest disqualified; eventual wins there)"
)


def _pct(value: float) -> str:
    return "-" if value != value else f"{value:.1%}"


def _registered(info: ModelInfo, published: Published) -> str:
    return (
        f"Registered [bold]{info.model_name}[/] version {published.version} (run "
        f"{published.run_id}) as challenger; "
        + (
            "[green]now champion[/]"
            if published.promoted
            else "[bold red]not champion[/]"
            if info.distrust
            else "[yellow]not champion[/]"
        )
        + f": {published.reason}."
    )


def _where(published: Published, seconds: float) -> list[Any]:
    return [
        f"Model: {published.model_uri} in {published.tracking_uri} ({seconds:.0f} s end to end)",
        f"Report: {published.report}",
        "Runs in the MLflow UI: "
        + (
            f"`mlflow ui --backend-store-uri {published.tracking_uri}`, then "
            if published.tracking_uri.startswith("sqlite:")
            else ""
        )
        + published.runs_url,
    ]


def _data_notes(info: ModelInfo) -> list[str]:
    """What the export lacked, so the model could not use it, and the leads the lost-after
    rule closed."""
    crm = info.crm
    if crm is None:
        return []
    empty = crm.empty_inputs
    out = []
    if "activities" in empty and "touches" in empty:
        out.append("[yellow]No engagement events:[/] readiness uses lead profile and age only.")
    for name, other in (("activities", "touches"), ("touches", "activities")):
        if name in empty and other not in empty:
            out.append(f"[yellow]No {name}:[/] readiness uses lead profile, age and {other}.")
    bant = [name for name in BANT_FIELDS if name in empty]
    if len(bant) == len(BANT_FIELDS):
        out.append("[yellow]No BANT fields:[/] all unknown.")
    elif bant:
        out.append(f"[yellow]No {', '.join(bant)}:[/] unknown for every lead.")
    if crm.lost_after_days is not None:
        out.append(
            f"Lost after {crm.lost_after_days} days: {crm.closed_as_lost:,} leads still open "
            f"{crm.lost_after_days} days after their creation, or lost without a date, counted "
            f"as lost at creation + {crm.lost_after_days} days (at the latest the export's end)."
        )
    return out


def crm_summary(result: TrainResult, published: Published, seconds: float) -> list[Any]:
    """The closing summary of a run on a CRM export: test-set metrics against the baselines,
    routing, registration and the promotion rule."""
    from leadready.training.registry import PROMOTION_RULE

    info = result.scorer.info
    metrics = result.metrics
    out: list[Any] = _data_notes(info)
    out += [f"[yellow]Note:[/] {escape(note)}." for note in result.notes]
    if info.cold_start:
        out.append(
            "[yellow]Cold start:[/] too little history for a learned model (fewer than 40 won "
            "or 40 lost leads, or a time split without both outcomes), so the model is the "
            "BANT points scorecard, calibrated on the history there is; leadready switches to "
            "a learned model once the export has enough closed leads."
        )
    names = {
        n: n.replace("_", " ")
        for n in ("readiness", "potential", "bant_scorecard", "frequency_score")
        if f"test_{n}_roc_auc" in metrics
    }
    if names:
        out.append(
            _metrics_table(
                "Test set (newest leads, never seen in training), 95% intervals", result, names
            )
        )
    if "test_bant_scorecard_roc_auc" in metrics:
        out.append(
            f"Readiness model: {info.model_kind.readiness}; ROC AUC "
            f"{metrics['test_readiness_roc_auc'] - metrics['test_bant_scorecard_roc_auc']:+.3f} "
            "over the BANT scorecard, "
            f"{metrics['test_readiness_roc_auc'] - metrics['test_frequency_score_roc_auc']:+.3f}"
            " over the frequency score."
        )
    out += _routing(
        info, "Routing (thresholds from the validation slice, rates on the test set)", flat=False
    )
    out.append(_registered(info, published))
    out.append(Text(f"Promotion rule: {PROMOTION_RULE}", style="dim"))
    return out + _where(published, seconds)


def flat_summary(result: TrainResult, published: Published, seconds: float) -> list[Any]:
    """The closing summary of a flat training run: hold-out metrics against the frequency
    score (and a warning when they are too good to be true), routing, refit and registration."""
    info = result.scorer.info
    flat = info.flat
    if flat is None:
        raise ValueError(f"flat_summary takes a flat-table model, not one of mode '{info.mode}'")
    metrics = result.metrics
    how = (
        "the newest rows by " + str(flat.time_column)
        if flat.time_column
        else "a stratified random sample"
    )
    out: list[Any] = [
        _metrics_table(
            f"Hold-out ({flat.split.test_rows:,} rows, {how}; never used to fit or "
            "choose), 95% intervals",
            result,
            {"readiness": "model", "frequency_score": "frequency score"},
        )
    ]
    if flat.holdout_warning:
        out.append(f"[bold red]Warning: {escape(flat.holdout_warning)}[/]")
    gain = metrics["test_readiness_roc_auc"] - metrics["test_frequency_score_roc_auc"]
    out.append(
        f"Model: {info.model_kind.readiness} (chosen by 5-fold cross-validation "
        f"AUC); ROC AUC {gain:+.3f} over the frequency score."
    )
    out += _routing(
        info, "Routing (thresholds from cross-validated scores, rates on the hold-out)", flat=True
    )
    refit = flat.refit
    out.append(
        f"Registered model refitted on all {refit.rows:,} rows ({refit.positives:,} "
        "converted) after the hold-out was scored; calibrated by cross-fitting."
    )
    if flat.leakage_warnings:
        out.append(
            "[bold yellow]Suspected leakage kept by the schema:[/] "
            + ", ".join(
                f"{escape(name)} (AUC {auc:.3f} alone)"
                for name, auc in flat.leakage_warnings.items()
            )
        )
    out.append(_registered(info, published))
    out += _where(published, seconds)
    out.append("Score a file: leadready score --table FILE --out scores.csv")
    return out
