"""Benchmark of the hyperparameter search's time budget (`training.fit.search_lightgbm`).

    .venv/bin/python bench/search_budget.py [--rows 3000] [--seconds 3] [--repeats 3]

On `--rows` seeded synthetic rows (scikit-learn's make_classification, 6 columns, the first one
binned into 4 categories that LightGBM treats as categorical; random creation times for the
three time folds), runs the search with a budget of `--seconds`, and with a budget of 0.05 s,
which runs only its first trial (the defaults). Prints the median wall time of each and by how
much the budget was overrun. Target: the search ends within its budget plus one running trial, so
an overrun of at most about one trial's time (a few seconds at 3,000 rows on 2 cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from feature_build import median_seconds  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402

from leadready.training.fit import search_lightgbm, time_folds  # noqa: E402

FIRST_TRIAL = 0.05
"""A budget (seconds) that ends the search after its first trial: the budget is checked before
each trial, and a trial takes longer than this."""


def synthetic(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (the first column categorical), labels and creation times (days)."""
    x, y = make_classification(rows, n_features=6, n_informative=4, random_state=seed)
    x[:, 0] = np.digitize(x[:, 0], [-1.0, 0.0, 1.0])
    return x, y, np.random.default_rng(seed).integers(0, 10_000, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=3.0, help="the search budget")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    x, y, created = synthetic(args.rows, seed=0)
    folds = time_folds(created)

    def search(seconds: float) -> None:
        search_lightgbm(x, y, folds, 1, seed=0, threads=args.threads, seconds=seconds)

    one_trial = median_seconds(lambda: search(FIRST_TRIAL), args.repeats)
    budgeted = median_seconds(lambda: search(args.seconds), args.repeats)
    label = f"{args.rows:,} rows, {args.threads} thread(s), median of {args.repeats}"
    print(f"hyperparameter search on {label}")
    print(f"{f'budget {FIRST_TRIAL:g} s (the first trial only)':<40}{one_trial:>9.2f} s")
    print(f"{f'budget {args.seconds:g} s':<40}{budgeted:>9.2f} s")
    print(f"{'overrun of the budget':<40}{budgeted - args.seconds:>9.2f} s")
    print("target: an overrun of at most one running trial")


if __name__ == "__main__":
    main()
