"""Benchmark of `leadready score`: scoring a whole CRM export with routes and reasons.

    .venv/bin/python bench/batch_score.py --models-dir models [--leads 100000] [--repeats 3]
        [--export DIR]

Generates a sample export of `--leads` leads (seed 1, in a child process, so that the peak
resident size printed is the scorer's), drops its outcome columns so that every lead counts as
open (or scores the export in `--export DIR`), then per repeat reads and validates it
(`load_crm`) and scores every lead through `serving.batch`, the code behind `leadready score`,
without reasons (`--reasons 0`) and with the top 3. Prints medians per stage, the peer (the
champion's LightGBM booster alone on the same feature matrix: margins, and native
`pred_contrib` on 2 threads) and PASS/FAIL per target. Targets (issue 13), 100,000 leads on 2
cores: end to end including reading the export, < 5 s without reasons and < 10 s with them.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from leadready.features.build import Events, Leads, build_features  # noqa: E402
from leadready.features.contract import load_crm  # noqa: E402
from leadready.serving.batch import latest_time, score_export  # noqa: E402
from leadready.serving.store import load_champion  # noqa: E402

GENERATE = """
import sys
from pathlib import Path
import pandas as pd
from leadready.training.sample import write_sample
export = Path(sys.argv[1])
write_sample(export, int(sys.argv[2]), seed=1)
leads = pd.read_csv(export / "leads.csv", dtype=str, keep_default_na=False)
leads.drop(columns=["outcome", "outcome_at"]).to_csv(export / "leads.csv", index=False)
"""


def timed(fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--export", type=Path, help="score this export instead of a sample")
    args = parser.parse_args()
    loaded = load_champion(args.models_dir)
    with tempfile.TemporaryDirectory() as folder:
        export = args.export or Path(folder)
        if args.export is None:
            subprocess.run([sys.executable, "-c", GENERATE, folder, str(args.leads)], check=True)
        times: dict[str, list[float]] = {"load": [], "plain": [], "reasons": []}
        for _ in range(args.repeats):
            crm, seconds = timed(lambda: load_crm(export, require_outcome=False))
            times["load"].append(seconds)
            plain, seconds = timed(lambda: score_export(crm, loaded, None, top=0))  # noqa: B023
            times["plain"].append(seconds)
            scores, seconds = timed(lambda: score_export(crm, loaded, None))  # noqa: B023
            times["reasons"].append(seconds)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ids = pd.Index(crm.leads["lead_id"])
        columns = build_features(
            Leads.from_frame(crm.leads, crm.custom),
            Events.activities_from_frame(crm.activities, ids),
            Events.touches_from_frame(crm.touches, ids),
            np.arange(len(ids)),
            np.full(len(ids), latest_time(crm)),
        )
    x = loaded.scorer.encode(columns)
    booster = loaded.scorer.readiness.base.booster
    _, peer_margin = timed(lambda: booster.predict(x, raw_score=True, num_threads=1))
    _, peer_contrib = timed(lambda: booster.predict(x, pred_contrib=True, num_threads=2))
    median = {stage: statistics.median(values) for stage, values in times.items()}
    plain_total = median["load"] + median["plain"]
    reasons_total = median["load"] + median["reasons"]
    n = len(scores)
    assert len(plain) == n and plain["route"].equals(scores["route"])
    print(f"model: {loaded.name} v{loaded.version} ({loaded.scorer.info.model_kind.model_dump()})")
    print(f"{n:,} leads, {len(crm.activities):,} activities, {len(crm.touches):,} touches")
    print(f"{'stage (median of ' + str(args.repeats) + ')':<52}{'seconds':>9}")
    print(f"{'read and validate the export':<52}{median['load']:>9.2f}")
    print(f"{'score: readiness, potential, route':<52}{median['plain']:>9.2f}")
    print(f"{'score: the same with the top 3 reasons':<52}{median['reasons']:>9.2f}")
    print(f"{'peer: LightGBM margins alone, 1 thread':<52}{peer_margin:>9.2f}")
    print(f"{'peer: LightGBM pred_contrib alone, 2 threads':<52}{peer_contrib:>9.2f}")
    print(f"{'peak resident size (scorer process)':<52}{peak_mb:>7,.0f} MB")
    scale = n / 100_000  # targets are for 100,000 leads
    for what, total, target in (
        ("end to end, no reasons", plain_total, 5.0),
        ("end to end, top 3 reasons", reasons_total, 10.0),
    ):
        verdict = "PASS" if total < target * scale else "FAIL"
        print(f"{what + f' (target < {target * scale:g} s)':<52}{total:>9.2f}  {verdict}")
    print(f"{'leads per second, with reasons, end to end':<52}{n / reasons_total:>9,.0f}")
    print("routes:", scores["route"].value_counts().to_dict())


if __name__ == "__main__":
    main()
