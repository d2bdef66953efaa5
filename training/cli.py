"""`leadready`: the one command line for every job. Commands parse, call and print."""

from __future__ import annotations

import os

# LightGBM's OpenMP threads busy-wait by default, which made training 5-8x slower on 2 cores;
# this must be set before lightgbm is imported (see FIELD-NOTES).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
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
from features.schema import Schema  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

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

SchemaOption = Annotated[
    Path | None,
    typer.Option("--schema", help="YAML file mapping your export's columns, values and date "
                 "formats onto the data contract, with extra custom features (docs/schema.md)."),
]
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


def _schema(path: Path | None) -> Schema | None:
    return Schema.load(path) if path is not None else None


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
    data: Annotated[Path | None, typer.Option("--data", help="CRM export folder (leads, "
                                              "activities, touches as .csv or .parquet); or "
                                              "--table.")] = None,
    table: Annotated[Path | None, typer.Option(
        "--table", help="Flat mode: one .csv or .parquet file, one row per lead with engagement "
        "already counted; every other column is a feature (docs/flat-mode.md). Needs --id, "
        "--label and --positive.")] = None,
    id_column: Annotated[str | None, typer.Option(
        "--id", help="Flat mode: the column that identifies each lead.")] = None,
    label: Annotated[str | None, typer.Option(
        "--label", help="Flat mode: the outcome column.")] = None,
    positive: Annotated[str | None, typer.Option(
        "--positive", help="Flat mode: the --label value of a converted lead; other values are "
        "not converted, empty cells are left out.")] = None,
    time_column: Annotated[str | None, typer.Option(
        "--time", help="Flat mode: a date column; the hold-out is then the newest 20% by it "
        "(default: a stratified random 20%).")] = None,
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
    search_seconds: Annotated[float, typer.Option(
        "--search-seconds", min=0.0, envvar="LEADREADY_SEARCH_SECONDS",
        help="Wall-clock budget of the LightGBM hyperparameter search (Optuna); 0 tries only "
        "the defaults.")] = 45.0,
    schema: SchemaOption = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Train and register a new version of the 'sales-readiness' model.

    Readiness and potential models are fitted on snapshots of closed leads, evaluated on a
    time-split test set against a BANT scorecard, logged to MLflow and registered; the new
    version is 'challenger', and becomes 'champion' when it beats the current one.

    Flat mode (--table FILE --id COL --label COL --positive VALUE [--time COL]): one row per
    lead; column types are inferred (and printed), the model is chosen by cross-validation,
    tested once on a hold-out, then refitted on all rows (docs/flat-mode.md)."""
    flat = {"--id": id_column, "--label": label, "--positive": positive, "--time": time_column}
    if (data is None) == (table is None):
        raise _fail("give --data DIR (a CRM export folder) or --table FILE (a flat table, one "
                    "row per lead; see docs/flat-mode.md)" if data is None else
                    "--data and --table exclude each other; give one")
    if table is not None:
        needed = [option for option in ("--id", "--label", "--positive") if not flat[option]]
        if needed:
            raise _fail(f"--table needs {', '.join(needed)}: the id column, the outcome column "
                        "and the outcome value of a converted lead")
        from training.flat import FlatConfig

        _train_table(table, FlatConfig(
            id_column=str(id_column), label=str(label), positive=str(positive),
            time=time_column, sales_precision=sales_precision,
            max_disqualified_wins=max_disqualified_wins, seed=seed), schema, models_dir, promote)
        return
    stray = [option for option, value in flat.items() if value is not None]
    if stray:
        raise _fail(f"{', '.join(stray)} only apply to a flat table (--table FILE)")
    from training.pipeline import STEPS, TrainConfig
    from training.pipeline import train as run_training

    config = TrainConfig(step_days=step, horizon_days=horizon, sales_precision=sales_precision,
                         max_disqualified_wins=max_disqualified_wins, seed=seed,
                         search_seconds=search_seconds)
    started = time.perf_counter()
    result, published = _fit_and_publish(
        "Loading and validating the export", len(STEPS) + 2,
        lambda advance: run_training(load_crm(data, schema=_schema(schema)), config, advance),
        models_dir, promote)
    _print_summary(result, published, time.perf_counter() - started)


def _fit_and_publish(first_step: str, steps: int,
                     fit: Callable[[Callable[[str], None]], TrainResult], models_dir: Path,
                     promote: bool) -> tuple[TrainResult, Published]:
    """Run a training job under a progress bar, then log and register its result; bad input
    stops with exit 2 before anything reaches MLflow."""
    from training.pipeline import TrainingError
    from training.registry import publish

    with _progress() as progress:
        task = progress.add_task(first_step, total=steps)

        def advance(description: str) -> None:
            progress.update(task, advance=1, description=description)

        try:
            result = fit(advance)
        except (ContractError, TrainingError) as exc:
            progress.stop()
            raise _fail(str(exc)) from None
        progress.update(task, advance=1, description="Logging to MLflow and registering")
        published = publish(result, models_dir, force_promote=promote)
        progress.update(task, advance=1, description="Done")
    return result, published


def _print_summary(result: TrainResult, p: Published, seconds: float) -> None:
    from training.registry import PROMOTION_RULE

    info = result.scorer.info
    metrics = result.metrics
    if info["cold_start"]:
        console.print(
            "[yellow]Cold start:[/] fewer than 40 won or 40 lost leads, so the model is the "
            "BANT points scorecard, calibrated on the history there is; leadready switches to "
            "a learned model once the export has enough closed leads.")
    names = [n for n in ("readiness", "potential", "bant_scorecard", "frequency_score")
             if f"test_{n}_roc_auc" in metrics]
    table = Table(title="Test set (newest leads, never seen in training), 95% intervals")
    table.add_column("metric")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    for metric in ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "ece"):
        table.add_row(metric, *(
            "{:.3f} [{:.3f}, {:.3f}]".format(*result.intervals[name][metric]) for name in names))
    if names:
        console.print(table)
    if "test_bant_scorecard_roc_auc" in metrics:
        console.print(
            f"Readiness model: {info['model_kind']['readiness']}; ROC AUC "
            f"{metrics['test_readiness_roc_auc'] - metrics['test_bant_scorecard_roc_auc']:+.3f} "
            "over the BANT scorecard, "
            f"{metrics['test_readiness_roc_auc'] - metrics['test_frequency_score_roc_auc']:+.3f}"
            " over the frequency score.")
    routes = Table(title="Routing (thresholds from the validation slice, rates on the test set)")
    for column in ("route", "rule", "share", "win rate in horizon", "eventual win rate"):
        routes.add_column(column, justify="left" if column in ("route", "rule") else "right")
    from serving.routing import Thresholds, nurture_warning, route_rules

    rules = route_rules(Thresholds(**info["thresholds"]), flat=False)
    for route, stats in info["routes"].items():
        routes.add_row(route, rules[route], f"{stats['share']:.1%}", f"{stats['win_rate']:.1%}",
                       f"{stats['eventual_win_rate']:.1%}")
    console.print(routes)
    warning = nurture_warning(info["routes"], Thresholds(**info["thresholds"]))
    if warning:
        console.print(f"[bold yellow]Routing warning:[/] {warning}")
    console.print(
        f"Registered [bold]{info['model_name']}[/] version {p.version} (run {p.run_id}) as "
        "challenger; " + ("[green]now champion[/]" if p.promoted else "[yellow]not champion[/]")
        + f": {p.reason}."
    )
    console.print(f"Promotion rule: {PROMOTION_RULE}", style="dim")
    console.print(f"Model: {p.model_uri} in {p.tracking_uri} ({seconds:.0f} s end to end)")
    console.print(f"Report: {p.report}")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind. Anything but loopback "
                                      "requires LEADREADY_API_KEYS.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Start the scoring API (FastAPI under uvicorn) and the workspace (/ui) on the champions.

    Endpoints: POST /v1/score, POST /v1/score/batch, GET /v1/model, POST /v1/admin/reload,
    GET /healthz, /readyz, /metrics; OpenAPI schema at /openapi.json. The API scores with the
    champion of 'sales-readiness' (trained on CRM exports); the workspace's flat uploads with
    that of 'sales-readiness-flat'. Either one is enough to start. API keys come from
    LEADREADY_API_KEYS (comma-separated); SIGHUP reloads both champions."""
    import shutil
    import socket
    import tempfile

    import uvicorn

    from serving.app import ServeSettings
    from serving.store import NoChampionError

    os.environ["LEADREADY_MODELS_DIR"] = str(models_dir.resolve())
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # The workspace downloads hold-outs and model info; no progress bars in a server's log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings = ServeSettings()
    if host not in LOOPBACK and not settings.keys():
        raise _fail(f"refusing to bind {host} without API keys; set LEADREADY_API_KEYS "
                    "(comma-separated) or bind 127.0.0.1")
    from serving.audit import default_url, engine_for
    from serving.engine import load_champions

    try:
        champions = load_champions(models_dir)
    except NoChampionError as exc:
        raise _fail(str(exc)) from None
    # Create the audit table once here, not in each worker process at the same time.
    engine_for(settings.audit_url or default_url(models_dir)).dispose()
    served = " and ".join(f"{m.loaded.name} version {m.loaded.version}"
                          for m in (champions.engine, champions.flat) if m is not None)
    console.print(f"Serving {served} on http://{host}:{port} "
                  f"({workers} worker{'s' if workers > 1 else ''})")
    if champions.engine is None:
        console.print("No CRM-export champion: /v1/score answers 503 until one is trained "
                      "(`leadready train --data DIR`); the workspace at /ui scores flat tables.",
                      style="yellow")
    config = uvicorn.Config("serving.app:create_app", factory=True, host=host, port=port,
                            workers=workers, access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    if workers == 1:
        server.run()
        return
    from uvicorn.supervisors import Multiprocess

    sock = config.bind_socket()
    # Worker processes inherit this socket; without TCP_NODELAY every response waited on
    # Nagle's algorithm (about 40 ms, see FIELD-NOTES).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Each worker writes its Prometheus metrics to files here and /metrics adds them all up,
    # whichever worker answers (prometheus_client's multiprocess mode).
    own = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="leadready-metrics-")
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        if own:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)


