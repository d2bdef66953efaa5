"""Benchmark of the scoring API against MLflow's generic model server, same champion, same run.
One file on purpose (over our usual ~500 lines): it starts the servers, generates the load and
measures them in one command, so anyone can reproduce the figures.

    .venv/bin/python bench/serve.py --models-dir models [--workers 1] [--requests 2000]
        [--seconds 20] [--concurrency 8] [--throughput-requests 50000] [--batch-calls 20]
        [--memory-requests 100000] [--memory-seconds 300] [--stage-repetitions 2000]
        [--mlflow-workers 1] [--skip-mlflow] [--shadow]

All on `models:/sales-readiness@champion` of `--models-dir` (its `mlflow.db` and `artifacts/`).

First, in this process (no HTTP): one heavy request through the scoring code stage by stage,
`--stage-repetitions` times, median microseconds per stage (JSON decode, reading and
validation, arrays, features, model and contributions, reasons and context and the rest of
the answer, the audit journal, JSON encode as the API does it), next to
`Engine.score_requests` whole; the same for the batch of 1,000 leads below (a 200th of the
passes, at least 3). The stages mirror `api.score` and `score_requests`; if their answers differ
from its answers the script stops (1).

Then servers on free loopback ports, one after the other (each started, measured and stopped
before the next starts, so none competes with another for the cores):

- `leadready serve --workers N` (`--workers`, default 1), sent raw leads with their events: it
  validates the body, builds point-in-time features, scores readiness and potential, explains
  readiness (reasons) and assembles the rep's context, as in production (with an API key, and
  the audit log written to a temporary SQLite file; its journal goes to the models folder's
  `audit-journal/`, and is removed when the server stops);
- with `--workers` above 1, also `leadready serve --workers 1`, the per-worker reference of the
  targets and of the scaling ratio;
- with `--shadow`, `leadready serve --workers 1` on a copy of the registry whose champion is
  registered again as the `challenger`, which the server then scores in the shadow of every
  answer (docs/api.md#shadow-challenger), measured as the 1-worker reference is;
- `mlflow models serve --env-manager local` (`--mlflow-workers`, default 1), the generic
  server a team would use otherwise. It is sent one row of precomputed feature values (from
  the model's `input_example.json`) and answers only a probability, so it does less work per
  request than leadready.

Over 127.0.0.1 only, with a keep-alive HTTP connection per client:

- latency at concurrency 1: ~50 warm-up requests, then up to `--requests` requests or
  `--seconds` seconds; p50 (median) and p99 in ms, and requests per second (requests over the
  phase's elapsed time). leadready is measured on a heavy lead (60 activities and 15 touches
  over 90 days, the one the targets apply to) and, on the `--workers` server, on the small
  example of the API docs (3 activities, 2 touches);
- throughput at concurrency `--concurrency`: that many threads, each with its own connection,
  for `--seconds` seconds or `--throughput-requests` requests in all; requests per second;
- on the `--workers` server only, its memory: each worker's resident set (VmRSS in /proc; with
  several workers, the supervisor's children) once loaded, before the memory phase (after the
  phases above, so every worker is warm) and after it: `--memory-requests` heavy requests at
  concurrency `--concurrency` (at most `--memory-seconds`);
- then `/v1/score/batch` with 1,000 varied leads (sized like the sample CRM's: median about 30
  activities and 13 touches, a long tail), 2 warm-up calls, then up to `--batch-calls` calls
  or `--seconds` seconds, one at a time; and the resident sets once more.

Every response must be a 200 or it counts as an error. Targets (issue 13), on one leadready
worker against one MLflow worker, heavy lead with reasons and context: p50 <= 2 ms and p99 <=
5 ms at concurrency 1; throughput at concurrency 8 at least 30x MLflow's and at least its own
at concurrency 1 (no collapse under concurrency); with N workers, throughput at concurrency 8
at least 0.8 N times one worker's ("about twice" for 2); the batch of 1,000 leads in p50 <=
100 ms; no worker's resident set grown by more than 20 MiB or 10%, whichever is larger, over
the memory phase; with `--shadow`, the answers' p50 at concurrency 1 at most 10% above one
worker's without a challenger, and a shadow score in the audit log for every answer. The script
prints the stage table, a table of the servers, each worker's
memory and PASS/FAIL per target, and exits 0 whatever the targets say (it is a report);
non-zero only when there is no registry in `--models-dir` (2), or a server could not be
started or the stages no longer match `score_requests` (1). Client and servers share the
machine's cores: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from leadready.features.auditdb import engine_for, scores, shadow_scores
from leadready.features.build import build_features
from leadready.features.contract import ACTIVITY_TYPES, CHANNELS, TEAMS
from leadready.serving.api import FastJSON, _audit_and_count, read_request
from leadready.serving.audit import AuditLog, journal_dir
from leadready.serving.engine import Engine, event_arrays, request_batch
from leadready.serving.middleware import Metrics
from leadready.serving.predict import predict
from leadready.serving.schemas import EXAMPLE_REQUEST, BatchRequest
from leadready.serving.store import load_champion

HOST = "127.0.0.1"
MODEL_URI = "models:/sales-readiness@champion"
WARMUP = 50
BATCH_WARMUP = 2
BATCH_LEADS = 1000
START_TIMEOUT = 180.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 60.0
TARGET_P50_MS = 2.0
TARGET_P99_MS = 5.0
TARGET_THROUGHPUT_RATIO = 30.0
TARGET_SCALING_PER_WORKER = 0.8
"""N workers at concurrency 8 should serve at least 0.8 N times one worker (1.6x for 2)."""
TARGET_BATCH_P50_MS = 100.0
SHADOW_SLOWER = 0.10
"""With --shadow: the answers' p50 may be this much above one worker's without a challenger."""
MEMORY_TOLERANCE_MIB = 20.0
MEMORY_TOLERANCE_SHARE = 0.10
"""A worker's resident set may grow by the larger of these over the memory phase."""


