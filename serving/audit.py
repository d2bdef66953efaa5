"""The audit log: every score, traceable to the model version that gave it.

A score is durable before its answer leaves: `AuditLog.record` appends the request's rows to this
worker process's journal (`models/audit-journal/<store>/<pid>-<uuid>.jsonl`, one JSON line per
row) in one `write` call. The kernel keeps what was written even when the process is killed
(SIGKILL, a crash); it does not fsync, so a power loss may take the last seconds with it.

A shipper thread copies journal rows into the audit database (SQLite at `models/audit.db` by
default, any SQLAlchemy URL) in batches of up to `FLUSH_ROWS`, about every `FLUSH_SECONDS`. A
failed write (`database is locked`, a lost connection, anything) is retried with capped
exponential backoff and never dropped; after `STALL_SECONDS` without a successful write while
rows wait, `health()` reports a problem, which makes /readyz answer 503. Each row's
`record_key` (journal file and byte offset) is unique in the database, so shipping a row again
after a crash inserts nothing.

Each worker holds an exclusive `flock` on its own journal. A journal whose lock can be taken has
no living owner: the shipper adopts it (at start and every `ADOPT_SECONDS`), ships what is left
and deletes it. A clean `close()` ships everything and deletes its journal; what it cannot ship
in `CLOSE_SECONDS` stays in the journal for the next start.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from leadready.features.auditdb import TABLES, engine_for, scores
from leadready.features.files import write_csv, write_parquet

if TYPE_CHECKING:
    from leadready.serving.middleware import Metrics

log = logging.getLogger("leadready.serve")

EXPORT_SUFFIXES = (".csv", ".parquet")
FLUSH_SECONDS = 0.5
FLUSH_ROWS = 500
STALL_SECONDS = 5.0
"""Rows waiting this long without a successful database write make /readyz answer 503."""
BACKOFF_SECONDS = (0.1, 2.0)
"""The first pause after a failed write, and the longest: it doubles per failure up to it."""
ADOPT_SECONDS = 5.0
CLOSE_SECONDS = 10.0
ROTATE_BYTES = 4 << 20
"""A fully shipped journal this large is replaced by a new one, so a restart re-reads little."""
READ_BYTES = 256 << 10
JOURNAL_SUFFIX = ".jsonl"
NUMPY = orjson.OPT_SERIALIZE_NUMPY
"""Journal lines by orjson, numpy numbers included."""
COLUMNS = (
    "request_id",
    "lead_id",
    "model_name",
    "model_version",
    "readiness",
    "potential",
    "route",
    "scored_at",
    "as_of",
    "explore",
    "propensity",
)


class AuditError(Exception):
    """The journal could not be written, so the score must not be answered."""


def journal_dir(models_dir: Path, url: str) -> Path:
    """This audit store's journal folder: keyed by the URL without its password, so a changed
    password still finds the rows left unshipped, and two stores never share a journal."""
    shown = sa.make_url(url).render_as_string(hide_password=True)
    return models_dir / "audit-journal" / hashlib.sha256(shown.encode()).hexdigest()[:16]


def insert_new(connection: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """Insert `rows` into `table`, but those whose record_key the database holds already
    (shipped before a crash or a failed commit's answer)."""
    dialects: dict[str, Any] = {"sqlite": sqlite, "postgresql": postgresql}
    dialect = dialects.get(connection.dialect.name)
    if dialect is not None:
        statement = dialect.insert(table).on_conflict_do_nothing(index_elements=["record_key"])
        connection.execute(statement, rows)
        return
    keys = [r["record_key"] for r in rows]
    known = set(
        connection.scalars(sa.select(table.c.record_key).where(table.c.record_key.in_(keys)))
    )
    if new := [r for r in rows if r["record_key"] not in known]:
        connection.execute(table.insert(), new)


@dataclass
class Journal:
    """One journal file, opened with this process's exclusive lock on it."""

    path: Path
    fd: int
    end: int
    """Bytes written in whole lines: the shipper reads up to here."""
    rows: int = 0
    """Whole lines up to `end`."""
    shipped: int = 0
    """Bytes whose rows are in the database."""
    shipped_rows: int = 0
    """Each count has one writer (`rows` the handlers, under the log's lock; the others the
    shipper), so neither loses an update to the other."""

    @property
    def pending(self) -> int:
        return self.rows - self.shipped_rows

    @classmethod
    def create(cls, folder: Path) -> Journal:
        """A new, empty journal of this process. It is locked under a temporary name and then
        renamed, so no other process ever sees it unlocked and adopts it."""
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex}"
        temporary = folder / f".{name}.new"
        fd = os.open(temporary, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = folder / f"{name}{JOURNAL_SUFFIX}"
        os.rename(temporary, path)
        return cls(path, fd, end=0)

    @classmethod
    def adopt(cls, path: Path) -> Journal | None:
        """The journal at `path` when its owner is gone (its lock is free), else None."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None  # shipped and deleted by another worker meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                raise FileNotFoundError(path)
        except OSError:
            os.close(fd)
            return None
        size = os.fstat(fd).st_size
        lines = sum(
            os.pread(fd, READ_BYTES, offset).count(b"\n") for offset in range(0, size, READ_BYTES)
        )
        return cls(path, fd, end=size, rows=lines)

    def append(self, data: bytes, rows: int) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.end += len(data)
        self.rows += rows

    def batch(self, end: int) -> tuple[list[dict], int]:
        """The next rows to ship (up to FLUSH_ROWS whole lines between `shipped` and `end`, each
        with its record_key and its table's key in `TABLES`) and the offset after them; no rows
        when only a cut-off last line is left (its writer died inside `write`, so that request
        was never answered)."""
        chunk = os.pread(self.fd, min(end - self.shipped, READ_BYTES), self.shipped)
        rows = []
        offset = self.shipped
        for line in chunk.split(b"\n")[:-1][:FLUSH_ROWS]:
            # A journal written by an older version may lack newer columns (as_of): null.
            row = {**dict.fromkeys(COLUMNS), "table": "scores", **orjson.loads(line)}
            rows.append({**row, "record_key": f"{self.path.stem}:{offset}"})
            offset += len(line) + 1
        return rows, offset

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self.fd)


class AuditLog:
    """Journal-first, batched, retrying writer of score records (see the module docstring)."""

    def __init__(self, url: str, folder: Path, metrics: Metrics) -> None:
        self.engine = engine_for(url)
        self._folder = folder
        self._metrics = metrics
        self._own = Journal.create(folder)
        self._adopted: dict[Path, Journal] = {}
        self._lock = threading.Lock()
        """Serialises appends to the journal (handlers run in a thread pool)."""
        self._stop = threading.Event()
        self._give_up_at = 0.0
        self._written_at = time.monotonic()
        """When the shipper last wrote, or found nothing to write."""
        self.failed_writes = 0
        self._thread = threading.Thread(target=self._run, name="audit-shipper", daemon=True)
        self._thread.start()

    def record(self, rows: list[dict], table: str = "scores") -> None:
        """Append `rows` of `table` (a key of `TABLES`) to the journal in one write; the caller
        answers only after this."""
        if not rows:
            return
        tag = {} if table == "scores" else {"table": table}
        data = b"".join(
            orjson.dumps({**{c: row[c] for c in COLUMNS}, **tag}, option=NUMPY) + b"\n"
            for row in rows
        )
        with self._lock:
            try:
                self._own.append(data, len(rows))
            except OSError as exc:
                log.error("the audit journal cannot be written: %s", exc)
                raise AuditError(
                    "the audit log cannot be written, so no score is given; the server log says why"
                ) from None

    def pending_rows(self) -> int:
        return self._own.pending + sum(j.pending for j in list(self._adopted.values()))

    def health(self) -> tuple[dict[str, Any], str | None]:
        """The /readyz section of this worker's audit log, and its problem sentence if rows
        have waited more than STALL_SECONDS without a successful write."""
        pending = self.pending_rows()
        waited = time.monotonic() - self._written_at if pending else 0.0
        section = {
            "pending_rows": pending,
            "failed_writes": self.failed_writes,
            "seconds_without_write": round(waited, 1),
        }
        if waited <= STALL_SECONDS:
            return section, None
        return section, (
            f"the audit database has not accepted a write for {waited:.0f} s: {pending} scores "
            "wait in this worker's journal and are written once it does (the server log says why)"
        )

    def _run(self) -> None:
        """Adopt orphaned journals now and then, ship, and on a failure back off and retry; on
        `close()`, ship until nothing is left or CLOSE_SECONDS have passed."""
        failures = 0
        adopt_at = 0.0
        while True:
            stopping = self._stop.is_set()
            try:
                if stopping or time.monotonic() >= adopt_at:
                    self._adopt()
                    adopt_at = time.monotonic() + ADOPT_SECONDS
                self._ship()
            except Exception as exc:
                failures += 1
                self.failed_writes += 1
                self._metrics.audit_failed_writes.inc()
                pause = min(BACKOFF_SECONDS[1], BACKOFF_SECONDS[0] * 2 ** (failures - 1))
                reason = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
                log.warning(
                    "audit rows not written (attempt %d, %d rows kept in the journal, retrying "
                    "in %.1f s): %s",
                    failures,
                    self.pending_rows(),
                    pause,
                    reason,
                    exc_info=not isinstance(exc, sa.exc.DBAPIError),
                )
            else:
                if failures:
                    log.warning("audit rows written again after %d failed attempts", failures)
                failures, pause = 0, FLUSH_SECONDS
            self._metrics.audit_pending.set(self.pending_rows())
            if stopping and (not failures or time.monotonic() > self._give_up_at):
                return
            if stopping:
                time.sleep(pause)
            else:
                self._stop.wait(pause)

    def _adopt(self) -> None:
        for path in sorted(self._folder.glob(f"*{JOURNAL_SUFFIX}")):
            if path == self._own.path or path in self._adopted:
                continue
            if (journal := Journal.adopt(path)) is not None:
                log.info("shipping the audit journal left by process %s", path.stem)
                self._adopted[path] = journal

    def _ship(self) -> None:
        """Write every journal's rows to the database, one transaction per batch; delete adopted
        journals once shipped, and replace the own one when it is shipped and large."""
        for journal in (self._own, *self._adopted.values()):
            end = journal.end  # rows recorded from now on wait for the next round
            while journal.shipped < end:
                rows, offset = journal.batch(end)
                if not rows:
                    break
                with self.engine.begin() as connection:
                    for name, table in TABLES.items():
                        if mine := [r for r in rows if r["table"] == name]:
                            insert_new(connection, table, mine)
                journal.shipped, journal.shipped_rows = offset, journal.shipped_rows + len(rows)
                self._written_at = time.monotonic()
        self._written_at = time.monotonic()
        for path, journal in list(self._adopted.items()):
            journal.delete()
            del self._adopted[path]
            _forget_process(path.stem.split("-")[0])
        if self._own.shipped >= ROTATE_BYTES:
            with self._lock:
                if self._own.shipped == self._own.end:
                    old, self._own = self._own, Journal.create(self._folder)
                    old.delete()

    def close(self) -> None:
        """Ship everything (for up to CLOSE_SECONDS), then stop the shipper; delete the journal
        when all of it is in the database, else leave it for the next start."""
        self._give_up_at = time.monotonic() + CLOSE_SECONDS
        self._stop.set()
        self._thread.join()
        if self.pending_rows():
            log.error(
                "%d audit rows could not be written before shutdown; they stay in the journal "
                "and the next start writes them",
                self.pending_rows(),
            )
            for journal in (self._own, *self._adopted.values()):
                os.close(journal.fd)
        else:
            self._own.delete()
            self._metrics.audit_pending.set(0)
        self.engine.dispose()


def _forget_process(pid: str) -> None:
    """Drop the gauges of a dead worker (prometheus_client's multiprocess files), so its last
    count of pending rows, now shipped by this one, is not added to /metrics any more."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and pid.isdigit():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(int(pid))


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
