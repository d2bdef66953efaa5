"""Two versions judged on the same rows, each scoring with its own columns, and never on the
strength of a score a version gave to a row it trained on: `train`'s promotion rule and
`leadready models compare`.

A flat model is refitted on every row of its table after its test, so rescoring any of those
rows scores training data; a CRM model is fitted on the snapshots before its test window. For a
row a version has seen, its score counts only when it comes from its own test (the hold-out its
run kept, matched by lead id); otherwise the row is left out of the comparison. Rows neither
saw come from a file given to `compare --on`: a flat table, or a CRM export whose closed leads
become point-in-time snapshots as training builds its test set. MLflow stays in
`training.registry`, which hands this module the frames it loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadready.features.auditdb import engine_for, last_scores_before_outcomes, last_shadow_pairs
from leadready.features.contract import load_crm
from leadready.features.evaluation import expected_calibration_error
from leadready.features.metadata import TOO_GOOD_AUC, CrmDetails, ModelInfo
from leadready.features.model import LeadScorer
from leadready.features.schema import Schema
from leadready.features.table import flat_columns, read_flat, stored_mapping
from leadready.training.bootstrap import paired_auc_test
from leadready.training.examples import make_snapshots, snapshot_features
from leadready.training.flat_table import FlatConfig, read_labels

MIN_CLEAN_ROWS = 30
"""Fewest rows, with both outcomes, that a comparison is made on."""

PROMOTION_RULE = (
    "A version that reads an input suspected of leakage, or whose hold-out ROC AUC is too "
    f"good to be true (>= {TOO_GOOD_AUC}), is registered as challenger only, never made "
    "champion automatically (`leadready models promote` does it by hand). "
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
    cells were kept) or one version built from a CRM export. `created` is each row's lead
    creation (Unix seconds) on a CRM export's snapshots; `note` says how the rows were made
    when a reader should know."""

    ready: np.ndarray
    ids: np.ndarray
    where: str
    features: pd.DataFrame | None = None
    table: pd.DataFrame | None = None
    created: np.ndarray | None = None
    note: str = ""


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
    (same fingerprint) and, for a CRM model, its test window starts before the version's own;
    on an export's snapshots, every lead created before its test window may be one it saw."""
    n = len(rows.ids)
    if version.trained is not None:
        return np.isin(rows.ids.astype(str), version.trained.astype(str))
    info = version.info
    if info.crm is not None and rows.created is not None:
        return rows.created < pd.Timestamp(info.crm.split.test_from).timestamp()
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
    if path.is_dir():
        raise ComparisonError(
            f"{path}: a folder; flat versions compare on a table file (.csv or .parquet) with "
            "the label column. A CRM export folder compares versions of 'sales-readiness' "
            "(without --flat)"
        )
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


def export_scores(folder: Path, versions: list[Version]) -> tuple[Rows, dict[str, Scored]]:
    """The snapshots of a CRM export's closed leads, labelled and built as training builds its
    test set (every snapshot of each lead, `ready` = won within the versions' horizon), and
    each version's clean scores on them with its own features: the export read with the schema
    it was trained with, if any. Versions with different horizons are refused (a snapshot would
    have two labels); with different steps, the first version's step is used and said."""
    if not folder.is_dir():
        raise ComparisonError(
            f"{folder}: "
            + ("a file" if folder.is_file() else "no such folder")
            + "; CRM versions compare on an export folder with leads, activities and touches "
            "tables. A flat table compares versions of the flat model (--flat)"
        )
    details: dict[str, CrmDetails] = {}
    for version in versions:
        assert version.info.crm is not None  # versions of 'sales-readiness' are CRM versions
        details[version.number] = version.info.crm
    first = versions[0].number
    horizon, step = details[first].horizon_days, details[first].step_days
    for number, crm in details.items():
        if crm.horizon_days != horizon:
            raise ComparisonError(
                f"v{first} calls a lead ready when it is won within {horizon} days, "
                f"v{number} within {crm.horizon_days}: a snapshot would have a different "
                "label for each, so they cannot be compared on the same rows; compare "
                "versions trained with the same --horizon"
            )
    others = [f"v{n} every {c.step_days}" for n, c in details.items() if c.step_days != step]
    note = (
        f"snapshots every {step} days, v{first}'s step ({', '.join(others)} in training)"
        if others
        else ""
    )
    read: dict[str, Rows] = {}
    scored: dict[str, Scored] = {}
    for version in versions:
        tables = details[version.number].schema_tables
        key = json.dumps(tables, sort_keys=True)
        if key not in read:
            read[key] = _snapshot_rows(folder, tables, version.number, step, horizon, note)
        own = read[key]
        scored[version.number] = clean_scores(version, own)
    rows = read[next(iter(read))]
    for own in read.values():
        if not all(
            np.array_equal(getattr(own, part), getattr(rows, part))
            for part in ("ids", "ready", "created")
        ):
            raise ComparisonError(
                f"the schemas the versions were trained with read the leads of {folder} "
                "differently (ids, creation or outcome dates, or outcomes), so their snapshots "
                "differ; compare versions trained with the same schema"
            )
    return rows, scored


