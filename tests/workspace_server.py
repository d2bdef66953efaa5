"""Helpers the workspace's tests share (tests/test_ui_pages.py, tests/test_ui_browser.py): a
flat-table champion trained through the CLI, and a real `leadready serve` on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
from conftest import make_table, write

KEY = "ui-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LEADREADY = str(Path(sys.executable).parent / "leadready")
FLAT_TRAIN = [
    "train",
    "--table",
    "{table}",
    "--id",
    "lead",
    "--label",
    "converted",
    "--positive",
    "yes",
    "--time",
    "created",
    "--models-dir",
    "{models}",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FLAT_SCHEMA = "table:\n  display: [name, company]\n  actionable: [visits, source]\n"
"""The flat champion's schema: two columns shown beside each row (never features), and the
two inputs marketing can change (the only ones the what-if suggests)."""


def with_people(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """make_table's rows with the columns a CRM shows people by: a name and a company."""
    out = frame.copy()
    out["name"] = [f"Person {seed}-{i}" for i in range(len(out))]
    out["company"] = [f"Company {i % 37}" for i in range(len(out))]
    return out


def train_flat(models: Path, folder: Path) -> Path:
    """Register a flat-table champion in `models`, trained on make_table's rows (with names
    and companies, FLAT_SCHEMA); returns a table of new rows (no label) to upload."""
    from typer.testing import CliRunner

    from leadready.cli import app

    table = write(with_people(make_table(), 3), folder, "history.csv")
    schema = folder / "flat-schema.yaml"
    schema.write_text(FLAT_SCHEMA)
    args = [a.format(table=table, models=models) for a in FLAT_TRAIN]
    result = CliRunner().invoke(app, [*args, "--schema", str(schema)])
    assert result.exit_code == 0, result.output
    new = with_people(make_table(seed=4).drop(columns=["converted"]), 4)
    return write(new, folder, "new-leads.csv")


@contextmanager
def running_server(models: Path, *extra: str, **env: str) -> Iterator[str]:
    """`leadready serve` on `models` with the test key, until the block ends (SIGINT)."""
    port = free_port()
    # mlflow.set_tracking_uri in this process exported MLFLOW_TRACKING_URI; the server must use
    # its own --models-dir store.
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    environment.update(
        LEADREADY_API_KEYS=KEY, LEADREADY_AUDIT_URL=f"sqlite:///{models / 'ui-audit.db'}", **env
    )
    process = subprocess.Popen(
        [LEADREADY, "serve", "--port", str(port), "--models-dir", str(models), *extra],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("server did not become ready in 90 s")
        time.sleep(0.2)
    try:
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
