"""Benchmark of the scoring API against MLflow's generic model server, same champion, same run.
One file on purpose (over our usual ~500 lines): it starts both servers, generates the load and
measures both in one command, so anyone can reproduce the figures.

    .venv/bin/python bench/serve.py --models-dir models [--workers 2] [--requests 2000]
        [--seconds 20] [--concurrency 8] [--skip-mlflow]

Starts two servers on free loopback ports, both on `models:/sales-readiness@champion` of
`--models-dir` (its `mlflow.db` and `artifacts/`):

- `leadready serve` (`--workers` processes), sent raw leads with their events: it validates
  the body, builds point-in-time features, scores readiness and potential, explains readiness
  (reasons) and assembles the rep's context, as in production (with an API key, and the audit
  log written to a temporary SQLite file, never to the models folder);
- `mlflow models serve --env-manager local` (`--mlflow-workers`, default 1), the generic
  server a team would use otherwise. It is sent one row of precomputed feature values (from
  the model's `input_example.json`) and answers only a probability, so it does less work per
  request than leadready.

Then, over 127.0.0.1 only, with a keep-alive HTTP connection per client:

- latency at concurrency 1: ~50 warm-up requests, then up to `--requests` requests or
  `--seconds` seconds; p50 (median) and p99 in ms. leadready is measured on a heavy lead
  (60 activities and 15 touches over 90 days, the one the targets apply to) and on the small
  example of the API docs (3 activities, 2 touches);
- throughput at concurrency `--concurrency`: that many threads, each with its own connection,
  for `--seconds` seconds or `--throughput-requests` requests in all; requests per second.

Every response must be a 200 or it counts as an error. Targets (issue text): leadready p50 <=
5 ms and p99 <= 20 ms at concurrency 1 on the heavy lead, with reasons; its throughput at
concurrency 8 at least 5x MLflow's server. The script prints a table, the ratios and PASS/FAIL
per target, and exits 0 whatever the targets say (it is a report); non-zero only when there is
no registry in `--models-dir` (2) or a server could not be started (1). Client and servers
share the machine's cores: run it on a quiet machine.
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
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leadready.features.contract import ACTIVITY_TYPES, CHANNELS, TEAMS
from leadready.serving.audit import engine_for
from leadready.serving.schemas import EXAMPLE_REQUEST

HOST = "127.0.0.1"
MODEL_URI = "models:/sales-readiness@champion"
WARMUP = 50
START_TIMEOUT = 180.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0
TARGET_P50_MS = 5.0
TARGET_P99_MS = 20.0
TARGET_THROUGHPUT_RATIO = 5.0


# --- payloads ---------------------------------------------------------------------------------


def heavy_request(
    n_activities: int = 60, n_touches: int = 15, days: int = 90, seed: int = 7
) -> dict[str, Any]:
    """A realistic busy lead: `n_activities` activities and `n_touches` touches spread over the
    `days` before `as_of`, mostly email and web engagement, with one demo request."""
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
        for _ in range(n_activities - 1)
    ]
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
        "lead_id": "L-BENCH-HEAVY",
        "created_at": (as_of - timedelta(days=days + 30)).isoformat(),
    }
    return {"lead": lead, "activities": activities, "touches": touches, "as_of": as_of.isoformat()}


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

    def cpu_seconds(self) -> float | None:
        """CPU time of every process in the server's process group (Linux /proc), or None."""
        if self.proc is None or not Path("/proc/self/stat").exists():
            return None
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == self.proc.pid:  # pgrp
                total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        return total

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


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the group we created with start_new_session