def say(text: str) -> None:
    print(text, flush=True)


# --- payloads ---------------------------------------------------------------------------------


def heavy_request(
    n_activities: int = 60,
    n_touches: int = 15,
    days: int = 90,
    seed: int = 7,
    lead_id: str = "L-BENCH-HEAVY",
    hand_raise: bool = True,
) -> dict[str, Any]:
    """A realistic busy lead: `n_activities` activities and `n_touches` touches spread over the
    `days` before `as_of`, mostly email and web engagement; with `hand_raise`, one of the
    activities is a demo request 3 days before."""
    rng = random.Random(seed)
    as_of = datetime(2026, 6, 12, tzinfo=UTC)
    weights = {
        "email_open": 30,
        "email_click": 12,
        "web_visit": 25,
        "pricing_page_view": 6,
        "content_download": 6,
        "webinar_attended": 3,
        "event_attended": 1,
        "chat": 2,
        "form_submit": 2,
        "contact_request": 0,
        "demo_request": 0,
        "unsubscribe": 0,
    }
    kinds = [k for k in ACTIVITY_TYPES if weights.get(k)]

    def moment() -> str:
        return (as_of - timedelta(seconds=rng.randrange(days * 86_400))).isoformat()

    activities = [
        {"occurred_at": moment(), "type": rng.choices(kinds, [weights[k] for k in kinds])[0]}
        for _ in range(n_activities - hand_raise)
    ]
    if hand_raise:
        activities.append(
            {"occurred_at": (as_of - timedelta(days=3)).isoformat(), "type": "demo_request"}
        )
    touches = [
        {
            "occurred_at": moment(),
            "channel": rng.choice(CHANNELS[:3]),
            "team": rng.choice(TEAMS),
            "responded": rng.choice([True, False, None]),
        }
        for _ in range(n_touches)
    ]
    lead = {
        **EXAMPLE_REQUEST["lead"],
        "lead_id": lead_id,
        "created_at": (as_of - timedelta(days=days + 30)).isoformat(),
    }
    return {"lead": lead, "activities": activities, "touches": touches, "as_of": as_of.isoformat()}


def batch_request(n: int = BATCH_LEADS, seed: int = 11) -> dict[str, Any]:
    """A `/v1/score/batch` body of `n` varied leads, sized like the sample CRM's (median about
    30 activities and 13 touches, a long tail; a few MiB for 1,000), one in five with a recent
    demo request."""
    rng = random.Random(seed)

    def size(median: float, low: int, high: int) -> int:
        return min(high, max(low, round(rng.lognormvariate(math.log(median), 0.8))))

    return {
        "leads": [
            heavy_request(
                n_activities=size(30, 1, 500),
                n_touches=size(13, 0, 200),
                days=rng.randint(30, 365),
                seed=rng.randrange(2**32),
                lead_id=f"L-BENCH-{i:04d}",
                hand_raise=rng.random() < 0.2,
            )
            for i in range(n)
        ]
    }


def mlflow_request(models_dir: Path) -> dict[str, Any]:
    """One row of the champion's input example, as `dataframe_split` (NaN sent as null)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(models_dir))
    path = Path(mlflow.artifacts.download_artifacts(MODEL_URI)) / "input_example.json"
    example = json.loads(path.read_text())
    rows = example["data"]
    # The row with the most non-zero values: a lead with some history, not a blank one.
    row = max(rows, key=lambda r: sum(1 for v in r if v not in (0, 0.0) and not _is_nan(v)))
    row = [None if _is_nan(v) else v for v in row]
    return {"dataframe_split": {"columns": example["columns"], "data": [row]}}


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


# --- stages, in process -----------------------------------------------------------------------


class Laps:
    """Nanoseconds per named stage, each lap measured from the previous one."""

    def __init__(self) -> None:
        self.samples: dict[str, list[int]] = {}
        self.last = 0

    def start(self) -> None:
        self.last = time.perf_counter_ns()

    def lap(self, name: str) -> None:
        now = time.perf_counter_ns()
        self.samples.setdefault(name, []).append(now - self.last)
        self.last = now


class StagesDiverged(Exception):
    """The staged path no longer gives `Engine.score_requests`' answers."""


def staged(engine: Engine, raw: bytes, laps: Laps, audit: AuditLog, metrics: Metrics) -> None:
    """One body (a /v1/score request, or a /v1/score/batch one when it has "leads") through
    the scoring code as `api.score` (`api.score_batch`) and `Engine.score_requests` run it, a
    lap per stage; StagesDiverged unless the answers are `score_requests`'."""
    now = datetime.now(UTC)
    laps.start()
    body = json.loads(raw)
    laps.lap("JSON decode of the body (json.loads)")
    items = BatchRequest.model_validate(body).leads if "leads" in body else [body]
    requests, applied = zip(*(read_request(item, engine) for item in items), strict=True)
    laps.lap("read and validate (api.read_request)")
    batch = request_batch(list(requests), now, engine.info.custom)
    laps.lap("the requests as arrays (engine.request_batch)")
    activities, touches = event_arrays(batch.activities, batch.touches)
    lead = np.arange(len(requests))
    columns = build_features(batch.leads, activities, touches, lead, batch.as_of)
    laps.lap("features (event_arrays, build_features)")
    prediction = predict(
        engine.scorer, columns, columns["hand_raise_7d"], engine.thresholds, 1, True
    )
    laps.lap("model and contributions (predict)")
    answers = engine.answers(batch, prediction, now, list(applied))
    laps.lap("reasons, context and the answer (Engine.answers)")
    _audit_and_count(answers, audit, metrics)
    laps.lap("audit journal and metrics (api._audit_and_count)")
    out = {"results": answers} if "leads" in body else answers[0]
    FastJSON(out)
    laps.lap("JSON encode of the answer (orjson, api.FastJSON)")
    whole = engine.score_requests(list(requests), now, list(applied))
    laps.lap("total: engine.score_requests")
    for answer, theirs in zip(answers, whole, strict=True):
        check_same(answer, theirs)


