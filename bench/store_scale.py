"""Benchmark of the live lead API as the lead store grows: request latencies at each size.

    .venv/bin/python bench/store_scale.py --models-dir models [--sizes 10000,100000,1000000]
        [--events-per-lead 20] [--calls 200] [--databases sqlite,postgresql]

Per database (SQLite in WAL mode in a temporary folder; PostgreSQL on a server this script
starts, fsync on, through tests/pg_server.py), the store is grown to each of `--sizes` leads
with about `--events-per-lead` events each, and at each size `--calls` requests of each kind are
timed through the app in-process (FastAPI's TestClient, no sockets), each on a random lead of
the whole store:

- PUT /v1/leads/{id}: a stored lead's company size changed (the lead is scored again);
- POST /v1/events: one new activity of a stored lead (stored, the lead scored again);
- GET /v1/leads/{id}: the current score, SLA state and history;
- GET /v1/queue?route=sales: the first page, and a page 1,000 leads deep.

The store is grown by copies of one sample export (seed 1, every lead open, each event kept
with the chance that gives `--events-per-lead`): copy k's lead ids start with "c<k>-". Copy 0 is
swept once (every lead scored, as the hourly sweep does); the other copies are the same leads
with the same events, so their current scores and history points are copied from copy 0's, not
computed again. On PostgreSQL the store is vacuumed and analysed after it grows, as its
autovacuum does after a bulk load. Prints p50 and p95 per request and size (ms), and per
database PASS when no request's p50 at the largest size is more than twice its p50 at the
smallest (issue 14: the store holds 1M leads and 20M events without any request slowing by more
than 2x).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from ingest import AUTH, bench_settings, sample_export, store_urls  # noqa: E402

from leadready.features.contract import Crm, load_crm  # noqa: E402
from leadready.features.leadstore.database import open_store  # noqa: E402
from leadready.features.leadstore.loading import load_export  # noqa: E402
from leadready.features.leadstore.tables import current_scores, score_history  # noqa: E402
from leadready.serving.app import create_app  # noqa: E402
from leadready.serving.engine import Engine  # noqa: E402
from leadready.serving.live import LivePolicy, sweep  # noqa: E402
from leadready.serving.store import load_champion  # noqa: E402

COPY_LEADS = 10_000
"""Leads per copy of the sample export."""
REQUESTS = ("PUT lead", "POST one event", "GET lead", "GET queue", "GET queue, 1,000 deep")


def thinned(crm: Crm, per_lead: float, seed: int = 1) -> Crm:
    """The export with each event kept at random, about `per_lead` events per lead left."""
    events = len(crm.activities) + len(crm.touches)
    keep = min(1.0, per_lead * len(crm.leads) / events)
    rng = np.random.default_rng(seed)
    return replace(
        crm,
        activities=crm.activities[rng.random(len(crm.activities)) < keep].reset_index(drop=True),
        touches=crm.touches[rng.random(len(crm.touches)) < keep].reset_index(drop=True),
    )


def copy_of(crm: Crm, k: int) -> Crm:
    """Copy k of the export: every lead id prefixed with "c<k>-"."""

    def renamed(frame):
        return frame.assign(lead_id=f"c{k:03d}-" + frame["lead_id"].astype(str))

    return replace(
        crm,
        leads=renamed(crm.leads),
        activities=renamed(crm.activities),
        touches=renamed(crm.touches),
    )


def copy_scores(connection: sa.Connection, k: int) -> None:
    """Copy 0's current scores and history points as copy k's (the same leads, events and
    time: a sweep would give them exactly these)."""
    for table in (current_scores, score_history):
        columns = [c.name for c in table.columns if c.name not in ("lead_id", "id")]
        new_id = sa.literal(f"c{k:03d}-") + sa.func.substr(table.c.lead_id, 6)
        connection.execute(
            table.insert().from_select(
                ["lead_id", *columns],
                sa.select(new_id, *(table.c[c] for c in columns)).where(
                    table.c.lead_id.like("c000-%")
                ),
            )
        )


def settled(store: sa.Engine) -> None:
    """PostgreSQL: the vacuum and statistics its autovacuum gives a table after a bulk load
    (within a minute or so), so that counting the queue can read its index alone; the
    benchmark measures the store as it runs, not the minute after a load."""
    if store.dialect.name == "postgresql":
        with store.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM (ANALYZE)"))


def timed(
    client: TestClient, ids: list[str], fields: dict[str, dict], calls: int, picker: random.Random
) -> dict:
    """p50 and p95 (seconds) of each request kind, `calls` times each on random leads;
    `fields`: the sample's lead fields by original lead id (a PUT sends them with a new size)."""
    now = datetime.now(UTC)
    samples: dict[str, list[float]] = {name: [] for name in REQUESTS}

    def run(name: str, method: str, path: str, **kwargs) -> None:
        started = time.perf_counter()
        answer = client.request(method, path, headers=AUTH, **kwargs)
        samples[name].append(time.perf_counter() - started)
        assert answer.status_code == 200, (name, answer.text)

    for n in range(calls):
        lead_id = picker.choice(ids)
        size = picker.choice([20, 200, 2000])
        body = {**fields[lead_id.split("-", 1)[1]], "company_size": size}
        run("PUT lead", "PUT", f"/v1/leads/{lead_id}", json=body)
        event = {
            "event_id": f"scale-{time.time_ns()}-{n}",
            "lead_id": picker.choice(ids),
            "occurred_at": (now - timedelta(minutes=1)).isoformat(),
            "activity": "pricing_page_view",
        }
        run("POST one event", "POST", "/v1/events", json={"events": [event]})
        run("GET lead", "GET", f"/v1/leads/{picker.choice(ids)}")
        run("GET queue", "GET", "/v1/queue", params={"route": "sales"})
        run("GET queue, 1,000 deep", "GET", "/v1/queue", params={"offset": 1000})
    return {
        name: (statistics.median(v), statistics.quantiles(v, n=20)[-1])
        for name, v in samples.items()
    }


