"""Webhook delivery: a dispatcher thread per server process sends the outbox's due deliveries
(`features.leadstore.outbox`) to every URL of LEADREADY_WEBHOOK_URLS, signed, and retries them.

Each delivery is POSTed as its payload's JSON (`body`, the exact bytes signed) with
`X-Leadready-Signature: sha256=<hex HMAC-SHA256 of the body, key LEADREADY_WEBHOOK_SECRET>`,
`X-Leadready-Delivery: <delivery_id>` and `X-Leadready-Event: <type>`. A 2xx answer from a URL
means that URL has it (`delivery_receipts`); a retry goes only to the URLs that have not. A
failed attempt is tried again after `retry_delay` (1 s, doubling up to an hour, by default)
until the retry window (24 h from its creation) would be over; then the delivery is `dead`,
with its last error kept, until `leadready deliveries retry` requeues it. All of it is in the
store, so a restart, even after SIGKILL, loses nothing: at least once, never "at most".

Every worker of `serve --workers N` runs a dispatcher; they share the outbox by claiming rows
(`outbox.claim`: a lease in `claimed_until`, taken in one statement, with SKIP LOCKED on
PostgreSQL and SQLite's single writer), so a delivery is sent by one dispatcher at a time. That
was chosen over one elected dispatcher because the worker that committed a route change is the
one whose `wake()` the ingestion calls, so it sends at once without any signal between
processes. A dispatcher killed mid-send leaves its claim to expire (`lease`), and the delivery is
sent again: receivers deduplicate on `delivery_id`.

Sends run on a small thread pool with short timeouts, never on the event loop. The thread waits
for `wake()` (called after the commit that enqueued a delivery) or `poll_seconds` (1 s), so a new
delivery leaves within milliseconds and one enqueued by another process within a second.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa

from leadready.features.leadstore.outbox import (
    Backlog,
    Claimed,
    any_due,
    backlog,
    claim,
    settle,
)

if TYPE_CHECKING:
    from leadready.serving.middleware import Metrics

log = logging.getLogger("leadready.serve")

BATCH = 50
"""Deliveries claimed at once; a full batch is followed by the next one without waiting."""
SENDERS = 8
"""Deliveries sent at the same time, so one slow receiver does not hold back the others."""
LEASE_MARGIN_SECONDS = 30.0
"""A claim lasts the time its sends may take (timeout x URLs) plus this."""
BACKLOG_SECONDS = 5.0
"""How often the dispatcher counts pending and dead deliveries for /readyz and /metrics."""
STALE_SECONDS = 300.0
"""A delivery pending longer than this earns /readyz a note (not a 503: a receiver that is down
does not make this server unready)."""
ERROR_CHARS = 1000
"""`last_error` keeps this much of the attempt's errors."""
BACKOFF_SECONDS = (0.1, 5.0)
"""The dispatcher's own pause after a failed round (the store unreachable or locked), first and
longest; it doubles per failure, as the audit shipper's does."""
SIGNATURE_HEADER = "X-Leadready-Signature"
DELIVERY_HEADER = "X-Leadready-Delivery"
EVENT_HEADER = "X-Leadready-Event"


class WebhookSettingsError(ValueError):
    """The webhook settings cannot work; the message names the variable and what it needs."""


@dataclass(frozen=True)
class WebhookConfig:
    """Where and how deliveries are sent, from the server's settings (`ServeSettings`)."""

    urls: tuple[str, ...]
    secret: bytes
    timeout_seconds: float = 5.0
    """Per request: connecting, sending and reading the answer."""
    max_age_seconds: float = 86_400.0
    """The retry window, from a delivery's creation (or requeue); then it is dead."""
    backoff_seconds: float = 1.0
    """The pause after a delivery's first failed attempt; doubled after each one ..."""
    backoff_max_seconds: float = 3_600.0
    """... up to this."""
    poll_seconds: float = 1.0
    """How often the outbox is looked at without a `wake()`."""

    @classmethod
    def parse(cls, urls: str, secret: str, **timing: float) -> WebhookConfig | None:
        """The config of comma-separated `urls` (None when there are none: nothing is sent);
        a `WebhookSettingsError` for a URL that is not http(s) or a missing secret."""
        targets = tuple(dict.fromkeys(u.strip() for u in urls.split(",") if u.strip()))
        if not targets:
            return None
        for url in targets:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise WebhookSettingsError(
                    f"LEADREADY_WEBHOOK_URLS: {url!r} is not an http:// or https:// URL with a "
                    "host; expected comma-separated URLs such as https://crm.example.com/hooks"
                )
        if not secret:
            raise WebhookSettingsError(
                "LEADREADY_WEBHOOK_URLS is set but LEADREADY_WEBHOOK_SECRET is empty: set a "
                "secret, which receivers use to check each delivery's X-Leadready-Signature"
            )
        return cls(targets, secret.encode(), **timing)

    @property
    def lease(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.timeout_seconds * len(self.urls) + LEASE_MARGIN_SECONDS)


def body(payload: dict[str, Any]) -> bytes:
    """The bytes sent and signed: compact JSON with sorted keys, so a retry sends the same."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: bytes, raw: bytes) -> str:
    """The X-Leadready-Signature header's value for `raw` bytes."""
    return "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()


def retry_delay(failures: int, config: WebhookConfig) -> float:
    """Seconds before the next attempt after `failures` failed ones (1, 2, 4... by default,
    capped at an hour)."""
    return float(min(config.backoff_max_seconds, config.backoff_seconds * 2 ** (failures - 1)))


