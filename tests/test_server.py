"""A real `leadready serve` process over HTTP: scoring, refusals, SIGHUP, clean shutdown, and a
schemathesis run over its live OpenAPI schema."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from leadready.serving.schemas import EXAMPLE_REQUEST

pytestmark = pytest.mark.server

KEY = "server-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LEADREADY = str(Path(sys.executable).parent / "leadready")


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    audit: Path
    models: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(*drop: str) -> dict[str, str]:
    """This process's environment, less what MLflow exported into it.

    mlflow.set_tracking_uri in this test process exports MLFLOW_TRACKING_URI; a server must use
    its own --models-dir store, as it does when started by hand."""
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", *drop)}


def start(models: Path, audit: Path, *extra: str) -> Server:
    port = free_port()
    env = clean_env()
    env.update(LEADREADY_API_KEYS=KEY, LEADREADY_AUDIT_URL=f"sqlite:///{audit}")
    process = subprocess.Popen(
        [LEADREADY, "serve", "--port", str(port), "--models-dir", str(models), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Server(url, process, audit, models)
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("server did not become ready in 90 s")


def stop(server: Server) -> int:
    server.process.send_signal(signal.SIGINT)
    try:
        return server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise


@pytest.fixture(scope="module")
def server(champion_dir, tmp_path_factory):
    models = tmp_path_factory.mktemp("served") / "models"
    shutil.copytree(champion_dir, models)
    running = start(models, tmp_path_factory.mktemp("audit") / "audit.db")
    yield running
    if running.process.poll() is None:
        stop(running)


def test_scores_over_http_and_requires_the_key(server):
    answer = httpx.post(f"{server.url}/v1/score", json=EXAMPLE_REQUEST, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["lead_id"] == "L-10442"
    assert httpx.post(f"{server.url}/v1/score", json=EXAMPLE_REQUEST).status_code == 401
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_no_input_gives_a_5xx_or_an_answer_outside_the_schema(server):
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/score", "/v1/score/batch", "/v1/model"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(
                headers=AUTH, checks=[not_a_server_error, response_schema_conformance]
            )

        check()


def test_sighup_reloads_the_champion_and_sigint_flushes_the_audit_log(server, sample_dir):
    from leadready.features.contract import load_crm
    from leadready.training.pipeline import TrainConfig, train
    from leadready.training.registry import publish

    before = httpx.get(f"{server.url}/v1/model", headers=AUTH).json()["model"]["version"]
    published = publish(
        train(load_crm(sample_dir), TrainConfig(seed=5, search_seconds=0)),
        server.models,
        force_promote=True,
    )
    assert published.version != before
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    version = before
    while version == before and time.monotonic() < deadline:
        time.sleep(0.3)
        version = httpx.get(f"{server.url}/readyz").json()["model"]["version"]
    assert version == published.version
    ids = {
        httpx.post(f"{server.url}/v1/score", json=EXAMPLE_REQUEST, headers=AUTH).json()[
            "request_id"
        ]
        for _ in range(5)
    }
    # uvicorn shuts down gracefully, then re-raises SIGINT: 130 is a clean exit here.
    assert stop(server) in (0, 130)
    with sa.create_engine(f"sqlite:///{server.audit}").connect() as connection:
        rows = connection.execute(
            sa.text("select request_id, model_version from scores")
        ).fetchall()
    assert ids <= {r[0] for r in rows}
    assert {r[1] for r in rows if r[0] in ids} == {published.version}


def test_serve_refuses_without_a_champion(tmp_path):
    result = subprocess.run(
        [LEADREADY, "serve", "--models-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 2
    assert "no 'champion' version" in result.stderr and "leadready train" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_serve_refuses_a_public_bind_without_keys(champion_dir):
    env = clean_env("LEADREADY_API_KEYS")
    result = subprocess.run(
        [LEADREADY, "serve", "--host", "0.0.0.0", "--models-dir", str(champion_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "without API keys" in result.stderr


@pytest.mark.parametrize(
    ("option", "env", "said"),
    [
        (["--explore", "1"], {}, "--explore: the exploration share must be at least 0 and below 1"),
        (["--explore", "-0.1"], {}, "(got -0.1); 0.02 is recommended"),
        ([], {"LEADREADY_EXPLORE_SHARE": "1.5"}, "LEADREADY_EXPLORE_SHARE: Input should be less"),
    ],
)
def test_serve_refuses_an_exploration_share_outside_0_to_1(tmp_path, option, env, said):
    result = subprocess.run(
        [LEADREADY, "serve", *option, "--models-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean_env(), **env},
    )
    assert result.returncode == 2
    assert said in result.stderr and "Traceback" not in result.stderr


def test_serve_explore_sends_its_share_of_nurture_leads_to_sales_in_every_worker(
    champion_dir, sample_dir, tmp_path
):
    import pandas as pd
    from test_api import requests_for

    from leadready.features.contract import load_crm

    crm = load_crm(sample_dir)
    bodies = requests_for(
        crm, list(crm.leads.lead_id[:300]), crm.leads.created_at.max() + pd.Timedelta(days=1)
    )
    models = tmp_path / "models"
    shutil.copytree(champion_dir, models)  # a server writes its journal and secret there
    running = start(models, tmp_path / "audit.db", "--explore", "0.5", "--workers", "2")
    try:
        answers = [
            httpx.post(
                f"{running.url}/v1/score/batch", json={"leads": bodies}, headers=AUTH, timeout=60
            ).json()["results"]
            for _ in range(4)  # the two workers answer in turn or not: the same either way
        ]
    finally:
        assert stop(running) == 0
    first = answers[0]
    assert all([a["explore"] for a in again] == [a["explore"] for a in first] for again in answers)
    explored = [a for a in first if a["explore"]]
    kept = [a for a in first if a["route"] == "nurture"]
    assert explored and kept  # half of the nurture leads, give or take
    assert all(a["route"] == "sales" and a["propensity"] == 0.5 for a in explored)
    assert all(a["propensity"] == 0.5 for a in kept)
