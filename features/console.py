"""What every `leadready` command shares: the consoles, the error exit, the progress bar and
the options both sides take. The commands themselves live in `training/cli.py` and
`serving/cli.py`; the root `leadready.cli` puts them together."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, overload

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from leadready.features.schema import Schema
from leadready.features.spark import DEFAULT_MASTER, ENGINES

if TYPE_CHECKING:
    import sqlalchemy as sa

console = Console()
errors = Console(stderr=True)

SchemaOption = Annotated[
    Path | None,
    typer.Option(
        "--schema",
        help="YAML file mapping your export's columns, values and date formats onto the data "
        "contract, with extra custom features (docs/schema.md).",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="LEADREADY_DATABASE_URL",
        help="SQLAlchemy URL of the lead store (PostgreSQL: postgresql+psycopg://USER@HOST/DB); "
        "default: SQLite leads.db in the models folder.",
    ),
]
AuditUrl = Annotated[
    str | None,
    typer.Option(
        "--audit-url",
        envvar="LEADREADY_AUDIT_URL",
        help="SQLAlchemy URL of the audit log; default: SQLite in the models folder.",
    ),
]
ModelsDir = Annotated[
    Path,
    typer.Option(
        "--models-dir",
        envvar="LEADREADY_MODELS_DIR",
        help="Folder of the embedded MLflow store (SQLite + artifacts). Ignored for tracking "
        "when MLFLOW_TRACKING_URI is set.",
    ),
]

EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="local (this process) or spark (Apache Spark, with --data: pip install "
        "'leadready[spark]'; docs/spark.md).",
    ),
]
MasterOption = Annotated[
    str, typer.Option("--master", help="Spark master URL, with --engine spark.")
]


def check_engine(engine: str, master: str) -> None:
    """Stop before any work on an unknown --engine, or a --master without --engine spark."""
    if engine not in ENGINES:
        raise fail(f"--engine {engine}: expected one of {', '.join(ENGINES)}")
    if engine == "local" and master != DEFAULT_MASTER:
        raise fail("--master applies to --engine spark only")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error and return the exit (status 2, or 128 + N after signal N) for the caller
    to raise. The message is printed as it is: values from the user's files may hold brackets
    that rich reads as markup."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


def existing_store(models_dir: Path, url: str | None) -> tuple[sa.Engine, str]:
    """The lead store of `--database-url` / LEADREADY_DATABASE_URL / the models folder, which
    must exist already (a wrong URL or a missing SQLite file stops the command, exit 2), and
    how messages name it (no password)."""
    from leadready.features.leadstore.database import (
        StoreError,
        database_url,
        open_existing_store,
        shown,
    )

    chosen = database_url(models_dir, url)
    try:
        return open_existing_store(chosen), shown(chosen)
    except StoreError as exc:
        raise fail(str(exc)) from None


def print_notes(notes: list[str]) -> None:
    """Say how values were read that the data contract spells otherwise (not errors)."""
    for note in notes:
        console.print(f"[bold]note:[/] {escape(note)}", highlight=False, soft_wrap=True)


@overload
def load_schema(path: Path) -> Schema: ...
@overload
def load_schema(path: None) -> None: ...
@overload
def load_schema(path: Path | None) -> Schema | None: ...
def load_schema(path: Path | None) -> Schema | None:
    return Schema.load(path) if path is not None else None


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
