"""Scoring: validated leads -> features -> readiness, potential, route, reasons, context.

One path for the API (a request holds one lead or a batch) and for `leadready score` (a whole
CRM export): both build `Leads` and `Events` arrays, call `features.build.build_features`, and
go through `Engine.predict`. No DataFrame is built per request.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from leadready.features.build import DAY, Events, Leads, build_features
from leadready.features.contract import ACTIVITY_TYPES, BANT_FIELDS, CHANNELS, TEAMS, quoted
from leadready.features.metadata import CrmDetails
from leadready.features.registry import CHALLENGER, NoChampionError
from leadready.features.routing import Exploration, Route, route_reason
from leadready.serving.explain import reasons
from leadready.serving.flat import FlatModel
from leadready.serving.mapping import RequestMapping
from leadready.serving.predict import Prediction, predict
from leadready.serving.schemas import LeadIn, ScoreRequest, unix_seconds
from leadready.serving.store import LoadedModel, champion_version, load_champion, load_version

ACTIVITY_CODES = {name: code for code, name in enumerate(ACTIVITY_TYPES)}
CHANNEL_CODES = {name: code for code, name in enumerate(CHANNELS)}
TEAM_CODES = {name: code for code, name in enumerate(TEAMS)}
CONTEXT_DAYS = 90
LAST_INTERACTIONS = 5


class Engine:
    """A loaded model, ready to score. Immutable: a reload builds a new one and swaps it in.
    `exploration`: the server's exploration slice, applied to every answer (`answers`)."""

    def __init__(self, loaded: LoadedModel, exploration: Exploration | None = None) -> None:
        self.loaded = loaded
        self.exploration = exploration or Exploration()
        self.scorer = loaded.scorer
        self.info = self.scorer.info
        if self.info.crm is None:
            raise NoChampionError(
                f"version {loaded.version} of '{loaded.name}' was trained on a flat table, "
                "not on CRM exports"
            )
        self.crm: CrmDetails = self.info.crm
        self.thresholds = self.info.thresholds
        self.labels = self.info.labels
        self.features = self.info.features
        self.model_ref = loaded.ref
        self.mapping = RequestMapping(loaded.schema, self.info.custom)
        """The champion's schema, as requests in the CRM's names and values are read."""
        self._self_test()

    def _self_test(self) -> None:
        """Score one empty lead, so a model this code cannot use fails at load, not per request."""
        probe = ScoreRequest(
            lead=LeadIn(lead_id="self-test", created_at=datetime(2025, 1, 1), source="other")
        )
        try:
            self.score_requests([probe], datetime(2025, 2, 1, tzinfo=UTC))
        except Exception as exc:  # any failure means the same for every request
            raise NoChampionError(
                f"version {self.loaded.version} of '{self.loaded.name}' cannot score with this "
                f"version of leadready ({type(exc).__name__}: {exc}); retrain with "
                "`leadready train --data DIR`"
            ) from None

    def predict(
        self,
        leads: Leads,
        activities: Events,
        touches: Events,
        lead: np.ndarray,
        as_of: np.ndarray,
        threads: int = 1,
        explain: bool = True,
    ) -> Prediction:
        columns = build_features(leads, activities, touches, lead, as_of)
        return predict(
            self.scorer, columns, columns["hand_raise_7d"], self.thresholds, threads, explain
        )

    def route_reasons(self, prediction: Prediction, percent: bool = False) -> list[str]:
        """Why each lead got its route, with its numbers (as percentages with `percent`)."""
        return [
            route_reason(route, readiness, potential, self.thresholds, days, percent=percent)
            for route, readiness, potential, days in zip(
                prediction.routes.tolist(),
                prediction.readiness.tolist(),
                prediction.potential.tolist(),
                prediction.columns["days_since_hand_raise"].tolist(),
                strict=True,
            )
        ]

    def explain(self, prediction: Prediction, percent: bool = False) -> list[dict[str, Any]]:
        """Each lead's scores as the API and the workspace show them: readiness, potential,
        route, the route's reason (its numbers as percentages with `percent`, as the workspace
        shows them) and the reasons object (contributions in plain words)."""
        said = reasons(prediction.contributions, prediction.columns, self.features, self.labels)
        why = self.route_reasons(prediction, percent)
        return [
            {
                "readiness": float(prediction.readiness[row]),
                "potential": float(prediction.potential[row]),
                "route": str(prediction.routes[row]),
                "route_reason": why[row],
                "reasons": lead_reasons,
            }
            for row, lead_reasons in enumerate(said)
        ]

    def _explored(self, answer: dict[str, Any], explored: bool) -> dict[str, Any]:
        """`explain`'s answer, sent to sales with its reason when the lead is explored."""
        if not explored:
            return answer
        reason = self.exploration.reason(answer["route"], answer["route_reason"])
        return {**answer, "route": Route.SALES.value, "route_reason": reason}

    def score_requests(
        self,
        requests: list[ScoreRequest],
        now: datetime,
        applied: list[dict[str, Any] | None] | None = None,
    ) -> list[dict]:
        """Score validated API requests (one lead each); answers in request order. `applied`:
        what the schema changed to read each one (`RequestMapping.apply`)."""
        return self.score_batch(request_batch(requests, now, self.info.custom), now, applied)[0]

    def score_batch(
        self, batch: Batch, now: datetime, applied: list[dict[str, Any] | None] | None = None
    ) -> tuple[list[dict], Prediction]:
        """The answers to a batch of leads (API requests, or stored leads), with the prediction
        they were made of (its feature columns say which lead raised its hand, and when: the
        live router needs it)."""
        activities, touches = event_arrays(batch.activities, batch.touches)
        lead = np.arange(len(batch.lead_ids))
        prediction = self.predict(batch.leads, activities, touches, lead, batch.as_of)
        return self.answers(batch, prediction, now, applied), prediction

    def answers(
        self,
        batch: Batch,
        prediction: Prediction,
        now: datetime,
        applied: list[dict[str, Any] | None] | None = None,
    ) -> list[dict]:
        """The API's answers to `batch` scored as `prediction`: scores, reasons, the rep's
        context, the model and the request ids. A lead in the exploration slice goes to sales
        (`explore`), and `propensity` is the probability of the route each lead got."""
        scored_at = now.isoformat()
        rep = contexts(batch)
        explored, propensity = self.exploration.choose(batch.lead_ids, prediction.routes)
        explained = self.explain(prediction)
        return [
            {
                "lead_id": lead_id,
                **self._explored(explained[i], bool(explored[i])),
                "explore": bool(explored[i]),
                "propensity": float(propensity[i]),
                "context": rep[i],
                "model": self.model_ref,
                "as_of": datetime.fromtimestamp(int(batch.as_of[i]), UTC).isoformat(),
                "scored_at": scored_at,
                "request_id": uuid.uuid4().hex,
                "warnings": batch.warnings[i],
                "schema_applied": applied[i] if applied else None,
            }
            for i, lead_id in enumerate(batch.lead_ids)
        ]


