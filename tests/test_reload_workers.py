"""Reload under load with `leadready serve --workers 2`: every worker converges on the version
the `champion` alias names, whether the reload came by `POST /v1/admin/reload` or by SIGHUP to
the serve process; a worker started again serves the current version; a version that cannot
be loaded leaves the workers on the old one and `/readyz` says so."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from test_server import AUTH, Server, start, stop

from leadready.serving.schemas import EXAMPLE_REQUEST

pytestmark = pytest.mark.fault

CONVERGE = 5.0
"""The issue's bound: seconds from the reload until every response carries the new version."""


def register_copy(models: Path, of: str = "1") -> str:
    """A new registered version of the CRM-export model with the artifacts of version `of`
    (training another one would take a minute); returns its number. Not promoted."""
    from mlflow.tracking import MlflowClient

    from leadready.features.registry import MODEL_NAME
    from leadready.serving.store import use_store

    use_store(models)
    client = MlflowClient()
    source = client.get_model_version(MODEL_NAME, of)
    return str(client.create_model_version(MODEL_NAME, source.source, source.run_id).version)


def promote(models: Path, version: str) -> None:
    from leadready.training.registry import promote as set_champion

    set_champion(models, version)


class Load:
    """Threads posting /v1/score until stopped, each answer's version and time kept."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url = url
        self.answers: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.post) for _ in range(threads)]

    def post(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.is_set():
                try:
                    answer = client.post(f"{self.url}/v1/score", json=EXAMPLE_REQUEST, headers=AUTH)
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.failures.append(repr(exc))
                    continue
                with self.lock:
                    if answer.status_code == 200:
                        self.answers.append((time.monotonic(), answer.json()["model"]["version"]))
                    else:
                        self.failures.append(f"{answer.status_code} {answer.text}")
                time.sleep(0.01)

    def after(self, moment: float) -> list[tuple[float, str]]:
        with self.lock:
            return [a for a in self.answers if a[0] >= moment]


@contextmanager
def under_load(url: str) -> Iterator[Load]:
    load = Load(url)
    for thread in load.threads:
        thread.start()
    try:
        yield load
    finally:
        load.stopping.set()
        for thread in load.threads:
            thread.join(timeout=15)


def converge(load: Load, version: str, since: float) -> float:
    """Seconds from `since` to the first answer after which every answer carries `version`;
    waits (bounded) for a second of answers all from it."""
    deadline = since + 30
    while time.monotonic() < deadline:
        answers = load.after(since)
        others = [t for t, v in answers if v != version]
        last_other = max(others, default=since)
        if [t for t, v in answers if t > last_other + 1.0]:
            return last_other - since
        time.sleep(0.2)
    raise AssertionError(f"not every answer carries version {version} 30 s after the reload")


def figures(name: str, load: Load, since: float, seconds: float) -> None:
    counts = Counter(v for _, v in load.after(since))
    print(
        f"\n{name}: sent {len(load.answers) + len(load.failures)}, failed "
        f"{len(load.failures)}, per version after the switch {dict(counts)}, converged in "
        f"{seconds:.2f} s"
    )


def workers(server: Server) -> list[dict]:
    return httpx.get(f"{server.url}/readyz", timeout=5).json()["workers"]


@pytest.fixture(scope="module")
def server(champion_dir, tmp_path_factory) -> Iterator[Server]:
    models = tmp_path_factory.mktemp("fleet") / "models"
    shutil.copytree(champion_dir, models)
    began = time.monotonic()
    # Reloads only on request here (no alias watch): the tests decide when a version moves.
    running = start(models, models.parent / "audit.db", "--workers", "2", "--champion-poll", "0")
    print(f"\n`serve --workers 2` ready in {time.monotonic() - began:.1f} s")
    yield running
    if running.process.poll() is None:
        stop(running)


def reload_endpoint(server: Server, version: str) -> None:
    answer = httpx.post(f"{server.url}/v1/admin/reload", headers=AUTH, timeout=40)
    assert answer.status_code == 200, answer.text
    assert answer.json()["published"]["model"] == version


def sighup(server: Server, _: str) -> None:
    server.process.send_signal(signal.SIGHUP)


@pytest.mark.parametrize("reload", [reload_endpoint, sighup], ids=["admin-reload", "sighup"])
def test_a_reload_reaches_every_worker_under_load(server, reload):
    version = register_copy(server.models)
    with under_load(server.url) as load:
        time.sleep(1)
        promote(server.models, version)
        since = time.monotonic()
        reload(server, version)
        seconds = converge(load, version, since)
    trigger = "POST /v1/admin/reload" if reload is reload_endpoint else "SIGHUP"
    figures(trigger, load, since, seconds)
    assert load.failures == []
    assert seconds <= CONVERGE
    ready = httpx.get(f"{server.url}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert {w["model"] for w in ready.json()["workers"]} == {version}
    assert len(ready.json()["workers"]) == 2


def test_a_worker_started_again_serves_the_current_version(server):
    current = httpx.get(f"{server.url}/readyz", timeout=5).json()["model"]["version"]
    # The alias moves on without a reload: the new worker must not pick it up by itself.
    promote(server.models, "1")
    killed = workers(server)[0]["pid"]
    began = time.monotonic()
    os.kill(killed, signal.SIGKILL)
    deadline = began + 60
    while time.monotonic() < deadline:
        found = workers(server)
        if len(found) == 2 and killed not in {w["pid"] for w in found}:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no worker replaced {killed} in 60 s")
    print(f"\nworker cold start (SIGKILL to status reported): {time.monotonic() - began:.1f} s")
    assert {w["model"] for w in found} == {current}
    promote(server.models, current)


def test_a_version_that_cannot_load_leaves_the_old_one_and_readyz_says_so(server):
    from mlflow.tracking import MlflowClient

    from leadready.features.registry import MODEL_NAME
    from leadready.serving.store import use_store

    current = httpx.get(f"{server.url}/readyz", timeout=5).json()["model"]["version"]
    # A version registered from an empty folder: there is no model to load.
    empty = server.models / "artifacts" / "empty"
    empty.mkdir()
    use_store(server.models)
    client = MlflowClient()
    run = client.get_model_version(MODEL_NAME, current).run_id
    broken = str(client.create_model_version(MODEL_NAME, str(empty), run).version)
    promote(server.models, broken)
    answer = httpx.post(f"{server.url}/v1/admin/reload", headers=AUTH, timeout=40)
    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"]
    assert f"version {broken} of '{MODEL_NAME}' could not be loaded" in detail
    assert str(server.models) not in detail
    ready = httpx.get(f"{server.url}/readyz", timeout=5)
    assert ready.status_code == 503
    body = ready.json()
    print(f"\n/readyz after a version that cannot load: {body['problems']}")
    assert len(body["problems"]) == 2
    assert all(
        f"could not load version {broken} of '{MODEL_NAME}'" in p
        and f"keeps serving version {current} of '{MODEL_NAME}'" in p
        for p in body["problems"]
    )
    assert {(w["model"], w["state"]) for w in body["workers"]} == {(current, "failed")}
    for _ in range(4):
        scored = httpx.post(
            f"{server.url}/v1/score", json=EXAMPLE_REQUEST, headers=AUTH, timeout=10
        )
        assert scored.json()["model"]["version"] == current
    promote(server.models, current)
    assert httpx.post(f"{server.url}/v1/admin/reload", headers=AUTH, timeout=40).status_code == 200
    assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
