"""One version across the workers of one `leadready serve`: the generation file they follow.

Each worker process loads its own copy of the champions, and a reload request (the endpoint or
SIGHUP) reaches one process only. So a reload does not load anything where it lands: it resolves
the `champion` aliases once and publishes the versions they name as the next *generation*, a
small JSON file in the server's run folder (`LEADREADY_RUN_DIR`, which `serve` creates and
removes). Every worker watches that file, loads exactly the versions it names and writes its own
status file; `/readyz`, whichever worker answers, reads them all. A worker the supervisor starts
again after a crash loads the generation's versions too, not what the alias says by then.

The `serve` process itself also looks up the aliases every few seconds (`ChampionWatcher`) and
publishes the next generation when one names another version, so a promotion (`models promote`,
a `train` that promoted) reaches every worker without a reload request.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from uvicorn.supervisors import Multiprocess

from leadready.features.registry import NoChampionError, model_name
from leadready.serving.engine import SHADOW, Versions, champion_versions

RUN_DIR = "LEADREADY_RUN_DIR"
POLL_SECONDS = 0.25
"""How often a worker looks at the generation file (one `stat`): the delay before it starts
loading a published generation."""
CONVERGE_SECONDS = 30.0
"""How long `POST /v1/admin/reload` waits for every worker to report the new generation. A
worker loads a model in 1-6 s on 2 busy cores."""

log = logging.getLogger("leadready.serve")


@dataclass(frozen=True)
class Generation:
    """The versions every worker should serve; `missing` says why a kind has none (the log)."""

    number: int
    versions: Versions
    missing: dict[str, str]


@dataclass(frozen=True)
class WorkerStatus:
    """What one worker serves, as it last wrote it."""

    pid: int
    generation: int
    """The last generation it tried to load."""
    serving: Versions
    failed: Versions
    """The versions of that generation it could not load (it kept serving what it had)."""


def describe(versions: Versions) -> str:
    """Versions in words: "version 3 of 'sales-readiness' and version 1 of '...-flat'"."""
    named = [
        f"{'challenger ' if kind == SHADOW else ''}version {version} of "
        f"'{model_name(kind == 'flat')}'"
        for kind, version in versions.items()
        if version is not None
    ]
    return " and ".join(named) or "no model"


def _write_json(path: Path, content: dict[str, Any]) -> None:
    """Whole or not at all: a reader never sees a half-written file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as file:
        json.dump(content, file)
    os.replace(temporary, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's: not one of our workers
        return False
    return True


class RunFolder:
    """The run folder of one `serve`: `generation.json`, and `workers/PID.json` per worker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.generation_file = path / "generation.json"
        self.workers = path / "workers"

    @classmethod
    def from_env(cls) -> RunFolder | None:
        """The folder `serve` made for its workers; None in a process it did not start (an
        app under a TestClient), which reloads in-process."""
        value = os.environ.get(RUN_DIR)
        return cls(Path(value)) if value else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One publisher at a time across processes, so generation numbers never repeat."""
        with open(self.path / "generation.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def current(self) -> Generation:
        content = json.loads(self.generation_file.read_text())
        return Generation(content["number"], content["versions"], content["missing"])

    def publish(self, versions: Versions, missing: dict[str, str]) -> Generation:
        """The next generation (0 for the first), written for every worker to load."""
        self.workers.mkdir(parents=True, exist_ok=True)
        with self._locked():
            number = self.current().number + 1 if self.generation_file.exists() else 0
            generation = Generation(number, versions, missing)
            _write_json(self.generation_file, asdict(generation))
        return generation

    def stamp(self) -> tuple[int, int] | None:
        """Changes whenever a generation is published (the file is replaced, not rewritten)."""
        try:
            stat = self.generation_file.stat()
        except FileNotFoundError:  # the run folder is being removed: the server is stopping
            return None
        return stat.st_ino, stat.st_mtime_ns

    def report(self, status: WorkerStatus) -> None:
        _write_json(self.workers / f"{status.pid}.json", asdict(status))

    def withdraw(self, pid: int) -> None:
        (self.workers / f"{pid}.json").unlink(missing_ok=True)

    def statuses(self) -> list[WorkerStatus]:
        """The live workers' statuses, by pid; a worker killed without withdrawing is left out."""
        found = []
        for path in sorted(self.workers.glob("*.json")):
            with contextlib.suppress(FileNotFoundError, ValueError):
                status = WorkerStatus(**json.loads(path.read_text()))
                if _alive(status.pid):
                    found.append(status)
        return found

    def wait(self, number: int, timeout: float) -> list[WorkerStatus]:
        """The live workers' statuses once all have tried generation `number`, or at timeout."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.statuses()
            if all(s.generation >= number for s in statuses) or time.monotonic() > deadline:
                return statuses
            time.sleep(POLL_SECONDS)


def publish_champions(run: RunFolder, models_dir: Path) -> Generation:
    """Resolve the `champion` aliases once and publish the versions they name to every worker;
    NoChampionError (logged, nothing published) when neither names a version."""
    try:
        versions, missing = champion_versions(models_dir)
    except NoChampionError as exc:
        log.warning("reload refused, the models served so far stay: %s", exc)
        raise
    generation = run.publish(versions, missing)
    log.info("published generation %d: %s", generation.number, describe(versions))
    return generation


def readiness(run: RunFolder) -> tuple[list[dict[str, Any]], list[str]]:
    """The `/readyz` section `workers` (every live worker of this server, whichever answers)
    and a plain sentence per worker not serving the current generation's versions."""
    generation = run.current()
    section, problems = [], []
    for status in run.statuses():
        if status.generation < generation.number:
            state = "loading"
            problems.append(
                f"worker {status.pid} serves {describe(status.serving)} and has not loaded "
                f"generation {generation.number} ({describe(generation.versions)}) yet"
            )
        elif status.failed:
            state = "failed"
            problems.append(
                f"worker {status.pid} could not load {describe(status.failed)} (generation "
                f"{status.generation}) and keeps serving {describe(status.serving)}; the "
                "server log says why"
            )
        else:
            state = "current"
        section.append(
            {
                "pid": status.pid,
                "generation": status.generation,
                "model": status.serving.get("crm"),
                "flat_model": status.serving.get("flat"),
                "shadow_model": status.serving.get(SHADOW),
                "state": state,
            }
        )
    return section, problems


class Watcher(threading.Thread):
    """A worker's thread that loads each generation published after `number` (`follow`)."""

    def __init__(self, run: RunFolder, number: int, follow: Callable[[Generation], None]) -> None:
        super().__init__(name="leadready-generation-watcher", daemon=True)
        self.run_folder = run
        self.number = number
        self.follow = follow
        self.stopping = threading.Event()

    def run(self) -> None:
        seen = None
        while not self.stopping.wait(POLL_SECONDS):
            stamp = self.run_folder.stamp()
            if stamp is None or stamp == seen:
                continue
            seen = stamp
            try:
                generation = self.run_folder.current()
                if generation.number != self.number:
                    self.follow(generation)
                    self.number = generation.number
            except Exception:  # a thread that dies silently would leave this worker behind
                log.exception("could not follow the published generation; trying again")
                seen = None


class ChampionWatcher(threading.Thread):
    """The `serve` process's thread that publishes the next generation when a `champion` alias
    names a version the current generation does not. An alias that names nothing (removed, or
    the store briefly unreadable) changes nothing: unloading a model takes a reload request."""

    def __init__(self, run: RunFolder, models_dir: Path, seconds: float) -> None:
        super().__init__(name="leadready-champion-watcher", daemon=True)
        self.run_folder = run
        self.models_dir = models_dir
        self.seconds = seconds
        self.stopping = threading.Event()

    def moved(self) -> bool:
        """Whether an alias names another version than the current generation."""
        try:
            versions, _ = champion_versions(self.models_dir)
        except NoChampionError:
            return False
        served = self.run_folder.current().versions
        return any(v is not None and v != served.get(k) for k, v in versions.items())

    def run(self) -> None:
        while not self.stopping.wait(self.seconds):
            try:
                if self.moved():
                    log.warning("a champion alias moved; publishing it to every worker")
                    publish_champions(self.run_folder, self.models_dir)
            except Exception:  # a thread that dies silently would stop following the aliases
                log.exception("could not look up the champion aliases; trying again")


class Supervisor(Multiprocess):
    """uvicorn's process manager, except that SIGHUP publishes the next generation instead of
    replacing every worker (which took longer than uvicorn's health check under load, so the
    restart was aborted and workers kept different versions)."""

    def __init__(self, *args: Any, run: RunFolder, models_dir: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_folder = run
        self.models_dir = models_dir

    def handle_hup(self) -> None:
        log.warning("Received SIGHUP, publishing the champions to every worker")
        with contextlib.suppress(NoChampionError):  # logged; the models served so far stay
            publish_champions(self.run_folder, self.models_dir)
