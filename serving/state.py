"""What one server process keeps between requests, as one typed object on `app.state.server`.

Handlers reach it through `ServerDep`. The champions themselves stay in `app.state.engine`,
`app.state.flat` and `app.state.unavailable` (the reason each missing one could not be loaded),
where the workspace at /ui reads them too; a reload swaps those references, so requests in flight
finish on the model they started with.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import State

from leadready.features.registry import NoChampionError
from leadready.serving.engine import Champions, Engine, load_champions
from leadready.serving.flat import FlatModel
from leadready.serving.middleware import Metrics

if TYPE_CHECKING:
    from leadready.serving.app import ServeSettings

log = logging.getLogger("leadready.serve")

KINDS = {"crm": "CRM-export", "flat": "flat-table"}
"""How the log names the two champions (the keys of `Champions.unavailable`)."""


@dataclass
class ServerState:
    """The settings a server was built with, its metrics and its reload lock."""

    settings: ServeSettings
    metrics: Metrics = field(default_factory=Metrics)
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    """One reload at a time: SIGHUP and `POST /v1/admin/reload` may arrive together."""

    def reload(self, state: State) -> Champions:
        """Load the versions the champion aliases point to now and swap them into `state`.

        When neither loads, NoChampionError and the models served so far stay. The reasons,
        which name the tracking store, go to the server log only, never to a client."""
        with self.reload_lock:
            try:
                champions = load_champions(self.settings.models_dir)
            except NoChampionError as exc:
                log.warning("reload refused, the models served so far stay: %s", exc)
                raise
            state.engine = champions.engine
            state.flat = champions.flat
            state.unavailable = champions.unavailable
            for kind, reason in champions.unavailable.items():
                # Flat tables are optional: most servers never have that champion.
                level = logging.WARNING if kind == "crm" else logging.INFO
                log.log(level, "no %s champion loaded: %s", KINDS[kind], reason)
            for model in (champions.engine, champions.flat):
                if model is not None:
                    log.info("serving %s version %s", model.loaded.name, model.loaded.version)
            return champions


def get_server(request: Request) -> ServerState:
    return request.app.state.server


ServerDep = Annotated[ServerState, Depends(get_server)]


def served_models(engine: Engine | None, flat: FlatModel | None) -> dict[str, Any]:
    """The loaded champions as the ops endpoints name them: `model` scores CRM leads (the API),
    `flat_model` flat tables (the workspace); null when there is none."""
    return {
        "model": engine.model_ref if engine is not None else None,
        "flat_model": flat.model_ref if flat is not None else None,
    }
