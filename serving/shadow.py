"""The shadow challenger: the `challenger` version scores what the champion answered, off the
latency path, and its readiness and route go to the audit log under the same request id.

A handler hands its validated requests and answers to `Shadow.submit` after scoring (a queue
put: microseconds); one thread per worker takes whatever has queued, scores it as one batch with
the challenger (features from the same requests, each at its answer's `as_of`, no reasons) and
appends the rows to the audit journal's `shadow_scores` table. A challenger that falls behind
drops work instead of holding answers: at most `MAX_WAITING` requests wait, the rest are counted
in `leadready_shadow_dropped_total` and logged. Nothing a shadow score says reaches a client or
a route; `leadready models compare --live` compares the two once outcomes arrive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from leadready.serving.engine import Engine, event_arrays, request_batch
from leadready.serving.schemas import ScoreRequest

if TYPE_CHECKING:
    from leadready.serving.audit import AuditLog
    from leadready.serving.middleware import Metrics

log = logging.getLogger("leadready.serve")

MAX_WAITING = 10_000
"""Requests waiting for the shadow thread at most; more are dropped (and counted)."""
MAX_BATCH = 1_000
"""Leads the shadow thread scores in one batch at most."""
GATHER_SECONDS = 0.25
"""How long the shadow thread lets requests gather after the first before it scores them:
one batch every quarter second costs the worker's event loop far less than scoring each
request alone between two answers, which at concurrency 1 nearly doubled the answers' p50
(`bench/serve.py --shadow`: the thread holds the interpreter lock while it builds features)."""
CLOSE_SECONDS = 30.0
"""How long shutdown waits for the requests queued for the shadow (at most MAX_WAITING: a few
seconds of scoring); what is left then is not scored."""


@dataclass(frozen=True)
class Work:
    """Requests the champion answered, with what the shadow rows repeat of its answers."""

    engine: Engine
    requests: list[ScoreRequest]
    request_ids: list[str]
    as_of: list[int]
    """Unix seconds each answer was scored at."""


class Shadow:
    """One worker's shadow-scoring thread (see the module docstring)."""

    def __init__(self, audit: AuditLog, metrics: Metrics) -> None:
        self._audit = audit
        self._metrics = metrics
        self._queue: queue.Queue[Work | None] = queue.Queue(MAX_WAITING)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shadow-challenger", daemon=True)
        self._thread.start()

    def submit(
        self, engine: Engine | None, requests: list[ScoreRequest], answers: list[dict]
    ) -> None:
        """Queue `requests` (and the champion's `answers`, in order) for `engine`; None: no
        challenger is loaded."""
        if engine is None or not requests:
            return
        as_of = [int(datetime.fromisoformat(a["as_of"]).timestamp()) for a in answers]
        work = Work(engine, requests, [a["request_id"] for a in answers], as_of)
        try:
            self._queue.put_nowait(work)
        except queue.Full:
            self._metrics.shadow_dropped.inc(len(requests))
            log.warning("the shadow challenger is behind; %d requests not scored", len(requests))

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            self._stopping.wait(GATHER_SECONDS)
            batch = [first]
            leads = len(first.requests)
            while leads < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop once what is queued is written
                    break
                batch.append(more)
                leads += len(more.requests)
            for engine in dict.fromkeys(w.engine for w in batch):
                try:
                    self._score([w for w in batch if w.engine is engine])
                except Exception:  # a thread that dies silently would shadow nothing more
                    log.exception("the shadow challenger could not score %d requests", leads)

    def _score(self, work: list[Work]) -> None:
        engine = work[0].engine
        now = datetime.now(UTC)
        requests = [r for w in work for r in w.requests]
        batch = dataclasses.replace(
            request_batch(requests, now, engine.info.custom),
            as_of=np.array([t for w in work for t in w.as_of], dtype=np.int64),
        )
        activities, touches = event_arrays(batch.activities, batch.touches)
        prediction = engine.predict(
            batch.leads,
            activities,
            touches,
            np.arange(len(requests)),
            batch.as_of,
            explain=False,
        )
        model = engine.model_ref
        scored_at = now.isoformat()
        self._audit.record(
            [
                {
                    "request_id": request_id,
                    "lead_id": lead_id,
                    "model_name": model["name"],
                    "model_version": model["version"],
                    "readiness": float(prediction.readiness[i]),
                    "potential": float(prediction.potential[i]),
                    "route": str(prediction.routes[i]),
                    "scored_at": scored_at,
                    "as_of": datetime.fromtimestamp(int(batch.as_of[i]), UTC).isoformat(),
                    "explore": None,
                    "propensity": None,
                }
                for i, (request_id, lead_id) in enumerate(
                    zip((x for w in work for x in w.request_ids), batch.lead_ids, strict=True)
                )
            ],
            table="shadow",
        )

    def close(self) -> None:
        """Score what is queued (for up to CLOSE_SECONDS), then stop the thread."""
        deadline = time.monotonic() + CLOSE_SECONDS
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=CLOSE_SECONDS)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning(
                "shutting down with about %d requests not scored by the shadow challenger",
                self._queue.qsize(),
            )