def check_same(answer: dict, whole: dict) -> None:
    """StagesDiverged unless the staged answer is `score_requests`' (bar the request id)."""
    mine = {k: v for k, v in answer.items() if k != "request_id"}
    theirs = {k: v for k, v in whole.items() if k != "request_id"}
    if mine != theirs:
        differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
        raise StagesDiverged(
            f"the stages' answer differs from Engine.score_requests' in {differ}: update "
            "staged() in bench/serve.py to mirror serving/engine.py and serving/api.py"
        )


Stages = dict[str, float]
"""Median microseconds by stage name."""


def stage_breakdown(models_dir: Path, repetitions: int, folder: Path) -> tuple[Stages, Stages, int]:
    """The stages of one heavy request over `repetitions` passes (after 20 warm-up ones), and
    of the 1,000-lead batch over a 200th of them (at least 3, after one); how many that is."""
    began = time.perf_counter()
    engine = Engine(load_champion(models_dir))
    say(f"  champion loaded (load_champion, Engine) in {time.perf_counter() - began:.2f} s")
    metrics = Metrics()
    audit = AuditLog(f"sqlite:///{folder / 'stages.db'}", folder / "journal", metrics)
    batch_passes = max(3, repetitions // 200)
    found = []
    try:
        for body, passes, warmup in (
            (heavy_request(), repetitions, 20),
            (batch_request(), batch_passes, 1),
        ):
            raw = json.dumps(body).encode()
            laps = Laps()
            for n in range(warmup + passes):
                staged(engine, raw, laps if n >= warmup else Laps(), audit, metrics)
            found.append({k: statistics.median(ns) / 1000 for k, ns in laps.samples.items()})
    finally:
        audit.close()
    return found[0], found[1], batch_passes


def stages_sum(stages: Stages) -> float:
    """The request's stages added up (not the total)."""
    return sum(v for k, v in stages.items() if not k.startswith("total"))


def print_stages(heavy: Stages, batch: Stages, repetitions: int, batch_passes: int) -> None:
    width = max(map(len, heavy))
    print(
        f"\nIn process (no HTTP), medians: one heavy lead ({repetitions:,} passes) and a batch "
        f"of {BATCH_LEADS:,}\nleads ({batch_passes} passes)."
    )
    print(f"  {'stage'.ljust(width)}  {'heavy, us':>9}  {'share':>6}  {'batch, ms':>9}  share")
    for name in heavy:
        shares = [
            f"{stages[name] / stages_sum(stages):6.1%}" if not name.startswith("total") else ""
            for stages in (heavy, batch)
        ]
        print(
            f"  {name.ljust(width)}  {heavy[name]:9,.1f}  {shares[0]:>6}  "
            f"{batch[name] / 1000:9,.1f}  {shares[1]}"
        )
    print(
        f"  {'sum of the stages'.ljust(width)}  {stages_sum(heavy):9,.1f}  {'':6}  "
        f"{stages_sum(batch) / 1000:9,.1f}"
    )


# --- servers ----------------------------------------------------------------------------------


def tracking_uri(models_dir: Path) -> str:
    return f"sqlite:///{(models_dir / 'mlflow.db').resolve()}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def venv_bin() -> Path:
    here = Path(sys.executable).parent
    if (here / "leadready").exists():
        return here
    return Path(__file__).resolve().parents[1] / ".venv" / "bin"


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    ready_paths: tuple[str, ...]
    log_path: Path
    workers: int = 1
    journal: Path | None = None
    """leadready's audit journal folder, removed when it is left empty."""
    proc: subprocess.Popen | None = None
    log_file: Any = None

    def start(self) -> None:
        self.log_file = self.log_path.open("wb")
        # A session of its own: `mlflow models serve` runs uvicorn as a child, and stopping
        # the process group stops it too.
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode}")
            for path in self.ready_paths:
                try:
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                    conn.request("GET", path)
                    status = conn.getresponse().status
                    conn.close()
                except (OSError, http.client.HTTPException):
                    continue
                if status == 200:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f} s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_idle(self, timeout: float, busy: float = 0.1, window: float = 0.5) -> None:
        """Wait until the server's processes together use under `busy` of a core: `/readyz`
        answers as soon as one worker is up, while others may still be loading the model."""
        deadline = time.monotonic() + timeout
        before = self.cpu_seconds()
        while before is not None and time.monotonic() < deadline:
            time.sleep(window)
            after = self.cpu_seconds()
            if after is None or after - before < busy * window:
                return
            before = after

    def group(self) -> list[list[str]]:
        """The /proc/PID/stat fields (after the command name) of every process in the server's
        process group (Linux); empty elsewhere."""
        if self.proc is None or not Path("/proc/self/stat").exists():
            return []
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = [stat.parent.name, *stat.read_text().rsplit(")", 1)[1].split()]
            except (OSError, IndexError):
                continue
            if int(fields[3]) == self.proc.pid:  # pgrp
                found.append(fields)
        return found

    def cpu_seconds(self) -> float | None:
        """CPU time of every process in the server's process group (Linux /proc), or None."""
        if self.proc is None or not Path("/proc/self/stat").exists():
            return None
        tick = os.sysconf("SC_CLK_TCK")
        return sum((int(f[12]) + int(f[13])) / tick for f in self.group())  # utime + stime

    def worker_pids(self) -> list[int]:
        """The processes that answer requests: the server itself with one worker; with several,
        the supervisor's children that multiprocessing spawned (not its resource tracker)."""
        assert self.proc is not None
        if self.workers == 1:
            return [self.proc.pid]
        children = [int(f[0]) for f in self.group() if int(f[2]) == self.proc.pid]  # ppid
        return sorted(pid for pid in children if b"spawn_main" in _cmdline(pid))

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
        if proc is not None:
            # Workers or uvicorn children left behind by a parent that exited on its own.
            _signal_group(proc, signal.SIGKILL)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
        if self.journal is not None:
            with contextlib.suppress(OSError):  # not empty: rows the server could not ship
                self.journal.rmdir()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def rss_mib(pid: int) -> float | None:
    """The process's resident set size (VmRSS of /proc/PID/status) in MiB, or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the group we created with start_new_session


def server_env(bin_dir: Path, models_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADREADY_")}
    env.update(
        {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "OMP_NUM_THREADS": "1",
            # Every server reads the same registry, whatever the caller's environment says.
            "MLFLOW_TRACKING_URI": tracking_uri(models_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def leadready_server(
    bin_dir: Path, models_dir: Path, workers: int, key: str, tmp: Path, shadow: bool = False
) -> Server:
    """`leadready serve`; with `shadow`, scoring the challenger of `models_dir` in the shadow of
    its answers (`shadow_models`), else never (whatever the registry's challenger)."""
    port = free_port()
    name = f"leadready x{workers}" + (" + shadow challenger" if shadow else "")
    suffix = "-shadow" if shadow else ""
    audit_url = f"sqlite:///{tmp / f'audit-{workers}{suffix}.db'}"
    return Server(
        name,
        [
            str(bin_dir / "leadready"),
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--models-dir",
            str(models_dir),
        ],
        server_env(
            bin_dir,
            models_dir,
            {
                "LEADREADY_API_KEYS": key,
                "LEADREADY_AUDIT_URL": audit_url,
                "LEADREADY_SHADOW": str(shadow).lower(),
            },
        ),
        port,
        ("/readyz",),
        tmp / f"leadready-{workers}{suffix}.log",
        workers,
        journal_dir(models_dir, audit_url),
    )


def mlflow_server(bin_dir: Path, models_dir: Path, workers: int, tmp: Path) -> Server:
    port = free_port()
    return Server(
        "mlflow",
        [
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            MODEL_URI,
            "--env-manager",
            "local",
            "-p",
            str(port),
            "-h",
            HOST,
            "--workers",
            str(workers),
        ],
        server_env(bin_dir, models_dir, {}),
        port,
        ("/ping", "/health"),
        tmp / "mlflow.log",
        workers,
    )


# --- load -------------------------------------------------------------------------------------


@dataclass
class Target:
    """One endpoint with one body: what a client sends."""

    port: int
    path: str
    body: bytes
    headers: dict[str, str]
    check: Any = None  # optional function of the first parsed response: error text or None
    alive: Any = None  # optional function: is the server still running?

    def dead(self) -> bool:
        return self.alive is not None and not self.alive()

    def connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn


class Client:
    """A keep-alive connection that reconnects after a failure."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.conn: http.client.HTTPConnection | None = None

    def send(self) -> tuple[bool, bytes]:
        t = self.target
        try:
            if self.conn is None:
                self.conn = t.connect()
            self.conn.request("POST", t.path, t.body, t.headers)
            response = self.conn.getresponse()
            data = response.read()
            if response.will_close:
                self.close()
            return response.status == 200, data
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return False, repr(exc).encode()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    first_error: str = ""

    def p(self, q: float) -> float:
        """Nearest-rank percentile in ms (the median for q = 50)."""
        if not self.latencies:
            return math.nan
        if q == 50:
            return statistics.median(self.latencies) * 1000
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] * 1000

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else math.nan


def check_first(target: Target) -> str | None:
    """One request, its body checked: None when it is a 200 with what we expect."""
    client = Client(target)
    ok, data = client.send()
    client.close()
    if not ok:
        return f"first request failed: {data[:300]!r}"
    if target.check is not None:
        return target.check(json.loads(data))
    return None


def latency(target: Target, requests: int, seconds: float, warmup: int = WARMUP) -> Result:
    """Concurrency 1: `warmup` requests, then up to `requests` requests or `seconds`, one at a
    time."""
    client = Client(target)
    result = Result()
    for _ in range(warmup):
        client.send()
    started = time.perf_counter()
    deadline = started + seconds
    try:
        while result.ok + result.errors < requests and time.perf_counter() < deadline:
            t0 = time.perf_counter()
            ok, data = client.send()
            t1 = time.perf_counter()
            if ok:
                result.ok += 1
                result.latencies.append(t1 - t0)
            else:
                result.errors += 1
                result.first_error = result.first_error or data[:300].decode(errors="replace")
                if target.dead():
                    break
    finally:
        client.close()
    result.elapsed = time.perf_counter() - started
    return result


def throughput(target: Target, concurrency: int, seconds: float, max_requests: int) -> Result:
    """`concurrency` threads, each with its own keep-alive connection, until `seconds` pass or
    `max_requests` were sent in all; each warms up its connection first."""
    result = Result()
    lock = threading.Lock()
    budget = {"left": max_requests}
    start = threading.Barrier(concurrency + 1)
    deadline = {"at": 0.0}

    def worker() -> None:
        client = Client(target)
        try:
            for _ in range(5):
                client.send()
        finally:
            start.wait()  # every thread reaches the barrier, or the others would wait forever
        latencies: list[float] = []
        ok = errors = 0
        first_error = ""
        try:
            while time.perf_counter() < deadline["at"]:
                with lock:
                    if budget["left"] <= 0:
                        break
                    budget["left"] -= 1
                t0 = time.perf_counter()
                good, data = client.send()
                t1 = time.perf_counter()
                if good:
                    ok += 1
                    latencies.append(t1 - t0)
                else:
                    errors += 1
                    first_error = first_error or data[:300].decode(errors="replace")
                    if target.dead():
                        break
        finally:
            client.close()
            with lock:
                result.ok += ok
                result.errors += errors
                result.latencies.extend(latencies)
                result.first_error = result.first_error or first_error

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    deadline["at"] = time.perf_counter() + seconds + 3600  # set for real once all are warm
    start.wait()
    started = time.perf_counter()
    deadline["at"] = started + seconds
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    return result


# --- measurements -----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: a server and a request, measured at concurrency 1 and/or N."""

    server: str
    request: str
    lat: Result | None = None
    tput: Result | None = None

    @property
    def errors(self) -> int:
        return sum(r.errors for r in (self.lat, self.tput) if r)


@dataclass
class Report:
    stages: Stages
    """The heavy lead's, in process."""
    batch_stages: Stages
    rows: dict[str, Row] = field(default_factory=dict)
    """By key: heavy, example, batch, memory (the --workers server), single (its 1-worker
    reference, with --workers above 1), shadow (1 worker with a shadow challenger), mlflow."""
    memory: dict[str, dict[int, float | None]] = field(default_factory=dict)
    """Each --workers worker's resident set in MiB: loaded, before and after (the memory
    phase), and after the batch calls."""
    shadowed: tuple[int, int] | None = None
    """With --shadow: the scores its server answered, and those its challenger scored too."""

    def per_worker(self) -> Row:
        """The heavy lead on one leadready worker, which the targets compare with MLflow."""
        return self.rows.get("single") or self.rows["heavy"]


def leadready_check(body: dict) -> str | None:
    missing = [k for k in ("readiness", "route", "reasons", "context") if k not in body]
    if missing:
        return f"leadready answer lacks {missing}"
    if not body["reasons"].get("up") and not body["reasons"].get("down"):
        return "leadready answer has no reasons"
    return None


def batch_check(n: int) -> Any:
    def check(body: dict) -> str | None:
        results = body.get("results", [])
        if len(results) != n or not all("readiness" in r for r in results):
            return f"batch answer lacks scores: {str(body)[:200]}"
        return None

    return check


def mlflow_check(body: dict) -> str | None:
    predictions = body.get("predictions")
    if not predictions or len(predictions[0]) != 2:
        return f"unexpected MLflow answer: {str(body)[:200]}"
    return None


def checked(server: Server, target: Target) -> Target:
    """`target`, tied to its server and with its first answer checked (a warning if not)."""
    target.alive = server.alive
    problem = check_first(target)
    if problem:
        print(f"warning: {server.name} ({target.path}): {problem}", file=sys.stderr)
    return target


def leadready_target(server: Server, key: str, path: str, body: dict, check: Any) -> Target:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return checked(server, Target(server.port, path, json.dumps(body).encode(), headers, check))


def events(body: dict) -> str:
    return f"{len(body['activities'])} act + {len(body['touches'])} touches"


def rss(server: Server) -> dict[int, float | None]:
    return {pid: rss_mib(pid) for pid in server.worker_pids()}


def measure_heavy(
    server: Server, args: argparse.Namespace, key: str, report: Report, name: str
) -> Target:
    """The heavy lead at concurrency 1 and N, as `report.rows[name]`; its target."""
    body = heavy_request()
    target = leadready_target(server, key, "/v1/score", body, leadready_check)
    row = report.rows[name] = Row(server.name, f"heavy lead, {events(body)}")
    say(f"Latency @1: {server.name}, {row.request} ...")
    row.lat = latency(target, args.requests, args.seconds)
    say(f"Throughput @{args.concurrency}: {server.name}, heavy lead ...")
    row.tput = throughput(target, args.concurrency, args.seconds, args.throughput_requests)
    return target


def measure_main(server: Server, args: argparse.Namespace, key: str, report: Report) -> None:
    """The --workers server: the heavy lead, the API docs example, memory, then the batch."""
    report.memory["loaded"] = rss(server)
    heavy = measure_heavy(server, args, key, report, "heavy")
    example = leadready_target(server, key, "/v1/score", EXAMPLE_REQUEST, leadready_check)
    rows = report.rows
    rows["example"] = Row(server.name, f"API docs example, {events(EXAMPLE_REQUEST)}")
    say(f"Latency @1: {server.name}, {rows['example'].request} ...")
    rows["example"].lat = latency(example, args.requests, args.seconds)
    report.memory["before"] = rss(server)
    say(f"Memory: {args.memory_requests:,} heavy requests @{args.concurrency} ...")
    rows["memory"] = Row(server.name, f"heavy lead, memory phase ({args.memory_requests:,})")
    rows["memory"].tput = throughput(
        heavy, args.concurrency, args.memory_seconds, args.memory_requests
    )
    report.memory["after"] = rss(server)
    # Its first call comes after the memory readings: a batch's arrays raise the resident set.
    batch_body = batch_request()
    batch = leadready_target(
        server, key, "/v1/score/batch", batch_body, batch_check(len(batch_body["leads"]))
    )
    mib = len(batch.body) / 2**20
    rows["batch"] = Row(server.name, f"batch of {len(batch_body['leads']):,} leads, {mib:.1f} MiB")
    say(f"Latency @1: {server.name}, {rows['batch'].request} ...")
    rows["batch"].lat = latency(batch, args.batch_calls, args.seconds, BATCH_WARMUP)
    report.memory["batch"] = rss(server)


def measure_single(server: Server, args: argparse.Namespace, key: str, report: Report) -> None:
    """The 1-worker reference: the heavy lead at concurrency 1 and N."""
    measure_heavy(server, args, key, report, "single")


def measure_shadow(server: Server, args: argparse.Namespace, key: str, report: Report) -> None:
    """One worker with a challenger in its shadow: the heavy lead at concurrency 1 and N."""
    measure_heavy(server, args, key, report, "shadow")


def shadow_models(models_dir: Path, tmp: Path) -> Path:
    """A copy of the models folder's registry in which the champion is registered again, as a
    new version named `challenger`: a server on it scores a second model in the shadow of every
    answer (the same model's work, so the cost is a real challenger's). The user's registry is
    not changed; the copy's versions read the original artifacts."""
    from mlflow.tracking import MlflowClient

    from leadready.features.registry import CHALLENGER, CHAMPION, MODEL_NAME
    from leadready.serving.store import use_store

    copy = tmp / "shadow-models"
    copy.mkdir()
    shutil.copy2(models_dir / "mlflow.db", copy / "mlflow.db")
    (copy / "artifacts").symlink_to(models_dir / "artifacts")
    use_store(copy)
    client = MlflowClient()
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    again = client.create_model_version(MODEL_NAME, champion.source, champion.run_id)
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, again.version)
    return copy