@dataclass(frozen=True)
class Batch:
    """Leads to score, as arrays: API requests (`request_batch`) and stored leads
    (`serving.live`) alike."""

    lead_ids: list[str]
    leads: Leads
    activities: np.ndarray
    """int64 rows (lead position, Unix seconds, ACTIVITY_CODES code), in the order given."""
    touches: np.ndarray
    """float64 rows (lead position, Unix seconds, CHANNEL_CODES code, TEAM_CODES code,
    responded 1/0/NaN), in the order given."""
    as_of: np.ndarray
    """int64 Unix seconds: when each lead is scored."""
    shown: Callable[[bool, int], str]
    """An event's time as the answer shows it, from (a touch?, its row)."""
    warnings: list[list[str]]


def unknown_custom(lead: LeadIn, custom: Mapping[str, str]) -> list[str]:
    """A warning per `lead.custom` key the model has no feature of: scoring goes on without
    it, but a misspelt key would otherwise pass unnoticed."""
    known = ", ".join(map(quoted, custom)) or "none"
    return [
        f"lead.custom {quoted(key)} is not a custom feature of this model, so it was ignored "
        f"(the model's custom features: {known})"
        for key in lead.custom
        if key not in custom
    ]


def _custom_value(value: str | float | None, kind: str) -> object:
    """A custom feature's value as training saw it: numbers as float (NaN when missing or not
    a number), categories as text ('unknown' when missing)."""
    if kind == "numeric":
        try:
            return float(value) if value is not None else np.nan
        except ValueError:
            return np.nan
    return "unknown" if value is None or value == "" else str(value)


