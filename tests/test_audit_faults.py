"""The audit log under faults, with real processes: `leadready serve --workers 2` under load
while one worker is killed (SIGKILL), while another process holds an exclusive SQLite lock on
the audit database for 15 s, and killed whole (supervisor and workers) with rows still unwritten,
then started again. Every score answered 200 must reach the database exactly once. And a journal
left by a killed process, partly shipped already, is shipped by the next one without duplicates.

Each scenario prints requests sent / 200s / failed / audit rows / lost (`pytest -s` shows them).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from test_server import AUTH, Server, clean_env, start, stop

from leadready.serving.audit import JOURNAL_SUFFIX, STALL_SECONDS, AuditLog, journal_dir
from leadready.serving.middleware import Metrics
from leadready.serving.schemas import EXAMPLE_REQUEST

pytestmark = pytest.mark.fault

THREADS = 3
LOCK_SECONDS = 15
"""Three times STALL_SECONDS: /readyz has ten seconds to say so even on a slow machine."""
WAIT_SECONDS = 60
"""The longest any step waits: a worker restarting, journals shipped, /readyz recovering."""


class Load:
    """THREADS clients posting /v1/score until stopped; each answer's status and request_id,
    and the count of requests that got no answer (connection cut by a killed worker)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._post) for _ in range(THREADS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _post(self) -> None:
        with httpx.Client(headers=AUTH, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    answer = client.post(f"{self.url}/v1/score", json=EXAMPLE_REQUEST)
                except httpx.TransportError:
                    with self._lock:
                        self.failed += 1
                    continue
                with self._lock:
                    self.statuses[answer.status_code] += 1
                    if answer.status_code == 200:
                        self.ids.append(answer.json()["request_id"])

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + self.failed


def audit_ids(audit: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{audit}")
    with engine.connect() as connection:
        ids = list(connection.scalars(sa.text("select request_id from scores")))
    engine.dispose()
    return ids


def report(name: str, load: Load, rows: list[str]) -> None:
    lost = len(set(load.ids) - set(rows))
    print(
        f"\n[{name}] requests sent {load.sent}, 200s {len(load.ids)}, failed {load.failed}, "
        f"other statuses {sum(load.statuses.values()) - len(load.ids)}, audit rows {len(rows)}, "
        f"lost {lost}, duplicated {len(rows) - len(set(rows))}"
    )


def assert_every_200_once(load: Load, rows: list[str]) -> None:
    """Each 200 has its row, once; a row without a 200 can only be that of a request whose
    answer a killed worker never sent (journaled, then cut off)."""
    assert load.ids and set(load.statuses) == {200}
    assert len(rows) == len(set(rows)), "a score was written twice"
    assert set(load.ids) <= set(rows), f"{len(set(load.ids) - set(rows))} answered scores lost"
    assert len(rows) - len(load.ids) <= load.failed


def workers(server: Server) -> list[int]:
    """The pids of the server's worker processes (multiprocessing children that run uvicorn,
    not its resource tracker)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def journals(server: Server) -> list[Path]:
    folder = journal_dir(server.models, f"sqlite:///{server.audit}")
    return sorted(folder.glob(f"*{JOURNAL_SUFFIX}"))


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS} s: {what}"
        time.sleep(0.2)


def lock_database(audit: Path, seconds: float) -> subprocess.Popen:
    """Another process holding an exclusive lock on the audit database for `seconds`; returns
    once the lock is held."""
    script = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "c.execute('COMMIT')\n"
    )
    locker = subprocess.Popen(
        [sys.executable, "-c", script, str(audit), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
    return locker


@pytest.fixture
def models(champion_dir, tmp_path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(champion_dir, copy)
    return copy


def test_a_killed_worker_loses_no_answered_score(models, tmp_path):
    server = start(models, tmp_path / "audit.db", "--workers", "2")
    try:
        with Load(server.url) as load:
            time.sleep(3)
            victim = workers(server)[0]
            os.kill(victim, signal.SIGKILL)
            time.sleep(4)
        # The restarted worker adopts the dead one's journal, ships it and deletes it.
        wait_for(
            lambda: not any(p.name.startswith(f"{victim}-") for p in journals(server)),
            "the killed worker's journal shipped",
        )
    finally:
        assert stop(server) in (0, 130)
    rows = audit_ids(server.audit)
    report("kill -9 one worker", load, rows)
    assert_every_200_once(load, rows)
    assert not journals(server)


def readyz_and_pending(url: str) -> tuple[int, dict, float]:
    ready = httpx.get(f"{url}/readyz", timeout=10)
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    pending = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("leadready_audit_pending_rows")
    )
    return ready.status_code, ready.json(), pending


def test_a_locked_database_delays_the_audit_rows_and_fails_readiness_but_loses_none(
    models, tmp_path
):
    server = start(models, tmp_path / "audit.db", "--workers", "2")
    stalled: list[tuple[dict, float]] = []
    seen: list[str] = []
    try:
        with Load(server.url) as load:
            time.sleep(1)
            locker = lock_database(server.audit, LOCK_SECONDS)
            locked_at = time.monotonic()
            while locker.poll() is None:
                status, body, pending = readyz_and_pending(server.url)
                seen.append(f"{time.monotonic() - locked_at:.1f} s: {status} {body.get('audit')}")
                if status == 503:
                    stalled.append((body, pending))
                time.sleep(0.25)
            # Back to ready: several answers in a row, so both workers have caught up.
            ready = 0

            def recovered() -> bool:
                nonlocal ready
                ready = ready + 1 if readyz_and_pending(server.url)[0] == 200 else 0
                return ready >= 6

            wait_for(recovered, "/readyz 200 again after the lock")
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    finally:
        assert stop(server) in (0, 130)
    rows = audit_ids(server.audit)
    report(f"SQLite locked {LOCK_SECONDS} s", load, rows)
    assert stalled, f"/readyz stayed 200 through a {LOCK_SECONDS} s lock: {seen}"
    body, _ = stalled[-1]
    assert body["status"] == "not ready" and body["audit"]["pending_rows"] > 0
    assert body["audit"]["seconds_without_write"] > STALL_SECONDS
    assert "audit database has not accepted a write" in body["problems"][0]
    assert str(tmp_path) not in str(body)
    assert max(pending for _, pending in stalled) > 0
    failed_writes = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("leadready_audit_failed_writes_total")
    )
    assert failed_writes > 0
    assert_every_200_once(load, rows)
    assert load.failed == 0 and len(rows) == len(load.ids)


def test_a_server_killed_with_unwritten_rows_writes_them_once_when_started_again(models, tmp_path):
    audit = tmp_path / "audit.db"
    server = start(models, audit, "--workers", "2")
    try:
        with Load(server.url) as load:
            time.sleep(2)  # these rows reach the database, and stay in the journals
            locker = lock_database(server.audit, 60)
            time.sleep(3)  # these do not
    finally:
        # The supervisor first, so that it restarts no worker.
        for pid in (server.process.pid, *workers(server)):
            os.kill(pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        locker.kill()
        locker.wait(timeout=10)
    left = journals(server)
    written = len(audit_ids(audit))
    assert len(left) >= 2 and 0 < written < len(load.ids)
    again = start(models, audit, "--workers", "2")
    try:
        wait_for(lambda: not set(left) & set(journals(again)), "the old journals shipped")
    finally:
        assert stop(again) in (0, 130)
    rows = audit_ids(audit)
    report(f"kill -9 the server ({len(load.ids) - written} rows unwritten), restart", load, rows)
    assert_every_200_once(load, rows)
    assert len(rows) == len(load.ids)


def test_a_killed_process_journal_is_shipped_once_by_the_next(tmp_path):
    """A process records 3 rows, sees them written, records 2 more and kills itself before its
    shipper runs again: the next audit log on that store writes the 2, not the 3 again."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    folder = tmp_path / "journal"
    script = (
        "import os, signal, sys, time\n"
        "from pathlib import Path\n"
        "import sqlalchemy as sa\n"
        "from leadready.serving.audit import AuditLog\n"
        "from leadready.serving.middleware import Metrics\n"
        "log = AuditLog(sys.argv[1], Path(sys.argv[2]), Metrics())\n"
        "row = dict(lead_id='L', model_name='m', model_version='1', readiness=0.5,\n"
        "           potential=0.5, route='sales', scored_at='2026-01-01T00:00:00+00:00',\n"
        "           as_of='2026-01-01T00:00:00+00:00', explore=False, propensity=1.0)\n"
        "log.record([dict(row, request_id=f'r{i}') for i in range(3)])\n"
        "count = sa.text('select count(*) from scores')\n"
        "while log.engine.connect().scalar(count) < 3:\n"
        "    time.sleep(0.05)\n"
        "log.record([dict(row, request_id=f'r{i}') for i in range(3, 5)])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, url, str(folder)], env=clean_env(), timeout=60
    )
    assert killed.returncode == -signal.SIGKILL
    assert len(list(folder.glob(f"*{JOURNAL_SUFFIX}"))) == 1
    AuditLog(url, folder, Metrics()).close()
    assert sorted(audit_ids(tmp_path / "audit.db")) == [f"r{i}" for i in range(5)]
    assert not list(folder.glob(f"*{JOURNAL_SUFFIX}"))