def shadow_rows(tmp: Path) -> tuple[int, int]:
    """The shadow server's audit log: the scores it answered, and those its challenger scored."""
    engine = engine_for(f"sqlite:///{tmp / 'audit-1-shadow.db'}")
    with engine.connect() as connection:
        counts = [
            connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (scores, shadow_scores)
        ]
    engine.dispose()
    return counts[0], counts[1]


def measure_mlflow(server: Server, args: argparse.Namespace, key: str, report: Report) -> None:
    body = mlflow_request(args.models_dir)
    n = len(body["dataframe_split"]["columns"])
    target = checked(
        server,
        Target(
            server.port,
            "/invocations",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
            mlflow_check,
        ),
    )
    row = report.rows["mlflow"] = Row(server.name, f"1 row of {n} precomputed features")
    say(f"Latency @1: {server.name}, {row.request} ...")
    row.lat = latency(target, args.requests, args.seconds)
    say(f"Throughput @{args.concurrency}: {server.name}, {row.request} ...")
    row.tput = throughput(target, args.concurrency, args.seconds, args.throughput_requests)


def started(server: Server) -> bool:
    say(f"Starting {server.name} on {HOST}:{server.port} ...")
    began = time.monotonic()
    server.start()
    try:
        server.wait_ready(START_TIMEOUT)
    except RuntimeError as exc:
        print(f"error: {exc}; its log ends with:\n{server.log_tail()}", file=sys.stderr)
        return False
    server.wait_idle(START_TIMEOUT)
    say(f"  {server.name} ready after {time.monotonic() - began:.1f} s")
    return True


