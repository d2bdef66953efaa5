"""Wrong API keys against a real `leadready serve --workers 2`: one count per client address for
both workers, the API and the login form; blocked addresses get 429 even with the right key; and
`X-Forwarded-For` is believed only from a proxy listed with `--forwarded-allow-ips`.

Each test sends a few dozen requests over loopback, each with a 10-second timeout."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import httpx
import pytest
from workspace_server import AUTH, KEY, running_server

from leadready.serving.schemas import EXAMPLE_REQUEST
from leadready.serving.throttle import MAX_FAILURES

pytestmark = pytest.mark.server

WRONG = {"Authorization": "Bearer not-the-key"}
TRIES = 3 * MAX_FAILURES
"""Wrong keys sent per scenario: the first MAX_FAILURES - 1 get 401, the rest 429."""


@pytest.fixture
def models(champion_dir, tmp_path) -> Path:
    """A copy of the champion's store, so the blocks of one test reach no other."""
    models = tmp_path / "models"
    shutil.copytree(champion_dir, models)
    return models


def score(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/v1/score", json=EXAMPLE_REQUEST, headers=headers, timeout=10)


def guess(url: str, forwarded_for: str) -> Counter[int]:
    """TRIES wrong keys, each claiming another forwarded address (`forwarded_for` with the
    try's number appended); the status codes counted."""
    return Counter(
        score(url, {**WRONG, "X-Forwarded-For": f"{forwarded_for}{i}"}).status_code
        for i in range(TRIES)
    )


def test_wrong_keys_are_throttled_across_workers_and_forwarded_addresses_are_not_believed(models):
    with running_server(models, "--workers", "2") as url:
        # Every try claims another client address: by default none of them is believed.
        codes = guess(url, forwarded_for="203.0.113.")
        print(f"\n{TRIES} wrong keys, two workers, X-Forwarded-For varied: {dict(codes)}")
        assert codes == {401: MAX_FAILURES - 1, 429: TRIES - MAX_FAILURES + 1}
        # Blocked: the right key is not even compared, by either worker (each of these
        # requests lands on one of the two), and the login form shares the count.
        right = [score(url, AUTH) for _ in range(10)]
        assert {r.status_code for r in right} == {429}
        refused = right[0]
        assert 0 < int(refused.headers["retry-after"]) <= 300
        assert "too many wrong API keys from this address" in refused.json()["detail"]
        login = httpx.post(f"{url}/ui/login", data={"key": KEY}, timeout=10)
        assert login.status_code == 429
        assert "Too many wrong keys from this address" in login.text


def test_a_listed_proxy_s_forwarded_clients_are_counted_apart(models):
    with running_server(models, "--workers", "2", "--forwarded-allow-ips", "127.0.0.1") as url:
        # The proxy (127.0.0.1) forwards for a guesser, then for an honest client.
        guesser = Counter(
            score(url, {**WRONG, "X-Forwarded-For": "198.51.100.7"}).status_code
            for _ in range(TRIES)
        )
        honest = score(url, {**AUTH, "X-Forwarded-For": "198.51.100.8"})
        print(f"\nbehind a listed proxy: guesser {dict(guesser)}, honest {honest.status_code}")
        assert guesser == {401: MAX_FAILURES - 1, 429: TRIES - MAX_FAILURES + 1}
        assert honest.status_code == 200
