"""Request and response bodies of the scoring API: the data contract's names and values.

Validation happens here, once, at the boundary: a body that passes can be scored without
further checks, and one that does not gets a 422 naming the field path and what was expected.
Values are read as files are (`features.contract`): vocabulary values through `value_key`
("Trade Show" is trade_show), null or "" as unknown (BANT, optional fields), numeric lead ids
as text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from leadready.features.contract import (
    DATE_RANGE,
    EARLIEST,
    LATEST,
    ActivityType,
    Authority,
    Budget,
    Channel,
    Need,
    Source,
    Team,
    Timeframe,
    value_key,
)

MAX_EVENTS = 5000
"""Most activities, and most touches, accepted for one lead in one request."""
MAX_BATCH = 1000
MAX_BODY_BYTES = 1 << 20
"""Largest body of any request but a batch: one lead with 5,000 activities and 5,000 touches
is about 0.9 MB."""
MAX_BATCH_BODY_BYTES = 16 << 20
"""Largest /v1/score/batch body, sized so that MAX_BATCH realistic leads fit: 1,000 leads of
the 3,000-lead sample (44 activities and 19 touches each on average, all of their history)
measured 5.5 MB as JSON, the 1,000 largest of them 9.4 MB; 16 MiB is 1,000 leads of 16 KiB,
above the sample's 95th percentile lead (15 KB), about 3 times its mean."""

Strict = ConfigDict(extra="forbid", str_strip_whitespace=True)


def unix_seconds(moment: datetime) -> int:
    """Aware times are converted to UTC; naive ones are taken as UTC (as in the CSV export)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


_AWARE = (datetime.fromtimestamp(EARLIEST, UTC), datetime.fromtimestamp(LATEST, UTC))
_NAIVE = tuple(bound.replace(tzinfo=None) for bound in _AWARE)


def _in_range(moment: datetime) -> datetime:
    """`moment` when it lies in DATE_RANGE (naive times taken as UTC), compared as datetimes,
    naive with naive bounds: a request holds up to 10,000 of them."""
    earliest, latest = _AWARE if moment.tzinfo else _NAIVE
    if not earliest <= moment < latest:
        raise ValueError(f"expected {DATE_RANGE}")
    return moment


Moment = Annotated[datetime, AfterValidator(_in_range)]


_key = lru_cache(maxsize=4096)(value_key)
"""`value_key` remembered: a request spells the same few values in up to 10,000 events."""


def _vocabulary(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """The value as `value_key` spells it, validated; when that fails, the error of the value
    as sent, so a 422 quotes what the client sent."""
    if isinstance(value, str):
        try:
            return handler(_key(value))
        except ValidationError:
            pass
    return handler(value)


def _is_empty(value: object) -> bool:
    """null, or text that is empty once stripped (as a CSV cell is read)."""
    return value is None or (isinstance(value, str) and not value.strip())


def _unknown_when_empty(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    return "unknown" if _is_empty(value) else _vocabulary(value, handler)


def _none_when_empty(value: object) -> object:
    return None if _is_empty(value) else value


LeadId = Annotated[str, Field(min_length=1, max_length=200)]


def id_text(value: object) -> object:
    """A CRM's numeric id (12345) as the text a file would hold ("12345")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


IdText = BeforeValidator(id_text, json_schema_input_type=LeadId | int)
"""A lead id field that takes a CRM's numeric id too (OpenAPI: the text or an integer)."""
Vocabulary = WrapValidator(_vocabulary)
"""A vocabulary field matched as files match it (`features.contract.value_key`)."""


def unknown_when_empty(vocabulary: Any) -> WrapValidator:
    """A vocabulary field where null and "" mean unknown, as an empty cell does (the OpenAPI
    schema lists the values and null)."""
    return WrapValidator(_unknown_when_empty, json_schema_input_type=vocabulary | None)


Empty = BeforeValidator(_none_when_empty)
"""An optional field where "" means missing, like null."""


