"""The audit log: every score, traceable to the model version that gave it.

Writes are batched by a background thread (every `FLUSH_SECONDS` or `FLUSH_ROWS` rows), so no
request waits on the disk; `close()` drains the queue, so a clean shutdown loses nothing.
Default store: SQLite at `models/audit.db`; any SQLAlchemy URL (PostgreSQL...) works too.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from leadready.features.files import write_csv, write_parquet

EXPORT_SUFFIXES = (".csv", ".parquet")
FLUSH_SECONDS = 0.5
FLUSH_ROWS = 500
COLUMNS = (
    "request_id",
    "lead_id",
    "model_name",
    "model_version",
    "readiness",
    "potential",
    "route",
    "scored_at",
)

metadata = sa.MetaData()
scores = sa.Table(
    "scores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("lead_id", sa.String(200), nullable=False, index=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("readiness", sa.Float, nullable=False),
    sa.Column("potential", sa.Float, nullable=False),
    sa.Column("route", sa.String(16), nullable=False),
    sa.Column("scored_at", sa.String(40), nullable=False),
)


def default_url(models_dir: Path) -> str:
    return f"sqlite:///{(models_dir / 'audit.db').resolve()}"


def engine_for(url: str) -> sa.Engine:
    """An engine on the audit store, its table created if missing."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
    except sa.exc.DatabaseError:
        # Another worker process created the table between the check and the create.
        if not sa.inspect(engine).has_table(scores.name):
            raise
    return engine


class AuditLog:
    """Append-only, batched, background writer of score records."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self._queue: queue.Queue[dict | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def record(self, rows: list[dict]) -> None:
        for row in rows:
            self._queue.put({c: row[c] for c in COLUMNS})

    def _run(self) -> None:
        """Collect rows until FLUSH_SECONDS after the first one, or FLUSH_ROWS, then write them
        in one transaction; a None in the queue means: write what is left and stop."""
        stop = False
        while not stop:
            batch: list[dict] = []
            deadline: float | None = None
            while len(batch) < FLUSH_ROWS:
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    break
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                deadline = deadline or time.monotonic() + FLUSH_SECONDS
            if batch:
                with self.engine.begin() as connection:
                    connection.execute(scores.insert(), batch)

    def close(self) -> None:
        """Write everything still queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join()
        self.engine.dispose()


def export(url: str, out: Path) -> int:
    """Write the audit log to CSV or parquet (by the file's extension, one of EXPORT_SUFFIXES),
    atomically and spreadsheet-safe (`features.files`); returns the rows."""
    import pandas as pd

    with engine_for(url).connect() as connection:
        frame = pd.read_sql(
            sa.select(*(scores.c[c] for c in COLUMNS)).order_by(scores.c.id), connection
        )
    if out.suffix.lower() == ".parquet":
        write_parquet(frame, out)
    else:
        write_csv(frame, out)
    return len(frame)
