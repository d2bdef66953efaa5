"""Benchmark of `leadready score --engine spark` against the local engine, in one run.

    .venv/bin/python bench/spark_score.py --models-dir models [--leads 1000000]
        [--events 20000000]

Builds a validated export in memory: `--leads` open leads and `--events` events (80% activities,
20% touches) drawn at random as bench/feature_build.py draws them. Scores it at its latest time
with the top 3 reasons, with the local engine (`serving.batch.score_export`, the code behind
`leadready score`, on every core) and with the Spark engine (`serving.spark.score_export_spark`)
on local[1] and on local[2] (each session's start-up timed apart). Prints leads per second for
each and PASS/FAIL for: the three give the same readiness, potential, route and reasons for
every lead (to 1e-9), and local[2] scores at least 1.5 times as fast as local[1] (the Spark
engine scales with cores; the peer in this run is local[1]).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from feature_build import random_events, random_leads  # noqa: E402

from leadready.features.contract import (  # noqa: E402
    ACTIVITY_TYPES,
    BANT_FIELDS,
    CHANNELS,
    TEAMS,
    Crm,
    sorted_events,
)
from leadready.features.spark import spark_session  # noqa: E402
from leadready.serving.batch import score_export  # noqa: E402
from leadready.serving.spark import score_export_spark  # noqa: E402
from leadready.serving.store import load_champion  # noqa: E402

SCALING_TARGET = 1.5


def random_export(n_leads: int, n_events: int, seed: int = 1) -> Crm:
    """A validated export of open leads with random events (bench/feature_build.py's draws)."""
    rng = np.random.default_rng(seed)
    leads = random_leads(n_leads, rng)
    ids = pd.Index([f"L{i:08d}" for i in range(n_leads)])
    frame = pd.DataFrame(
        {
            "lead_id": ids,
            "created_at": pd.to_datetime(leads.created_at, unit="s"),
            "source": leads.source,
            "industry": leads.industry,
            "company_size": leads.company_size,
            **{name: getattr(leads, name) for name in BANT_FIELDS},
        }
    )
    tables = []
    for name, share, vocabulary, touches in (
        ("activities", 0.8, ACTIVITY_TYPES, False),
        ("touches", 0.2, CHANNELS, True),
    ):
        (lead, seconds, kind, _), extra = random_events(
            n_leads, int(n_events * share), len(vocabulary), touches, rng
        )
        columns = {
            "lead_id": pd.Categorical.from_codes(lead, ids),
            "occurred_at": pd.to_datetime(seconds, unit="s"),
            "channel" if touches else "type": pd.Categorical.from_codes(kind, vocabulary),
        }
        if touches:
            columns["team"] = pd.Categorical.from_codes(extra["team"], TEAMS)
            columns["responded"] = extra["responded"]
        tables.append(sorted_events(pd.DataFrame(columns), name))
    return Crm(frame, *tables)


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    numbers = ["readiness", "potential"]
    texts = [c for c in a.columns if c not in numbers]
    return (
        list(a.columns) == list(b.columns)
        and all(a[c].tolist() == b[c].tolist() for c in texts)
        and bool(np.abs(a[numbers].to_numpy() - b[numbers].to_numpy()).max() <= 1e-9)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, help="default: 20 per lead")
    args = parser.parse_args()
    n_events = args.events if args.events is not None else 20 * args.leads
    loaded = load_champion(args.models_dir)
    crm, seconds = timed(lambda: random_export(args.leads, n_events))
    print(f"{args.leads:,} leads, {len(crm.activities):,} activities, {len(crm.touches):,} touches")
    print(f"(built in memory in {seconds:.1f} s; model {loaded.name} v{loaded.version})")
    scores, local_seconds = timed(lambda: score_export(crm, loaded, None))
    rows = {f"local engine ({os.cpu_count()} threads)": local_seconds}
    agree = True
    with tempfile.TemporaryDirectory() as staging:
        for master in ("local[1]", "local[2]"):
            spark, started = timed(lambda: spark_session(master, "leadready-bench"))  # noqa: B023
            try:
                on_spark, seconds = timed(
                    lambda: score_export_spark(crm, loaded, None, spark, Path(staging))  # noqa: B023
                )
            finally:
                spark.stop()
            rows[f"spark engine {master} (start-up {started:.1f} s apart)"] = seconds
            agree = agree and same(scores, on_spark)
    n = len(scores)
    print(f"{'engine (top 3 reasons, scoring only)':<52}{'seconds':>9}{'leads/s':>10}")
    for what, seconds in rows.items():
        print(f"{what:<52}{seconds:>9.1f}{n / seconds:>10,.0f}")
    one, two = (rows[k] for k in rows if "spark" in k)
    verdict = "PASS" if agree else "FAIL"
    print(f"{'same scores, routes and reasons for every lead':<61}{verdict:>10}")
    verdict = "PASS" if one / two >= SCALING_TARGET else "FAIL"
    scaling = f"local[2] vs local[1] (target >= {SCALING_TARGET}x)"
    print(f"{scaling:<52}{one / two:>8.2f}x  {verdict}")


if __name__ == "__main__":
    main()
