"""The typed model metadata (`features.metadata.ModelInfo`): what a bad dict is told, the flat
dicts of versions registered before it was typed, and its round trips through a pickle and
JSON (NaN in memory, null in JSON)."""

from __future__ import annotations

import json
import math
import pickle

import pytest
from legacy_metadata import legacy_info
from pydantic import ValidationError

from leadready.features.metadata import CrmDetails, FlatDetails, ModelInfo, Policy
from leadready.features.model import Calibrated, FeatureEncoder, LeadScorer, LinearMargin
from leadready.features.routing import Thresholds
from leadready.training.evaluate import Chosen
from leadready.training.result import model_info

pytestmark = pytest.mark.unit

NAN = float("nan")
ROUTES = {
    "sales": {"share": 0.25, "win_rate": 0.6, "eventual_win_rate": 0.7, "rows": 50},
    "nurture": {"share": 0.0, "win_rate": NAN, "eventual_win_rate": NAN, "rows": 0},
    "disqualify": {"share": 0.75, "win_rate": 0.01, "eventual_win_rate": 0.05, "rows": 150},
}
LEADERBOARD = [
    {
        "target": "ready",
        "candidate": "lightgbm",
        "cv_roc_auc": 0.81,
        "validation_roc_auc": 0.8,
        "explainable": True,
        "chosen": True,
        "params": '{"num_leaves": 15}',
    }
]
CRM = {
    "horizon_days": 90,
    "step_days": 14,
    "data": {
        "leads": 300,
        "activities": 4000,
        "touches": 900,
        "closed_leads": 200,
        "first_created_at": "2025-01-01 00:00:00",
        "last_created_at": "2025-12-01 00:00:00",
        "sha256": "0123456789abcdef",
    },
    "split": {
        "validation_from": "2025-08-01T00:00:00+00:00",
        "test_from": "2025-10-01T00:00:00+00:00",
        "fit_rows": 1000,
        "validation_rows": 200,
        "test_rows": 200,
    },
}
FLAT = {
    "id_column": "lead",
    "label": {"column": "converted", "positive": "yes"},
    "time_column": None,
    "feature_types": {"visits": "numeric", "source": "categorical"},
    "excluded": {"comment": "free text"},
    "single_feature_auc": {"visits": 0.7, "source": 0.6},
    "leakage_warnings": {},
    "table_mapping": {"columns": {"Lead ID": "lead"}, "values": {}, "dates": {}},
    "refit": {"rows": 600, "positives": 180, "trees": 40, "calibration": "Platt scaling"},
    "data": {
        "leads": 600,
        "closed_leads": 600,
        "activities": "n/a (flat table)",
        "touches": "n/a (flat table)",
        "first_created_at": "",
        "last_created_at": "",
        "file": "leads.csv",
        "rows": 600,
        "positives": 180,
        "unlabelled_rows": 0,
        "sha256": "fedcba9876543210",
    },
    "split": {
        "holdout": "stratified random",
        "test_from": "stratified random",
        "fit_rows": 480,
        "validation_rows": "5-fold cross-validation",
        "test_rows": 120,
    },
}


def _info(details: CrmDetails | FlatDetails, custom: dict[str, str]) -> ModelInfo:
    features = ["visits", "source"]
    return model_info(
        details=details,
        cold_start=False,
        kinds={"ready": "lightgbm", "potential": "lightgbm"},
        routing=Chosen(Thresholds(sales=0.4, disqualify=0.05), ()),
        policy=Policy(sales_precision=0.5, max_disqualified_wins=0.02),
        routes=ROUTES,
        intervals={"readiness": {"roc_auc": (0.8, 0.75, 0.85), "ece": (0.02, 0.01, 0.03)}},
        leaderboard=LEADERBOARD,
        drivers={"visits": 0.5, "source": 0.2},
        labels={name: name for name in features},
        features=features,
        custom=custom,
    )


def crm_info() -> ModelInfo:
    return _info(CrmDetails.model_validate(CRM), {"partner_tier": "categorical"})


def flat_info() -> ModelInfo:
    return _info(FlatDetails.model_validate(FLAT), {})