def _snapshot_rows(
    folder: Path, tables: dict[str, dict[str, Any]], number: str, step: int, horizon: int, note: str
) -> Rows:
    """An export's closed leads as snapshots, with the features of version `number`'s schema."""
    schema = Schema.from_stored(tables, f"the schema v{number} was trained with")
    crm = load_crm(folder, schema=schema)
    snaps = make_snapshots(crm.leads, step, horizon)
    if len(snaps) == 0:
        raise ComparisonError(
            f"{folder}: no closed leads (won or lost after their creation) to compare on"
        )
    return Rows(
        ready=snaps.ready,
        ids=crm.leads["lead_id"].to_numpy()[snaps.lead],
        where=str(folder),
        features=pd.DataFrame(snapshot_features(crm, snaps)),
        created=snaps.created_at,
        note=note,
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
        "notes": [note for note in (rows.note, a.note, b.note) if note],
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


def distrust_reason(info: ModelInfo) -> str | None:
    """Why a version is never made champion automatically (`ModelInfo.distrust`), as the
    promotion's reason; None when nothing about it is suspect."""
    if not info.distrust:
        return None
    return (
        "not made champion automatically: "
        + "; ".join(info.distrust)
        + ". If its inputs are all known when a new lead is scored, make it champion with "
        "`leadready models promote VERSION" + (" --flat`" if info.flat is not None else "`")
    )


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
    distrusted = distrust_reason(challenger)
    if distrusted:
        return False, distrusted
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
        flat, on = (" --flat", "FILE") if champion.info.flat is not None else ("", "DIR")
        return False, (
            f"{v} cannot be compared fairly on this hold-out ({why}); champion kept. Compare "
            f"on rows neither saw with `leadready models compare A B{flat} --on {on}`, then "
            f"`leadready models promote B{flat}`"
        )
    promoted = promotion_decision(comparison)
    return promoted, (
        f"ROC AUC {comparison['b_auc']:.4f} vs {v} {comparison['a_auc']:.4f} on "
        f"{comparison['clean_rows']:,} rows (difference {comparison['difference']:+.4f}, "
        f"p = {comparison['p_value']:.3f}); ECE {comparison['b_ece']:.4f} vs "
        f"{comparison['a_ece']:.4f}: " + ("promoted" if promoted else "champion kept")
    )


def compare_live(url: str, a: str | None = None, b: str | None = None) -> dict[str, Any]:
    """The champion (A) and the shadow challenger (B) on live traffic, from the audit log at
    `url`: each lead with an outcome counts once, with the last pair of scores the two gave one
    request at or before its outcome; and the leads whose last pair of routes differ. A and B
    default to the versions of the most recent pair. ComparisonError when the log holds no
    pair of those versions."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            outcomes = last_scores_before_outcomes(connection, shadow=True)
            pairs = last_shadow_pairs(connection)
    finally:
        engine.dispose()
    if not len(pairs):
        raise ComparisonError(
            "the audit log holds no shadow scores: a server scores the challenger in the shadow "
            "of its answers once the `challenger` alias names another version than the champion"
        )
    latest = pairs.sort_values("scored_at", kind="stable").iloc[-1]
    a = a or str(latest["model_version"])
    b = b or str(latest["shadow_version"])

    def of_pair(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[(frame["model_version"] == a) & (frame["shadow_version"] == b)]

    pairs, outcomes = of_pair(pairs), of_pair(outcomes)
    if not len(pairs):
        raise ComparisonError(f"the audit log holds no scores of v{a} with v{b} in its shadow")
    changed = pairs[pairs["route"] != pairs["shadow_route"]]
    moves = (changed["route"] + " → " + changed["shadow_route"]).value_counts()
    ready = (outcomes["outcome"] == "won").to_numpy(dtype=np.float64)
    out: dict[str, Any] = {
        "a": a,
        "b": b,
        "where": f"live scores of leads with outcomes (v{b} in the shadow of v{a})",
        "rows": len(outcomes),
        "clean_rows": len(outcomes),
        "won": int(ready.sum()),
        "paired_leads": len(pairs),
        "route_changes": {str(change): int(n) for change, n in moves.items()},
        "notes": [],
        "comparable": bool(len(outcomes) >= MIN_CLEAN_ROWS and len(np.unique(ready)) == 2),
    }
    if out["comparable"]:
        out |= compare_scores(
            ready,
            outcomes["readiness"].to_numpy(),
            outcomes["shadow_readiness"].to_numpy(),
            outcomes["lead_id"].to_numpy(),
        )
    return out
