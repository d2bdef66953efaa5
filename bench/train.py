"""Benchmark of `leadready train` end to end on the sample CRM, with the default search.

    .venv/bin/python bench/train.py [--leads 20000] [--repeats 3] [--profile]

Generates the sample export (`leadready sample-data --leads 20000 --seed 7`), then runs
`leadready train --data DIR --models-dir NEW` `--repeats` times, each into a new models folder,
as a person would (a new process: imports, reading, features, search, fit, evaluation, MLflow
logging and registering). Prints the median wall time with PASS/FAIL. Target (issue 13): under
60 s for 20,000 leads on 2 cores. With `--profile`, one more run under cProfile prints where
its time goes (the 25 costliest calls, cumulative).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("leadready"))
LEADREADY = [SCRIPT]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "crm"
        sample = ["sample-data", "--out", str(data), "--leads", str(args.leads), "--seed", "7"]
        subprocess.run([*LEADREADY, *sample], check=True, capture_output=True)
        times = []
        for run in range(args.repeats):
            models = Path(folder) / f"models-{run}"
            train = ["train", "--data", str(data), "--models-dir", str(models)]
            started = time.perf_counter()
            subprocess.run([*LEADREADY, *train], check=True, capture_output=True)
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        verdict = "PASS" if median < 60 * args.leads / 20_000 else "FAIL"
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(f"leadready train, {args.leads:,} leads: median {median:.1f} s ({runs})  {verdict}")
        if args.profile:
            stats = Path(folder) / "train.prof"
            train = ["train", "--data", str(data), "--models-dir", str(Path(folder) / "p")]
            profile = [sys.executable, "-m", "cProfile", "-o", str(stats), SCRIPT]
            subprocess.run([*profile, *train], check=True, capture_output=True)
            import pstats

            pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
