"""Benchmark of webhook latency: from the commit that enqueues a delivery to a receiver on
loopback having it, through the dispatcher the server runs (`serving.webhooks`).

    .venv/bin/python bench/webhook_latency.py [--deliveries 200] [--repeats 3]
        [--database-url URL ...]

Per store (SQLite in a temporary folder, and each `--database-url`, e.g. a PostgreSQL database:
postgresql+psycopg://USER@HOST:PORT/DB), starts a dispatcher in this process with one receiver
(`http.server` on 127.0.0.1, answering 204), then `--deliveries` times: enqueues one
`lead.route_changed` delivery in its own transaction (`outbox.enqueue`), commits, calls
`wake()` as the ingestion does, and waits until the receiver has it. Prints p50 and p99 per
repeat and their medians, and PASS/FAIL against issue 14's target: p50 <= 100 ms from the
hand-raise event's POST to the webhook leaving (this is the part after the commit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from leadready.features.leadstore.database import default_url, open_store, shown
from leadready.features.leadstore.outbox import enqueue
from leadready.serving.middleware import Metrics
from leadready.serving.webhooks import Dispatcher, WebhookConfig

TARGET_P50_MS = 100.0


class Receiver:
    """Records when each delivery id arrived (time.perf_counter)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.arrived[self.headers["X-Leadready-Delivery"]] = time.perf_counter()
                receiver.event.set()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def measure(url: str, count: int) -> list[float]:
    """Milliseconds from commit to arrival, one delivery at a time."""
    engine = open_store(url)
    receiver = Receiver()
    config = WebhookConfig.parse(receiver.url, "bench-secret")
    assert config is not None
    dispatcher = Dispatcher(engine, config, Metrics())
    latencies = []
    try:
        for n in range(count + 5):  # the first few warm up connections
            receiver.event.clear()
            with engine.begin() as connection:
                body = {"lead_id": f"L{n}", "route": "sales", "previous_route": "nurture"}
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                [delivery_id] = enqueue(connection, [("lead.route_changed", None, body)], now)
            committed = time.perf_counter()
            dispatcher.wake()
            while delivery_id not in receiver.arrived:
                if not receiver.event.wait(5):
                    raise SystemExit(f"delivery {delivery_id} did not arrive in 5 s")
                receiver.event.clear()
            if n >= 5:
                latencies.append((receiver.arrived[delivery_id] - committed) * 1000)
    finally:
        dispatcher.close()
        receiver.server.shutdown()
        engine.dispose()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database-url", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        stores = [default_url(Path(folder)), *args.database_url]
        for url in stores:
            p50s, p99s = [], []
            for repeat in range(args.repeats):
                ms = np.array(measure(url, args.deliveries))
                p50s.append(float(np.percentile(ms, 50)))
                p99s.append(float(np.percentile(ms, 99)))
                print(
                    f"{shown(url)} repeat {repeat + 1}: p50 {p50s[-1]:.1f} ms, "
                    f"p99 {p99s[-1]:.1f} ms over {len(ms)} deliveries"
                )
            p50 = statistics.median(p50s)
            verdict = "PASS" if p50 <= TARGET_P50_MS else "FAIL"
            print(
                f"{shown(url)}: median p50 {p50:.1f} ms, median p99 {statistics.median(p99s):.1f} "
                f"ms (target p50 <= {TARGET_P50_MS:.0f} ms end to end): {verdict}"
            )


if __name__ == "__main__":
    main()