def run(url: str, crm: Crm, models_dir: Path, args: argparse.Namespace, audit: Path) -> dict:
    fields = {
        row.lead_id: {
            "created_at": row.created_at.isoformat() + "Z",
            "source": row.source,
            "industry": row.industry,
            **{f: getattr(row, f) for f in ("budget", "authority", "need", "timeframe")},
        }
        for row in crm.leads.itertuples()
    }
    store = open_store(url)
    engine = Engine(load_champion(models_dir))
    settings = bench_settings(models_dir, url, audit)
    stamp = datetime.now(UTC).replace(tzinfo=None)
    picker = random.Random(1)
    figures: dict[int, dict] = {}
    ids: list[str] = []
    copies = 0
    events = 0
    for size in args.sizes:
        started = time.perf_counter()
        while copies * COPY_LEADS < size:
            copy = copy_of(crm, copies)
            load_export(store, copy, stamp)
            if copies == 0:
                sweep(store, engine, datetime.now(UTC), LivePolicy())
            else:
                with store.begin() as connection:
                    copy_scores(connection, copies)
            ids += copy.leads["lead_id"].tolist()
            events += len(copy.activities) + len(copy.touches)
            copies += 1
        print(
            f"  {url.split(':')[0]}: {len(ids):,} leads, {events:,} events "
            f"(grown in {time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        settled(store)
        with TestClient(create_app(settings)) as client:
            figures[size] = timed(client, ids, fields, args.calls, picker)
    store.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--events-per-lead", type=float, default=20.0)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    databases = args.databases.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        crm = thinned(load_crm(sample_export(root / "export", COPY_LEADS)), args.events_per_lead)
        for database, url in store_urls(databases, root):
            print(f"{database}:", flush=True)
            results[database] = run(url, crm, args.models_dir, args, root / f"{database}.db")
    print(f"\np50 / p95 per request (ms), {args.calls} calls each, random leads of the whole store")
    header = "".join(f"{f'{size:,} leads':>22}" for size in args.sizes)
    for database in databases:
        print(f"\n{database:<26}{header}")
        worst = 0.0
        for name in REQUESTS:
            row = results[database]
            cells = "".join(
                f"{row[s][name][0] * 1000:>12.1f} / {row[s][name][1] * 1000:>6.1f}"
                for s in args.sizes
            )
            ratio = row[args.sizes[-1]][name][0] / row[args.sizes[0]][name][0]
            worst = max(worst, ratio)
            print(f"{name:<26}{cells}   x{ratio:.2f}")
        verdict = "PASS" if worst <= 2 else "FAIL"
        print(
            f"{database}: {verdict} (no request's p50 more than 2x slower at "
            f"{args.sizes[-1]:,} leads than at {args.sizes[0]:,}; worst x{worst:.2f})"
        )


if __name__ == "__main__":
    main()
