"""Two versions judged on the same rows, each scoring with its own columns, and never on the
strength of a score a version gave to a row it trained on: `train`'s promotion rule and
`leadready models compare`.

A flat model is refitted on every row of its table after its test, so rescoring any of those
rows scores training data; a CRM model is fitted on the snapshots before its test window. For a
row a version has seen, its score counts only when it comes from its own test (the hold-out its
run kept, matched by lead id); otherwise the row is left out of the comparison. MLflow stays in
`training.registry`, which hands this module the frames it loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadready.features.evaluation import expected_calibration_error
from leadready.features.metadata import ModelInfo
from leadready.features.model import LeadScorer
from leadready.features.table import flat_columns, read_flat, stored_mapping
from leadready.training.bootstrap import paired_auc_test
from leadready.training.flat_table import FlatConfig, read_labels

MIN_CLEAN_ROWS = 30
"""Fewest rows, with both outcomes, that a comparison is made on."""

PROMOTION_RULE = (
    "The challenger is compared with the champion on the challenger's hold-out, each scoring "
    "with its own columns. A row the champion trained on counts with the score its own test "
    "gave it (the row is in its hold-out too) or is left out. If the champion reads a column "
    "this training flagged as suspected leakage or was told by the schema to ignore, its scores "
    "are not trusted and the challenger is promoted. Otherwise, on at least "
    f"{MIN_CLEAN_ROWS} remaining rows with both outcomes, the challenger becomes champion when "
    "its ROC AUC is higher with a paired lead-level bootstrap test significant at 5%, or the "
    "difference is within noise (p >= 0.05) and its expected calibration error is lower; on "
    "fewer, the champion is kept. A cold-start scorecard never replaces a learned champion."
)


class ComparisonError(ValueError):
    """Two versions that cannot be compared on these rows; the message says why."""


@dataclass(frozen=True)
class Rows:
    """Labelled rows to compare on, described in messages as `where`. `table` holds a flat
    table's own cells (each flat version takes its columns from it); `features` the feature
    columns one version's training built (a CRM hold-out, or a flat one logged before its
    cells were kept)."""

    ready: np.ndarray
    ids: np.ndarray
    where: str
    features: pd.DataFrame | None = None
    table: pd.DataFrame | None = None


@dataclass(frozen=True)
class Version:
    """A registered version and what its run kept to judge its scores by: its own hold-out
    (`__lead`, `__readiness`) and the ids of every row it was fitted on (flat models; None
    when not recorded)."""

    number: str
    scorer: LeadScorer
    holdout: pd.DataFrame | None = None
    trained: np.ndarray | None = None

    @property
    def info(self) -> ModelInfo:
        return self.scorer.info


@dataclass(frozen=True)
class Scored:
    """One version's readiness on the rows, which rows count, and a line on those that don't."""

    readiness: np.ndarray
    counts: np.ndarray
    note: str = ""


def own_columns(version: Version, rows: Rows) -> dict[str, np.ndarray]:
    """The version's input columns from the rows; a column it reads that they lack is an error
    naming it."""
    flat = version.info.flat
    if flat is not None and rows.table is not None:
        source: pd.DataFrame = rows.table
        needed = list(flat.feature_types)
    elif rows.features is not None:
        source, needed = rows.features, list(version.info.features)
    else:
        raise ComparisonError(f"v{version.number} cannot score {rows.where}: it holds no inputs")
    missing = [name for name in needed if name not in source]
    if missing:
        shown = ", ".join(f"'{name}'" for name in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise ComparisonError(
            f"v{version.number} reads {shown}{more}, which {rows.where} does not have"
        )
    if flat is not None and rows.table is not None:
        return flat_columns(source, flat.feature_types)
    return {name: source[name].to_numpy() for name in source.columns}


def seen_rows(version: Version, rows: Rows, holder: ModelInfo | None) -> np.ndarray:
    """Which rows the version was fitted on: those of leads among the ids it recorded (a flat
    model's every row, a CRM model's leads before its test split). A version logged before it
    recorded them has seen every row when the hold-out's `holder` was trained on the same data
    (same fingerprint) and, for a CRM model, its test window starts before the version's own."""
    n = len(rows.ids)
    if version.trained is not None:
        return np.isin(rows.ids.astype(str), version.trained.astype(str))
    info = version.info
    same = holder is not None and holder.details.data.sha256 == info.details.data.sha256
    if info.crm is not None:
        same = (
            same
            and holder is not None
            and holder.crm is not None
            and pd.Timestamp(holder.crm.split.test_from) < pd.Timestamp(info.crm.split.test_from)
        )
    return np.full(n, same)


def clean_scores(version: Version, rows: Rows, holder: ModelInfo | None = None) -> Scored:
    """The version's readiness on the rows with its own columns, where its own test's score
    replaces the registered model's on rows of its hold-out (flat), and rows it was fitted on
    otherwise do not count."""
    readiness = version.scorer.predict_proba(own_columns(version, rows))[:, 1]
    seen = seen_rows(version, rows, holder)
    tested = version.holdout
    retested = np.zeros(len(rows.ids), dtype=bool)
    if version.info.flat is not None and tested is not None and "__readiness" in tested:
        own = pd.Series(tested["__readiness"].to_numpy(), index=tested["__lead"].astype(str))
        own = own[~own.index.duplicated()]
        ids = pd.Index(rows.ids.astype(str))
        retested = seen & ids.isin(own.index)
        readiness = readiness.copy()
        readiness[retested] = own.reindex(ids[retested]).to_numpy()
    counts = ~seen | retested
    note = ""
    if seen.any():
        parts = [
            f"{int(seen.sum()):,} of {len(seen):,} rows of {rows.where} are "
            f"v{version.number}'s training data"
        ]
        if retested.any():
            parts.append(f"{int(retested.sum()):,} count with the scores its own test gave them")
        if (~counts).any():
            parts.append(f"{int((~counts).sum()):,} are left out")
        note = "; ".join(parts)
    return Scored(readiness, counts, note)