@app.command()
def score(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    data: Annotated[Path | None, typer.Option("--data", help="CRM export folder; its open "
                                              "leads (all leads when there is no outcome "
                                              "column) are scored.")] = None,
    table: Annotated[Path | None, typer.Option(
        "--table", help="Flat table (.csv or .parquet, one row per lead) to score with a "
        "flat-table champion (docs/flat-mode.md); every row is scored.")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="ISO time to score at; default: the export's latest recorded time.",
    )] = None,
    schema: SchemaOption = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Score the open leads of a CRM export with the champion model into a CSV file.

    Writes readiness, potential, route, route reason and the top reasons per lead, through
    the same code path as the API. With --table, scores a flat table with a flat-table
    champion: its id column, readiness, potential (= readiness), route, route reason and top
    reasons."""
    if (data is None) == (table is None):
        raise _fail("give --data DIR (a CRM export folder) or --table FILE (a flat table)"
                    if data is None else "--data and --table exclude each other; give one")
    if table is not None:
        if as_of is not None:
            raise _fail("--as-of applies to --data only: a flat table is scored as it is")
        _score_table(table, out, schema, models_dir)
        return
    from serving.batch import score_export
    from serving.store import NoChampionError, load_champion

    started = time.perf_counter()
    try:
        crm = load_crm(data, require_outcome=False, schema=_schema(schema))
        loaded = load_champion(models_dir)
    except (ContractError, NoChampionError) as exc:
        raise _fail(str(exc)) from None
    with _progress() as progress:
        task = progress.add_task("Scoring leads", total=None)
        try:
            frame = score_export(
                crm, loaded, as_of,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        except ValueError as exc:
            progress.stop()
            raise _fail(str(exc)) from None
    _write_scores(frame, out, f"{len(frame):,} leads with {loaded.name} v{loaded.version}",
                  started)


def _write_scores(frame: pd.DataFrame, out: Path, what: str, started: float) -> None:
    """Write scored rows to CSV and say how many went to each route."""
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    counts = frame["route"].value_counts().to_dict()
    console.print(
        f"Scored {what} in {time.perf_counter() - started:.1f} s -> {out} ("
        + ", ".join(f"{route}: {counts.get(route, 0):,}" for route in
                    ("sales", "nurture", "disqualify")) + ")")


def _train_table(path: Path, config: object, schema: Path | None, models_dir: Path,
                 promote: bool) -> None:
    """`train --table`: check and infer (printed), warn of leaks, fit, register, summarise."""
    from training.flat import STEPS, fit, inference_table, leakage_messages, prepare
    from training.flat import summary as flat_summary

    started = time.perf_counter()

    def prepare_and_fit(advance: Callable[[str], None]) -> TrainResult:
        mapping = _schema(schema).table("table") if schema is not None else None
        data = prepare(path, config, mapping)  # type: ignore[arg-type]
        console.print(inference_table(data))
        for message in leakage_messages(data):
            errors.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
        return fit(data, config, advance)  # type: ignore[arg-type]

    result, published = _fit_and_publish(STEPS[0], len(STEPS) + 1, prepare_and_fit,
                                         models_dir, promote)
    for renderable in flat_summary(result, published, time.perf_counter() - started):
        console.print(renderable)


def _score_table(path: Path, out: Path, schema: Path | None, models_dir: Path) -> None:
    """`score --table`: every row of a flat table, scored by a flat-table champion."""
    from serving.flat import read_flat, score_table, stored_mapping
    from serving.store import NoChampionError, load_champion

    started = time.perf_counter()
    try:
        loaded = load_champion(models_dir, flat=True)
        mapping = (_schema(schema).table("table") if schema is not None  # type: ignore[union-attr]
                   else stored_mapping(loaded.scorer.info))
        frame = read_flat(path, mapping)
    except (ContractError, NoChampionError) as exc:
        raise _fail(str(exc)) from None
    with _progress() as progress:
        task = progress.add_task("Scoring leads", total=len(frame))
        try:
            scored = score_table(
                frame, loaded, where=str(path),
                progress=lambda done, total: progress.update(task, completed=done, total=total))
        except ValueError as exc:
            progress.stop()
            raise _fail(str(exc)) from None
    _write_scores(scored, out, f"{len(scored):,} rows with {loaded.name} v{loaded.version} "
                  "(flat table)", started)


scores_app = typer.Typer(help="The audit log of every score the API gave.",
                         no_args_is_help=True)
app.add_typer(scores_app, name="scores")


@scores_app.command("export")
def scores_export(
    out: Annotated[Path, typer.Option("--out", help="File to write: .csv or .parquet.")],
    audit_url: Annotated[str | None, typer.Option(
        "--audit-url", envvar="LEADREADY_AUDIT_URL",
        help="SQLAlchemy URL of the audit log; default: SQLite in the models folder.")] = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Write the audit log of API scores to a CSV or parquet file.

    Columns: request_id, lead_id, model name and version, readiness, potential, route,
    scored_at."""
    from serving.audit import default_url, export

    rows = export(audit_url or default_url(models_dir), out)
    console.print(f"Wrote {rows:,} scores to {out}")


