"""Benchmark of the workspace's Leads page on a 10,000-lead export held in a session.

    .venv/bin/python bench/workspace.py --models-dir models [--leads 10000] [--repeats 20]

Generates a sample export of `--leads` leads (seed 1) without its outcome columns, so that
every lead counts as open; scores it with the champion of `--models-dir` as an upload would
(`serving.ui.exports.build_export`, with the engine the app loaded); keeps it in an open-mode
session of the app (no API keys); then requests the Leads page through FastAPI's TestClient:
unfiltered, filtered, a late page and a search. Each query is sent `--repeats` times after one
warm-up; prints the median and the slowest latency per query, in milliseconds.
Target: every query's median under 1 s on 2 cores (the server filters and pages; the browser
gets 50 rows).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from leadready.features.contract import load_crm  # noqa: E402
from leadready.serving.app import ServeSettings, create_app  # noqa: E402
from leadready.serving.ui.exports import build_export  # noqa: E402
from leadready.serving.ui.web import COOKIE  # noqa: E402
from leadready.training.sample import write_sample  # noqa: E402

QUERIES = (
    "",
    "?route=nurture&budget=unknown",
    "?page=150",
    "?q=L0012",
    "?source=web_form&need=confirmed&page=2",
)
TARGET_SECONDS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        export_dir = scratch / "export"
        write_sample(export_dir, args.leads, seed=1)
        leads = pd.read_csv(export_dir / "leads.csv", dtype=str, keep_default_na=False)
        leads.drop(columns=["outcome", "outcome_at"]).to_csv(export_dir / "leads.csv", index=False)
        crm = load_crm(export_dir, require_outcome=False)
        settings = ServeSettings(
            models_dir=args.models_dir,
            api_keys="",
            audit_url=f"sqlite:///{scratch / 'audit.db'}",
            sample_dir=scratch / "none",
            session_secret="bench",
        )
        with TestClient(create_app(settings)) as client:
            assert client.get("/ui/leads").status_code == 200  # opens the session
            ws = client.app.state.ui
            sid = ws.auth.verify(client.cookies.get(COOKIE))["sid"]
            started = time.perf_counter()
            export = build_export("bench", crm, client.app.state.engine, None)
            scoring = time.perf_counter() - started
            ws.exports.keep(sid, export)
            name = client.app.state.engine.loaded.name
            print(
                f"{len(export.table):,} leads scored in {scoring:.1f} s by {name} "
                f"v{export.model_version}; median of {args.repeats} requests per query"
            )
            print(f"{'query':<42}{'median ms':>10}{'max ms':>10}")
            worst = 0.0
            for query in QUERIES:
                assert client.get(f"/ui/leads{query}").status_code == 200  # warm-up
                times = []
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    answer = client.get(f"/ui/leads{query}")
                    times.append(time.perf_counter() - started)
                    assert answer.status_code == 200 and answer.text.count("<tr>") <= 51
                median = statistics.median(times)
                worst = max(worst, median)
                shown = query or "(no filter)"
                print(f"{shown:<42}{median * 1000:>10.1f}{max(times) * 1000:>10.1f}")
    verdict = "PASS" if worst < TARGET_SECONDS else "FAIL"
    target = f"target < {TARGET_SECONDS * 1000:.0f} ms"
    print(f"slowest median {worst * 1000:.1f} ms ({target}): {verdict}")


if __name__ == "__main__":
    main()