def table_rows(path: Path, info: ModelInfo) -> Rows:
    """The labelled rows of a flat table for a comparison, read with the schema mapping the
    version of `info` was trained with; label and ids are its own columns."""
    flat = info.flat
    assert flat is not None  # only flat versions compare on a table
    frame = read_flat(path, stored_mapping(flat))
    needed = [flat.id_column, flat.label.column]
    missing = [name for name in needed if name not in frame]
    if missing:
        raise ComparisonError(
            f"{path}: no column {', '.join(repr(name) for name in missing)}; a comparison "
            "needs the id and label columns the versions were trained with"
        )
    config = FlatConfig(flat.id_column, flat.label.column, flat.label.positive)
    labelled, y = read_labels(frame, config, str(path))
    return Rows(
        ready=y[labelled],
        ids=frame[flat.id_column].to_numpy()[labelled],
        where=str(path),
        table=frame[labelled].reset_index(drop=True),
    )


def compare_scores(
    ready: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, leads: np.ndarray
) -> dict[str, Any]:
    """Two sets of scores of the same rows: AUCs, paired bootstrap of the difference, ECEs."""
    test = paired_auc_test(ready, p_a, p_b, leads)
    return {
        "a_auc": test.auc_a,
        "b_auc": test.auc_b,
        "difference": test.difference,
        "ci_low": test.ci_low,
        "ci_high": test.ci_high,
        "p_value": test.p_value,
        "a_ece": expected_calibration_error(ready, p_a),
        "b_ece": expected_calibration_error(ready, p_b),
    }


def compare_on(rows: Rows, a: Scored, b: Scored) -> dict[str, Any]:
    """A and B on the rows that count for both; `comparable` is False (and no measures) when
    fewer than MIN_CLEAN_ROWS remain or one outcome only. `notes` say what was left out."""
    both = a.counts & b.counts
    ready = rows.ready[both]
    out: dict[str, Any] = {
        "rows": int(len(both)),
        "clean_rows": int(both.sum()),
        "notes": [note for note in (a.note, b.note) if note],
        "comparable": bool(both.sum() >= MIN_CLEAN_ROWS and len(np.unique(ready)) == 2),
    }
    if out["comparable"]:
        out |= compare_scores(ready, a.readiness[both], b.readiness[both], rows.ids[both])
    return out


def leaked_inputs(champion: ModelInfo, challenger: ModelInfo) -> list[str]:
    """Columns the champion reads and the challenger does not because its training suspected
    them of leakage or its schema ignored them (or the champion's own training suspected them)."""
    if champion.flat is None or challenger.flat is None:
        return []
    distrusted = challenger.flat.distrusted | set(champion.flat.suspected_leakage)
    return [
        name
        for name in champion.flat.feature_types
        if name in distrusted and name not in challenger.flat.feature_types
    ]


def promotion_decision(comparison: dict[str, Any]) -> bool:
    """The measured half of PROMOTION_RULE: whether B beats A on a comparable comparison."""
    if comparison["p_value"] < 0.05:
        return bool(comparison["difference"] > 0)
    return bool(comparison["b_ece"] < comparison["a_ece"])


def decide(
    champion: Version, challenger: ModelInfo, comparison: dict[str, Any] | None, problem: str = ""
) -> tuple[bool, str]:
    """PROMOTION_RULE for a learned challenger against `champion`, given their comparison
    (None when the champion could not score the rows: `problem` says why): whether it is
    promoted, and why."""
    v = f"champion v{champion.number}"
    leaked = leaked_inputs(champion.info, challenger)
    if leaked:
        names = ", ".join(f"'{name}'" for name in leaked)
        return True, (
            f"{v} reads {names}, which this training suspects of leakage or was told to "
            "ignore: its scores are not trusted; promoted"
        )
    if comparison is None or not comparison["comparable"]:
        why = problem or "; ".join(
            [
                *(comparison["notes"] if comparison else []),
                f"{comparison['clean_rows'] if comparison else 0:,} rows left to compare on, "
                f"fewer than {MIN_CLEAN_ROWS} with both outcomes",
            ]
        )
        return False, (
            f"{v} cannot be compared fairly on this hold-out ({why}); champion kept. Compare "
            "on rows neither saw with `leadready models compare A B --on FILE`, then "
            "`leadready models promote`"
        )
    promoted = promotion_decision(comparison)
    return promoted, (
        f"ROC AUC {comparison['b_auc']:.4f} vs {v} {comparison['a_auc']:.4f} on "
        f"{comparison['clean_rows']:,} rows (difference {comparison['difference']:+.4f}, "
        f"p = {comparison['p_value']:.3f}); ECE {comparison['b_ece']:.4f} vs "
        f"{comparison['a_ece']:.4f}: " + ("promoted" if promoted else "champion kept")
    )
