"""A running `leadready serve` follows the `champion` alias: a version promoted with the CLI is
served within a bounded time, without a reload request."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest
from test_reload_workers import register_copy
from test_server import AUTH, start, stop
from workspace_server import LEADREADY

from leadready.serving.schemas import EXAMPLE_REQUEST

pytestmark = pytest.mark.server

POLL = 1.0
BOUND = 30.0
"""Seconds from starting `leadready models promote` to the first answer of the new version: the
command (a few seconds to start), a look at the aliases every POLL seconds, then a worker's load
(1-6 s on 2 busy cores)."""


def test_a_promoted_champion_is_served_without_a_reload(champion_dir, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(champion_dir, models)
    version = register_copy(models)
    server = start(models, tmp_path / "audit.db", "--champion-poll", str(POLL))
    try:
        answer = httpx.post(f"{server.url}/v1/score", json=EXAMPLE_REQUEST, headers=AUTH)
        assert answer.json()["model"]["version"] != version
        since = time.monotonic()
        promoted = subprocess.run(
            [LEADREADY, "models", "promote", version, "--models-dir", str(models)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert promoted.returncode == 0, promoted.stderr
        command = time.monotonic() - since
        while time.monotonic() < since + BOUND:
            answer = httpx.post(f"{server.url}/v1/score", json=EXAMPLE_REQUEST, headers=AUTH)
            if answer.json()["model"]["version"] == version:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"version {version} not served {BOUND} s after its promotion")
        print(
            f"\npromoted version served {time.monotonic() - since:.1f} s after `models "
            f"promote` started (the command took {command:.1f} s)"
        )
        ready = httpx.get(f"{server.url}/readyz", timeout=5).json()
        assert {w["model"] for w in ready["workers"]} == {version}
    finally:
        stop(server)
