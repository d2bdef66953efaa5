"""The serving side of `leadready`: serve, score, scores, outcomes, store, monitor. Commands
parse, call and print; the work is in the serving modules."""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from leadready.features.console import (
    AuditUrl,
    DatabaseUrl,
    EngineOption,
    MasterOption,
    ModelsDir,
    SchemaOption,
    check_engine,
    console,
    existing_store,
    fail,
    load_schema,
    print_notes,
    progress_bar,
)
from leadready.features.contract import ContractError, Crm, load_crm, parse_moment
from leadready.features.files import OutputError, check_output, write_csv, write_parquet
from leadready.features.spark import DEFAULT_MASTER
from leadready.serving.deliveries_cli import app as deliveries_app

if TYPE_CHECKING:
    import pandas as pd

    from leadready.serving.monitor import MonitorReport
    from leadready.serving.store import LoadedModel

app = typer.Typer()
app.add_typer(deliveries_app, name="deliveries")


LOOPBACK = ("127.0.0.1", "localhost", "::1")
WORKER_HEALTHCHECK_SECONDS = 30
"""How long uvicorn's supervisor waits for a worker to answer its health check (uvicorn: 5 s).
A worker that is loading a model under load answers late; at 5 s it was taken for hung."""
CHAMPION_POLL_SECONDS = 5.0
"""How often `serve` looks up the champion aliases (serving/fleet.py `ChampionWatcher`): one
process for all workers, two alias lookups of about 4 ms on the embedded SQLite store
(measured), so about 0.1% of a core; a promoted version is served within this plus the time a
worker takes to load it (1-6 s)."""


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to bind. Anything but loopback requires LEADREADY_API_KEYS."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            help="Comma-separated addresses of reverse proxies whose X-Forwarded-For and "
            "X-Forwarded-Proto headers are believed; default none: the client is the "
            "connection's peer, so no client can pose as another to the wrong-key throttle.",
        ),
    ] = "",
    champion_poll: Annotated[
        float,
        typer.Option(
            "--champion-poll",
            min=0.0,
            help="Seconds between looks at the champion aliases: a newly promoted version is "
            "served without a reload (0: only on POST /v1/admin/reload or SIGHUP).",
        ),
    ] = CHAMPION_POLL_SECONDS,
    explore: Annotated[
        float | None,
        typer.Option(
            "--explore",
            metavar="SHARE",
            help="Send this share (0 to below 1; 0.02 recommended) of the leads the policy "
            "keeps in nurture to sales instead, so their outcomes show the model's true win "
            "rate (docs/monitoring.md); default LEADREADY_EXPLORE_SHARE, else 0.",
        ),
    ] = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Start the scoring API (FastAPI under uvicorn) and the workspace (/ui) on the champions.

    Endpoints: POST /v1/score, POST /v1/score/batch, GET /v1/model, POST /v1/admin/reload,
    GET /healthz, /readyz, /metrics; OpenAPI schema at /openapi.json. The API scores with the
    champion of 'sales-readiness' (trained on CRM exports); the workspace's flat uploads with
    that of 'sales-readiness-flat'. Either one is enough to start. API keys come from
    LEADREADY_API_KEYS (comma-separated). A promoted champion is served within a few seconds
    (--champion-poll); SIGHUP reloads both champions at once. With LEADREADY_WEBHOOK_URLS
    (and LEADREADY_WEBHOOK_SECRET), every worker sends the lead store's webhook deliveries,
    signed and retried (docs/store.md)."""
    import shutil
    import socket
    import tempfile

    import uvicorn

    from leadready.features.registry import NoChampionError
    from leadready.features.routing import Exploration
    from leadready.serving.app import ServeSettings

    proxies = [a.strip() for a in forwarded_allow_ips.split(",") if a.strip()]
    if explore is not None:
        try:
            Exploration(explore)
        except ValueError as exc:
            raise fail(f"--explore: {exc}") from None
        os.environ["LEADREADY_EXPLORE_SHARE"] = repr(explore)  # the workers read it
    os.environ["LEADREADY_MODELS_DIR"] = str(models_dir.resolve())
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from pydantic import ValidationError

    from leadready.serving.webhooks import WebhookSettingsError

    try:
        settings = ServeSettings()
        webhooks = settings.webhooks()
    except ValidationError as exc:
        raise fail(
            "; ".join(
                f"LEADREADY_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                for e in exc.errors()
            )
        ) from None
    except WebhookSettingsError as exc:
        raise fail(str(exc)) from None
    if host not in LOOPBACK and not settings.keys():
        raise fail(
            f"refusing to bind {host} without API keys; set LEADREADY_API_KEYS "
            "(comma-separated) or bind 127.0.0.1"
        )
    from leadready.features.auditdb import default_url, engine_for
    from leadready.serving.engine import SHADOW, load_champions, shadow_version

    try:
        champions = load_champions(models_dir)
    except NoChampionError as exc:
        raise fail(str(exc)) from None
    # Create the audit table once here, not in each worker process at the same time.
    engine_for(settings.audit_url or default_url(models_dir)).dispose()
    if webhooks is not None:
        from leadready.features.leadstore.database import StoreError, database_url, open_store

        try:  # migrated once here too; and an unreachable store stops here, not in a worker
            open_store(database_url(models_dir, settings.database_url)).dispose()
        except StoreError as exc:
            raise fail(str(exc)) from None
    served = " and ".join(
        f"{m.loaded.name} version {m.loaded.version}"
        for m in (champions.engine, champions.flat)
        if m is not None
    )
    champion = champions.engine.loaded.version if champions.engine else None
    shadow, no_shadow = shadow_version(models_dir, champion)
    if shadow and settings.shadow:
        served += f", with challenger version {shadow} scored in its shadow"
    console.print(
        f"Serving {served} on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})"
    )
    if settings.explore_share > 0:
        also = " and of those it disqualifies" if settings.explore_disqualify else ""
        console.print(
            f"Exploration: {settings.explore_share:.1%} of the leads the policy keeps in "
            f"nurture{also} go to sales (marked explore: true)",
            highlight=False,
        )
    if champions.engine is None:
        console.print(
            "No CRM-export champion: /v1/score answers 503 until one is trained "
            "(`leadready train --data DIR`); the workspace at /ui scores flat tables.",
            style="yellow",
        )
    config = uvicorn.Config(
        "leadready.serving.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
    from leadready.serving.fleet import RUN_DIR, ChampionWatcher, RunFolder, Supervisor

    # The generation file every worker follows (serving/fleet.py): generation 0 names the
    # versions loaded above, so each worker, and any the supervisor starts again, loads those.
    os.environ[RUN_DIR] = tempfile.mkdtemp(prefix="leadready-run-")
    run = RunFolder(Path(os.environ[RUN_DIR]))
    run.publish(
        {
            "crm": champion,
            "flat": champions.flat.loaded.version if champions.flat else None,
            SHADOW: shadow,
        },
        {**champions.unavailable, **({SHADOW: no_shadow} if no_shadow else {})},
    )
    # Each worker writes its Prometheus metrics to files here and /metrics adds them all up,
    # whichever worker answers (prometheus_client's multiprocess mode).
    own = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own and workers > 1:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="leadready-metrics-")
    watcher = ChampionWatcher(run, models_dir, champion_poll)
    if champion_poll > 0:
        watcher.start()
    try:
        if workers == 1:
            uvicorn.Server(config).run()
            return
        sock = config.bind_socket()
        # Worker processes inherit this socket; without TCP_NODELAY uvicorn's multi-process
        # mode leaves Nagle's algorithm on and every response waited about 40 ms (uvicorn
        # issue 3149).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Supervisor(config, sockets=[sock], run=run, models_dir=models_dir).run()
    finally:
        watcher.stopping.set()
        if watcher.is_alive():
            watcher.join(timeout=10)
        shutil.rmtree(os.environ.pop(RUN_DIR), ignore_errors=True)
        if own and workers > 1:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)


@app.command()
def score(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="CSV or Parquet file to write (replaced only once complete; CSV text cells "
            "that a spreadsheet would run as a formula start with a quote).",
        ),
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="CRM export folder; its open "
            "leads (all leads when there is no outcome "
            "column) are scored.",
        ),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option(
            "--table",
            help="Flat table (.csv or .parquet, one row per lead) to score with a "
            "flat-table champion (docs/flat-mode.md); every row is scored.",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="ISO time to score at; default: the export's latest recorded time.",
        ),
    ] = None,
    reasons: Annotated[
        int,
        typer.Option(
            "--reasons",
            min=0,
            max=10,
            help="Reasons up and down per lead in the file (--data; 0: none, about twice as fast).",
        ),
    ] = 3,
    engine: EngineOption = "local",
    master: MasterOption = DEFAULT_MASTER,
    schema: SchemaOption = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Score the open leads of a CRM export with the champion model into a CSV or Parquet file.

    Writes readiness, potential, route, route reason and the top reasons per lead, through
    the same code path as the API. With --table, scores a flat table with a flat-table
    champion: its id column, readiness, potential (= readiness), route, route reason and top
    reasons."""
    if (data is None) == (table is None):
        raise fail(
            "give --data DIR (a CRM export folder) or --table FILE (a flat table)"
            if data is None
            else "--data and --table exclude each other; give one"
        )
    check_engine(engine, master)
    _check_out(out, (".csv", ".parquet"))
    if table is not None:
        if engine != "local":
            raise fail("--engine spark applies to --data only")
        if as_of is not None:
            raise fail("--as-of applies to --data only: a flat table is scored as it is")
        if reasons != 3:
            raise fail("--reasons applies to --data only")
        _score_table(table, out, schema, models_dir)
        return
    assert data is not None  # exactly one of --data and --table, checked above
    from leadready.features.registry import NoChampionError
    from leadready.serving.batch import score_export
    from leadready.serving.store import load_champion

    started = time.perf_counter()
    try:
        if as_of is not None:
            parse_moment(as_of, "--as-of")  # a typo fails before a large export is read
        try:
            loaded: LoadedModel | None = load_champion(models_dir)
        except NoChampionError as exc:
            loaded, no_champion = None, exc  # said after the export's own problems
        # Without --schema, the schema the champion was trained with (if any) reads the export.
        mapping = load_schema(schema) if schema is not None or loaded is None else loaded.schema
        lost_after = loaded.lost_after if loaded is not None else None
        crm = load_crm(data, require_outcome=False, schema=mapping, lost_after=lost_after)
        if loaded is None:
            raise no_champion
    except (ContractError, NoChampionError) as exc:
        raise fail(str(exc)) from None
    print_notes(crm.notes)
    if crm.closed_as_lost:
        print_notes(
            [
                f"{crm.closed_as_lost:,} leads still open {crm.lost_after} days after their "
                "creation at the export's end (or lost without a date) count as lost, as in "
                "training (its lost-after rule): not scored"
            ]
        )
    if engine == "spark":
        frame = _score_on_spark(crm, loaded, as_of, reasons, master, out)
    else:
        with progress_bar() as progress:
            task = progress.add_task("Scoring leads", total=None)
            try:
                frame = score_export(
                    crm,
                    loaded,
                    as_of,
                    progress=lambda done, total: progress.update(task, completed=done, total=total),
                    top=reasons,
                )
            except ValueError as exc:
                progress.stop()
                raise fail(str(exc)) from None
    if frame.empty:
        raise fail(
            f"nothing to score: {data} has no open lead created on or before "
            f"{as_of or 'the latest time it records'}; {out} was not written"
        )
    _write_scores(frame, out, f"{len(frame):,} leads with {loaded.name} v{loaded.version}", started)


