"""Benchmark of `leadready score`: scoring a whole CRM export with routes and reasons.

    .venv/bin/python bench/batch_score.py --models-dir models [--leads 100000] [--repeats 3]

Generates a sample export of `--leads` leads (seed 1), drops its outcome columns so that every
lead counts as open, and scores all of them with the champion through `serving.batch`, the
code behind `leadready score` (features, model, routing, reasons). Prints the median time.
Target (issue 3): 100,000 leads in under 30 seconds on 2 cores.
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

from leadready.features.contract import load_crm  # noqa: E402
from leadready.serving.batch import score_export  # noqa: E402
from leadready.serving.store import load_champion  # noqa: E402
from leadready.training.sample import write_sample  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    loaded = load_champion(args.models_dir)
    with tempfile.TemporaryDirectory() as folder:
        export = Path(folder)
        write_sample(export, args.leads, seed=1)
        leads = pd.read_csv(export / "leads.csv", dtype=str, keep_default_na=False)
        leads.drop(columns=["outcome", "outcome_at"]).to_csv(export / "leads.csv", index=False)
        started = time.perf_counter()
        crm = load_crm(export, require_outcome=False)
        load_s = time.perf_counter() - started
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            scores = score_export(crm, loaded, None)
            times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"model: {loaded.name} v{loaded.version} ({loaded.scorer.info.model_kind.model_dump()})")
    print(f"{'load and validate the export':<40}{load_s:>9.2f} s")
    print(f"{f'score {len(scores):,} leads (median of {args.repeats})':<40}{median:>9.2f} s")
    print(f"{'total (target < 30 s)':<40}{load_s + median:>9.2f} s")
    print(f"{'leads per second (scoring)':<40}{len(scores) / median:>11,.0f}")
    print("routes:", scores["route"].value_counts().to_dict())


if __name__ == "__main__":
    main()
