"""What travels with a registered model: `ModelInfo`, typed, one model for both training modes.

Training writes it (`training.result.assemble`), the scorer carries it in its pickle, MLflow
keeps it as `model_info.json` and the MLmodel `metadata`, and serving, the CLI and the report
read it. Keys every model has are fields of `ModelInfo`; what only one mode knows is in its own
section, `crm` (CRM exports, mode "snapshots") or `flat` (flat tables), so asking a CRM model
for its id column is a type error, not a KeyError in production.

Versions registered before the metadata was typed carry one flat dict (the mode's keys beside
the shared ones); validating such a dict moves the mode's keys into their section, so their
pickles and `model_info.json` files still read.

Win rates of an empty route (and other measurements with nothing to measure) are NaN in
memory and null in JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    field_validator,
    model_validator,
)

from leadready.features.routing import (
    MAX_DISQUALIFIED_WINS,
    ROUTES,
    SALES_PRECISION,
    Thresholds,
)

Mode = Literal["snapshots", "flat"]
"""How a model was trained: on CRM exports (snapshots of leads over time) or a flat table."""
FeatureKind = Literal["numeric", "categorical"]
SCHEMA_IGNORED = "ignored by the schema"
"""The note of a flat-table column the schema told training to ignore (`excluded`)."""
TOO_GOOD_AUC = 0.97
"""A hold-out ROC AUC at least this is too good to be true for lead scoring: warned about, and
the version is never made champion automatically (`ModelInfo.distrust`). Measured on the Leads
export: 0.983-0.984 with `Tags`; with the defaults (without `Tags` and `Lead Number`)
0.942-0.954 over five hold-outs (`--seed` 0, 1, 2 and the two splits of `bench/quality.py
--splits 2`), 0.930 without `Lead Quality` too; the sample CRM's readiness model reaches 0.832.
0.95 would warn on a retrain that already left the leak out; conversion models on real CRM data
rarely pass 0.9."""


def _nan_from_null(value: object) -> object:
    return math.nan if value is None else value


def _null_from_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


Number = Annotated[
    float,
    BeforeValidator(_nan_from_null),
    PlainSerializer(_null_from_nan, return_type=float | None, when_used="json"),
]
"""A measured value: NaN when there was nothing to measure, written as null in JSON."""


class Section(BaseModel):
    """Immutable, and strict about keys: a misspelt or unknown key is an error naming it."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelKinds(Section):
    """The chosen candidate of each model (the same one twice in flat mode)."""

    readiness: str
    potential: str


class Policy(Section):
    """The routing policy thresholds are chosen for (`leadready train` options; see
    `training.evaluate.choose_thresholds`): the win rate within the horizon of leads at the
    sales threshold, the eventual win rate above which a lead is not disqualified (None in
    versions trained before that rule: the cap alone set the threshold), the most eventual wins
    disqualified, and the sales team's capacity in leads a week (None: no limit)."""

    sales_precision: float = SALES_PRECISION
    disqualify_win_rate: float | None = None
    max_disqualified_wins: float = MAX_DISQUALIFIED_WINS
    sales_capacity: float | None = None


class RouteStats(Section):
    """One route on the hold-out: share of rows, win rate within the horizon (the label in flat
    mode), eventual win rate, row count, and both win rates in the band of the route's rows
    nearest the threshold it borders (see `training.evaluate.route_statistics`; NaN in versions
    trained before they were measured)."""

    share: Number
    win_rate: Number
    eventual_win_rate: Number
    rows: int
    margin_win_rate: Number = math.nan
    margin_eventual_win_rate: Number = math.nan


class LeaderboardRow(Section):
    """A candidate model as selection scored it; `params` is its hyperparameters as JSON."""

    target: Literal["ready", "potential"]
    candidate: str
    cv_roc_auc: Number
    validation_roc_auc: Number
    explainable: bool
    chosen: bool
    params: str


class Fingerprint(Section):
    """The training data, for traceability; both modes have these keys, so the report and
    `leadready models list` read either (a flat table's leads are its labelled rows, and it
    has no activities or touches: "n/a (flat table)")."""

    leads: int
    closed_leads: int
    activities: int | str
    touches: int | str
    first_created_at: str
    last_created_at: str
    sha256: str