def lead_arrays(
    created_at: np.typing.ArrayLike,
    fields: Mapping[str, Sequence[Any]],
    custom_values: Sequence[Mapping[str, Any]],
    custom: Mapping[str, str],
) -> Leads:
    """Leads as `build_features` takes them, from Unix seconds of creation, a sequence per
    contract field (None or NaN where not known) and each lead's custom values."""
    return Leads(
        created_at=np.asarray(created_at, dtype=np.int64),
        source=np.array(fields["source"], dtype=object),
        industry=np.array([(x or "unknown").lower() for x in fields["industry"]], dtype=object),
        company_size=np.array(
            [np.nan if x is None else x for x in fields["company_size"]], dtype=np.float64
        ),
        **{field: np.array(fields[field], dtype=object) for field in BANT_FIELDS},
        extra={
            name: np.array(
                [_custom_value(values.get(name), kind) for values in custom_values],
                dtype=np.float64 if kind == "numeric" else object,
            )
            for name, kind in custom.items()
        },
    )


def request_batch(requests: list[ScoreRequest], now: datetime, custom: Mapping[str, str]) -> Batch:
    """Validated API requests as a `Batch`; their types were validated already."""
    lead_fields = [r.lead for r in requests]
    leads = lead_arrays(
        [unix_seconds(x.created_at) for x in lead_fields],
        {name: [getattr(x, name) for x in lead_fields] for name in CONTRACT_FIELDS},
        [x.custom for x in lead_fields],
        custom,
    )
    sent = (
        [a["occurred_at"] for r in requests for a in r.activities],
        [t["occurred_at"] for r in requests for t in r.touches],
    )
    activities = [
        (i, unix_seconds(a["occurred_at"]), ACTIVITY_CODES[a["type"]])
        for i, r in enumerate(requests)
        for a in r.activities
    ]
    touches = [
        (
            i,
            unix_seconds(t["occurred_at"]),
            CHANNEL_CODES[t["channel"]],
            TEAM_CODES[t["team"]],
            np.nan if (said := t.get("responded")) is None else float(said),
        )
        for i, r in enumerate(requests)
        for t in r.touches
    ]
    default = unix_seconds(now)
    return Batch(
        lead_ids=[x.lead_id for x in lead_fields],
        leads=leads,
        activities=np.array(activities, dtype=np.int64).reshape(-1, 3),
        touches=np.array(touches, dtype=np.float64).reshape(-1, 5),
        as_of=np.array(
            [default if r.as_of is None else unix_seconds(r.as_of) for r in requests],
            dtype=np.int64,
        ),
        shown=lambda touch, row: sent[touch][row].isoformat(),
        warnings=[unknown_custom(x, custom) for x in lead_fields],
    )


CONTRACT_FIELDS = ("source", "industry", "company_size", *BANT_FIELDS)
"""The lead fields `lead_arrays` reads."""


def event_arrays(
    activities: np.typing.ArrayLike, touches: np.typing.ArrayLike
) -> tuple[Events, Events]:
    """Events as `build_features` takes them, from rows of (lead position, Unix seconds,
    ACTIVITY_CODES code) and of (lead position, Unix seconds, CHANNEL_CODES code, TEAM_CODES
    code, responded 1/0/NaN): the API's requests, stored leads and the workspace's what-ifs."""
    a = np.array(activities, dtype=np.int64).reshape(-1, 3)
    t = np.array(touches, dtype=np.float64).reshape(-1, 5)
    return (
        Events.build(a[:, 0], a[:, 1], a[:, 2], len(ACTIVITY_TYPES)),
        Events.build(t[:, 0], t[:, 1], t[:, 2], len(CHANNELS), team=t[:, 3], responded=t[:, 4]),
    )


def contexts(batch: Batch) -> list[dict[str, object]]:
    """What a sales rep needs before calling, per lead: the activities and touches of the
    CONTEXT_DAYS before its `as_of` (activities also by type, in the order each type first
    came), and its last LAST_INTERACTIONS events up to `as_of`, latest first (at the same
    second, activities before touches, each in the order given)."""
    n = len(batch.lead_ids)
    a, t = batch.activities, batch.touches
    # Activities then touches, each in the order given: an event's place here is the tie order.
    lead = np.concatenate((a[:, 0], t[:, 0].astype(np.int64)))
    second = np.concatenate((a[:, 1], t[:, 1].astype(np.int64)))
    as_of = batch.as_of[lead]
    seen = second <= as_of
    recent = seen & (second > as_of - CONTEXT_DAYS * DAY)
    touches_90d = np.bincount(lead[len(a) :][recent[len(a) :]], minlength=n).tolist()
    by_type: list[dict[str, int]] = [{} for _ in range(n)]
    mine = recent[: len(a)]
    for i, code in zip(a[mine, 0].tolist(), a[mine, 2].tolist(), strict=True):
        counts = by_type[i]
        counts[ACTIVITY_TYPES[code]] = counts.get(ACTIVITY_TYPES[code], 0) + 1
    latest = np.flatnonzero(seen)
    latest = latest[np.lexsort((-second[latest], lead[latest]))]  # stable: ties keep their place
    rank = np.arange(len(latest)) - np.searchsorted(lead[latest], np.arange(n))[lead[latest]]
    pick = latest[rank < LAST_INTERACTIONS]
    last: list[list[dict[str, str]]] = [[] for _ in range(n)]
    for i, at in zip(lead[pick].tolist(), pick.tolist(), strict=True):
        is_touch = at >= len(a)
        row = at - len(a) if is_touch else at
        if is_touch:
            _, _, channel, team, responded = t[row].tolist()
            known = None if math.isnan(responded) else bool(responded)
            what = f"{TEAMS[int(team)]} {CHANNELS[int(channel)]}" + _response(known)
        else:
            what = ACTIVITY_TYPES[a[row, 2]]
        last[i].append(
            {
                "occurred_at": batch.shown(is_touch, row),
                "kind": "touch" if is_touch else "activity",
                "what": what.replace("_", " "),
            }
        )
    return [
        {
            "activities_90d": sum(by_type[i].values()),
            "touches_90d": touches_90d[i],
            "activities_by_type_90d": by_type[i],
            "last_interactions": last[i],
        }
        for i in range(n)
    ]


