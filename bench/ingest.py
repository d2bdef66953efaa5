"""Benchmark of the live lead API: ingesting events with per-event rescoring, and the sweep.

    .venv/bin/python bench/ingest.py --models-dir models [--leads 10000] [--events 5000]
        [--batch 500] [--repeats 3] [--databases sqlite,postgresql]

Per database (SQLite in WAL mode in a temporary folder; PostgreSQL on a server this script
starts, fsync on, through tests/pg_server.py), a sample export of `--leads` leads (seed 1, every
lead open) is loaded into a new store, then per repeat:

- ingest: `--events` new activities, each of a different random lead, are posted to
  `POST /v1/events` in calls of `--batch` events through the app in-process (FastAPI's
  TestClient, no sockets); each call stores its events and rescores every lead it touched, in
  one transaction. Printed: events per second, and the median call time;
- one event per call: 200 calls of one event each, the median and 95th percentile call time
  (a hand-raise's path from POST to its delivery in the outbox);
- sweep: every open lead rescored at once (`serving.live.sweep`, 2,000 leads per batch).

Prints medians of the repeats. Targets (issue 14, 2 cores): ingest >= 5,000 events/s with
per-event rescoring; the sweep of 100,000 open leads < 60 s (scaled to `--leads`).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from leadready.features.contract import load_crm  # noqa: E402
from leadready.features.leadstore.database import default_url, open_store  # noqa: E402
from leadready.features.leadstore.loading import load_export  # noqa: E402
from leadready.serving.app import ServeSettings, create_app  # noqa: E402
from leadready.serving.engine import Engine  # noqa: E402
from leadready.serving.live import LivePolicy, sweep  # noqa: E402
from leadready.serving.store import load_champion  # noqa: E402
from leadready.training.sample import write_sample  # noqa: E402

KEY = "bench-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SINGLE_CALLS = 200


def sample_export(folder: Path, leads: int) -> Path:
    write_sample(folder, leads, seed=1)
    frame = pd.read_csv(folder / "leads.csv", dtype=str, keep_default_na=False)
    frame.assign(outcome="open", outcome_at="").to_csv(folder / "leads.csv", index=False)
    return folder


def bench_settings(models_dir: Path, url: str, audit: Path) -> ServeSettings:
    """The server's settings in a benchmark: the bench key, a throw-away audit log, the store
    at `url`, no scheduled sweep (the benchmark sweeps when it measures)."""
    return ServeSettings(
        models_dir=models_dir,
        api_keys=KEY,
        audit_url=f"sqlite:///{audit}",
        database_url=url,
        sweep_minutes=0,
    )


def run(url: str, export: Path, models_dir: Path, args: argparse.Namespace, audit: Path) -> dict:
    crm = load_crm(export)
    store = open_store(url)
    started = time.perf_counter()
    load_export(store, crm, datetime.now(UTC).replace(tzinfo=None))
    loaded_in = time.perf_counter() - started
    ids = list(crm.leads["lead_id"])
    engine = Engine(load_champion(models_dir))
    settings = bench_settings(models_dir, url, audit)
    picker = random.Random(1)
    results: dict[str, list[float]] = {"rate": [], "call": [], "one": [], "one95": [], "sweep": []}
    with TestClient(create_app(settings)) as client:
        for repeat in range(args.repeats):
            now = datetime.now(UTC)
            events = [
                {
                    "event_id": f"bench-{repeat}-{i}",
                    "lead_id": picker.choice(ids),
                    "occurred_at": (now - timedelta(minutes=1)).isoformat(),
                    "activity": "pricing_page_view",
                }
                for i in range(args.events)
            ]
            calls = []
            began = time.perf_counter()
            for start in range(0, len(events), args.batch):
                t = time.perf_counter()
                answer = client.post(
                    "/v1/events", json={"events": events[start : start + args.batch]}, headers=AUTH
                )
                assert answer.status_code == 200, answer.text
                calls.append(time.perf_counter() - t)
            results["rate"].append(len(events) / (time.perf_counter() - began))
            results["call"].append(statistics.median(calls))
            singles = []
            for i in range(SINGLE_CALLS):
                event = {
                    "event_id": f"bench-one-{repeat}-{i}",
                    "lead_id": picker.choice(ids),
                    "occurred_at": now.isoformat(),
                    "activity": "demo_request",
                }
                t = time.perf_counter()
                answer = client.post("/v1/events", json={"events": [event]}, headers=AUTH)
                assert answer.status_code == 200, answer.text
                singles.append(time.perf_counter() - t)
            results["one"].append(statistics.median(singles))
            results["one95"].append(statistics.quantiles(singles, n=20)[-1])
            done = sweep(store, engine, datetime.now(UTC), LivePolicy())
            results["sweep"].append(done.seconds)
    store.dispose()
    medians = {k: statistics.median(v) for k, v in results.items()}
    return {
        **medians,
        "load": loaded_in,
        "events_stored": len(crm.activities) + len(crm.touches),
    }


def store_urls(databases: list[str], root: Path) -> Iterator[tuple[str, str]]:
    """Each database's store URL in turn: SQLite in `root`, PostgreSQL a database on a server
    started in `root` (tests/pg_server.py, fsync on), stopped once the caller moves on."""
    for database in databases:
        if database == "sqlite":
            yield database, default_url(root / "sqlite")
            continue
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from pg_server import PostgresServer  # the tests' server: initdb, pg_ctl

        server = PostgresServer.start(root / "postgres", durable=True)
        try:
            yield database, server.create_database("bench")
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    databases = args.databases.split(",")
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        export = sample_export(root / "export", args.leads)
        for database, url in store_urls(databases, root):
            figures[database] = run(url, export, args.models_dir, args, root / f"{database}.db")
    print(
        f"{args.leads:,} open leads; {args.events:,} new events per repeat in calls of "
        f"{args.batch}; medians of {args.repeats} repeats"
    )
    print(f"{'':<48}" + "".join(f"{d:>14}" for d in databases))
    rows = [
        ("load the export (s)", "load", "{:.1f}"),
        ("ingest: events/s, each lead rescored", "rate", "{:,.0f}"),
        (f"ingest: one call of {args.batch} events (ms)", "call", "{:.0f}"),
        ("one event per call: p50 (ms)", "one", "{:.1f}"),
        ("one event per call: p95 (ms)", "one95", "{:.1f}"),
        (f"sweep of {args.leads:,} open leads (s)", "sweep", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        scale = 1000 if key in ("call", "one", "one95") else 1
        print(
            f"{label:<48}"
            + "".join(f"{fmt.format(figures[d][key] * scale):>14}" for d in databases)
        )
    for d in databases:
        rate = figures[d]["rate"]
        sweep_100k = figures[d]["sweep"] * 100_000 / args.leads
        print(
            f"{d}: ingest {'PASS' if rate >= 5000 else 'FAIL'} (>= 5,000 events/s); sweep "
            f"{'PASS' if sweep_100k < 60 else 'FAIL'} (100,000 leads < 60 s, scaled: "
            f"{sweep_100k:.0f} s)"
        )


if __name__ == "__main__":
    main()