class LeadIn(BaseModel):
    """A lead as a CRM sends it. Vocabulary values match ignoring case, spaces and punctuation
    ("Trade Show" is trade_show); null or "" is unknown for BANT and missing for the optional
    fields; `source` is required."""

    model_config = Strict
    lead_id: Annotated[LeadId, IdText] = Field(description="Text; a number is read as its digits.")
    created_at: Moment
    source: Annotated[Source, Vocabulary]
    industry: Annotated[str | None, Empty] = Field(default=None, max_length=200)
    company_size: Annotated[float | None, Empty] = Field(default=None, ge=0, le=10_000_000)
    country: Annotated[str | None, Empty] = Field(default=None, max_length=100)
    budget: Annotated[Budget, unknown_when_empty(Budget)] = "unknown"
    authority: Annotated[Authority, unknown_when_empty(Authority)] = "unknown"
    need: Annotated[Need, unknown_when_empty(Need)] = "unknown"
    timeframe: Annotated[Timeframe, unknown_when_empty(Timeframe)] = "unknown"
    custom: dict[str, str | float | None] = Field(
        default_factory=dict,
        max_length=200,
        description="Values of the custom features the model was trained with (declared in "
        "the training schema); missing ones count as unknown.",
    )


# Events are typed dicts, not models: a request holds up to 10,000 of them, and a model
# instance each made validation about 8 times slower (issue 13's batch of 1,000 leads).
@with_config(Strict)
class ActivityIn(TypedDict):
    occurred_at: Moment
    type: Annotated[ActivityType, Vocabulary]


@with_config(Strict)
class TouchIn(TypedDict):
    occurred_at: Moment
    channel: Annotated[Channel, Vocabulary]
    team: Annotated[Team, Vocabulary]
    responded: NotRequired[Annotated[bool | None, Empty]]
    """Missing, null or "": not known."""


EXAMPLE_REQUEST: dict[str, Any] = {
    "lead": {
        "lead_id": "L-10442",
        "created_at": "2026-05-02T09:30:00Z",
        "source": "webinar",
        "industry": "software",
        "company_size": 240,
        "country": "DE",
        "budget": "confirmed",
        "authority": "influencer",
        "need": "confirmed",
        "timeframe": "1_3m",
    },
    "activities": [
        {"occurred_at": "2026-05-20T14:02:00Z", "type": "pricing_page_view"},
        {"occurred_at": "2026-06-01T10:15:00Z", "type": "webinar_attended"},
        {"occurred_at": "2026-06-10T08:40:00Z", "type": "demo_request"},
    ],
    "touches": [
        {
            "occurred_at": "2026-05-05T09:00:00Z",
            "channel": "email",
            "team": "marketing",
            "responded": True,
        },
        {
            "occurred_at": "2026-06-03T16:00:00Z",
            "channel": "call",
            "team": "sales",
            "responded": None,
        },
    ],
    "as_of": "2026-06-12T00:00:00Z",
}


class ScoreRequest(BaseModel):
    """One lead with its engagement history; `as_of` defaults to now (null or "" too). Events
    after `as_of` are accepted and do not count, as in a file scored at an earlier time. A
    champion trained with a schema also reads the CRM's own names and values (docs/api.md;
    `schema_applied` in the answer)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_REQUEST]})
    lead: LeadIn
    activities: list[ActivityIn] = Field(default_factory=list, max_length=MAX_EVENTS)
    touches: list[TouchIn] = Field(default_factory=list, max_length=MAX_EVENTS)
    as_of: Annotated[Moment | None, Empty] = None

    @model_validator(mode="after")
    def _as_of_after_creation(self) -> ScoreRequest:
        """A lead created after the time it is scored at is a 422, `as_of` given or not (a
        created_at in the future is a typo or a clock off, and has no history to score)."""
        created = self.lead.created_at
        if self.as_of is None:
            now = datetime.now(UTC)
            if unix_seconds(created) > unix_seconds(now):
                raise ValueError(
                    f"lead.created_at {_iso(created)} is in the future (as_of defaults to now, "
                    f"{_iso(now)}); expected a time on or before as_of"
                )
        elif unix_seconds(self.as_of) < unix_seconds(created):
            raise ValueError(
                f"as_of {_iso(self.as_of)} is before lead.created_at {_iso(created)}; expected "
                "a time on or after it"
            )
        return self


def _iso(moment: datetime) -> str:
    return datetime.fromtimestamp(unix_seconds(moment), UTC).isoformat().replace("+00:00", "Z")


class BatchRequest(BaseModel):
    """Up to 1,000 leads; each item is validated on its own, so one bad lead fails alone."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"leads": [EXAMPLE_REQUEST]}]}
    )
    leads: list[dict[str, Any]] = Field(
        max_length=MAX_BATCH,
        description="Each item has the shape of the /v1/score request body (ScoreRequest).",
    )