def _response(responded: bool | None) -> str:
    return "" if responded is None else " (responded)" if responded else " (no response)"


@dataclass(frozen=True)
class Champions:
    """What a server scores with: the CRM-export champion (the API, the workspace's exports and
    lead pages) and the flat-table champion (the workspace's flat uploads). Either may be
    missing, with the reason in `unavailable` ("crm" or "flat")."""

    engine: Engine | None
    flat: FlatModel | None
    unavailable: dict[str, str]


KINDS = {"crm": "CRM-export", "flat": "flat-table"}
"""The two champions a server loads, as `Champions.unavailable` keys them and the log names
them."""
SHADOW = "shadow"
"""The third model a server loads (`Versions` key): the CRM-export `challenger` when it names
another version than the champion, scored in the shadow of every answer (`serving.shadow`)."""
Versions = dict[str, str | None]
"""The registered version to serve of each champion ("crm", "flat") and of the shadow
challenger ("shadow"); None: none of that kind."""


def load_model(
    models_dir: Path, kind: str, version: str, exploration: Exploration | None = None
) -> Engine | FlatModel:
    """Exactly this version of the kind's model, self-tested; NoChampionError when it cannot
    be loaded or used. `exploration`: the CRM-export engine's exploration slice."""
    if kind == "flat":
        return FlatModel(load_version(models_dir, version, flat=True))
    return Engine(load_version(models_dir, version), exploration)


def champion_versions(models_dir: Path) -> tuple[Versions, dict[str, str]]:
    """The versions the `champion` aliases name now, and the CRM-export challenger's when it is
    another version (nothing is loaded), and why a kind has none; NoChampionError, with both
    reasons, when neither champion alias names a version."""
    versions: Versions = {}
    missing: dict[str, str] = {}
    for kind in KINDS:
        try:
            versions[kind] = champion_version(models_dir, flat=kind == "flat")
        except NoChampionError as exc:
            versions[kind] = None
            missing[kind] = str(exc)
    if not any(versions.values()):
        raise NoChampionError(f"{missing['crm']}; and {missing['flat']}")
    versions[SHADOW], why = shadow_version(models_dir, versions["crm"])
    if why:
        missing[SHADOW] = why
    return versions, missing


def shadow_version(models_dir: Path, champion: str | None) -> tuple[str | None, str]:
    """The CRM-export challenger's version when it is another one than `champion`, else None
    and why."""
    try:
        challenger = champion_version(models_dir, CHALLENGER)
    except NoChampionError:
        return None, f"no '{CHALLENGER}' alias is set"
    if challenger == champion:
        return None, "the challenger is the champion"
    return challenger, ""


def load_champions(models_dir: Path) -> Champions:
    """Both champions; NoChampionError, with both reasons, when neither can be loaded."""
    unavailable: dict[str, str] = {}
    engine = flat = None
    try:
        engine = Engine(load_champion(models_dir))
    except NoChampionError as exc:
        unavailable["crm"] = str(exc)
    try:
        flat = FlatModel(load_champion(models_dir, flat=True))
    except NoChampionError as exc:
        unavailable["flat"] = str(exc)
    if engine is None and flat is None:
        raise NoChampionError(f"{unavailable['crm']}; and {unavailable['flat']}")
    return Champions(engine, flat, unavailable)
