"""The workspace's defences against other pages and stolen cookies: a state-changing request
(login, logout, upload, the sample) from another origin (another port of the same host too) is
refused with 403 and changes nothing, and a logged-out session's cookie is refused by every
worker of a `serve --workers 2`."""

from __future__ import annotations

import os
import shutil
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from workspace_server import KEY, running_server

from leadready.serving.app import ServeSettings, create_app
from leadready.serving.sessions import Revocations

OWN = "http://testserver"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36"
CROSS_ORIGIN = [  # what a browser sends with a request another page made
    {"Origin": "http://testserver:8001", "Sec-Fetch-Site": "same-site"},  # another port
    {"Origin": "http://testserver:8001"},  # a browser without Sec-Fetch-Site
    {"Origin": "https://testserver"},  # another scheme
    {"Origin": "null"},  # a sandboxed frame or a no-referrer page
    {"Sec-Fetch-Site": "cross-site"},
    {"Referer": "http://evil.example/upload.html"},
    {"User-Agent": BROWSER},  # a browser that names no page at all
]
SAME_ORIGIN = {"Origin": OWN, "Sec-Fetch-Site": "same-origin", "User-Agent": BROWSER}


def _files(folder) -> dict:
    return {
        name: (f"{name}.csv", (folder / f"{name}.csv").read_bytes())
        for name in ("leads", "activities", "touches")
    }


@pytest.mark.api
def test_requests_from_other_origins_are_refused_and_change_nothing(
    champion_dir, sample_dir, small_export, tmp_path
):
    settings = ServeSettings(
        models_dir=champion_dir,
        api_keys=KEY,
        audit_url=f"sqlite:///{tmp_path / 'a.db'}",
        sample_dir=sample_dir,
    )
    with TestClient(create_app(settings), follow_redirects=False) as client:
        for headers in CROSS_ORIGIN:  # login CSRF: another page logs the user in as itself
            refused = client.post("/ui/login", data={"key": KEY}, headers=headers)
            assert refused.status_code == 403 and "Nothing was changed" in refused.text, headers
            assert "leadready_session" not in refused.cookies
        login = client.post("/ui/login", data={"key": KEY}, headers=SAME_ORIGIN)
        assert login.status_code == 303
        assert client.post("/ui/leads/sample", headers=SAME_ORIGIN).status_code == 303
        export = client.get("/ui/leads.csv").text
        assert export.count("\n") > 240
        for headers in CROSS_ORIGIN:
            upload = client.post("/ui/leads/upload", files=_files(small_export), headers=headers)
            assert upload.status_code == 403 and "refused" in upload.text, headers
            assert client.post("/ui/leads/sample", headers=headers).status_code == 403
            assert client.post("/ui/logout", headers=headers).status_code == 403
            assert client.get("/ui/leads.csv").text == export  # same session, same export
        # The same requests from the workspace's own pages work.
        same = client.post("/ui/leads/upload", files=_files(small_export), headers=SAME_ORIGIN)
        assert same.status_code == 303
        assert client.get("/ui/leads.csv").text.count("\n") == 241  # 240 open leads and a header
        referred = {"Referer": f"{OWN}/ui/leads", "User-Agent": BROWSER}
        assert client.post("/ui/leads/sample", headers=referred).status_code == 303
        assert client.get("/ui/leads.csv").text == export


@pytest.mark.api
def test_a_logged_out_cookie_is_refused(champion_dir, tmp_path):
    settings = ServeSettings(
        models_dir=champion_dir, api_keys=KEY, audit_url=f"sqlite:///{tmp_path / 'a.db'}"
    )
    with TestClient(create_app(settings), follow_redirects=False) as client:
        client.post("/ui/login", data={"key": KEY}, headers=SAME_ORIGIN)
        cookie = client.cookies["leadready_session"]
        assert client.get("/ui/model").status_code == 200
        assert client.post("/ui/logout", headers=SAME_ORIGIN).status_code == 303
        client.cookies.set("leadready_session", cookie, path="/ui")  # kept by an attacker
        assert client.get("/ui/model").headers["location"].startswith("/ui/login")
        client.cookies.clear()
        client.post("/ui/login", data={"key": KEY}, headers=SAME_ORIGIN)
        assert client.get("/ui/model").status_code == 200  # a new login is a new session


@pytest.mark.unit
def test_revocations_expire_with_the_session_lifetime(tmp_path):
    revocations = Revocations(tmp_path, max_age=3600)
    assert not revocations.revoked("abc-_1")
    revocations.revoke("abc-_1")
    assert revocations.revoked("abc-_1") and not revocations.revoked("other")
    an_hour_ago = time.time() - 3601
    os.utime(tmp_path / "revoked-abc-_1", (an_hour_ago, an_hour_ago))
    revocations.revoke("other")  # each revocation drops the expired ones
    assert not revocations.revoked("abc-_1") and revocations.revoked("other")
    assert revocations.revoked("../secret") and not (tmp_path / "revoked-../secret").exists()


def _redirects_by_worker(metrics_dir) -> dict[str, float]:
    """303 answers counted by each worker (its Prometheus file is named by its pid)."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        alone = metrics_dir.parent / f"alone-{path.stem}"
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts[path.stem] = sum(
            sample.value
            for metric in registry.collect()
            for sample in metric.samples
            if sample.name == "leadready_requests_total" and sample.labels["status"] == "303"
        )
    return counts


@pytest.mark.server
def test_logout_ends_the_session_on_every_worker(served, tmp_path):
    """A cookie copied before logout is sent again on new connections until both workers have
    answered it (at most 200 requests): each refuses it with the login form."""
    models = tmp_path / "models"
    shutil.copytree(served["models"], models)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with running_server(models, "--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as url:
        own = {"Origin": url}
        login = httpx.post(f"{url}/ui/login", data={"key": KEY}, headers=own)
        cookies = {"leadready_session": login.cookies["leadready_session"]}
        assert httpx.get(f"{url}/ui/model", cookies=cookies).status_code == 200
        assert httpx.post(f"{url}/ui/logout", cookies=cookies, headers=own).status_code == 303
        before = _redirects_by_worker(metrics_dir)
        sent = 0
        while sent < 200:
            answer = httpx.get(f"{url}/ui/model", cookies=cookies)  # a new connection each time
            sent += 1
            assert answer.status_code == 303, answer.text
            assert answer.headers["location"].startswith("/ui/login")
            after = _redirects_by_worker(metrics_dir)
            if len(after) == 2 and all(after[w] > before.get(w, 0) for w in after):
                break
        after = _redirects_by_worker(metrics_dir)
        assert len(after) == 2 and all(after[w] > before.get(w, 0) for w in after), (sent, after)
        print(f"{sent} requests with the logged-out cookie, all refused, by both workers")