class Reason(BaseModel):
    feature: str
    label: str = Field(description="Plain words, e.g. 'Budget confirmed'.")
    value: str | float | None
    contribution: float = Field(description="Push on readiness, in log-odds.")


class Reasons(BaseModel):
    """Exact contributions to readiness on the log-odds scale:
    `base_value + sum(up) + sum(down) + others` is the logit of `readiness`."""

    scale: Literal["log-odds"] = "log-odds"
    base_value: float
    up: list[Reason] = Field(description="Up to 5 features pushing readiness up, largest first.")
    down: list[Reason] = Field(description="Up to 5 pushing it down, largest first.")
    others: float = Field(description="Sum of the contributions not listed.")


class Interaction(BaseModel):
    occurred_at: datetime
    kind: Literal["activity", "touch"]
    what: str


class Context(BaseModel):
    activities_90d: int
    touches_90d: int
    activities_by_type_90d: dict[str, int]
    last_interactions: list[Interaction]


class ModelRef(BaseModel):
    name: str
    version: str
    run_id: str
    kind: str = Field(description="Model family behind readiness, e.g. lightgbm.")


class SchemaApplied(BaseModel):
    """How the champion's schema read the request (docs/schema.md): fields as sent -> as
    read, per table (`lead`, `activities`, `touches`; events are summed up per field)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "renamed": {
                        "lead.mql_id": "lead.lead_id",
                        "lead.origin": "lead.source",
                        "lead.Partner tier": "lead.custom.Partner tier",
                    },
                    "values": {"lead.source": {"Paid Search": "web_form"}},
                    "dates": {"lead.created_at": "%d/%m/%Y"},
                    "constants": {"lead.country": "DE"},
                    "dropped": ["lead.Name"],
                }
            ]
        }
    )
    renamed: dict[str, str] = Field(description="Field as sent -> the contract's field.")
    values: dict[str, dict[str, str]] = Field(
        description="Per contract field, each value as sent -> the contract's value."
    )
    dates: dict[str, str] = Field(description="Fields read in the schema's date format.")
    constants: dict[str, str] = Field(description="Fields not sent, set to the schema's constant.")
    dropped: list[str] = Field(description="Display fields: shown in the CRM, never features.")


class ScoreResponse(BaseModel):
    lead_id: str
    readiness: float = Field(ge=0, le=1, description="Calibrated P(won within the horizon).")
    potential: float = Field(ge=0, le=1, description="Calibrated P(eventually won).")
    route: Literal["sales", "nurture", "disqualify"]
    route_reason: str
    explore: bool = Field(
        description="In the exploration slice: the policy would have kept this lead in "
        "nurture (or disqualified it, when the server explores those), and it was sent to "
        "sales at random so the model learns the true win rate of such leads "
        "(LEADREADY_EXPLORE_SHARE; docs/monitoring.md)."
    )
    propensity: float = Field(
        gt=0,
        le=1,
        description="The probability with which this lead got its route: the exploration "
        "share for an explored lead, 1 - the share for one exploration could have sent to "
        "sales but did not, 1 for the rest (hand-raises, leads over the sales threshold). "
        "Weight an outcome by 1 / propensity to estimate win rates free of the policy's "
        "selection.",
    )
    reasons: Reasons
    context: Context
    model: ModelRef
    as_of: datetime
    scored_at: datetime
    request_id: str
    warnings: list[str] = Field(
        description="What was sent but not used, in words: e.g. a `lead.custom` key that is "
        "no custom feature of the model. Empty when everything was used."
    )
    schema_applied: SchemaApplied | None = Field(
        default=None,
        description="What the schema the champion was trained with changed to read the "
        "request (a CRM's own field names and values); null when it was sent in the "
        "contract's names and values.",
    )


class FieldError(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    """Body of 413 and 422 answers: every field that is wrong, and what was expected."""

    detail: list[FieldError]


class Message(BaseModel):
    """Body of 401, 409 and 503 answers."""

    detail: str


class BatchError(BaseModel):
    index: int
    lead_id: str | None
    errors: list[FieldError]


class BatchResponse(BaseModel):
    results: list[ScoreResponse | BatchError]


# ---------------------------------------------------------------- the live lead API (leads_api)

MAX_EVENTS_PER_CALL = 5000
MAX_EVENTS_BODY_BYTES = 4 << 20
"""Largest `POST /v1/events` body: 5,000 events of up to about 800 bytes each."""


@with_config(Strict)
class TouchFields(TypedDict):
    channel: Annotated[Channel, Vocabulary]
    team: Annotated[Team, Vocabulary]
    responded: NotRequired[Annotated[bool | None, Empty]]
    """Missing, null or "": not known."""


EventId = Annotated[str, Field(min_length=1, max_length=200), IdText]


@with_config(Strict)
class EventIn(TypedDict):
    """One activity (`activity`: its type) or touch (`touch`: channel, team, responded) of a
    lead, identified by the CRM's `event_id`."""

    event_id: EventId
    lead_id: Annotated[LeadId, IdText]
    occurred_at: Moment
    activity: NotRequired[Annotated[ActivityType, Vocabulary]]
    touch: NotRequired[TouchFields]