models_app = typer.Typer(help="Registered versions of 'sales-readiness' (trained on CRM "
                         "exports) and 'sales-readiness-flat' (trained on flat tables): list, "
                         "compare, promote.", no_args_is_help=True)
Flat = Annotated[bool, typer.Option(
    "--flat", help="The flat-table model 'sales-readiness-flat' (default: 'sales-readiness', "
    "trained on CRM exports).")]
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(models_dir: ModelsDir = Path("models")) -> None:
    """List the versions of both models with their aliases, key test metrics and data
    fingerprint."""
    from training.registry import list_versions

    rows = list_versions(models_dir)
    if not rows:
        raise _fail("no registered versions yet; train one with `leadready train --data DIR`")
    for name in dict.fromkeys(str(row["name"]) for row in rows):
        table = Table(title=f"{name} versions")
        columns = [column for column in rows[0] if column != "name"]
        for column in columns:
            table.add_column(column, justify="right" if column.startswith("test") else "left",
                             overflow="fold")
        for row in rows:
            if row["name"] == name:
                table.add_row(*(str(row[column]) for column in columns))
        console.print(table)


@models_app.command("compare")
def models_compare(
    a: Annotated[str, typer.Argument(help="Version A (e.g. the champion).")],
    b: Annotated[str, typer.Argument(help="Version B (e.g. the challenger).")],
    flat: Flat = False,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Score versions A and B on one hold-out (the newer version's) and test the AUC
    difference with a paired bootstrap over leads."""
    from training.registry import PROMOTION_RULE, compare_versions

    try:
        c = compare_versions(models_dir, a, b, flat)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"v{a} vs v{b} on the hold-out of v{c['holdout_version']}")
    for column in ("measure", f"v{a}", f"v{b}", "B - A [95% interval]", "p-value"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row("ROC AUC", f"{c['a_auc']:.4f}", f"{c['b_auc']:.4f}",
                  f"{c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]",
                  f"{c['p_value']:.3f}")
    table.add_row("expected calibration error", f"{c['a_ece']:.4f}", f"{c['b_ece']:.4f}",
                  f"{c['b_ece'] - c['a_ece']:+.4f}", "")
    console.print(table)
    verdict = "should replace" if c["b_should_replace_a"] else "should not replace"
    console.print(f"By the promotion rule, v{b} {verdict} v{a}.")
    console.print(f"Rule: {PROMOTION_RULE}", style="dim")


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="The version to make champion.")],
    flat: Flat = False,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Make VERSION the champion (a running server picks it up on reload or SIGHUP)."""
    from training.registry import promote

    try:
        name = promote(models_dir, version, flat)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{name} version {version} is now champion; reload a running API "
                  "with POST /v1/admin/reload or SIGHUP.")


outcomes_app = typer.Typer(help="Won and lost outcomes of scored leads, for the workspace's "
                           "Outcomes page.", no_args_is_help=True)
app.add_typer(outcomes_app, name="outcomes")


@outcomes_app.command("import")
def outcomes_import(
    file: Annotated[Path, typer.Argument(help="CSV or parquet file with columns lead_id, "
                                         "outcome (won or lost) and outcome_at (ISO 8601).")],
    audit_url: Annotated[str | None, typer.Option(
        "--audit-url", envvar="LEADREADY_AUDIT_URL",
        help="SQLAlchemy URL of the audit log; default: SQLite in the models folder.")] = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Store the outcomes of leads beside the audit log of their scores.

    Every row is checked first; one bad row stops the import with every problem listed and
    nothing stored. A lead that already has an outcome gets the new one."""
    from serving.audit import default_url
    from serving.outcomes import OutcomeError, import_file

    try:
        result = import_file(file, audit_url or default_url(models_dir))
    except OutcomeError as exc:
        raise _fail(str(exc)) from None
    console.print(f"Imported {result.imported:,} outcomes from {file} "
                  f"({result.replaced:,} replaced an earlier outcome)")
