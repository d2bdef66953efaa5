"""The server's Prometheus metrics, and the ASGI middleware that limits bodies and counts requests.

The middleware sits outside FastAPI, so a body over the limit is refused (413) before any route,
dependency or key check reads it, and every answer, refusals included, is counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from leadready.serving.schemas import MAX_BODY_BYTES


class Metrics:
    """Prometheus metrics of one app: requests, latency (seconds), scores by route, the audit
    log's rows waiting for the database and its failed writes (`serving.audit`), and webhook
    deliveries (`serving.webhooks`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "leadready_requests_total",
            "HTTP requests",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "leadready_request_seconds",
            "Request latency",
            ("endpoint", "status"),
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.scores = Counter(
            "leadready_scores_total", "Leads scored, by route", ("route",), registry=self.registry
        )
        # With several workers: the sum over the living ones.
        self.audit_pending = Gauge(
            "leadready_audit_pending_rows",
            "Scores answered and journaled but not yet in the audit database",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "leadready_shadow_dropped",
            "Leads the shadow challenger did not score because it was behind (serving.shadow)",
            registry=self.registry,
        )
        self.audit_failed_writes = Counter(
            "leadready_audit_failed_writes",
            "Failed attempts to write audit rows to the database (each is retried)",
            registry=self.registry,
        )
        self.webhooks_delivered = Counter(
            "leadready_webhooks_delivered",
            "Webhook deliveries every URL accepted (serving.webhooks)",
            registry=self.registry,
        )
        self.webhook_failed_attempts = Counter(
            "leadready_webhook_failed_attempts",
            "Webhook sends a URL did not accept (no answer, or not a 2xx); each is retried",
            registry=self.registry,
        )
        self.webhooks_dead = Counter(
            "leadready_webhooks_dead",
            "Webhook deliveries given up after their retry window (dead letters)",
            registry=self.registry,
        )
        # The outbox is shared: every worker counts the same rows, so not a sum.
        self.webhooks_pending = Gauge(
            "leadready_webhooks_pending",
            "Webhook deliveries waiting in the outbox, as last counted",
            multiprocess_mode="max",
            registry=self.registry,
        )


class LimitsAndMetrics:
    """ASGI middleware: 413 for bodies over 1 MiB (or a path's own limit in `larger`, bytes),
    with Content-Length or chunked, and request counts and latency by endpoint; paths not in
    `known_paths` count as "other", so probes of random URLs cannot grow the metrics without
    bound."""

    def __init__(
        self,
        app: Any,
        metrics: Metrics,
        known_paths: frozenset[str],
        larger: Mapping[str, int],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths
        self.larger = larger

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "started": False}
        route = scope.get("path", "")

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        limit = self.larger.get(route, MAX_BODY_BYTES)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _too_large(send_wrapper, limit)
        else:
            received = {"bytes": 0, "over": False}

            async def limited_receive() -> dict:
                message = await receive()
                received["bytes"] += len(message.get("body", b""))
                if received["bytes"] > limit:
                    received["over"] = True
                    raise _BodyTooLarge
                return message

            async def guarded_send(message: dict) -> None:
                # A body without Content-Length (chunked) is only found too large while the app
                # reads it; FastAPI answers that with a 400 "error parsing the body", which the
                # 413 below replaces.
                if not received["over"]:
                    await send_wrapper(message)

            try:
                await self.app(scope, limited_receive, guarded_send)
            except Exception:
                if not received["over"]:
                    raise
            if received["over"] and not status["started"]:
                await _too_large(send_wrapper, limit)
        elapsed = time.perf_counter() - started
        code = str(status["code"])
        endpoint = route if route in self.known_paths else "other"
        self.metrics.requests.labels(endpoint, code).inc()
        self.metrics.latency.labels(endpoint, code).observe(elapsed)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Any, limit: int) -> None:
    """The 413 for a body over `limit` bytes, in the API's error shape."""
    message = f"request body is larger than {limit / (1 << 20):g} MiB; send fewer leads per request"
    body = json.dumps({"detail": [{"field": "body", "message": message}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
