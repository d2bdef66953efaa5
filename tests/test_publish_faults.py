"""`leadready train` cut off while it publishes. A real `train --table ... --promote` is sent
SIGINT, and separately SIGKILL, at random moments from the start of its MLflow run to a little
past the end of it (when a reference `train` had registered its version). Each time, the
registry must hold only complete versions (every tag `train` sets), the aliases may only have
moved to a complete new version, `models list` shows no half version, and no run stays
RUNNING: SIGINT ends them KILLED at once, after SIGKILL the next `models list` or `train`
does. A later `train` publishes as usual."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from test_server import clean_env
from workspace_server import FLAT_TRAIN, LEADREADY, train_flat

from leadready.features.registry import CHALLENGER, CHAMPION, FLAT_MODEL_NAME, embedded_uri
from leadready.training.registry import EXPERIMENT, PID_TAG

pytestmark = pytest.mark.fault

ATTEMPTS = 3
"""Interrupted runs per signal; each is a whole `train` (about ten seconds)."""
RUN_SECONDS = 300
ENV = {"OMP_WAIT_POLICY": "PASSIVE", "LEADREADY_SEARCH_SECONDS": "0", "COLUMNS": "200"}
"""No hyperparameter search, and a wide console so `models list` prints rows whole."""


def start(table: Path, models: Path) -> subprocess.Popen:
    command = [a.format(table=table, models=models) for a in FLAT_TRAIN]
    return subprocess.Popen(
        [LEADREADY, *command, "--promote"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean_env(), **ENV},
    )


def client_of(models: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=embedded_uri(models))


def runs(client: MlflowClient, pid: int | None = None) -> list:
    """Every run of the experiment (candidates included), or those of one `train` process."""
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    found = client.search_runs([experiment], max_results=1000)
    return [r for r in found if pid is None or r.data.tags.get(PID_TAG) == str(pid)]


def watch(process: subprocess.Popen, client: MlflowClient) -> float:
    """Wait until the process has started its MLflow run; returns when (perf_counter)."""
    deadline = time.monotonic() + RUN_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        if runs(client, process.pid):
            return time.perf_counter()
        time.sleep(0.02)
    raise AssertionError(f"train never started its run: {process.communicate()}")


def registry(client: MlflowClient) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(tags of each version, version of each alias) of the flat model."""
    versions = client.search_model_versions(f"name='{FLAT_MODEL_NAME}'")
    aliases = client.get_registered_model(FLAT_MODEL_NAME).aliases
    return {str(v.version): dict(v.tags) for v in versions}, {k: str(v) for k, v in aliases.items()}