def _score_on_spark(
    crm: Crm, loaded: LoadedModel, as_of: str | None, top: int, master: str, out: Path
) -> pd.DataFrame:
    """`score --engine spark`: staged beside --out (on a cluster, a folder every worker reads);
    a SparkSession started here is stopped here, an active one (a notebook's) is kept."""
    from leadready.features.spark import (
        SparkUnavailable,
        failure_said,
        session_for,
        spark_failures,
    )
    from leadready.serving.spark import score_export_spark

    try:
        with session_for(master) as spark:
            console.print(
                f"Scoring {len(crm.leads):,} leads on Spark ({spark.sparkContext.master})"
            )
            try:
                return score_export_spark(crm, loaded, as_of, spark, out.absolute().parent, top)
            except spark_failures() as exc:  # a worker lost, out of memory...
                raise fail(f"Spark could not score the export: {failure_said(exc)}") from None
    except SparkUnavailable as exc:
        raise fail(str(exc)) from None
    except ValueError as exc:
        raise fail(str(exc)) from None


def _write_scores(frame: pd.DataFrame, out: Path, what: str, started: float) -> None:
    """Write scored rows to CSV or Parquet and say how many went to each route."""
    try:
        if out.suffix.lower() == ".parquet":
            write_parquet(frame, out)
        else:
            write_csv(frame, out)
    except OSError as exc:  # a full disk, a folder made read-only since the check...
        raise _unwritten(out, exc) from None
    counts = frame["route"].value_counts().to_dict()
    console.print(
        f"Scored {what} in {time.perf_counter() - started:.1f} s -> {out} ("
        + ", ".join(
            f"{route}: {counts.get(route, 0):,}" for route in ("sales", "nurture", "disqualify")
        )
        + ")"
    )


