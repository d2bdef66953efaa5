"""The training side of `leadready`: sample-data, train, models. Commands parse, call and
print; the work is in the training modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from leadready.features.console import (
    AuditUrl,
    DatabaseUrl,
    EngineOption,
    MasterOption,
    ModelsDir,
    SchemaOption,
    check_engine,
    console,
    errors,
    existing_store,
    fail,
    load_schema,
    print_notes,
    progress_bar,
)
from leadready.features.contract import ContractError, Crm, load_crm
from leadready.features.metadata import Policy
from leadready.features.routing import (
    DISQUALIFY_WIN_RATE,
    MAX_DISQUALIFIED_WINS,
    SALES_PRECISION,
)
from leadready.features.spark import DEFAULT_MASTER
from leadready.training import SEARCH_SECONDS

if TYPE_CHECKING:
    import numpy as np

    from leadready.training.examples import Snapshots
    from leadready.training.flat_table import FlatConfig
    from leadready.training.pipeline import TrainConfig
    from leadready.training.registry import Published
    from leadready.training.result import TrainResult
    from leadready.training.spark import Features

app = typer.Typer()

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="CRM export folder (leads, activities, touches as .csv or .parquet).",
    ),
]
FromStoreOption = Annotated[
    bool,
    typer.Option(
        "--from-store",
        help="Train on the lead store's leads, events and outcomes (docs/store.md) instead "
        "of an export; --database-url chooses the store.",
    ),
]
LostAfterOption = Annotated[
    int | None,
    typer.Option(
        "--lost-after",
        min=1,
        help="CRM export: a lead still open this many days after its creation at the "
        "export's end counts as lost then (overrides the schema's leads.lost_after; "
        "docs/data-contract.md).",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for model fitting.")]
SearchSecondsOption = Annotated[
    float,
    typer.Option(
        "--search-seconds",
        min=0.0,
        envvar="LEADREADY_SEARCH_SECONDS",
        help="Wall-clock budget of the LightGBM hyperparameter search (Optuna); 0 tries only "
        "the defaults.",
    ),
]


@app.command("sample-data")
def sample_data(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder to write leads.csv, activities.csv and touches.csv into."
        ),
    ],
    leads: Annotated[int, typer.Option("--leads", min=100, help="Number of leads.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files.")] = 7,
) -> None:
    """Generate a realistic sample CRM export from a documented, seeded simulation."""
    from leadready.features.files import OutputError, check_folder
    from leadready.training.sample import SIMULATED_DAYS, write_sample

    try:
        check_folder(out)
    except OutputError as exc:
        raise fail(str(exc)) from None
    started = time.perf_counter()
    with progress_bar() as progress:
        task = progress.add_task("Simulating the CRM", total=SIMULATED_DAYS)
        counts = write_sample(out, leads, seed, progress=lambda days: progress.advance(task, days))
    rows = ", ".join(f"{n:,} {table}" for table, n in counts.items())
    console.print(f"Wrote {rows} to {out} in {time.perf_counter() - started:.1f} s")


@app.command()
def train(
    data: DataOption = None,
    from_store: FromStoreOption = False,
    table: Annotated[
        Path | None,
        typer.Option(
            "--table",
            help="Flat mode: one .csv or .parquet file, one row per lead with engagement "
            "already counted; every other column is a feature (docs/flat-mode.md). Needs --id, "
            "--label and --positive.",
        ),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id", help="Flat mode: the column that identifies each lead.")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Flat mode: the outcome column.")
    ] = None,
    positive: Annotated[
        str | None,
        typer.Option(
            "--positive",
            help="Flat mode: the --label value of a converted lead; other values are "
            "not converted, empty cells are left out.",
        ),
    ] = None,
    time_column: Annotated[
        str | None,
        typer.Option(
            "--time",
            help="Flat mode: a date column; the hold-out is then the newest 20% by it "
            "(default: a stratified random 20%).",
        ),
    ] = None,
    step: Annotated[
        int, typer.Option("--step", min=1, help="Days between snapshots of a lead.")
    ] = 14,
    horizon: Annotated[
        int,
        typer.Option(
            "--horizon", min=1, help="'Ready' means won within this many days of the snapshot."
        ),
    ] = 90,
    sales_precision: Annotated[
        float,
        typer.Option(
            "--sales-precision",
            min=0.0,
            max=1.0,
            help="Routing policy: leads scored at the sales threshold win within the horizon "
            "(the label, for a table) at least this often; every lead above it more often.",
        ),
    ] = SALES_PRECISION,
    disqualify_win_rate: Annotated[
        float,
        typer.Option(
            "--disqualify-win-rate",
            min=0.0,
            max=1.0,
            help="Routing policy: disqualify leads scored like ones that eventually win less "
            "often than this.",
        ),
    ] = DISQUALIFY_WIN_RATE,
    max_disqualified_wins: Annotated[
        float,
        typer.Option(
            "--max-disqualified-wins",
            min=0.0,
            max=1.0,
            help="Routing policy: at most this share of eventual wins may be disqualified "
            "(lowers the disqualify threshold when needed).",
        ),
    ] = MAX_DISQUALIFIED_WINS,
    sales_capacity: Annotated[
        float | None,
        typer.Option(
            "--sales-capacity",
            min=1.0,
            help="Routing policy: leads a week sales can work; raises the sales threshold until "
            "the expected weekly volume fits (needs dates: the export's, or --time).",
        ),
    ] = None,
    lost_after: LostAfterOption = None,
    promote: Annotated[
        bool,
        typer.Option(
            "--promote",
            help="Make the new version champion even if it does not beat the current one.",
        ),
    ] = False,
    seed: SeedOption = 0,
    search_seconds: SearchSecondsOption = SEARCH_SECONDS,
    schema: SchemaOption = None,
    database_url: DatabaseUrl = None,
    engine: EngineOption = "local",
    master: MasterOption = DEFAULT_MASTER,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Train and register a new version of the 'sales-readiness' model.

    Readiness and potential models are fitted on snapshots of closed leads, evaluated on a
    time-split test set against a BANT scorecard, logged to MLflow and registered; the new
    version is 'challenger', and becomes 'champion' when it beats the current one.

    Flat mode (--table FILE --id COL --label COL --positive VALUE [--time COL]): one row per
    lead; column types are inferred (and printed), the model is chosen by cross-validation,
    tested once on a hold-out, then refitted on all rows (docs/flat-mode.md).

    --from-store trains exactly as --data does, on the leads, events and outcomes of the lead
    store (`leadready store load`, the ingestion API).

    --engine spark builds the snapshots' feature table on Apache Spark (staged in the models
    folder); the models are fitted here, on the whole table (docs/spark.md)."""
    check_engine(engine, master)
    flat = {"--id": id_column, "--label": label, "--positive": positive, "--time": time_column}
    if table is not None and sales_capacity is not None and time_column is None:
        raise fail(
            "--sales-capacity needs --time: without a creation date per row leadready cannot "
            "tell how many leads arrive a week"
        )
    policy = Policy(
        sales_precision=sales_precision,
        disqualify_win_rate=disqualify_win_rate,
        max_disqualified_wins=max_disqualified_wins,
        sales_capacity=sales_capacity,
    )
    _one_source(
        {"--data": data, "--table": table, "--from-store": from_store},
        "--data DIR (a CRM export folder), --from-store (the lead store) or --table "
        "FILE (a flat table, one row per lead; see docs/flat-mode.md)",
    )
    if from_store and schema is not None:
        raise fail(SCHEMA_WITH_STORE)
    if table is not None and lost_after is not None:
        raise fail("--lost-after applies to a CRM export (--data): a flat table's label is final")
    if table is not None and engine != "local":
        raise fail("--engine spark applies to a CRM export (--data or --from-store)")
    if table is not None:
        needed = [option for option in ("--id", "--label", "--positive") if not flat[option]]
        if needed:
            raise fail(
                f"--table needs {', '.join(needed)}: the id column, the outcome column "
                "and the outcome value of a converted lead"
            )
        from leadready.training.flat_table import FlatConfig

        _train_table(
            table,
            FlatConfig(
                id_column=str(id_column),
                label=str(label),
                positive=str(positive),
                time=time_column,
                policy=policy,
                seed=seed,
            ),
            schema,
            models_dir,
            promote,
        )
        return
    stray = [option for option, value in flat.items() if value is not None]
    if stray:
        raise fail(f"{', '.join(stray)} only apply to a flat table (--table FILE)")
    read = _crm_reader(data, schema, lost_after, from_store, database_url, models_dir)
    from leadready.training.pipeline import STEPS, TrainConfig

    config = TrainConfig(
        step_days=step,
        horizon_days=horizon,
        policy=policy,
        seed=seed,
        search_seconds=search_seconds,
    )
    started = time.perf_counter()
    with ExitStack() as stack:
        features = _spark_features(stack, master, models_dir, config) if engine == "spark" else None
        result, published = _fit_and_publish(
            "Reading the lead store" if from_store else "Loading and validating the export",
            len(STEPS) + 2,
            lambda advance: _fit_crm(read(), config, advance, features),
            models_dir,
            promote,
        )
    from leadready.training.summary import crm_summary

    _print(crm_summary(result, published, time.perf_counter() - started))


