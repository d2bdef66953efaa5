"""The API key comes first on every /v1 route, whatever models a server has loaded, and no error
names the tracking store or a path (a remote tracking URI may carry credentials).

Routes are enumerated from the app, so a /v1 route added later is covered without editing this
file (one that takes a body needs a valid one in VALID_BODIES: the test says so)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from operator import methodcaller
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from workspace_server import train_flat

from leadready.serving import ops
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.schemas import EXAMPLE_EVENTS, EXAMPLE_REQUEST
from leadready.serving.throttle import FOLDER

pytestmark = pytest.mark.api

KEY = "auth-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
REFUSED = {
    "no header": {},
    "a wrong key": {"Authorization": "Bearer not-the-key"},
    "the key without the Bearer scheme": {"Authorization": f"Basic {KEY}"},
}
VALID_BODIES: dict[str, Any] = {
    "/v1/score": EXAMPLE_REQUEST,
    "/v1/score/batch": {"leads": [EXAMPLE_REQUEST]},
    "/v1/outcomes": [{"lead_id": "L-10442", "outcome": "won", "outcome_at": "2026-07-01"}],
    "/v1/leads/{lead_id}": {"created_at": "2026-05-02T09:30:00Z", "source": "webinar"},
    "/v1/events": EXAMPLE_EVENTS,
}
INVALID_BODY = {"surprise": True}
V1 = methodcaller("startswith", "/v1")
Call = tuple[str, str, Any]
"""Method, path and JSON body (None for a route without one)."""


@pytest.fixture(scope="module")
def flat_only(tmp_path_factory) -> Path:
    """A models folder with a flat-table champion and no CRM-export one."""
    folder = tmp_path_factory.mktemp("flat-only")
    train_flat(folder / "models", folder)
    return folder / "models"


@pytest.fixture(params=["crm", "flat"], ids=["only-a-crm-champion", "only-a-flat-champion"])
def models(request, tmp_path) -> Path:
    """A copy (this test may break it) of a store with only one of the two champions."""
    source = request.getfixturevalue("champion_dir" if request.param == "crm" else "flat_only")
    models = tmp_path / "store" / "models"
    shutil.copytree(source, models)
    return models


@pytest.fixture
def client(models, tmp_path) -> Iterator[TestClient]:
    settings = ServeSettings(
        models_dir=models,
        api_keys=KEY,
        audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
        sample_dir=tmp_path / "no-sample",
    )
    with TestClient(create_app(settings)) as c:
        yield c


def calls(client: TestClient, wanted: Callable[[str], bool]) -> list[Call]:
    """Every route of the app whose path is `wanted`, with a valid body where it takes one (included
    routers are nodes of `app.routes`; iter_route_contexts lists the routes inside them)."""
    found = []
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route.original_route, APIRoute) and wanted(route.path):
            if route.body_field is not None:
                assert route.path in VALID_BODIES, f"add a valid body for {route.path}"
            for method in sorted(route.methods):
                found.append((method, route.path, VALID_BODIES.get(route.path)))
    return found


def send(client: TestClient, call: Call, headers: dict[str, str]) -> httpx.Response:
    method, path, body = call
    return client.request(method, path, json=body, headers=headers)


def test_the_routes_are_enumerated(client):
    paths = {path for _, path, _ in calls(client, V1)}
    assert paths >= {"/v1/score", "/v1/score/batch", "/v1/model", "/v1/outcomes"}
    assert "/v1/admin/reload" in paths


def test_every_v1_route_refuses_a_missing_or_wrong_key_before_anything_else(client, models):
    for call in calls(client, V1):
        # Wrong keys add up to a 429 after a few routes (tests/test_throttle.py): count anew.
        shutil.rmtree(models / "workspace" / FOLDER, ignore_errors=True)
        for what, headers in REFUSED.items():
            answer = send(client, call, headers)
            assert answer.status_code == 401, (call[:2], what, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer KEY" in answer.json()["detail"]
        # The key is what was missing: with it, the same request passes the check.
        assert send(client, call, AUTH).status_code != 401, call[:2]


def test_no_error_names_the_store_or_a_path(client, models, tmp_path):
    ops_paths = {route.path for route in ops.router.routes if isinstance(route, APIRoute)}
    everything = calls(client, V1) + calls(client, ops_paths.__contains__)
    answers = []

    def every_call() -> None:
        for call in everything:
            answers.append(send(client, call, {}))
            answers.append(send(client, call, AUTH))
            if call[2] is not None:
                answers.append(send(client, (*call[:2], INVALID_BODY), AUTH))

    every_call()
    (models / "mlflow.db").rename(models / "moved.db")  # neither champion can be loaded now
    refused = client.post("/v1/admin/reload", headers=AUTH)
    answers.append(refused)
    every_call()
    errors = [a for a in answers if a.status_code >= 400]
    assert {401, 409, 422} <= {a.status_code for a in errors}
    if client.app.state.engine is None:  # type: ignore[attr-defined]
        assert 503 in {a.status_code for a in errors}
    for answer in errors:
        text = answer.text
        for secret in (str(tmp_path), str(models.resolve()), "sqlite:", "file:"):
            assert secret not in text, (answer.request.url.path, answer.status_code, text)
    detail = refused.json()["detail"]
    assert "'sales-readiness'" in detail and "'sales-readiness-flat'" in detail
    assert "models served so far stay" in detail and "`leadready train --data DIR`" in detail


def test_without_a_crm_champion_scoring_says_which_model_is_missing_and_what_to_do(
    flat_only, tmp_path, caplog
):
    settings = ServeSettings(models_dir=flat_only, audit_url=f"sqlite:///{tmp_path / 'a.db'}")
    with caplog.at_level(logging.WARNING, "leadready.serve"), TestClient(create_app(settings)) as c:
        answers = [c.post("/v1/score", json=EXAMPLE_REQUEST), c.get("/v1/model")]
        answers.append(c.post("/v1/score/batch", json=VALID_BODIES["/v1/score/batch"]))
    for answer in answers:
        assert answer.status_code == 503
        detail = answer.json()["detail"]
        assert detail.startswith("no champion of 'sales-readiness' is loaded; ")
        assert "`leadready train --data DIR`" in detail and "sqlite:" not in detail
    # The operator still learns where the server looked.
    logged = [r.getMessage() for r in caplog.records]
    assert any("no CRM-export champion loaded" in m and "sqlite:" in m for m in logged), logged


def test_a_refused_reload_keeps_the_reason_in_the_server_log(champion_dir, tmp_path, caplog):
    models = tmp_path / "models"
    shutil.copytree(champion_dir, models)
    settings = ServeSettings(models_dir=models, audit_url=f"sqlite:///{tmp_path / 'a.db'}")
    with TestClient(create_app(settings)) as c:
        (models / "mlflow.db").rename(models / "moved.db")
        with caplog.at_level(logging.WARNING, "leadready.serve"):
            assert c.post("/v1/admin/reload").status_code == 409
        assert c.get("/v1/model").json()["model"]["version"] == "1"  # the old one stays
    logged = [r.getMessage() for r in caplog.records]
    assert any("reload refused" in m and str(models.resolve()) in m for m in logged), logged


def test_a_throttle_folder_that_cannot_be_written_still_answers_401_and_logs_it(
    client, models, caplog
):
    shutil.rmtree(models / "workspace" / FOLDER, ignore_errors=True)
    (models / "workspace" / FOLDER).write_text("a file where the throttle's folder should be")
    with caplog.at_level(logging.ERROR, "leadready.serving.throttle"):
        answers = [
            client.get("/v1/model", headers=REFUSED["a wrong key"]).status_code for _ in range(12)
        ]
    assert answers == [401] * 12
    assert "wrong-key throttle cannot count" in caplog.text
    assert client.get("/v1/model", headers=AUTH).status_code not in (401, 500)