def test_each_mode_has_its_section_and_only_it():
    crm, flat = crm_info(), flat_info()
    assert (crm.mode, crm.model_name, crm.flat) == ("snapshots", "sales-readiness", None)
    assert crm.crm.horizon_days == 90 and crm.details is crm.crm
    assert (flat.mode, flat.model_name, flat.crm) == ("flat", "sales-readiness-flat", None)
    assert flat.flat.id_column == "lead" and flat.details is flat.flat
    assert crm.metrics == {"test_readiness_roc_auc": 0.8, "test_readiness_ece": 0.02}
    assert crm.thresholds == Thresholds(sales=0.4, disqualify=0.05)
    assert math.isnan(crm.routes["nurture"].win_rate)


def test_a_bad_dict_is_refused_naming_the_field():
    stored = crm_info().model_dump()
    with pytest.raises(ValidationError, match=r"thresholds\.sales\n.*valid number"):
        ModelInfo.model_validate({**stored, "thresholds": {"sales": "high", "disqualify": 0.1}})
    del stored["crm"]["horizon_days"]
    with pytest.raises(ValidationError, match=r"crm\.horizon_days\n\s+Field required"):
        ModelInfo.model_validate(stored)
    flat = flat_info().model_dump()
    with pytest.raises(ValidationError, match=r"flat\.feature_types\.visits\n.*'numeric'"):
        ModelInfo.model_validate(
            {**flat, "flat": {**flat["flat"], "feature_types": {"visits": "count"}}}
        )
    with pytest.raises(ValidationError, match=r"id_colum\n\s+Extra inputs"):
        ModelInfo.model_validate({**flat, "flat": {**flat["flat"], "id_colum": "lead"}})
    with pytest.raises(ValidationError, match="mode 'flat' cannot have a 'crm' section"):
        ModelInfo.model_validate({**flat, "crm": crm_info().crm.model_dump()})
    with pytest.raises(ValidationError, match="routes\n.*statistics of the routes"):
        ModelInfo.model_validate({**flat, "routes": {"sales": ROUTES["sales"]}})


@pytest.mark.parametrize("build", [crm_info, flat_info])
def test_a_legacy_flat_dict_reads_as_the_typed_model(build):
    info = build()
    legacy = legacy_info(info)
    assert "crm" not in legacy and "flat" not in legacy
    converted = ModelInfo.model_validate(legacy)
    assert converted.model_dump_json() == info.model_dump_json()
    if info.crm is not None:
        assert converted.crm.split.validation_rows == 200 and converted.custom == info.custom
    else:
        assert converted.flat.label.positive == "yes" and converted.flat.time_column is None
    assert math.isnan(converted.routes["nurture"].eventual_win_rate)


def test_a_legacy_dict_of_an_unknown_mode_is_refused_naming_the_mode():
    with pytest.raises(ValidationError, match=r"mode\n\s+Input should be 'snapshots' or 'flat'"):
        ModelInfo.model_validate({**legacy_info(crm_info()), "mode": "batch"})


def _scorer(info: ModelInfo) -> LeadScorer:
    model = Calibrated(LinearMargin([1]), 1.0, 0.0)
    return LeadScorer(FeatureEncoder(("source",), ("visits",)), model, model, info)


@pytest.mark.parametrize("build", [crm_info, flat_info])
def test_a_pickled_scorer_holds_plain_data_and_loads_its_typed_metadata(build):
    info = build()
    stream = pickle.dumps(_scorer(info))
    assert b"leadready.features.metadata" not in stream  # no metadata class in the pickle
    loaded = pickle.loads(stream).info
    assert isinstance(loaded, ModelInfo)
    assert loaded.model_dump_json() == info.model_dump_json()
    assert math.isnan(loaded.routes["nurture"].win_rate)


def test_a_scorer_pickled_with_a_legacy_dict_loads_typed_metadata():
    scorer = _scorer(crm_info())
    old_state = {**vars(scorer), "info": legacy_info(scorer.info)}  # what the old pickle held
    loaded = LeadScorer.__new__(LeadScorer)
    loaded.__setstate__(old_state)
    assert loaded.info.crm.data.sha256 == "0123456789abcdef"
    assert loaded.info.model_dump_json() == scorer.info.model_dump_json()


def test_json_has_null_for_nan_and_reads_back_as_nan():
    info = crm_info()
    stored = info.model_dump(mode="json")
    text = json.dumps(stored, allow_nan=False)  # strict JSON: no NaN anywhere
    assert stored["routes"]["nurture"]["win_rate"] is None
    back = ModelInfo.model_validate(json.loads(text))
    assert math.isnan(back.routes["nurture"].win_rate)
    assert back.model_dump(mode="json") == stored
    assert json.loads(info.model_dump_json()) == stored
