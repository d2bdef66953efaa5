"""Regenerate docs/lead-page.png, the README's screenshot of the workspace's Lead page.

    .venv/bin/python docs/make_screenshot.py models [--sample data/sample] [--out FILE]

Starts `leadready serve` on the champion of MODELS_DIR (on a free loopback port, with a
one-off API key and a throw-away audit log), logs in with Debian's Chromium through Playwright,
scores the sample export, opens the nurture lead with the highest readiness, applies the
change that would raise its readiness most, and saves the page. `make demo` creates `models`
and `data/sample`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: Path, sample: Path, key: str, audit: Path) -> tuple[subprocess.Popen, str]:
    leadready = Path(sys.executable).parent / "leadready"
    command = [str(leadready)] if leadready.exists() else [shutil.which("leadready") or "leadready"]
    port = free_port()
    env = {
        **os.environ,
        "LEADREADY_API_KEYS": key,
        "LEADREADY_SAMPLE_DIR": str(sample),
        "LEADREADY_AUDIT_URL": f"sqlite:///{audit}",
    }
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--models-dir", str(models)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"leadready serve exited: {process.stdout.read()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    sys.exit("leadready serve did not become ready in 120 s")


def shoot(url: str, key: str, out: Path, lead: str | None) -> str:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(
            base_url=url, viewport={"width": 1280, "height": 1480}, device_scale_factor=1
        )
        page.goto("/ui/login")
        page.fill("input[name=key]", key)
        page.click("button[type=submit]")
        page.wait_for_url("**/ui/leads")
        page.click("#use-sample")
        page.wait_for_url("**/ui/leads")
        if lead is None:
            page.goto("/ui/leads?route=nurture")
            lead = page.locator("table#leads tbody a").first.inner_text()
        page.goto(f"/ui/leads/{lead}")
        suggestion = page.locator("ol.suggestions a").first
        if suggestion.count():
            suggestion.click()
            page.wait_for_load_state()
        page.locator("h1").scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, 0)")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=False)
        browser.close()
    return lead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, help="models folder with a champion")
    parser.add_argument(
        "--sample",
        type=Path,
        default=ROOT / "data" / "sample",
        help="CRM export to score (default: data/sample)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "lead-page.png")
    parser.add_argument("--lead", help="lead id to show (default: the top nurture lead)")
    args = parser.parse_args()
    if not (args.sample / "leads.csv").exists() and not (args.sample / "leads.parquet").exists():
        sys.exit(
            f"{args.sample}: no sample export; create one with "
            "`leadready sample-data --out data/sample` (or `make demo`)"
        )
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as scratch:
        process, url = start_server(args.models, args.sample, key, Path(scratch) / "audit.db")
        try:
            lead = shoot(url, key, args.out, args.lead)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    print(f"Wrote {args.out} (lead {lead})")


if __name__ == "__main__":
    main()