def _check_out(out: Path, suffixes: tuple[str, ...]) -> None:
    """Stop before any work when --out could not be written."""
    try:
        check_output(out, suffixes)
    except OutputError as exc:
        raise fail(str(exc)) from None


def _unwritten(out: Path, exc: OSError) -> typer.Exit:
    """The exit for an output that failed while being written (its old version is kept)."""
    return fail(f"--out {out}: could not write it ({exc.strerror or exc}); the file is as it was")


def _score_table(path: Path, out: Path, schema: Path | None, models_dir: Path) -> None:
    """`score --table`: every row of a flat table, scored by a flat-table champion."""
    from leadready.features.registry import NoChampionError
    from leadready.features.table import read_flat, stored_mapping
    from leadready.serving.flat import flat_details, score_table
    from leadready.serving.store import load_champion

    started = time.perf_counter()
    try:
        loaded = load_champion(models_dir, flat=True)
        mapping = (
            load_schema(schema).table("table")
            if schema is not None
            else stored_mapping(flat_details(loaded))
        )
        frame = read_flat(path, mapping)
    except (ContractError, NoChampionError) as exc:
        raise fail(str(exc)) from None
    with progress_bar() as progress:
        task = progress.add_task("Scoring leads", total=len(frame))
        try:
            scored = score_table(
                frame,
                loaded,
                where=str(path),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        except ValueError as exc:
            progress.stop()
            raise fail(str(exc)) from None
    _write_scores(
        scored,
        out,
        f"{len(scored):,} rows with {loaded.name} v{loaded.version} (flat table)",
        started,
    )


scores_app = typer.Typer(help="The audit log of every score the API gave.", no_args_is_help=True)
app.add_typer(scores_app, name="scores")


@scores_app.command("export")
def scores_export(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="File to write: .csv (formula-like text cells start with a quote) or .parquet.",
        ),
    ],
    audit_url: AuditUrl = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Write the audit log of API scores to a CSV or parquet file.

    Columns: request_id, lead_id, model name and version, readiness, potential, route,
    scored_at."""
    from leadready.features.auditdb import default_url
    from leadready.serving.audit import EXPORT_SUFFIXES, export

    _check_out(out, EXPORT_SUFFIXES)
    try:
        rows = export(audit_url or default_url(models_dir), out)
    except OSError as exc:
        raise _unwritten(out, exc) from None
    console.print(f"Wrote {rows:,} scores to {out}")


outcomes_app = typer.Typer(
    help="Won and lost outcomes of scored leads, for the workspace's Outcomes page.",
    no_args_is_help=True,
)
app.add_typer(outcomes_app, name="outcomes")


@outcomes_app.command("import")
def outcomes_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or parquet file with columns lead_id, "
            "outcome (won or lost) and outcome_at (ISO 8601)."
        ),
    ],
    audit_url: AuditUrl = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Store the outcomes of leads beside the audit log of their scores.

    Every row is checked first; one bad row stops the import with every problem listed and
    nothing stored. A lead that already has an outcome gets the new one."""
    from leadready.features.auditdb import default_url
    from leadready.serving.outcomes import OutcomeError, import_file

    try:
        result = import_file(file, audit_url or default_url(models_dir))
    except OutcomeError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"Imported {result.imported:,} outcomes from {file} "
        f"({result.replaced:,} replaced an earlier outcome)"
    )