GATED = 3
"""`retrain`'s exit status when the drift gate held the new version back from promotion."""


@app.command()
def retrain(
    data: DataOption = None,
    from_store: FromStoreOption = False,
    lost_after: LostAfterOption = None,
    seed: SeedOption = 0,
    search_seconds: SearchSecondsOption = SEARCH_SECONDS,
    schema: SchemaOption = None,
    database_url: DatabaseUrl = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Train a new version when the data changed, and promote it only when it passes the drift
    gate and the promotion rule: for a timer or cron (docs/operations.md).

    Nothing is trained when the data's fingerprint is the one the champion or the newest
    version was trained on ("nothing to do"). Otherwise training runs with the champion's
    horizon, snapshot step and routing policy; the new version is challenger, and is held back
    from promotion (exit 3) when its hold-out's lead fields drifted beyond `leadready monitor`'s
    thresholds from the champion's training data, or its hold-out ROC AUC or calibration is
    worse than the champion's beyond both intervals. Every retrain logs one MLflow run tagged
    with its decision (promoted, kept, gated or skipped) and the reason. A running
    `leadready serve` serves a promoted version within seconds."""
    _one_source(
        {"--data": data, "--from-store": from_store},
        "--data DIR (a CRM export folder) or --from-store (the lead store)",
    )
    if from_store and schema is not None:
        raise fail(SCHEMA_WITH_STORE)
    read = _crm_reader(data, schema, lost_after, from_store, database_url, models_dir)
    from mlflow.tracking import MlflowClient

    from leadready.features.registry import TRAIN_RUN_TAG
    from leadready.training.pipeline import STEPS, fingerprint
    from leadready.training.registry import configure, log_skipped
    from leadready.training.retrain import gate, previous
    from leadready.training.summary import crm_summary

    started = time.perf_counter()
    configure(models_dir)
    before = previous(MlflowClient())
    try:
        with console.status("Reading the lead store" if from_store else "Loading the export"):
            crm = read()
    except ContractError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted while reading the data; nothing reached MLflow", 130) from None
    sha256 = str(fingerprint(crm)["sha256"])
    same = before.unchanged_since(sha256)
    if same is not None:
        log_skipped(
            models_dir,
            f"the data has not changed since version {same} (sha256 {sha256})",
            {TRAIN_RUN_TAG: sha256},
        )
        console.print(f"nothing to do: the data has not changed since version {same}")
        return
    config = before.recipe(seed, search_seconds)
    result, published = _fit_and_publish(
        "Training",
        len(STEPS) + 2,
        lambda advance: _fit_crm(crm, config, advance),
        models_dir,
        False,
        lambda result: gate(before, crm, result),
    )
    _print(crm_summary(result, published, time.perf_counter() - started))
    if published.decision == "gated":
        raise typer.Exit(GATED)


SCHEMA_WITH_STORE = (
    "--schema reads export files; the lead store keeps the custom fields its exports "
    "were loaded with (`leadready store load --schema FILE`)"
)


def _one_source(given: dict[str, object], choices: str) -> None:
    """Exactly one of the data options (by flag) is given, or exit 2 saying which to give."""
    named = [option for option, value in given.items() if value]
    if len(named) != 1:
        raise fail(
            f"give {choices}"
            if not named
            else f"{' and '.join(named)} exclude each other; give one"
        )


def _crm_reader(
    data: Path | None,
    schema: Path | None,
    lost_after: int | None,
    from_store: bool,
    database_url: str | None,
    models_dir: Path,
) -> Callable[[], Crm]:
    """The function that reads the CRM export folder `data`, or with `from_store` the lead
    store (opened now: a wrong URL stops here, exit 2)."""
    if from_store:
        return _store_reader(database_url, models_dir, lost_after)
    assert data is not None  # the caller checked that one source was given
    return lambda: load_crm(data, schema=load_schema(schema), lost_after=lost_after)


def _spark_features(
    stack: ExitStack, master: str, models_dir: Path, config: TrainConfig
) -> Features:
    """`train --engine spark`: the feature table built on Spark, staged in the models folder.
    pyspark is looked for now; the session starts once the export is validated, for the rest of
    `stack` (stopped with it when started here)."""
    from leadready.features.spark import SparkUnavailable, require_pyspark, session_for
    from leadready.training.spark import spark_snapshot_features

    try:
        require_pyspark()
    except SparkUnavailable as exc:
        raise fail(str(exc)) from None

    def features(crm: Crm, snaps: Snapshots) -> dict[str, np.ndarray]:
        try:
            spark = stack.enter_context(session_for(master))
        except SparkUnavailable as exc:
            raise fail(str(exc)) from None
        console.print(f"Building the feature table on Spark ({spark.sparkContext.master})")
        models_dir.mkdir(parents=True, exist_ok=True)
        build = spark_snapshot_features(
            spark, models_dir.absolute(), config.step_days, config.horizon_days
        )
        return build(crm, snaps)

    return features


def _fit_crm(
    crm: Crm,
    config: TrainConfig,
    advance: Callable[[str], None],
    features: Features | None = None,
) -> TrainResult:
    """`train` on a loaded CRM: its notes and warnings printed, then the training itself (its
    feature table built by `features`, when given)."""
    from leadready.training.flat_table import scan_custom_features
    from leadready.training.pipeline import train as run_training

    print_notes(crm.notes)
    scan = scan_custom_features(crm, config.seed)
    for message in [*_never_lost(crm), *scan.warnings()]:
        errors.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if features is None:
        return run_training(crm, config, advance, scan)
    return run_training(crm, config, advance, scan, features)


def _store_reader(url: str | None, models_dir: Path, lost_after: int | None) -> Callable[[], Crm]:
    """`train --from-store`: the store opened now (a wrong URL stops here, exit 2), and the
    function that reads it as the Crm `load_crm` gives for an export."""
    from leadready.features.leadstore.reading import read_crm

    engine, where = existing_store(models_dir, url)

    def read() -> Crm:
        try:
            crm = read_crm(engine, lost_after)
        finally:
            engine.dispose()
        if crm.leads.empty:
            raise ContractError(
                f"the lead store at {where} has no leads; load an export with "
                "`leadready store load --data DIR`"
            )
        return crm

    return read


def _never_lost(crm: Crm) -> list[str]:
    """A warning when open leads are there but no lead was ever lost: a CRM that records won
    dates only, whose leads that never closed need the lost-after rule."""
    outcome = crm.leads["outcome"]
    if crm.lost_after is not None or (outcome == "lost").any() or not (outcome == "open").any():
        return []
    still = int((outcome == "open").sum())
    return [
        f"no lead of the export is lost, and {still:,} lead{'s are' if still > 1 else ' is'} "
        "still open: if leads that never closed are lost, give --lost-after DAYS "
        '(docs/data-contract.md, "Leads that never closed")'
    ]


def _fit_and_publish(
    first_step: str,
    steps: int,
    fit: Callable[[Callable[[str], None]], TrainResult],
    models_dir: Path,
    promote: bool,
    gate: Callable[[TrainResult], list[str]] | None = None,
) -> tuple[TrainResult, Published]:
    """Run a training job under a progress bar, then log and register its result (held back
    from promotion when `gate` says why); bad input stops with exit 2 before anything reaches
    MLflow. Ctrl-C (or SIGTERM while publishing) stops with 128 + the signal's number and says
    what the registry was left with."""
    from leadready.training.registry import Interrupted, publish
    from leadready.training.result import TrainingError

    with progress_bar() as progress:
        task = progress.add_task(first_step, total=steps)

        def advance(description: str) -> None:
            progress.update(task, advance=1, description=description)

        try:
            result = fit(advance)
            progress.update(task, advance=1, description="Logging to MLflow and registering")
            held_back = gate(result) if gate is not None else []
            published = publish(result, models_dir, force_promote=promote, held_back=held_back)
        except (ContractError, TrainingError) as exc:
            progress.stop()
            raise fail(str(exc)) from None
        except Interrupted as exc:
            progress.stop()
            raise fail(str(exc), 128 + exc.signum) from None
        except KeyboardInterrupt:
            progress.stop()
            raise fail("interrupted while training; nothing reached MLflow", 130) from None
        progress.update(task, advance=1, description="Done")
    return result, published


def _print(renderables: list[object]) -> None:
    for renderable in renderables:
        console.print(renderable)


def _train_table(
    path: Path, config: FlatConfig, schema: Path | None, models_dir: Path, promote: bool
) -> None:
    """`train --table`: check and infer (printed), say what the id and leakage checks
    excluded, warn of leaks kept, fit, register, summarise."""
    from leadready.training.flat import STEPS, fit
    from leadready.training.flat_table import exclusion_notes, leakage_messages, prepare
    from leadready.training.summary import flat_summary, inference_table

    started = time.perf_counter()

    def prepare_and_fit(advance: Callable[[str], None]) -> TrainResult:
        mapping = load_schema(schema).table("table") if schema is not None else None
        data = prepare(path, config, mapping)
        console.print(inference_table(data))
        for note in exclusion_notes(data):
            console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
        for message in leakage_messages(data):
            errors.print(
                f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True
            )
        return fit(data, config, advance)

    result, published = _fit_and_publish(
        STEPS[0], len(STEPS) + 1, prepare_and_fit, models_dir, promote
    )
    _print(flat_summary(result, published, time.perf_counter() - started))


models_app = typer.Typer(
    help="Registered versions of 'sales-readiness' (trained on CRM "
    "exports) and 'sales-readiness-flat' (trained on flat tables): list, "
    "compare, promote.",
    no_args_is_help=True,
)
Flat = Annotated[
    bool,
    typer.Option(
        "--flat",
        help="The flat-table model 'sales-readiness-flat' (default: 'sales-readiness', "
        "trained on CRM exports).",
    ),
]
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(models_dir: ModelsDir = Path("models")) -> None:
    """List the versions of both models with their aliases, key test metrics and data
    fingerprint."""
    from leadready.training.registry import list_versions

    rows = list_versions(models_dir)
    if not rows:
        raise fail("no registered versions yet; train one with `leadready train --data DIR`")
    for name in dict.fromkeys(str(row["name"]) for row in rows):
        table = Table(title=f"{name} versions")
        columns = [column for column in rows[0] if column != "name"]
        for column in columns:
            table.add_column(
                column, justify="right" if column.startswith("test") else "left", overflow="fold"
            )
        for row in rows:
            if row["name"] == name:
                table.add_row(*(str(row[column]) for column in columns))
        console.print(table)


@models_app.command("compare")
def models_compare(
    a: Annotated[
        str | None,
        typer.Argument(help="Version A (e.g. the champion; with --live, the one that answered)."),
    ] = None,
    b: Annotated[
        str | None,
        typer.Argument(help="Version B (e.g. the challenger; with --live, the shadow)."),
    ] = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Compare on live traffic instead: the scores the server gave with the scores "
            "the shadow challenger gave the same requests, on leads whose outcomes arrived "
            "(the audit log); A and B default to the latest pair.",
        ),
    ] = False,
    audit_url: AuditUrl = None,
    flat: Flat = False,
    on: Annotated[
        Path | None,
        typer.Option(
            "--on",
            help="Compare on this CRM export folder (its closed leads, as snapshots) or, with "
            "--flat, this table (with the label column) instead of the newer version's "
            "hold-out; best data neither version was trained on.",
        ),
    ] = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Score versions A and B on the same rows, each with its own columns (the newer version's
    hold-out, or --on DIR or FILE), and test the AUC difference with a paired bootstrap over
    leads.
    Rows a version was trained on count only with the scores its own test gave them, or are
    left out; the output says how many.

    With --live: the champion and the challenger a server scored in its shadow, on the same
    requests, for leads whose outcomes arrived (each lead once, with its last pair of scores
    before the outcome), and how many leads the challenger would route differently."""
    if live:
        if on is not None or flat:
            raise fail("--live compares live CRM scores; it takes neither --on nor --flat")
        _compare_live(audit_url, models_dir, a, b)
        return
    if a is None or b is None:
        raise fail("give the two versions to compare, A and B (or --live)")
    from leadready.training.registry import PROMOTION_RULE, compare_versions

    try:
        c = compare_versions(models_dir, a, b, flat, on)
    except ValueError as exc:  # ContractError and ComparisonError among them
        raise fail(str(exc)) from None
    _comparison_table(c, a, b)
    for note in c["notes"]:
        console.print(f"[bold yellow]Note:[/] {escape(note)}.")
    verdict = "should replace" if c["b_should_replace_a"] else "should not replace"
    console.print(f"By the promotion rule, v{b} {verdict} v{a}: {escape(c['reason'])}.")
    console.print(f"Rule: {PROMOTION_RULE}", style="dim")


def _compare_live(url: str | None, models_dir: Path, a: str | None, b: str | None) -> None:
    from leadready.features.auditdb import default_url
    from leadready.training.compare import (
        MIN_CLEAN_ROWS,
        ComparisonError,
        compare_live,
        promotion_decision,
    )

    try:
        c = compare_live(url or default_url(models_dir), a, b)
    except ComparisonError as exc:
        raise fail(str(exc)) from None
    a, b = c["a"], c["b"]
    moved = sum(c["route_changes"].values())
    console.print(
        f"v{b} scored {c['paired_leads']:,} leads in the shadow of v{a}; {moved:,} "
        f"({moved / c['paired_leads']:.1%}) would change route with it."
    )
    for change, leads in c["route_changes"].items():
        console.print(f"  {change}: {leads:,}")
    if not c["comparable"]:
        console.print(
            f"{c['rows']:,} of them have an outcome ({c['won']:,} won); ROC AUC and calibration "
            f"are compared from {MIN_CLEAN_ROWS} leads with both outcomes."
        )
        return
    _comparison_table(c, a, b)
    verdict = "beats" if promotion_decision(c) else "does not beat"
    console.print(
        f"On live outcomes, v{b} {verdict} v{a} by the promotion rule's measures (a higher ROC "
        "AUC at p < 0.05, or within noise and a lower calibration error); "
        f"`leadready models promote {b}` makes it champion."
    )


def _comparison_table(c: dict[str, Any], a: str, b: str) -> None:
    """A comparison's ROC AUC (with the paired bootstrap's interval and p-value) and expected
    calibration error, side by side."""
    table = Table(title=f"v{a} vs v{b} on {c['clean_rows']:,} rows of {escape(c['where'])}")
    for column in ("measure", f"v{a}", f"v{b}", "B - A [95% interval]", "p-value"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row(
        "ROC AUC",
        f"{c['a_auc']:.4f}",
        f"{c['b_auc']:.4f}",
        f"{c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]",
        f"{c['p_value']:.3f}",
    )
    table.add_row(
        "expected calibration error",
        f"{c['a_ece']:.4f}",
        f"{c['b_ece']:.4f}",
        f"{c['b_ece'] - c['a_ece']:+.4f}",
        "",
    )
    console.print(table)


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="The version to make champion.")],
    flat: Flat = False,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Make VERSION the champion (a running server serves it within seconds)."""
    from leadready.training.registry import promote

    try:
        name, suspect = promote(models_dir, version, flat)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if suspect:
        errors.print(
            f"[bold yellow]warning:[/] training did not make this version champion: "
            f"{escape(suspect)}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"{name} version {version} is now champion; a running server serves it within a few "
        "seconds (at once with POST /v1/admin/reload or SIGHUP)."
    )