def warn_if_failed(server: Server, rows: list[Row]) -> None:
    errors = sum(r.errors for r in rows)
    if not server.alive():
        print(
            f"warning: {server.name} exited during the run; its log ends with:\n"
            f"{server.log_tail()}",
            file=sys.stderr,
        )
    elif errors:
        print(
            f"warning: {errors} failed requests to {server.name}; its log ends with:\n"
            f"{server.log_tail(15)}",
            file=sys.stderr,
        )


# --- report -----------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "FAIL")


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def print_table(report: Report, args: argparse.Namespace) -> None:
    c = args.concurrency
    headers = ("server", "request", "p50 ms", "p99 ms", "req/s @1", f"req/s @{c}", f"p50 ms @{c}")
    table = [(*headers, "errors")] + [
        (
            r.server,
            r.request,
            fmt(r.lat.p(50)) if r.lat else "-",
            fmt(r.lat.p(99)) if r.lat else "-",
            fmt(r.lat.rate, 0) if r.lat else "-",
            fmt(r.tput.rate, 0) if r.tput else "-",
            fmt(r.tput.p(50)) if r.tput else "-",
            str(r.errors),
        )
        for r in report.rows.values()
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    print()
    for n, row in enumerate(table):
        cells = zip(row, widths, strict=True)
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for r in report.rows.values():
        for phase, res in (("@1", r.lat), (f"@{c}", r.tput)):
            if res and res.errors:
                print(f"  {r.server}, {r.request} ({phase}): {res.errors} errors, first: ")
                print(f"    {res.first_error}")


def print_notes(report: Report, args: argparse.Namespace) -> None:
    ml = report.rows.get("mlflow")
    print("Notes: leadready gets raw leads and does validation, features, scoring, reasons and")
    print(
        "context per request"
        + (
            "."
            if ml is None
            else "; MLflow gets one row of precomputed features and returns only a\n"
            "probability, so it does less work per request."
        )
    )
    print(
        f"@1: up to {args.requests} requests or {args.seconds:g} s, after {WARMUP} warm-up "
        f"requests (the batch: {args.batch_calls} calls,\nafter {BATCH_WARMUP}); req/s @1 is "
        "requests over the phase's time."
    )
    print(
        f"@{args.concurrency}: {args.concurrency} keep-alive connections for {args.seconds:g} s "
        f"(at most {args.throughput_requests:,} requests);\nthe memory phase: "
        f"{args.memory_requests:,} requests (at most {args.memory_seconds:g} s)."
    )
    print(
        f"Load average before the run: {fmt(args.load_before)}"
        + (" (other processes were busy: numbers are skewed)" if args.busy else "")
        + "."
    )
    print(
        f"leadready workers: {args.workers}"
        + (" (and then 1)" if args.workers > 1 else "")
        + ("" if ml is None else f"; MLflow workers: {args.mlflow_workers}")
        + f"; CPU cores: {os.cpu_count()} (shared with this client)."
    )
    print("In process (the stages' sum) and p50 over HTTP; the rest goes to HTTP, the framework")
    print("(FastAPI, uvicorn, middleware) and this client:")
    for what, stages, row in (
        ("the heavy lead, 1 worker", report.stages, report.per_worker()),
        ("the batch", report.batch_stages, report.rows["batch"]),
    ):
        ms = stages_sum(stages) / 1000
        http = row.lat.p(50) if row.lat else math.nan
        print(
            f"  {what}: {fmt(ms)} ms in process, {fmt(http)} ms over HTTP, {fmt(http - ms)} ms rest"
        )


def memory_ok(report: Report) -> tuple[bool | None, list[str]]:
    """Whether no worker's resident set grew by more than the tolerance over the memory phase;
    a table of each one's: loaded, before and after the memory phase, after the batch."""
    loaded, before, after, batch = (
        report.memory.get(k, {}) for k in ("loaded", "before", "after", "batch")
    )
    if not before or any(v is None for v in before.values()):
        return None, ["  (resident sets unreadable: no /proc)"]
    ok = set(before) == set(after)
    lines = [] if ok else [f"  worker processes changed: {sorted(before)} -> {sorted(after)}"]
    lines.append("  worker  loaded  before   after    grew  allowed  after the batch")
    for pid, mib in before.items():
        end = after.get(pid)
        assert mib is not None
        grew = math.nan if end is None else end - mib
        allowed = max(MEMORY_TOLERANCE_MIB, MEMORY_TOLERANCE_SHARE * mib)
        ok = ok and not math.isnan(grew) and grew <= allowed
        cells = (loaded.get(pid), mib, end, grew, allowed)
        lines.append(
            f"  {pid:>6}  "
            + "  ".join(fmt(v, 1).rjust(w) for v, w in zip(cells, (6, 6, 6, 6, 7), strict=True))
            + f"  {fmt(batch.get(pid), 1):>15}"
        )
    return ok, lines


def verdicts(report: Report, args: argparse.Namespace) -> list[tuple[bool | None, str]]:
    rows, c = report.rows, args.concurrency
    one = report.per_worker()
    assert one.lat is not None and one.tput is not None
    p50, p99 = one.lat.p(50), one.lat.p(99)
    ml = rows.get("mlflow")
    vs_ml = ratio(one.tput.rate, ml.tput.rate) if ml and ml.tput else math.nan
    scaling = ratio(rows["heavy"].tput.rate, one.tput.rate) if "single" in rows else math.nan
    least = TARGET_SCALING_PER_WORKER * args.workers
    batch = rows["batch"].lat.p(50) if rows["batch"].lat else math.nan
    memory, _ = memory_ok(report)
    errors = sum(r.errors for r in rows.values())
    return [
        (p50 <= TARGET_P50_MS, f"p50 @1, heavy lead, 1 worker: {fmt(p50)} ms <= {TARGET_P50_MS:g}"),
        (p99 <= TARGET_P99_MS, f"p99 @1, heavy lead, 1 worker: {fmt(p99)} ms <= {TARGET_P99_MS:g}"),
        (
            None if math.isnan(vs_ml) else vs_ml >= TARGET_THROUGHPUT_RATIO,
            f"throughput @{c}, 1 worker, leadready/mlflow: "
            + (
                "not measured (--skip-mlflow)"
                if ml is None
                else f"{fmt(vs_ml)}x >= {TARGET_THROUGHPUT_RATIO:g}x"
            ),
        ),
        (
            one.tput.rate >= one.lat.rate,
            f"no collapse, 1 worker: {fmt(one.tput.rate, 0)} req/s @{c} >= "
            f"{fmt(one.lat.rate, 0)} req/s @1",
        ),
        (
            None if math.isnan(scaling) else scaling >= least,
            f"scaling @{c}: not measured (--workers 1)"
            if args.workers == 1
            else f"scaling @{c}: {args.workers} workers / 1 worker {fmt(scaling)}x >= "
            f"{least:g}x ({TARGET_SCALING_PER_WORKER:g} x workers)",
        ),
        (
            batch <= TARGET_BATCH_P50_MS,
            f"batch of {BATCH_LEADS:,} leads: p50 {fmt(batch, 1)} ms <= {TARGET_BATCH_P50_MS:g}",
        ),
        (
            memory,
            f"memory: no worker grew by more than {MEMORY_TOLERANCE_MIB:g} MiB or "
            f"{MEMORY_TOLERANCE_SHARE:.0%} over {rows['memory'].tput.ok:,} requests"
            if rows["memory"].tput
            else "memory: not measured",
        ),
        *shadow_verdicts(report),
        (errors == 0, f"no errors ({errors} non-200 or failed requests)"),
    ]


def shadow_verdicts(report: Report) -> list[tuple[bool | None, str]]:
    """With --shadow: the answers' p50 at concurrency 1 no more than SHADOW_SLOWER above one
    worker's without, and a shadow score for every answer."""
    shadow, alone = report.rows.get("shadow"), report.per_worker()
    if shadow is None or shadow.lat is None or alone.lat is None or report.shadowed is None:
        return []
    answered, shadowed = report.shadowed
    with_, without = shadow.lat.p(50), alone.lat.p(50)
    return [
        (
            with_ <= without * (1 + SHADOW_SLOWER),
            f"shadow challenger off the latency path: p50 @1 {fmt(with_)} ms with it <= "
            f"{fmt(without)} ms without + {SHADOW_SLOWER:.0%}",
        ),
        (
            shadowed == answered,
            f"shadow scores: {shadowed:,} of {answered:,} answers scored by the challenger too",
        ),
    ]


def print_report(report: Report, args: argparse.Namespace) -> None:
    print_table(report, args)
    print_notes(report, args)
    _, lines = memory_ok(report)
    print(f"\nResident set (VmRSS, MiB) of each leadready worker ({args.workers}):")
    print("\n".join(lines))
    print()
    for ok, text in verdicts(report, args):
        print(f"{verdict(ok)}  {text}")


# --- main -------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path("models"),
        help="Folder with mlflow.db and artifacts/ holding the champion.",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=2000,
        help="Latency requests per server and request at concurrency 1 (after warm-up).",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="Time bound of each phase (latency, throughput, batch) per server.",
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="Client connections in the throughput phase."
    )
    parser.add_argument(
        "--throughput-requests",
        type=int,
        default=50_000,
        help="Most requests per server in the throughput phase.",
    )
    parser.add_argument(
        "--batch-calls", type=int, default=20, help="Timed /v1/score/batch calls (1,000 leads)."
    )
    parser.add_argument(
        "--memory-requests",
        type=int,
        default=100_000,
        help="Heavy requests between the two memory readings (at --concurrency).",
    )
    parser.add_argument(
        "--memory-seconds", type=float, default=300.0, help="Time bound of the memory phase."
    )
    parser.add_argument(
        "--stage-repetitions",
        type=int,
        default=2000,
        help="Passes of the in-process stage breakdown of the heavy lead (of the batch: a "
        "200th of it, at least 3).",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="leadready worker processes (above 1, a 1-worker server is measured too).",
    )
    parser.add_argument(
        "--mlflow-workers", type=int, default=1, help="Worker processes of `mlflow models serve`."
    )
    parser.add_argument(
        "--skip-mlflow", action="store_true", help="Measure leadready alone (no ratio)."
    )
    parser.add_argument(
        "--shadow",
        action="store_true",
        help="Also measure one worker scoring a challenger in the shadow of its answers (on a "
        "copy of the registry), against one worker without.",
    )
    args = parser.parse_args()
    for name in (
        "requests",
        "seconds",
        "concurrency",
        "throughput_requests",
        "batch_calls",
        "memory_requests",
        "memory_seconds",
        "stage_repetitions",
        "workers",
        "mlflow_workers",
    ):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


