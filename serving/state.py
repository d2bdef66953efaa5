"""What one server process keeps between requests, as one typed object on `app.state.server`.

Handlers reach it through `ServerDep`. The champions themselves stay in `app.state.engine`,
`app.state.flat` and `app.state.unavailable` (the reason each missing one could not be loaded),
where the workspace at /ui reads them too; a reload swaps those references, so requests in flight
finish on the model they started with.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import State

from leadready.features.registry import NoChampionError
from leadready.serving.engine import (
    KINDS,
    SHADOW,
    Engine,
    Versions,
    champion_versions,
    load_model,
)
from leadready.serving.flat import FlatModel
from leadready.serving.fleet import Generation, RunFolder, WorkerStatus, publish_champions
from leadready.serving.middleware import Metrics
from leadready.serving.store import load_version

if TYPE_CHECKING:
    from leadready.serving.app import ServeSettings

log = logging.getLogger("leadready.serve")

ATTRIBUTES = {"crm": "engine", "flat": "flat", SHADOW: "shadow"}
"""Where `app.state` keeps each kind of champion, and the shadow challenger."""


@dataclass
class ServerState:
    """The settings a server was built with, its metrics, its reload lock and its run folder."""

    settings: ServeSettings
    metrics: Metrics = field(default_factory=Metrics)
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    """One load at a time: SIGHUP, `POST /v1/admin/reload` and the watcher may arrive together."""
    run: RunFolder | None = field(default_factory=RunFolder.from_env)
    """The generation file this worker follows (fleet.py); None: reloads load in-process."""

    def reload(self, state: State) -> Versions:
        """In-process: load the versions the champion aliases point to now and swap them into
        `state`; returns the versions that could not be loaded (the old ones stay for those).

        When neither alias names a version, NoChampionError and the models served so far stay.
        The reasons, which name the tracking store, go to the server log only, never to a
        client."""
        with self.reload_lock:
            try:
                versions, missing = champion_versions(self.settings.models_dir)
            except NoChampionError as exc:
                log.warning("reload refused, the models served so far stay: %s", exc)
                raise
            return self.serve(state, versions, missing)

    def hup(self, state: State) -> None:
        """SIGHUP: publish the champions to every worker under `serve`, else reload here."""
        with contextlib.suppress(NoChampionError):  # logged; the models served so far stay
            if self.run is None:
                self.reload(state)
            else:
                publish_champions(self.run, self.settings.models_dir)

    def follow(self, state: State, generation: Generation) -> None:
        """Serve the versions a published generation names and say so in this worker's
        status file, which `/readyz` of every worker reads."""
        assert self.run is not None
        with self.reload_lock:
            failed = self.serve(state, generation.versions, generation.missing)
            self.run.report(WorkerStatus(os.getpid(), generation.number, serving(state), failed))

    def serve(self, state: State, versions: Versions, missing: Mapping[str, str]) -> Versions:
        """Swap exactly these versions into `state` (requests in flight finish on the models
        they started with). A version that does not load leaves that kind as it was; returned,
        kind -> version, and the reason goes to the log. The shadow challenger is loaded only
        when the settings ask for it, and one that cannot be loaded is logged, not failed: it
        decides nothing. Called with `reload_lock` held."""
        failed: Versions = {}
        unavailable = dict(state.unavailable)
        for kind, version in versions.items():
            current: Engine | FlatModel | None = getattr(state, ATTRIBUTES[kind])
            if kind == SHADOW:
                self._shadow(state, version if self.settings.shadow else None)
                continue
            if version is None:
                setattr(state, ATTRIBUTES[kind], None)
                unavailable[kind] = missing[kind]
                # Flat tables are optional: most servers never have that champion.
                level = logging.WARNING if kind == "crm" else logging.INFO
                log.log(level, "no %s champion loaded: %s", KINDS[kind], missing[kind])
                continue
            if current is not None and current.loaded.version == version:
                continue
            try:
                model = load_model(
                    self.settings.models_dir, kind, version, self.settings.exploration()
                )
            except NoChampionError as exc:
                failed[kind] = version
                if current is None:
                    unavailable[kind] = str(exc)
                log.warning(
                    "could not load %s champion, still serving %s: %s",
                    KINDS[kind],
                    "none" if current is None else f"version {current.loaded.version}",
                    exc,
                )
                continue
            setattr(state, ATTRIBUTES[kind], model)
            unavailable.pop(kind, None)
            log.info("serving %s version %s", model.loaded.name, model.loaded.version)
        state.unavailable = unavailable
        return failed

    def _shadow(self, state: State, version: str | None) -> None:
        """Score the challenger of this version in the shadow of every answer (None: none)."""
        current: Engine | None = state.shadow
        if version is None or (current is not None and current.loaded.version == version):
            state.shadow = None if version is None else current
            return
        try:
            state.shadow = Engine(load_version(self.settings.models_dir, version))
        except NoChampionError as exc:
            state.shadow = None
            log.warning("not scoring challenger version %s in the shadow: %s", version, exc)
            return
        log.info("scoring challenger version %s in the shadow of every answer", version)


def serving(state: State) -> Versions:
    """The version of each kind this process serves now."""
    models = {kind: getattr(state, attribute) for kind, attribute in ATTRIBUTES.items()}
    return {kind: None if m is None else m.loaded.version for kind, m in models.items()}


async def get_server(request: Request) -> ServerState:
    return request.app.state.server


ServerDep = Annotated[ServerState, Depends(get_server)]


def served_models(state: State) -> dict[str, Any]:
    """The loaded models as the ops endpoints name them: `model` scores CRM leads (the API),
    `flat_model` flat tables (the workspace), `shadow_model` the challenger scored in the
    shadow of the API's answers; null when there is none."""
    return {
        name: None if model is None else model.model_ref
        for name, model in (
            ("model", state.engine),
            ("flat_model", state.flat),
            ("shadow_model", state.shadow),
        )
    }
