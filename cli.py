"""`leadready`: the one command line for every job, put together from the commands of both
sides (`leadready.training.cli` and `leadready.serving.cli`).

This module is the single place allowed to import both `training` and `serving` (the import
contracts in pyproject.toml say so); it holds no logic of its own beyond how the command
ends (`main`).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated

# LightGBM's OpenMP threads busy-wait by default, which made training 5-8x slower on 2 cores;
# this must be set before lightgbm is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# leadready draws its own progress; MLflow's artifact bar (tqdm) cluttered every command that
# loads a model, and its exit hook printed a traceback when Ctrl-C came as the command ended.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow's INFO lines (database set-up) and its warning about pickled models (leadready registers
# one on purpose) are noise in every command; `leadready --verbose` shows them. MLflow reads this
# when it is imported, which every command does lazily, after the option below is parsed.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
# Help and usage errors as plain text where there is no terminal (piped, TERM=dumb): typer's
# boxes, colours and terminal-width wrapping came out garbled there. Read when typer is imported.
if not sys.stdout.isatty() or os.environ.get("TERM") == "dumb":
    os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402

from leadready.serving import cli as serving_cli  # noqa: E402
from leadready.training import cli as training_cli  # noqa: E402

app = typer.Typer(
    help="leadready: learn sales readiness from won and lost leads, track it in MLflow, "
    "and route leads to sales, nurture or disqualify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def verbose_option(
    verbose: Annotated[
        bool,
        typer.Option("--verbose", help="Show MLflow's log lines and warnings (hidden otherwise)."),
    ] = False,
) -> None:
    if verbose:
        os.environ["MLFLOW_LOGGING_LEVEL"] = "INFO"


app.add_typer(training_cli.app)
app.add_typer(serving_cli.app)


def main() -> None:
    """The `leadready` command. Ctrl-C is ignored once a command has returned or failed: its
    work is done or undone by then, and an interrupt during the interpreter's shutdown printed
    a traceback from `threading`'s shutdown."""
    try:
        app()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