Measure = Callable[[Server, argparse.Namespace, str, Report], None]


def plan(
    args: argparse.Namespace, bin_dir: Path, key: str, tmp: Path
) -> Iterator[tuple[Server, Measure]]:
    """The servers and what to measure on each, one at a time: each is built (on a port free
    then) when the one before has stopped."""
    models_dir = args.models_dir
    yield leadready_server(bin_dir, models_dir, args.workers, key, tmp), measure_main
    if args.workers > 1:
        yield leadready_server(bin_dir, models_dir, 1, key, tmp), measure_single
    if args.shadow:
        copy = shadow_models(models_dir, tmp)
        yield leadready_server(bin_dir, copy, 1, key, tmp, shadow=True), measure_shadow
    if not args.skip_mlflow:
        yield mlflow_server(bin_dir, models_dir, args.mlflow_workers, tmp), measure_mlflow


def main() -> int:
    args = parse_args()
    models_dir = args.models_dir = args.models_dir.resolve()
    if not (models_dir / "mlflow.db").exists():
        print(
            f"error: no {models_dir / 'mlflow.db'}; train a champion first "
            "(`leadready train --data DIR --models-dir DIR`)",
            file=sys.stderr,
        )
        return 2
    bin_dir = venv_bin()
    args.load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    args.busy = args.load_before > 0.5 * (os.cpu_count() or 1)
    if args.busy:
        print(
            f"warning: load average {args.load_before:.2f} on {os.cpu_count()} cores before "
            "the run; other processes will skew the numbers",
            file=sys.stderr,
        )
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # SIGTERM to this script stops the servers too (through the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="leadready-bench-") as name:
        tmp = Path(name)
        say(f"Stages in process: {args.stage_repetitions:,} heavy requests ...")
        try:
            heavy, batch, batch_passes = stage_breakdown(models_dir, args.stage_repetitions, tmp)
        except StagesDiverged as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print_stages(heavy, batch, args.stage_repetitions, batch_passes)
        report = Report(heavy, batch)
        key = secrets.token_urlsafe(24)
        for server, measure in plan(args, bin_dir, key, tmp):
            try:
                if not started(server):
                    return 1
                before = set(report.rows)
                measure(server, args, key, report)
                warn_if_failed(server, [r for k, r in report.rows.items() if k not in before])
            finally:
                server.stop()
                if args.shadow and server.name.endswith("shadow challenger"):
                    for line in server.log_tail(200).splitlines():
                        if "shadow" in line:
                            say(f"  {line}")
        if args.shadow:
            report.shadowed = shadow_rows(tmp)
        print_report(report, args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
