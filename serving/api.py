"""The `/v1` routes: scoring, the champion's description, outcomes and reload.

The API key is the router's first dependency, so it is checked before any other (the engine,
the body's contents): a caller without a valid key learns nothing about what this server has
loaded. Scoring is CPU-bound and about a millisecond a lead, so its handlers and their
dependencies are `async` and score inline on the worker's event loop: a sync handler, and each
sync dependency, would hop to the thread pool and back, which cost more than the scoring (issue
13's profile); answers are serialised with orjson. The other handlers, which read files or the
database, stay plain `def` (the thread pool). Errors name the
model and what to do, never a tracking URI or a path (a remote URI may carry credentials); the
server log has the full reason.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import PlainValidator, ValidationError
from starlette.datastructures import State

from leadready.features.contract import quoted
from leadready.features.registry import FLAT_MODEL_NAME, MODEL_NAME, NoChampionError
from leadready.serving import outcomes
from leadready.serving.audit import AuditError, AuditLog
from leadready.serving.engine import Engine, Versions
from leadready.serving.fleet import CONVERGE_SECONDS, describe, publish_champions, readiness
from leadready.serving.mapping import MappingError
from leadready.serving.middleware import Metrics
from leadready.serving.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    Message,
    ScoreRequest,
    ScoreResponse,
    id_text,
)
from leadready.serving.state import ServerDep, served_models
from leadready.serving.throttle import MAX_FAILURES, WINDOW, KeyThrottle, client_address

NO_ENGINE = (
    f"no champion of '{MODEL_NAME}' is loaded; train one with `leadready train --data DIR`, "
    "then reload the server (SIGHUP to `leadready serve`, or `POST /v1/admin/reload`)"
)
"""The 503 of scoring without a CRM-export champion; why it is missing is in the server log."""
NOTHING_TO_RELOAD = (
    f"neither a champion of '{MODEL_NAME}' nor one of '{FLAT_MODEL_NAME}' can be loaded, so the "
    "models served so far stay (the server log says why); train one with `leadready train "
    "--data DIR` (or `--table FILE` for a flat table)"
)


async def require_key(request: Request) -> None:
    """401 unless the request carries one of the configured keys; open when none are set.
    An address with too many wrong keys gets 429 without its key being looked at. Inline on
    the event loop: a right key costs one `stat`; only a wrong one writes (a few small files)."""
    keys: list[bytes] = request.app.state.keys
    if not keys:
        return
    throttle: KeyThrottle = request.app.state.throttle
    address = client_address(request)
    wait = throttle.wait(address)
    if wait:
        raise too_many_wrong_keys(wait)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    supplied = token.strip().encode()
    # Compare against every key, always, so timing says nothing about which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(supplied, key)
    if scheme.lower() != "bearer" or not matched:
        # A request without the header guessed nothing: only keys that were sent count.
        if header and (wait := throttle.failed(address)):
            raise too_many_wrong_keys(wait)
        raise HTTPException(
            401,
            "missing or invalid API key; send 'Authorization: Bearer KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def too_many_wrong_keys(wait: float) -> HTTPException:
    seconds = math.ceil(wait)
    return HTTPException(
        429,
        f"too many wrong API keys from this address ({MAX_FAILURES} within "
        f"{WINDOW:.0f} s); try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


V1_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "Missing or invalid API key"},
    413: {
        "model": ErrorResponse,
        "description": "Body over 1 MiB (16 MiB for /v1/score/batch: 1,000 realistic leads)",
    },
    422: {
        "model": ErrorResponse,
        "description": "Invalid input: each wrong field's path and what was expected",
    },
    429: {"model": Message, "description": "Too many wrong API keys from this address"},
    503: {
        "model": Message,
        "description": "No champion trained on a CRM export is loaded, or the audit log "
        "cannot be written",
    },
}

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=V1_ERRORS)


async def get_engine(request: Request) -> Engine:
    engine: Engine | None = request.app.state.engine
    if engine is None:
        raise HTTPException(503, NO_ENGINE)
    return engine


async def get_audit(request: Request) -> AuditLog:
    return request.app.state.audit


EngineDep = Annotated[Engine, Depends(get_engine)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]


class FastJSON(JSONResponse):
    """A JSON answer serialised by orjson: several times faster than `json.dumps`, and the
    same JSON, since the scores hold no NaN (which `json.dumps` refuses and orjson writes as
    null); numpy numbers are written as numbers."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def field_errors(
    errors: Iterable[Mapping[str, Any]], sent_as: Mapping[str, str] | None = None
) -> list[dict[str, str]]:
    """Pydantic errors as {field: dotted path (as the client sent it, when the schema renamed
    it: `sent_as`), message: what was wrong and expected, and the value sent when it is one
    value (cut as `features.contract.quoted` cuts it)}."""
    out = []
    for error in errors:
        path = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        path = (sent_as or {}).get(path, path)
        message = error.get("msg", "invalid")
        value = error.get("input")
        if error.get("type") != "missing" and (value is None or isinstance(value, SCALARS)):
            message += f"; got {quoted(value) if isinstance(value, str) else json.dumps(value)}"
        out.append({"field": printable(path), "message": printable(message)})
    return out


