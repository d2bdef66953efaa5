"""Request and response bodies of the scoring API: the data contract's names and values.

Validation happens here, once, at the boundary: a body that passes can be scored without
further checks, and one that does not gets a 422 naming the field path and what was expected.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

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
)

MAX_EVENTS = 5000
"""Most activities, and most touches, accepted for one lead in one request."""
MAX_BATCH = 1000
MAX_BODY_BYTES = 1 << 20

Strict = ConfigDict(extra="forbid", str_strip_whitespace=True)


def unix_seconds(moment: datetime) -> int:
    """Aware times are converted to UTC; naive ones are taken as UTC (as in the CSV export)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _in_range(moment: datetime) -> datetime:
    if not EARLIEST <= unix_seconds(moment) < LATEST:
        raise ValueError(f"expected {DATE_RANGE}")
    return moment


Moment = Annotated[datetime, AfterValidator(_in_range)]


class LeadIn(BaseModel):
    model_config = Strict
    lead_id: str = Field(min_length=1, max_length=200)
    created_at: Moment
    source: Source
    industry: str | None = Field(default=None, max_length=200)
    company_size: float | None = Field(default=None, ge=0, le=10_000_000)
    country: str | None = Field(default=None, max_length=100)
    budget: Budget = "unknown"
    authority: Authority = "unknown"
    need: Need = "unknown"
    timeframe: Timeframe = "unknown"
    custom: dict[str, str | float | None] = Field(
        default_factory=dict,
        max_length=200,
        description="Values of the custom features the model was trained with (declared in "
        "the training schema); missing ones count as unknown.",
    )


class ActivityIn(BaseModel):
    model_config = Strict
    occurred_at: Moment
    type: ActivityType


class TouchIn(BaseModel):
    model_config = Strict
    occurred_at: Moment
    channel: Channel
    team: Team
    responded: bool | None = None


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
    """One lead with its engagement history; `as_of` defaults to now."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_REQUEST]})
    lead: LeadIn
    activities: list[ActivityIn] = Field(default_factory=list, max_length=MAX_EVENTS)
    touches: list[TouchIn] = Field(default_factory=list, max_length=MAX_EVENTS)
    as_of: Moment | None = None

    @model_validator(mode="after")
    def _as_of_after_creation(self) -> ScoreRequest:
        if self.as_of is not None and unix_seconds(self.as_of) < unix_seconds(self.lead.created_at):
            raise ValueError("as_of is before lead.created_at; expected a time on or after it")
        return self


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


class ScoreResponse(BaseModel):
    lead_id: str
    readiness: float = Field(ge=0, le=1, description="Calibrated P(won within the horizon).")
    potential: float = Field(ge=0, le=1, description="Calibrated P(eventually won).")
    route: Literal["sales", "nurture", "disqualify"]
    route_reason: str
    reasons: Reasons
    context: Context
    model: ModelRef
    as_of: datetime
    scored_at: datetime
    request_id: str


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
