"""`leadready`: the one command line for every job. Commands parse, call and print."""

from __future__ import annotations

import os

# LightGBM's OpenMP threads busy-wait by default, which made training 5-8x slower on 2 cores;
# this must be set before lightgbm is imported (see FIELD-NOTES).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import (
    TYPE_CHECKING,  # noqa: E402
    Annotated,  # noqa: E402
)

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table  # noqa: E402

from features.contract import ContractError, load_crm  # noqa: E402

if TYPE_CHECKING:
    from training.pipeline import TrainResult
    from training.registry import Published

app = typer.Typer(
    help="leadready: learn sales readiness from won and lost leads, track it in MLflow, "
    "and route leads to sales, nurture or disqualify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

ModelsDir = Annotated[
    Path,
    typer.Option(
        "--models-dir", envvar="LEADREADY_MODELS_DIR",
        help="Folder of the embedded MLflow store (SQLite + artifacts). Ignored for tracking "
        "when MLFLOW_TRACKING_URI is set.",
    ),
]


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    )


@app.command("sample-data")
def sample_data(
    out: Annotated[Path, typer.Option("--out", help="Folder to write leads.csv, "
                                      "activities.csv and touches.csv into.")],
    leads: Annotated[int, typer.Option("--leads", min=100, help="Number of leads.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files.")] = 7,
) -> None:
    """Generate a realistic sample CRM export from a documented, seeded simulation."""
    from training.sample import SIMULATED_DAYS, write_sample

    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("Simulating the CRM", total=SIMULATED_DAYS)
        counts = write_sample(out, leads, seed,
                              progress=lambda days: progress.advance(task, days))
    rows = ", ".join(f"{n:,} {table}" for table, n in counts.items())
    console.print(f"Wrote {rows} to {out} in {time.perf_counter() - started:.1f} s")


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="CRM export folder (leads, activities, "
                                       "touches as .csv or .parquet).")],
    step: Annotated[int, typer.Option("--step", min=1, help="Days between snapshots of a "
                                      "lead.")] = 14,
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="'Ready' means won within "
                                         "this many days of the snapshot.")] = 90,
    sales_precision: Annotated[float, typer.Option(
        "--sales-precision", min=0.0, max=1.0,
        help="Routing policy: at least this share of leads routed to sales by score must win "
        "within the horizon.")] = 0.5,
    max_disqualified_wins: Annotated[float, typer.Option(
        "--max-disqualified-wins", min=0.0, max=1.0,
        help="Routing policy: at most this share of eventual wins may be disqualified.")] = 0.02,
    promote: Annotated[bool, typer.Option("--promote", help="Make the new version champion "
                                          "even if it does not beat the current one.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed for model fitting.")] = 0,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Train readiness and potential models, evaluate them on a time-split test set, log the
    run to MLflow and register a new version of 'sales-readiness'."""
    from training.pipeline import STEPS, TrainConfig, TrainingError
    from training.pipeline import train as run_training

    config = TrainConfig(step_days=step, horizon_days=horizon, sales_precision=sales_precision,
                         max_disqualified_wins=max_disqualified_wins, seed=seed)
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("Loading and validating the export", total=len(STEPS) + 2)
        try:
            crm = load_crm(data)

            def advance(description: str) -> None:
                progress.update(task, advance=1, description=description)

            result = run_training(crm, config, advance)
        except (ContractError, TrainingError) as exc:
            progress.stop()
            raise _fail(str(exc)) from None
        progress.update(task, advance=1, description="Logging to MLflow and registering")
        from training.registry import publish

        published = publish(result, models_dir, force_promote=promote)
        progress.update(task, advance=1, description="Done")
    _print_summary(result, published, time.perf_counter() - started)


def _print_summary(result: TrainResult, p: Published, seconds: float) -> None:
    info = result.scorer.info
    metrics = result.metrics
    table = Table(title="Test set (newest leads, never seen in training)")
    table.add_column("metric")
    for column in ("readiness model", "BANT scorecard", "potential model"):
        table.add_column(column, justify="right")
    for metric in ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "ece"):
        table.add_row(metric, *(f"{metrics[f'test_{name}_{metric}']:.3f}"
                                for name in ("readiness", "bant_scorecard", "potential")))
    console.print(table)
    gain = metrics["test_readiness_roc_auc"] - metrics["test_bant_scorecard_roc_auc"]
    console.print(f"Readiness model: {info['model_kind']['readiness']}; "
                  f"ROC AUC {gain:+.3f} over the BANT scorecard.")
    routes = Table(title="Routing (thresholds from the validation slice, rates on the test set)")
    for column in ("route", "rule", "share", "win rate in horizon", "eventual win rate"):
        routes.add_column(column, justify="left" if column in ("route", "rule") else "right")
    t = info["thresholds"]
    rules = {"sales": f"hand-raise, or readiness >= {t['sales']:.3f}",
             "nurture": "otherwise",
             "disqualify": f"potential < {t['disqualify']:.3f}"}
    for route, stats in info["routes"].items():
        routes.add_row(route, rules[route], f"{stats['share']:.1%}", f"{stats['win_rate']:.1%}",
                       f"{stats['eventual_win_rate']:.1%}")
    console.print(routes)
    console.print(
        f"Registered [bold]{info['model_name']}[/] version {p.version} (run {p.run_id}) as "
        "challenger; " + ("[green]now champion[/]" if p.promoted else "[yellow]not champion[/]")
        + f": {p.reason}."
    )
    console.print(f"Model: {p.model_uri} in {p.tracking_uri} ({seconds:.0f} s end to end)")