SCALARS = (str, int, float, bool)
"""Values a 422 message quotes; a whole object or list is not repeated back."""


def printable(text: str) -> str:
    """`text` as UTF-8 can carry it back: a lone surrogate, which a JSON escape such as
    "\\udc80" smuggles into a string, becomes that escape again instead of failing the
    response (a 500)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _audit_and_count(results: list[dict], audit: AuditLog, metrics: Metrics) -> None:
    """Journal the scores before they are answered: a score without its audit row is a 503."""
    scored = [r for r in results if "route" in r]
    try:
        audit.record(
            [
                {**r, "model_name": r["model"]["name"], "model_version": r["model"]["version"]}
                for r in scored
            ]
        )
    except AuditError as exc:
        raise HTTPException(503, str(exc)) from None
    for r in scored:
        metrics.scores.labels(r["route"]).inc()


class InvalidLead(Exception):
    """A request that cannot be scored: its field errors, and its lead id when it has one."""

    def __init__(self, errors: list[dict[str, str]], body: Any) -> None:
        self.errors = errors
        lead = body.get("lead") if isinstance(body, dict) else None
        lead_id = id_text(lead.get("lead_id")) if isinstance(lead, dict) else None
        self.lead_id = printable(lead_id) if isinstance(lead_id, str) else None


def read_request(body: Any, engine: Engine) -> tuple[ScoreRequest, dict[str, Any] | None]:
    """One request body read with the champion's schema (`serving.mapping`), then validated;
    with what the schema changed. InvalidLead naming each field as the client sent it."""
    try:
        mapped = engine.mapping.apply(body)
    except MappingError as exc:
        raise InvalidLead(exc.errors, exc.body) from None
    try:
        return ScoreRequest.model_validate(mapped.body), mapped.applied
    except ValidationError as exc:
        raise InvalidLead(field_errors(list(exc.errors()), mapped.sent_as), mapped.body) from None


ScoreBody = Annotated[
    Any, PlainValidator(lambda body: body, json_schema_input_type=ScoreRequest), Body()
]
"""The /v1/score body, documented as a ScoreRequest and validated by `read_request` (after the
schema's mapping), so its 422s are those of a batch's items."""


def _shadow(state: State, requests: list[ScoreRequest], answers: list[dict]) -> None:
    """Hand the answered requests to the shadow challenger, if one is loaded (`serving.shadow`):
    it scores them after the answer left."""
    state.shadowing.submit(state.shadow, requests, answers)


@router.post("/score", response_model=ScoreResponse, tags=["scoring"])
async def score(
    body: ScoreBody, engine: EngineDep, audit: AuditDep, server: ServerDep, http: Request
) -> JSONResponse:
    """Score one lead: readiness, potential, route and reasons, with context for the rep."""
    try:
        request, applied = read_request(body, engine)
    except InvalidLead as exc:
        return JSONResponse({"detail": exc.errors}, status_code=422)
    results = engine.score_requests([request], datetime.now(UTC), [applied])
    _audit_and_count(results, audit, server.metrics)
    _shadow(http.app.state, [request], results)
    return FastJSON(results[0])


BATCH_PATH = "/v1/score/batch"


@router.post(BATCH_PATH.removeprefix(router.prefix), response_model=BatchResponse, tags=["scoring"])
async def score_batch(
    body: BatchRequest, engine: EngineDep, audit: AuditDep, server: ServerDep, http: Request
) -> JSONResponse:
    """Score up to 1,000 leads; a lead that fails validation gets its errors, in place."""
    valid: list[ScoreRequest] = []
    applied: list[dict[str, Any] | None] = []
    slots: list[dict | int] = []
    for i, item in enumerate(body.leads):
        try:
            request, changes = read_request(item, engine)
        except InvalidLead as exc:
            slots.append({"index": i, "lead_id": exc.lead_id, "errors": exc.errors})
            continue
        valid.append(request)
        applied.append(changes)
        slots.append(len(valid) - 1)
    scored = engine.score_requests(valid, datetime.now(UTC), applied) if valid else []
    _audit_and_count(scored, audit, server.metrics)
    _shadow(http.app.state, valid, scored)
    results = [scored[s] if isinstance(s, int) else s for s in slots]
    return FastJSON({"results": results})


@router.get("/model", tags=["model"])
def model(engine: EngineDep) -> dict[str, Any]:
    """The champion: version, test metrics, routing thresholds and global drivers."""
    info = engine.info
    # JSON forms: an empty route's win rates (NaN) are null.
    shown = info.model_dump(mode="json", include={"metrics", "thresholds", "policy", "routes"})
    return {
        "model": engine.model_ref,
        "trained_at": info.trained_at,
        "horizon_days": engine.crm.horizon_days,
        "metrics": shown["metrics"],
        "thresholds": shown["thresholds"],
        "policy": shown["policy"],
        "routes": shown["routes"],
        "drivers": [
            {"feature": f, "label": engine.labels.get(f, f), "mean_abs": v}
            for f, v in info.drivers.items()
        ],
        "data": engine.crm.data.model_dump(mode="json"),
    }


@router.post("/outcomes", response_model=outcomes.OutcomesImported, tags=["outcomes"])
def post_outcomes(
    body: Annotated[list[outcomes.OutcomeIn], Body(max_length=outcomes.MAX_OUTCOMES)],
    audit: AuditDep,
) -> JSONResponse:
    """Record won or lost outcomes of leads (up to 10,000; a lead sent again is replaced).
    The workspace's Outcomes page compares them with the scores in the audit log."""
    try:
        stored = outcomes.store(audit.engine, body)
    except outcomes.OutcomeError as exc:
        return JSONResponse(
            {"detail": [{"field": "lead_id", "message": str(exc)}]}, status_code=422
        )
    return JSONResponse(stored.model_dump())


@router.post(
    "/admin/reload",
    tags=["model"],
    responses={
        202: {"description": "Published; not every worker has loaded it yet"},
        409: {"model": Message, "description": "No champion, or it could not be loaded"},
    },
)
def reload(server: ServerDep, request: Request) -> JSONResponse:
    """Load the versions the champion aliases point to now (of the CRM-export model and of
    the flat-table model) in every worker; requests in flight finish on the old ones.

    Under `serve`, the versions are published as the next generation, and the answer waits
    (up to 30 s) until every worker has loaded them."""
    state = request.app.state
    if server.run is None:
        try:
            failed = server.reload(state)
        except NoChampionError:
            raise HTTPException(409, NOTHING_TO_RELOAD) from None
        if failed:
            raise HTTPException(409, refused(failed))
        return JSONResponse(served_models(state))
    try:
        generation = publish_champions(server.run, server.settings.models_dir)
    except NoChampionError:
        raise HTTPException(409, NOTHING_TO_RELOAD) from None
    statuses = server.run.wait(generation.number, CONVERGE_SECONDS)
    failed = {
        k: v for s in statuses if s.generation == generation.number for k, v in s.failed.items()
    }
    if failed:
        raise HTTPException(409, refused(failed))
    waiting = [s.pid for s in statuses if s.generation < generation.number]
    body = {
        "generation": generation.number,
        "published": {
            "model": generation.versions["crm"],
            "flat_model": generation.versions["flat"],
        },
        **served_models(state),
        "workers": readiness(server.run)[0],
    }
    if waiting:
        body["detail"] = (
            f"{len(waiting)} of {len(statuses)} workers have not loaded generation "
            f"{generation.number} within {CONVERGE_SECONDS:.0f} s; /readyz says when they have"
        )
        return JSONResponse(body, status_code=202)
    return JSONResponse(body)


def refused(failed: Versions) -> str:
    """Why a reload did not take, for a client: versions only, never the store or a path."""
    return (
        f"{describe(failed)} could not be loaded, so the models served so far stay (the server "
        "log says why); promote another version and reload again"
    )