class TableFingerprint(Fingerprint):
    file: str
    rows: int
    positives: int
    unlabelled_rows: int


class Split(Section):
    """Rows of each part of the split, and where the test set starts (an ISO time, or
    "stratified random" for a flat table without a time column)."""

    test_from: str
    fit_rows: int
    test_rows: int


class SnapshotSplit(Split):
    validation_from: str
    validation_rows: int


class TableSplit(Split):
    holdout: str
    validation_rows: str  # "5-fold cross-validation": flat mode has no validation slice


class CrmDetails(Section):
    """What only a model trained on CRM exports has: its label horizon and snapshot step
    (days), the export's fingerprint, the time split, and the schema file it was trained with
    (`features.schema.Schema.stored`; empty without one, and in versions trained before it was
    kept), which scoring applies when it is given none; the lost-after rule's days
    (`features.outcome_rules`, which `score --data` applies too) and how many leads it closed;
    and the inputs the export had no information in (`activities`, `touches` without rows, BANT
    fields unknown for every lead); the schema's custom features suspected of leakage (feature
    -> evidence; used all the same, the schema declares them) and each custom feature's ROC AUC
    alone on the closed leads. Versions trained before these read with no rule and none."""

    horizon_days: int
    step_days: int
    data: Fingerprint
    split: SnapshotSplit
    schema_tables: dict[str, dict[str, Any]] = {}
    lost_after_days: int | None = None
    closed_as_lost: int = 0
    empty_inputs: list[str] = []
    suspected_leakage: dict[str, str] = {}
    single_feature_auc: dict[str, Number] = {}

    @property
    def kept_suspects(self) -> dict[str, float]:
        """Inputs the model reads although suspected of leakage, with their ROC AUC alone."""
        return {name: self.single_feature_auc[name] for name in self.suspected_leakage}


class FlatLabel(Section):
    column: str
    positive: str


class StoredMapping(Section):
    """The schema `table` section a flat model was trained with (see `features.table`):
    renames, value maps, date formats, the columns the workspace shows beside each row
    (`display`, never features) and the features marketing can change (`actionable`, the only
    ones the what-if suggests); versions trained before these two have none."""

    columns: dict[str, str]
    values: dict[str, dict[str, str]]
    dates: dict[str, str]
    display: list[str] = []
    actionable: list[str] = []


class Refit(Section):
    """The registered flat model, refitted on every row after the hold-out test."""

    rows: int
    positives: int
    trees: int
    calibration: str


class FlatDetails(Section):
    """What only a flat-table model has: the columns it reads and the types training settled
    on, what it left out and why, single-column ROC AUCs, suspected leakage (column -> evidence,
    excluded or kept by the schema; `leakage_warnings` the AUCs of those kept), the warning a
    too-good hold-out AUC raised, the schema mapping, the refit, the table's fingerprint and the
    split. Versions trained before `suspected_leakage` and `holdout_warning` read with their
    defaults (none, no warning)."""

    id_column: str
    label: FlatLabel
    time_column: str | None
    feature_types: dict[str, FeatureKind]
    excluded: dict[str, str]
    single_feature_auc: dict[str, Number]
    leakage_warnings: dict[str, Number]
    table_mapping: StoredMapping
    refit: Refit
    data: TableFingerprint
    split: TableSplit
    suspected_leakage: dict[str, str] = {}
    holdout_warning: str | None = None

    @property
    def kept_suspects(self) -> dict[str, float]:
        """Inputs the model reads although suspected of leakage, with their ROC AUC alone."""
        return dict(self.leakage_warnings)

    @property
    def distrusted(self) -> set[str]:
        """Columns this training suspected of leakage or was told to ignore: another version
        that reads one of them is not trusted against this one (`training.compare`)."""
        ignored = {name for name, note in self.excluded.items() if note == SCHEMA_IGNORED}
        return set(self.suspected_leakage) | set(self.leakage_warnings) | ignored


class FieldProfile(Section):
    """One monitored value as the model's data had it (`features.drift`): its bins, by `labels`,
    and the share of rows in each. A numeric value's bins are cut at `edges` (each bin holds
    values up to its edge, the last one the rest), then `missing`; a categorical value's bins
    are its categories."""

    kind: FeatureKind
    labels: list[str]
    shares: list[float]
    edges: list[float] = []