def utcnow() -> dt.datetime:
    """Now as the store keeps times: timezone-naive UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Attempt:
    """What sending one delivery to its remaining URLs gave."""

    accepted: dict[str, int]
    """URL -> the 2xx status it answered."""
    errors: list[str]
    """One line per URL that did not accept it."""


class Dispatcher:
    """The thread that sends due deliveries (see the module docstring); `wake()` after a
    commit that enqueued one, `close()` on shutdown."""

    def __init__(self, engine: sa.Engine, config: WebhookConfig, metrics: Metrics) -> None:
        self.engine = engine
        self.config = config
        self._metrics = metrics
        self._client = httpx.Client(
            timeout=httpx.Timeout(config.timeout_seconds),
            headers={"User-Agent": "leadready-webhooks", "Content-Type": "application/json"},
            follow_redirects=False,
        )
        self._senders = ThreadPoolExecutor(SENDERS, thread_name_prefix="webhook-send")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.backlog = Backlog(0, 0, None)
        self._retry_at: dt.datetime | None = None
        """The soonest retry this dispatcher scheduled since its last wait."""
        self._counted_at = 0.0
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the outbox now: a delivery was just committed."""
        self._wake.set()

    def health(self) -> dict[str, Any]:
        """The /readyz section: deliveries pending and dead (as last counted, every few
        seconds), and a note when one has waited more than STALE_SECONDS."""
        counted = self.backlog
        waited = (
            (utcnow() - counted.oldest_pending).total_seconds() if counted.oldest_pending else 0.0
        )
        section: dict[str, Any] = {
            "pending": counted.pending,
            "dead": counted.dead,
            "oldest_pending_seconds": round(max(waited, 0.0), 1),
        }
        if waited > STALE_SECONDS:
            section["note"] = (
                f"a webhook delivery has waited {waited / 60:.0f} minutes: a receiver is down "
                "or refusing it (`leadready deliveries list` shows the last errors)"
            )
        return section

    def close(self) -> None:
        """Stop after the round in progress; what is not sent stays pending in the store."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._senders.shutdown()
        self._client.close()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                claimed = self._round()
                self._count()
            except Exception as exc:
                failures += 1
                pause = min(BACKOFF_SECONDS[1], BACKOFF_SECONDS[0] * 2 ** (failures - 1))
                reason = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
                log.warning(
                    "webhook dispatcher could not use the lead store (attempt %d, retrying in "
                    "%.1f s; deliveries stay pending): %s",
                    failures,
                    pause,
                    reason,
                    exc_info=not isinstance(exc, sa.exc.DBAPIError),
                )
                self._stop.wait(pause)
                continue
            if failures:
                log.warning("webhook dispatcher reached the lead store again")
                failures = 0
            if claimed < BATCH:
                self._wake.wait(self._pause())

    def _pause(self) -> float:
        """Seconds until the next look: the poll, or sooner when a retry this dispatcher
        scheduled falls due before it."""
        pause = self.config.poll_seconds
        if self._retry_at is not None:
            pause = min(pause, max(0.0, (self._retry_at - utcnow()).total_seconds()))
            self._retry_at = None
        return pause

    def _round(self) -> int:
        """Claim due deliveries, send them, record each attempt; how many were claimed."""
        now = utcnow()
        with self.engine.connect() as connection:
            if not any_due(connection, now):
                return 0
        with self.engine.begin() as connection:
            claimed = claim(connection, now, now + self.config.lease, BATCH)
        for delivery, attempt in zip(claimed, self._senders.map(self._send, claimed), strict=True):
            self._settle(delivery, attempt)
        return len(claimed)

    def _send(self, delivery: Claimed) -> Attempt:
        raw = body(delivery.payload)
        headers = {
            SIGNATURE_HEADER: signature(self.config.secret, raw),
            DELIVERY_HEADER: delivery.delivery_id,
            EVENT_HEADER: str(delivery.payload.get("type", "")),
        }
        attempt = Attempt({}, [])
        for url in self.config.urls:
            if url in delivery.accepted:
                continue
            try:
                answer = self._client.post(url, content=raw, headers=headers)
            except httpx.HTTPError as exc:
                attempt.errors.append(f"{url}: {type(exc).__name__}: {exc}".rstrip(": "))
                continue
            if answer.is_success:
                attempt.accepted[url] = answer.status_code
            else:
                attempt.errors.append(f"{url}: HTTP {answer.status_code}")
        return attempt

    def _settle(self, delivery: Claimed, attempt: Attempt) -> None:
        now = utcnow()
        failures = delivery.attempts + 1
        error = "; ".join(attempt.errors)[:ERROR_CHARS] or None
        status, due = "delivered", None
        if attempt.errors:
            self._metrics.webhook_failed_attempts.inc(len(attempt.errors))
            due = now + dt.timedelta(seconds=retry_delay(failures, self.config))
            if due > delivery.window_from + dt.timedelta(seconds=self.config.max_age_seconds):
                status, due = "dead", None
            else:
                status = "pending"
        with self.engine.begin() as connection:
            settle(connection, delivery.delivery_id, now, attempt.accepted, status, due, error)
        if due is not None and (self._retry_at is None or due < self._retry_at):
            self._retry_at = due
        if status == "delivered":
            self._metrics.webhooks_delivered.inc()
        elif status == "dead":
            self._metrics.webhooks_dead.inc()
            log.warning(
                "webhook delivery %s is dead after %d attempts: %s",
                delivery.delivery_id,
                failures,
                error,
            )

    def _count(self) -> None:
        if time.monotonic() - self._counted_at < BACKLOG_SECONDS:
            return
        with self.engine.connect() as connection:
            self.backlog = backlog(connection)
        self._counted_at = time.monotonic()
        self._metrics.webhooks_pending.set(self.backlog.pending)
