"""Benchmark of point-in-time feature building, at training scale and for one lead.

    .venv/bin/python bench/feature_build.py [--rows 1000000] [--events 20000000] [--repeats 3]

Training scale: `--rows` (lead, as_of) pairs over `--events` events (80% activities, 20%
touches) of 100,000 leads, generated at random in memory. One lead: the same function called
for a single lead with 60 activities and 15 touches, as the scoring API does per request.
Prints medians with PASS/FAIL. Targets: 1M rows over 20M events (index and features) under
30 s on 2 cores (issue 13; 53 s before it); the one-lead call well under the API's ~1 ms budget.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from leadready.features.build import DAY, Events, Leads, build_features
from leadready.features.contract import (
    ACTIVITY_TYPES,
    AUTHORITY,
    BUDGET,
    CHANNELS,
    NEED,
    SOURCES,
    TEAMS,
    TIMEFRAME,
)

START = 1_700_000_000  # 2023-11-14, Unix seconds


def random_leads(n: int, rng: np.random.Generator) -> Leads:
    return Leads(
        created_at=START + rng.integers(0, 700 * DAY, n),
        source=rng.choice(np.array(SOURCES, dtype=object), n),
        industry=rng.choice(np.array(["software", "retail", "finance"], dtype=object), n),
        company_size=rng.integers(1, 10_000, n).astype(np.float64),
        budget=rng.choice(np.array(BUDGET, dtype=object), n),
        authority=rng.choice(np.array(AUTHORITY, dtype=object), n),
        need=rng.choice(np.array(NEED, dtype=object), n),
        timeframe=rng.choice(np.array(TIMEFRAME, dtype=object), n),
    )


def random_events(
    n_leads: int, n: int, n_kinds: int, touches: bool, rng: np.random.Generator
) -> tuple:
    args = (
        rng.integers(0, n_leads, n),
        START + rng.integers(0, 730 * DAY, n),
        rng.integers(0, n_kinds, n),
        n_kinds,
    )
    if not touches:
        return args, {}
    return args, {
        "team": rng.integers(0, len(TEAMS), n),
        "responded": rng.choice([0.0, 1.0, np.nan], n),
    }


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    leads = random_leads(args.leads, rng)
    n_act = int(args.events * 0.8)
    act_args, _ = random_events(args.leads, n_act, len(ACTIVITY_TYPES), False, rng)
    tch_args, tch_kw = random_events(args.leads, args.events - n_act, len(CHANNELS), True, rng)
    lead = rng.integers(0, args.leads, args.rows)
    as_of = START + rng.integers(0, 730 * DAY, args.rows)

    built: dict[str, Events] = {}

    def index() -> None:
        built["a"] = Events.build(*act_args)
        built["t"] = Events.build(*tch_args, **tch_kw)

    index_s = median_seconds(index, args.repeats)
    features_s = median_seconds(
        lambda: build_features(leads, built["a"], built["t"], lead, as_of), args.repeats
    )

    one = random_leads(1, rng)
    one_act = Events.build(
        np.zeros(60),
        START + rng.integers(0, 90 * DAY, 60),
        rng.integers(0, len(ACTIVITY_TYPES), 60),
        len(ACTIVITY_TYPES),
    )
    one_tch = Events.build(
        np.zeros(15),
        START + rng.integers(0, 90 * DAY, 15),
        rng.integers(0, len(CHANNELS), 15),
        len(CHANNELS),
        team=rng.integers(0, 2, 15),
        responded=np.ones(15),
    )
    one_lead, one_as_of = np.zeros(1, dtype=np.int64), np.array([START + 91 * DAY])

    def single() -> None:
        for _ in range(1000):
            build_features(one, one_act, one_tch, one_lead, one_as_of)

    single_ms = median_seconds(single, 5)  # seconds per 1000 calls = ms per call

    def single_with_index() -> None:
        for _ in range(1000):
            a = Events.build(
                np.zeros(60),
                START + np.arange(60) * 3600,
                np.zeros(60, dtype=np.int64),
                len(ACTIVITY_TYPES),
            )
            t = Events.build(
                np.zeros(15),
                START + np.arange(15) * 3600,
                np.zeros(15, dtype=np.int64),
                len(CHANNELS),
                team=np.zeros(15),
                responded=np.ones(15),
            )
            build_features(one, a, t, one_lead, one_as_of)

    single_full_ms = median_seconds(single_with_index, 5)
    total = index_s + features_s
    print(f"{'what':<52}{'median':>12}")
    print(f"{'index ' + f'{args.events:,} events':<52}{index_s:>10.2f} s")
    print(f"{'features for ' + f'{args.rows:,} (lead, as_of) rows':<52}{features_s:>10.2f} s")
    verdict = "PASS" if total < 30 * args.rows / 1_000_000 else "FAIL"
    print(f"{'total (target < 30 s per 1M rows)':<52}{total:>10.2f} s  {verdict}")
    print(f"{'rows per second':<52}{args.rows / total:>12,.0f}")
    print(f"{'one lead: features only':<52}{single_ms * 1000:>9.0f} us")
    print(f"{'one lead: index its 75 events + features':<52}{single_full_ms * 1000:>9.0f} us")


if __name__ == "__main__":
    main()