EXAMPLE_EVENTS: dict[str, Any] = {
    "events": [
        {
            "event_id": "crm-act-88121",
            "lead_id": "L-10442",
            "occurred_at": "2026-06-10T08:40:00Z",
            "activity": "demo_request",
        },
        {
            "event_id": "crm-touch-5531",
            "lead_id": "L-10442",
            "occurred_at": "2026-06-11T09:00:00Z",
            "touch": {"channel": "call", "team": "sales", "responded": True},
        },
    ]
}


class EventsRequest(BaseModel):
    """Up to 5,000 events; each is validated on its own, so one bad event fails alone."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_EVENTS]})
    events: list[Any] = Field(
        max_length=MAX_EVENTS_PER_CALL,
        description="Each item: {event_id, lead_id, occurred_at, activity} or "
        "{event_id, lead_id, occurred_at, touch: {channel, team, responded}}.",
    )


class ScoreSummary(BaseModel):
    readiness: float
    route: Literal["sales", "nurture", "disqualify"]
    route_reason: str
    sla_state: Literal["waiting", "met", "at_risk", "taken_back"] | None
    scored_at: datetime


class EventResult(BaseModel):
    index: int
    event_id: str | None
    status: Literal["stored", "duplicate", "error"]
    errors: list[FieldError] | None = None


class EventsAnswer(BaseModel):
    results: list[EventResult]
    leads: dict[str, ScoreSummary] = Field(
        description="Each stored lead that got a new event, scored again."
    )


class LeadPutAnswer(BaseModel):
    lead_id: str
    created: bool
    status: Literal["new", "sales_owned"]
    score: ScoreSummary
    warnings: list[str]
    schema_applied: SchemaApplied | None


class StoredScore(BaseModel):
    readiness: float
    potential: float
    route: Literal["sales", "nurture", "disqualify"]
    route_reason: str
    explore: bool | None = Field(
        description="In the exploration slice, as `/v1/score` answers it (the model's route, "
        "before the live router); null in scores stored before the slice existed."
    )
    propensity: float | None = Field(
        description="The probability of the model's route, as `/v1/score` answers it; null in "
        "scores stored before the slice existed."
    )
    reasons: Reasons
    context: Context
    model: ModelRef
    scored_at: datetime


class SalesState(BaseModel):
    sla_state: Literal["waiting", "met", "at_risk", "taken_back"] | None = Field(
        description="waiting: routed to sales, no sales touch yet, within the SLA; met: a "
        "sales touch came; at_risk: none within the SLA; taken_back: returned to nurture."
    )
    routed_to_sales_at: datetime | None
    waiting_hours: float | None
    sla_due_at: datetime | None
    last_sales_touch_at: datetime | None
    taken_back_at: datetime | None


class HistoryPoint(BaseModel):
    scored_at: datetime
    readiness: float
    potential: float
    route: Literal["sales", "nurture", "disqualify"]


class LeadAnswer(BaseModel):
    lead_id: str
    status: Literal["new", "sales_owned"]
    score: StoredScore | None = Field(description="null until the lead is scored.")
    sales: SalesState | None
    history: list[HistoryPoint]


class QueuedLead(SalesState):
    lead_id: str
    readiness: float
    route_reason: str
    scored_at: datetime


class QueueAnswer(BaseModel):
    route: Literal["sales"]
    total: int
    offset: int
    limit: int
    leads: list[QueuedLead]