store_app = typer.Typer(
    help="The lead store: leads, their activities and touches, outcomes, scores and webhook "
    "deliveries in a database (SQLite leads.db in the models folder, or PostgreSQL through "
    "LEADREADY_DATABASE_URL), its schema migrated on every open (docs/store.md).",
    no_args_is_help=True,
)
app.add_typer(store_app, name="store")


@store_app.command("load")
def store_load(
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="CRM export folder (leads, activities, touches as .csv or .parquet)."
        ),
    ],
    schema: SchemaOption = None,
    database_url: DatabaseUrl = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Load a CRM export into the lead store: new leads are added, changed ones updated, events
    the store does not have yet added.

    The export is checked exactly as `train` checks it (a schema's lost-after rule applies), and
    a bad one stops with exit status 2 before the store is opened. The load is one transaction:
    an error or Ctrl-C leaves the store as it was. Loading the same export again changes
    nothing; events are identified by what they say (docs/store.md)."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from leadready.features.leadstore.database import StoreError, open_store, shown
    from leadready.features.leadstore.database import database_url as store_url
    from leadready.features.leadstore.loading import load_export

    started = time.perf_counter()
    try:
        crm = load_crm(data, schema=load_schema(schema))
    except ContractError as exc:
        raise fail(str(exc)) from None
    print_notes(crm.notes)
    if crm.closed_as_lost:
        print_notes(
            [
                f"{crm.closed_as_lost:,} leads still open {crm.lost_after} days after their "
                "creation at the export's end (or lost without a date) are stored as lost, as "
                "training counts them (the schema's lost-after rule)"
            ]
        )
    url = store_url(models_dir, database_url)
    try:
        engine = open_store(url)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        with progress_bar() as progress:
            task = progress.add_task("Loading into the lead store", total=None)
            summary = load_export(
                engine,
                crm,
                datetime.now(UTC).replace(tzinfo=None),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except StoreError as exc:
        raise fail(str(exc)) from None
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else exc
        raise fail(
            f"the lead store at {shown(url)} refused the load, which was rolled back: {reason}"
        ) from None
    except KeyboardInterrupt:
        raise fail(
            "interrupted; the lead store is as it was (a load is one transaction)", 130
        ) from None
    finally:
        engine.dispose()
    events = len(crm.activities) + len(crm.touches)
    added = sum(summary.events_added.values())
    console.print(
        f"Loaded {escape(str(data))} into {escape(shown(url))} in "
        f"{time.perf_counter() - started:.1f} s: {len(crm.leads):,} leads "
        f"({summary.leads_new:,} new, {summary.leads_updated:,} updated, "
        f"{summary.leads_unchanged:,} unchanged), {events:,} events ({added:,} added, "
        f"{events - added:,} already there)",
        highlight=False,
    )


@store_app.command("sweep")
def store_sweep(
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="Score as if it were this ISO 8601 time (default: now): for tests and replays "
            "of what a sweep would do later.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Score every open lead of the lead store again now, with the champion, as the server's
    scheduled sweep does (LEADREADY_SWEEP_MINUTES): readiness decays with time, SLAs pass
    (`lead.sla_breached`) and leads sales left alone are taken back (`lead.taken_back`). The
    SLA, take-back, capacity and exploration settings are the server's
    (LEADREADY_SALES_SLA_HOURS, LEADREADY_TAKE_BACK_DAYS, LEADREADY_SALES_CAPACITY,
    LEADREADY_EXPLORE_SHARE)."""
    from datetime import UTC, datetime

    from leadready.features.leadstore.database import StoreError, open_store, shown
    from leadready.features.registry import NoChampionError
    from leadready.serving.app import ServeSettings
    from leadready.serving.engine import Engine
    from leadready.serving.live import sweep
    from leadready.serving.store import load_champion

    try:
        moment = (
            datetime.now(UTC)
            if now is None
            else datetime.fromtimestamp(parse_moment(now, "--now"), UTC)
        )
    except ContractError as exc:
        raise fail(str(exc)) from None
    settings = ServeSettings(models_dir=models_dir, database_url=database_url)
    try:
        engine = Engine(load_champion(models_dir), settings.exploration())
    except NoChampionError as exc:
        raise fail(str(exc)) from None
    url = settings.store_url()
    try:
        store = open_store(url)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        done = sweep(store, engine, moment, settings.policy())
    finally:
        store.dispose()
    told = ", ".join(f"{n:,} {kind}" for kind, n in sorted(done.announced.items())) or "none"
    leads = f"{done.leads:,} open lead{'' if done.leads == 1 else 's'}"
    console.print(
        f"Swept {leads} of {escape(shown(url))} at {moment.isoformat()} in "
        f"{done.seconds:.1f} s; deliveries written: {told}",
        highlight=False,
    )


MONITOR_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def _window_start(since: str, until: datetime) -> datetime:
    """`--since`: a duration back from `until` (7d, 12h, 30m) or an ISO 8601 time (UTC)."""
    from datetime import UTC, timedelta

    if match := MONITOR_DURATION.match(since):
        return until - timedelta(**{DURATION_UNITS[match.group(2)]: int(match.group(1))})
    try:
        start = datetime.fromtimestamp(parse_moment(since, "--since"), UTC)
    except ContractError as exc:
        raise fail(f"{exc}, or a duration such as 7d, 12h or 30m") from None
    return start.replace(tzinfo=None)


@app.command()
def monitor(
    since: Annotated[
        str,
        typer.Option(
            "--since",
            help="Start of the window: a duration back from now (7d, 12h, 30m) or an ISO 8601 "
            "time (UTC). Leads whose latest score falls in it are compared.",
        ),
    ] = "7d",
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="End of the window, an ISO 8601 time (default: now): for replays and tests.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="HTML report to write (replaced only once complete); default: "
            "reports/monitor-<time>.html in the models folder.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Compare the champion's recent scores in the lead store with its training data.

    Per lead field (source, industry, company size, BANT, custom features): the population
    stability index against the leads the model was fitted on and the share of values it never
    saw; the readiness distribution and route shares against the hold-out's; and, for leads
    whose outcome arrived, ROC AUC and calibration error with 95% bootstrap intervals against
    the hold-out's. Writes a self-contained HTML report and logs the figures to the champion's
    MLflow run (one step per run). Exit status: 0 healthy, 3 input drift (a PSI above 0.25 or
    more than 5% unseen values), 4 the live AUC or calibration worse than the hold-out's beyond
    both intervals; 2 when there is nothing to compare (docs/monitoring.md)."""
    from datetime import UTC

    from mlflow.exceptions import MlflowException

    from leadready.features.files import write_text
    from leadready.features.registry import NoChampionError
    from leadready.serving.monitor import MonitorError, report_path
    from leadready.serving.monitor import monitor as measure
    from leadready.serving.monitor_html import render
    from leadready.serving.store import load_champion, log_monitoring

    generated = datetime.now(UTC)
    try:
        until = (
            generated if now is None else datetime.fromtimestamp(parse_moment(now, "--now"), UTC)
        ).replace(tzinfo=None)
    except ContractError as exc:
        raise fail(str(exc)) from None
    start = _window_start(since, until)
    if start >= until:
        raise fail(f"--since {since} is not before the window's end ({until:%Y-%m-%d %H:%M} UTC)")
    target = out or report_path(models_dir, generated)
    _check_out(target, (".html",))
    try:
        loaded = load_champion(models_dir)
    except NoChampionError as exc:
        raise fail(str(exc)) from None
    store, _ = existing_store(models_dir, database_url)
    try:
        report = measure(store, loaded, start, until)
    except MonitorError as exc:
        raise fail(str(exc)) from None
    finally:
        store.dispose()
    try:
        write_text(target, render(report, generated.replace(tzinfo=None)))
    except OSError as exc:
        raise _unwritten(target, exc) from None
    _print_monitoring(report)
    try:
        step = log_monitoring(
            models_dir, loaded.run_id, report.metrics(), int(generated.timestamp() * 1000)
        )
        logged = f"figures logged to run {loaded.run_id} (step {step})"
    except MlflowException as exc:  # the verdict still stands: its status is the exit's
        logged = f"the figures could not be logged to MLflow ({exc.message.splitlines()[0]})"
    console.print(f"Report: {escape(str(target))}; {escape(logged)}", highlight=False)
    raise typer.Exit(report.status)


def _print_monitoring(report: MonitorReport) -> None:
    """The report's figures on the console: inputs, scores, outcomes, then the verdict."""
    from rich.table import Table

    from leadready.serving.monitor import DRIFT, HEALTHY, WORSE, psi_verdict

    table = Table(title=f"{report.leads:,} leads scored by {report.name} v{report.version}")
    for column in ("field", "PSI", "reading", "unseen"):
        table.add_column(column, justify="right" if column in ("PSI", "unseen") else "left")
    for name, d in report.inputs.items():
        style = "bold red" if name in report.drifted else None
        unseen = f"{100 * d.unseen:.1f}%" if d.profile.kind == "categorical" else "-"
        table.add_row(name, f"{d.psi:.3f}", psi_verdict(d.psi), unseen, style=style)
    for label, value in (("(readiness)", report.readiness.psi), ("(routes)", report.route_psi)):
        table.add_row(label, f"{value:.3f}", psi_verdict(value), "-")
    console.print(table)
    shares = ", ".join(
        f"{route} {100 * live:.1f}% (hold-out {100 * ref:.1f}%)"
        for route, (ref, live) in report.routes.items()
    )
    console.print(f"Routes: {shares}", highlight=False)
    if report.performance is None:
        console.print(f"Outcomes not judged: {escape(report.why_no_performance)}", highlight=False)
    else:
        p = report.performance
        console.print(
            f"Outcomes of {p.leads:,} leads: ROC AUC {p.auc.value:.3f} [{p.auc.low:.3f}, "
            f"{p.auc.high:.3f}] (hold-out {p.holdout_auc.value:.3f} [{p.holdout_auc.low:.3f}, "
            f"{p.holdout_auc.high:.3f}]), calibration error {p.ece.value:.3f} [{p.ece.low:.3f}, "
            f"{p.ece.high:.3f}] (hold-out {p.holdout_ece.value:.3f} [{p.holdout_ece.low:.3f}, "
            f"{p.holdout_ece.high:.3f}])",
            highlight=False,
        )
    if report.exploration is not None:
        x = report.exploration
        bands = ", ".join(
            f"readiness {100 * p:.1f}%: won {100 * o:.1f}%"
            for p, o in zip(x.bands.predicted, x.bands.observed, strict=True)
        )
        console.print(
            f"Exploration slice: {x.leads:,} leads with an outcome ({x.won_leads:,} won), "
            f"win rate by readiness band, weighted by 1 / propensity: {bands}",
            highlight=False,
        )
    for note in report.notes:
        console.print(f"[bold]note:[/] {escape(note)}", highlight=False)
    if report.status == WORSE:
        assert report.performance is not None
        for problem in report.performance.problems:
            console.print(f"[bold red]worse:[/] {escape(problem)}", highlight=False)
    if report.status == DRIFT:
        console.print(
            f"[bold yellow]drift:[/] {escape(', '.join(report.drifted))}", highlight=False
        )
    if not report.judged:
        console.print(f"Too few leads to judge drift ({report.leads:,}).", highlight=False)
    elif report.status == HEALTHY:
        console.print("[bold green]healthy:[/] the leads look like the model's data")