class Profile(Section):
    """What `leadready monitor` compares live traffic with (docs/monitoring.md): each monitored
    input of a lead (`features.drift.lead_inputs`) on the rows the model was fitted on, and the
    readiness the model gave its hold-out (its bins and mean), with the row counts of both."""

    inputs: dict[str, FieldProfile]
    readiness: FieldProfile
    readiness_mean: Number
    fit_rows: int
    holdout_rows: int


CRM_KEYS = tuple(CrmDetails.model_fields)
FLAT_KEYS = tuple(FlatDetails.model_fields)
SECTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "snapshots": ("crm", CRM_KEYS),
    "flat": ("flat", FLAT_KEYS),
}
"""Per mode, its section and the keys a legacy flat dict held at the top level for it."""


class ModelInfo(Section):
    """The metadata of a registered model. `metrics` are hold-out point values
    (`test_{model}_{metric}`), `intervals` model -> metric -> (value, low, high) with 95%
    bootstrap bounds, `drivers` the mean absolute contribution (log-odds) per feature, largest
    first, `labels` feature -> plain words, `custom` the schema's extra lead features (CRM
    mode) with their kind; `profile` what monitoring compares live traffic with; `trained_at`
    is ISO 8601 UTC, to the second."""

    model_name: str
    mode: Mode
    cold_start: bool
    trained_at: str
    model_kind: ModelKinds
    thresholds: Thresholds
    policy: Policy
    routes: dict[str, RouteStats]
    routing_notes: list[str] = []  # each adjustment the policy made to the thresholds
    metrics: dict[str, Number]
    intervals: dict[str, dict[str, tuple[Number, Number, Number]]]
    leaderboard: list[LeaderboardRow]
    drivers: dict[str, Number]
    labels: dict[str, str]
    features: list[str]
    custom: dict[str, FeatureKind] = {}  # absent from versions trained before schema files
    profile: Profile | None = None  # none in flat models and versions trained before monitoring
    crm: CrmDetails | None = None
    flat: FlatDetails | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_legacy(cls, data: Any) -> Any:
        """A flat dict of a version registered before the metadata was typed (no `crm` or
        `flat` section) with its mode's keys moved into their section."""
        if not isinstance(data, Mapping) or "crm" in data or "flat" in data:
            return data
        if data.get("mode") not in SECTIONS:
            return data  # the mode's own error names what is wrong
        section, keys = SECTIONS[data["mode"]]
        return {
            **{k: v for k, v in data.items() if k not in keys},
            section: {k: v for k, v in data.items() if k in keys},
        }

    @field_validator("routes")
    @classmethod
    def _every_route(cls, routes: dict[str, RouteStats]) -> dict[str, RouteStats]:
        if set(routes) != set(ROUTES):
            raise ValueError(f"needs statistics of the routes {', '.join(ROUTES)}")
        return routes

    @model_validator(mode="after")
    def _one_section(self) -> ModelInfo:
        """Exactly the section of the model's mode."""
        section = SECTIONS[self.mode][0]
        for name in ("crm", "flat"):
            if (getattr(self, name) is not None) != (name == section):
                state = "needs" if name == section else "cannot have"
                raise ValueError(f"a model of mode '{self.mode}' {state} a '{name}' section")
        return self

    @property
    def distrust(self) -> list[str]:
        """Why this version must not become champion automatically, one line each (none when
        nothing is suspect): each input it reads although suspected of leakage, and a hold-out
        ROC AUC of TOO_GOOD_AUC or more."""
        details = self.details
        out = [
            f"it reads '{name}', suspected of leakage: "
            + (details.suspected_leakage.get(name) or f"ROC AUC {auc:.3f} alone")
            for name, auc in details.kept_suspects.items()
        ]
        auc = self.metrics.get("test_readiness_roc_auc", math.nan)
        if auc >= TOO_GOOD_AUC:
            out.append(f"its hold-out ROC AUC {auc:.4f} is too good to be true (>= {TOO_GOOD_AUC})")
        return out

    @property
    def details(self) -> CrmDetails | FlatDetails:
        """The mode's section; both have `data` and `split`, which the report reads."""
        if self.flat is not None:
            return self.flat
        assert self.crm is not None  # validation gives every model its mode's section
        return self.crm
