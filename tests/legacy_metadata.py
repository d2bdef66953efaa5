"""The metadata of versions registered before it was typed: one flat dict, built here from a
typed `ModelInfo` exactly as training built it then (`training.result.model_info`, then the
mode's `details=` keys of `training.pipeline.train` or `training.flat.fit` on top)."""

from __future__ import annotations

from typing import Any

from leadready.features.metadata import ModelInfo


def legacy_info(info: ModelInfo) -> dict[str, Any]:
    """`info` as the flat dict the old code pickled and logged (NaN kept, intervals as lists)."""
    typed = info.model_dump()
    shared = {
        "model_name": typed["model_name"],
        "mode": typed["mode"],
        "cold_start": typed["cold_start"],
        "trained_at": typed["trained_at"],
        "model_kind": typed["model_kind"],
        "thresholds": typed["thresholds"],
        # Before the marginal routing rule: two policy options, four numbers per route.
        "policy": {k: typed["policy"][k] for k in ("sales_precision", "max_disqualified_wins")},
        "routes": {
            route: {k: stats[k] for k in ("share", "win_rate", "eventual_win_rate", "rows")}
            for route, stats in typed["routes"].items()
        },
        "metrics": typed["metrics"],
        "intervals": {
            name: {metric: list(values) for metric, values in ci.items()}
            for name, ci in typed["intervals"].items()
        },
        "leaderboard": typed["leaderboard"],
        "drivers": typed["drivers"],
        "labels": typed["labels"],
        "features": typed["features"],
    }
    if info.crm is not None:
        crm = typed["crm"]
        details = {
            "custom": typed["custom"],
            "horizon_days": crm["horizon_days"],
            "step_days": crm["step_days"],
            "data": crm["data"],
            "split": crm["split"],
        }
    else:
        flat = typed["flat"]
        details = {
            "custom": {},
            "id_column": flat["id_column"],
            "label": flat["label"],
            "time_column": flat["time_column"],
            "feature_types": flat["feature_types"],
            "excluded": flat["excluded"],
            "single_feature_auc": flat["single_feature_auc"],
            "leakage_warnings": flat["leakage_warnings"],
            "table_mapping": flat["table_mapping"],
            "refit": flat["refit"],
            "data": flat["data"],
            "split": flat["split"],
        }
    return {**shared, **details}
