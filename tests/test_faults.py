"""Files written by real processes that are cut off or race. `leadready score --out f.csv` on
20,000 open leads is sent SIGINT, and separately SIGKILL, at random moments while it writes
f.csv: each time, f.csv must be the complete old file or the complete new one. After SIGINT no
temporary file is left; after SIGKILL only the writer's own `.f.csv.leadready-<hex>.partial`
may be, which nothing reads (the next runs write past it). And worker processes starting
together share one whole session secret."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_server import clean_env

from leadready.features.files import PARTIAL_SUFFIX
from leadready.serving.sessions import session_secret

pytestmark = pytest.mark.fault

LEADREADY = str(Path(sys.executable).parent / "leadready")
LEADS = 20_000
ATTEMPTS = 6
"""Runs per signal at most; each one scores all 20,000 leads again (about half a minute)."""
LANDED = 2
"""Runs per signal that must be cut off before the rename (old file kept), to stop early."""
RUN_SECONDS = 300
OLD = b"lead_id,readiness\r\nL-old,0.5\r\n"
"""The previous output, distinct from any new one."""


@pytest.fixture(scope="module")
def open_export(tmp_path_factory) -> Path:
    """A 20,000-lead sample export (`leadready sample-data`) without outcomes, so every lead
    is scored and written: a few megabytes of CSV, about half a second of writing."""
    folder = tmp_path_factory.mktemp("open-export")
    subprocess.run(
        [LEADREADY, "sample-data", "--out", str(folder), "--leads", str(LEADS), "--seed", "5"],
        check=True,
        capture_output=True,
        timeout=RUN_SECONDS,
    )
    leads = pd.read_csv(folder / "leads.csv", dtype=str, keep_default_na=False)
    leads.drop(columns=["outcome", "outcome_at"]).to_csv(folder / "leads.csv", index=False)
    return folder


def start(export: Path, out: Path, models: Path) -> subprocess.Popen:
    command = [LEADREADY, "score", "--data", str(export), "--out", str(out)]
    return subprocess.Popen(
        [*command, "--models-dir", str(models)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**clean_env(), "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"},
        preexec_fn=hear_ctrl_c,
    )


def hear_ctrl_c() -> None:
    """Let the child take SIGINT as a terminal's Ctrl-C. A shell's background job ignores
    SIGINT (CI starts the suite as one), its children inherit that, and Python then keeps
    ignoring it instead of raising KeyboardInterrupt: the signal would never land."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def partials(folder: Path, known: frozenset[str] = frozenset()) -> list[str]:
    """Names of temporary files in `folder`, but those in `known` (left by earlier runs)."""
    return [
        p.name for p in folder.iterdir() if p.name.endswith(PARTIAL_SUFFIX) and p.name not in known
    ]


def watch(process: subprocess.Popen, folder: Path, known: frozenset[str] = frozenset()):
    """Wait until the process opens its temporary file; returns when (perf_counter), or None
    when the process ended without writing one."""
    deadline = time.monotonic() + RUN_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        if partials(folder, known):
            return time.perf_counter()
        time.sleep(0.001)
    return None


@pytest.fixture(scope="module")
def reference(open_export, champion_dir, tmp_path_factory) -> tuple[bytes, float]:
    """The complete new output of an uninterrupted run, and how long its temporary file
    existed (seconds): the window the signals are aimed at."""
    folder = tmp_path_factory.mktemp("reference")
    process = start(open_export, folder / "f.csv", champion_dir)
    opened = watch(process, folder)
    assert opened is not None, process.communicate()
    while partials(folder) and process.poll() is None:
        time.sleep(0.001)
    window = time.perf_counter() - opened
    _, stderr = process.communicate(timeout=RUN_SECONDS)
    assert process.returncode == 0, stderr.decode()
    assert partials(folder) == []
    new = (folder / "f.csv").read_bytes()
    assert new.count(b"\r\n") == LEADS + 1
    return new, window


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_score_out_leaves_the_old_file_or_the_new_one(
    sent, reference, open_export, champion_dir, tmp_path
):
    new, window = reference
    rng = random.Random(int(sent))
    target = tmp_path / "f.csv"
    landed = 0
    known: frozenset[str] = frozenset()  # SIGKILL's leftovers, which later runs must ignore
    for _ in range(ATTEMPTS):
        target.write_bytes(OLD)
        process = start(open_export, target, champion_dir)
        opened = watch(process, tmp_path, known)
        assert opened is not None, process.communicate()
        time.sleep(max(0.0, rng.uniform(0.0, 0.6 * window) - (time.perf_counter() - opened)))
        cut_off = bool(partials(tmp_path, known)) and process.poll() is None
        process.send_signal(sent)
        _, stderr = process.communicate(timeout=RUN_SECONDS)
        now = target.read_bytes()
        assert now in (OLD, new), f"f.csv is {len(now):,} bytes, neither old nor new"
        assert b"Traceback" not in stderr, stderr.decode()
        left = partials(tmp_path, known)
        if sent == signal.SIGINT:
            assert left == []
        else:
            pattern = re.compile(r"\.f\.csv\.leadready-[0-9a-f]{8}\.partial")
            assert all(pattern.fullmatch(name) for name in left), left
            known |= set(left)
        assert {p.name for p in tmp_path.iterdir()} == {"f.csv", *known}
        if cut_off and now == OLD:
            assert process.returncode != 0
            landed += 1
            if landed == LANDED:
                break
    assert landed, f"no {sent.name} of {ATTEMPTS} arrived before the rename"


RACE = """
import sys, time
from pathlib import Path
from leadready.serving.sessions import session_secret
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
sys.stdout.write(session_secret(Path(sys.argv[1])).hex())
"""


def test_worker_processes_starting_together_share_one_whole_secret(tmp_path):
    """`serve --workers N` starts N processes that each ask for the secret at once: all of them
    must get the first one's 32 bytes, never an empty or half-written file, nor one replaced
    after another process read it."""
    folder, go = tmp_path / "workspace", tmp_path / "go"
    racers = [
        subprocess.Popen([sys.executable, "-c", RACE, str(folder), str(go)], stdout=subprocess.PIPE)
        for _ in range(8)
    ]
    time.sleep(3)  # let every interpreter start and wait for the go file
    go.touch()
    seen = {racer.communicate(timeout=120)[0].decode() for racer in racers}
    assert seen == {session_secret(folder).hex()} and len(session_secret(folder)) == 32
    assert [p.name for p in folder.iterdir()] == ["secret"]
    assert oct((folder / "secret").stat().st_mode & 0o777) == "0o600"