def listed(models: Path) -> dict[str, list[str]]:
    """`leadready models list`: the cells of each version row shown."""
    done = subprocess.run(
        [LEADREADY, "models", "list", "--models-dir", str(models)],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        env={**clean_env(), **ENV},
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("│")[1:-1] for line in done.stdout.splitlines() if line.startswith("│")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[Path, Path, float, set[str]]:
    """A store with a champion v1 (trained in this process), the table it was trained on, how
    long a second `train` took from the start of its run to its end, when the version is
    registered and the aliases moved (the window signals are aimed at; the report is written
    after it), and the tag names of a complete version."""
    folder = tmp_path_factory.mktemp("publish")
    models = folder / "models"
    train_flat(models, folder)
    table = folder / "history.csv"
    client = client_of(models)
    second = start(table, models)
    began = watch(second, client)
    while second.poll() is None and any(
        r.info.status == "RUNNING" for r in runs(client, second.pid)
    ):
        time.sleep(0.02)
    window = time.perf_counter() - began
    _, stderr = second.communicate(timeout=RUN_SECONDS)
    assert second.returncode == 0, stderr
    versions, aliases = registry(client)
    assert aliases == {CHALLENGER: "2", CHAMPION: "2"}
    assert versions["1"].keys() == versions["2"].keys()
    return models, table, window, set(versions["2"])


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_publish_leaves_complete_versions_and_no_running_run(
    sent, published, tmp_path
):
    source, table, window, complete = published
    models = tmp_path / "models"
    shutil.copytree(source, models)
    client = client_of(models)
    rng = random.Random(int(sent))
    outcomes = []
    for attempt in range(ATTEMPTS):
        versions_before, aliases_before = registry(client)
        process = start(table, models)
        began = watch(process, client)
        # One moment in each third of the window: early (logging), middle, late (registering
        # and just after, while it writes the report).
        moment = rng.uniform(attempt, attempt + 1) * 1.1 * window / ATTEMPTS
        time.sleep(max(0.0, moment - (time.perf_counter() - began)))
        if process.poll() is None:  # a quieter machine may finish sooner
            process.send_signal(sent)
        stdout, stderr = process.communicate(timeout=RUN_SECONDS)
        versions, aliases = registry(client)
        new = sorted(set(versions) - set(versions_before))
        assert len(new) <= 1 and versions_before.items() <= versions.items()
        assert all(set(tags) == complete for tags in versions.values()), versions
        assert set(aliases.values()) <= set(versions)
        mine = runs(client, process.pid)
        (parent,) = (r for r in mine if "mlflow.parentRunId" not in r.data.tags)
        if "Report:" in stdout:  # publish had returned: the signal came as it summed up
            assert aliases == {CHALLENGER: new[0], CHAMPION: new[0]}, stderr
            assert {r.info.status for r in mine} == {"FINISHED"}
            outcomes.append(f"{moment:.2f} s: v{new[0]}, after publish")
            continue
        if sent == signal.SIGINT:
            # Registering the version and moving both aliases is one step SIGINT waits for.
            assert aliases == ({CHALLENGER: new[0], CHAMPION: new[0]} if new else aliases_before)
            assert "Traceback" not in stderr, stderr
            said = " ".join(stderr.split())
            assert process.returncode == 130, stderr
            assert (
                f"interrupted after sales-readiness-flat version {new[0]} was registered"
                if new
                else "its MLflow run was ended KILLED, no version was registered"
            ) in said, said
        else:
            # SIGKILL may land between the version and its aliases: challenger moves first.
            assert process.returncode == -signal.SIGKILL
            for alias in (CHALLENGER, CHAMPION):
                assert aliases[alias] in {aliases_before[alias], *new}
            assert aliases[CHAMPION] == aliases_before[CHAMPION] or aliases[CHALLENGER] == new[0]
            if attempt == 0:  # the next `models list` ends its runs; later, the next `train`
                shown = listed(models)
                assert shown.keys() == versions.keys()
                assert all(all(cells[2:]) for cells in shown.values()), shown
        if sent == signal.SIGINT or attempt == 0:
            mine = runs(client, process.pid)
            assert {r.info.status for r in mine} <= {"KILLED", "FINISHED"}, mine
        status = client.get_run(parent.info.run_id).info.status
        outcomes.append(f"{moment:.2f} s: {'v' + new[0] if new else 'no version'}, run {status}")

    assert sum("after publish" in o for o in outcomes) < ATTEMPTS, outcomes

    final = start(table, models)
    _, stderr = final.communicate(timeout=RUN_SECONDS)
    assert final.returncode == 0, stderr
    assert {r.info.status for r in runs(client)} <= {"KILLED", "FINISHED"}
    outcomes.append(f"after the next train, run {client.get_run(parent.info.run_id).info.status}")
    versions, aliases = registry(client)
    newest = max(versions, key=int)
    assert set(versions[newest]) == complete
    assert aliases == {CHALLENGER: newest, CHAMPION: newest}
    shown = listed(models)
    assert shown.keys() == versions.keys() and all(all(c[2:]) for c in shown.values())
    print(f"\n{sent.name} in a {window:.2f} s window: " + "; ".join(outcomes))