def server_env(bin_dir: Path, models_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADREADY_")}
    env.update(
        {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "OMP_NUM_THREADS": "1",
            # Both servers read the same registry, whatever the caller's environment says.
            "MLFLOW_TRACKING_URI": tracking_uri(models_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


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


def latency(target: Target, requests: int, seconds: float) -> Result:
    """Concurrency 1: warm up, then up to `requests` requests or `seconds`, one at a time."""
    client = Client(target)
    result = Result()
    for _ in range(WARMUP):
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


# --- report -----------------------------------------------------------------------------------


def leadready_check(body: dict) -> str | None:
    missing = [k for k in ("readiness", "route", "reasons", "context") if k not in body]
    if missing:
        return f"leadready answer lacks {missing}"
    if not body["reasons"].get("up") and not body["reasons"].get("down"):
        return "leadready answer has no reasons"
    return None


def mlflow_check(body: dict) -> str | None:
    predictions = body.get("predictions")
    if not predictions or len(predictions[0]) != 2:
        return f"unexpected MLflow answer: {str(body)[:200]}"
    return None


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "FAIL")


def print_report(rows: list[dict], args: argparse.Namespace) -> None:
    headers = (
        "server",
        "request",
        "p50 ms",
        "p99 ms",
        f"req/s @{args.concurrency}",
        f"p50 ms @{args.concurrency}",
        "errors",
    )
    table = [headers] + [
        (
            r["server"],
            r["request"],
            fmt(r["lat"].p(50)) if r["lat"] else "-",
            fmt(r["lat"].p(99)) if r["lat"] else "-",
            fmt(r["tput"].rate, 0) if r["tput"] else "-",
            fmt(r["tput"].p(50)) if r["tput"] else "-",
            str((r["lat"].errors if r["lat"] else 0) + (r["tput"].errors if r["tput"] else 0)),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    print()
    for n, row in enumerate(table):
        print(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for r in rows:
        for phase in ("lat", "tput"):
            res = r[phase]
            if res and res.errors:
                print(
                    f"  {r['server']}, {r['request']} ({phase}): {res.errors} errors, "
                    f"first: {res.first_error}"
                )
    heavy = next(r for r in rows if r["key"] == "heavy")
    ml = next((r for r in rows if r["key"] == "mlflow"), None)
    print("Notes: leadready gets raw leads and does validation, features, scoring, reasons and")
    print(
        "context per request"
        + (
            "."
            if ml is None
            else "; MLflow gets one row of precomputed "
            "features and returns only a\nprobability, so it does less "
            "work per request."
        )
    )
    print(
        f"Latency: up to {args.requests} requests or {args.seconds:g} s at concurrency 1, after "
        f"{WARMUP} warm-up requests."
    )
    print(
        f"Throughput: {args.concurrency} keep-alive connections for {args.seconds:g} s (at most "
        f"{args.throughput_requests} requests); leadready on the heavy lead."
    )
    print(
        f"Load average before the servers started: {fmt(args.load_before)}"
        + (" (other processes were busy: numbers are skewed)" if args.busy else "")
        + "."
    )
    print(
        f"leadready workers: {args.workers}; "
        + ("" if ml is None else f"MLflow workers: {args.mlflow_workers}; ")
        + f"CPU cores: {os.cpu_count()} (shared with this client)."
    )
    print()
    p50, p99 = heavy["lat"].p(50), heavy["lat"].p(99)
    ratio_tput = ratio_p50 = math.nan
    if ml is not None:
        ratio_tput = heavy["tput"].rate / ml["tput"].rate if ml["tput"].rate else math.nan
        ratio_p50 = ml["lat"].p(50) / p50 if p50 else math.nan
        print(
            f"Ratios: throughput leadready/mlflow = {fmt(ratio_tput)}x; "
            f"p50 mlflow/leadready = {fmt(ratio_p50)}x"
        )
    else:
        print("Ratios: n/a (--skip-mlflow)")
    tput_ok = None if math.isnan(ratio_tput) else ratio_tput >= TARGET_THROUGHPUT_RATIO
    print(
        f"{verdict(p50 <= TARGET_P50_MS)}  p50 @1 (heavy lead) {fmt(p50)} ms <= "
        f"{TARGET_P50_MS:g} ms"
    )
    print(
        f"{verdict(p99 <= TARGET_P99_MS)}  p99 @1 (heavy lead) {fmt(p99)} ms <= "
        f"{TARGET_P99_MS:g} ms"
    )
    print(
        f"{verdict(tput_ok)}  throughput @{args.concurrency} leadready/mlflow "
        f"{fmt(ratio_tput)}x >= {TARGET_THROUGHPUT_RATIO:g}x"
        + (" (not measured: --skip-mlflow)" if ml is None else "")
    )
    errors = sum(
        (r["lat"].errors if r["lat"] else 0) + (r["tput"].errors if r["tput"] else 0) for r in rows
    )
    print(f"{verdict(errors == 0)}  no errors ({errors} non-200 or failed requests)")


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
        help="Latency requests per server at concurrency 1 (after warm-up).",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="Time bound of each phase (latency, throughput) per server.",
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
    parser.add_argument("--workers", type=int, default=2, help="leadready worker processes.")
    parser.add_argument(
        "--mlflow-workers", type=int, default=1, help="Worker processes of `mlflow models serve`."
    )
    parser.add_argument(
        "--skip-mlflow", action="store_true", help="Measure leadready alone (no ratio)."
    )
    args = parser.parse_args()
    for name in (
        "requests",
        "seconds",
        "concurrency",
        "throughput_requests",
        "workers",
        "mlflow_workers",
    ):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main() -> int:
    args = parse_args()
    models_dir = args.models_dir.resolve()
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
    # SIGTERM to this script stops the servers too (through the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="leadready-bench-") as tmp:
        key = secrets.token_urlsafe(24)
        audit_url = f"sqlite:///{Path(tmp) / 'audit.db'}"
        # Create the audit table before the workers start: each worker creates it when
        # missing, and two doing so at once can fail one ("table scores already exists"),
        # which stops the whole server.
        engine_for(audit_url).dispose()
        lr_port = free_port()
        servers = [
            Server(
                "leadready",
                [
                    str(bin_dir / "leadready"),
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(lr_port),
                    "--workers",
                    str(args.workers),
                    "--models-dir",
                    str(models_dir),
                ],
                server_env(
                    bin_dir,
                    models_dir,
                    {
                        "LEADREADY_API_KEYS": key,
                        "LEADREADY_AUDIT_URL": audit_url,
                    },
                ),
                lr_port,
                ("/readyz",),
                Path(tmp) / "leadready.log",
            )
        ]
        if not args.skip_mlflow:
            ml_port = free_port()
            while ml_port == lr_port:
                ml_port = free_port()
            servers.append(
                Server(
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
                        str(ml_port),
                        "-h",
                        HOST,
                        "--workers",
                        str(args.mlflow_workers),
                    ],
                    server_env(bin_dir, models_dir, {}),
                    ml_port,
                    ("/ping", "/health"),
                    Path(tmp) / "mlflow.log",
                )
            )
        try:
            print(
                "Starting " + ", ".join(f"{s.name} on {HOST}:{s.port}" for s in servers) + " ...",
                flush=True,
            )
            # One after the other: both open the same SQLite registry at start-up, and each
            # gets the cores to itself while it loads.
            for server in servers:
                started = time.monotonic()
                server.start()
                try:
                    server.wait_ready(START_TIMEOUT)
                except RuntimeError as exc:
                    print(f"error: {exc}; its log ends with:\n{server.log_tail()}", file=sys.stderr)
                    return 1
                server.wait_idle(START_TIMEOUT)
                print(f"  {server.name} ready after {time.monotonic() - started:.1f} s", flush=True)
            return run(args, servers, models_dir, key)
        finally:
            for server in servers:
                server.stop()


def run(args: argparse.Namespace, servers: list[Server], models_dir: Path, key: str) -> int:
    json_headers = {"Content-Type": "application/json"}
    lr_headers = {**json_headers, "Authorization": f"Bearer {key}"}
    lr_port = servers[0].port
    heavy = heavy_request()
    targets = {
        "heavy": (
            "leadready",
            f"lead, {len(heavy['activities'])} act + {len(heavy['touches'])} touches",
            Target(lr_port, "/v1/score", json.dumps(heavy).encode(), lr_headers, leadready_check),
        ),
        "example": (
            "leadready",
            f"lead, {len(EXAMPLE_REQUEST['activities'])} act + "
            f"{len(EXAMPLE_REQUEST['touches'])} touches",
            Target(
                lr_port,
                "/v1/score",
                json.dumps(EXAMPLE_REQUEST).encode(),
                lr_headers,
                leadready_check,
            ),
        ),
    }
    if not args.skip_mlflow:
        body = mlflow_request(models_dir)
        n = len(body["dataframe_split"]["columns"])
        targets["mlflow"] = (
            "mlflow",
            f"1 row of {n} precomputed features",
            Target(
                servers[1].port,
                "/invocations",
                json.dumps(body).encode(),
                json_headers,
                mlflow_check,
            ),
        )
    for name, (server, _, target) in targets.items():
        problem = check_first(target)
        if problem:
            print(f"warning: {server} ({name}): {problem}", file=sys.stderr)

    by_name = {s.name: s for s in servers}
    rows = []
    for name, (server, request, target) in targets.items():
        target.alive = by_name[server].alive
        print(f"Latency @1: {server}, {request} ...", flush=True)
        lat = latency(target, args.requests, args.seconds)
        rows.append({"key": name, "server": server, "request": request, "lat": lat, "tput": None})
    for row in rows:
        if row["key"] == "example":
            continue  # throughput on the heavy lead (the target's) and on MLflow only
        print(f"Throughput @{args.concurrency}: {row['server']}, {row['request']} ...", flush=True)
        row["tput"] = throughput(
            targets[row["key"]][2], args.concurrency, args.seconds, args.throughput_requests
        )
    for server in servers:
        errors = sum(
            r[p].errors for r in rows if r["server"] == server.name for p in ("lat", "tput") if r[p]
        )
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
    print_report(rows, args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
