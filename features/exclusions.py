"""What a model left out of its inputs and why, in plain words for the workspace's Model page
and the model report (`serving.ui.pages.model`, `training.report`).

Training records each left-out column with a note (`FlatDetails.excluded`, written by
`training.flat_table`), the evidence of suspected leakage (`suspected_leakage`), the AUC of each
column alone (`single_feature_auc`) and the too-good warning (`holdout_warning`); this module
turns them into one line a marketer can read, keeping the note as it was measured for data
scientists; a model trained on CRM exports has suspects too (the schema's custom features,
`CrmDetails.suspected_leakage`) and a hold-out that can be too good. It reads versions trained
before any of these were stored too (the metadata's defaults: nothing suspected)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from leadready.features.metadata import SCHEMA_IGNORED, TOO_GOOD_AUC, FlatDetails, ModelInfo

STRONGEST_SHOWN = 3
"""Inputs a too-good warning names, strongest alone first (`training.flat_table` too)."""
LEAKAGE = "suspected leakage: "
"""How the note of a column left out as suspected leakage starts (`training.flat_table`)."""
DISPLAY_NOTE = "shown on pages (display), never a feature"
"""The note of a flat table's display column (`training.flat_table.infer_types`)."""
_PLAIN = {
    "an id or free text": "looks like an id or free text: nearly every row has its own value",
    "an id": "looks like an id: nearly every row has its own value, which says nothing about "
    "a new lead",
    "constant": "the same on every row, so there is nothing to learn from it",
    "dates": "holds dates, which the model does not read as an input",
    SCHEMA_IGNORED: "left out by the schema",
    DISPLAY_NOTE: "shown beside each lead on the Leads page, never an input",
}
"""Plain words by how a training note starts; the longest match wins."""


@dataclass(frozen=True)
class LeftOut:
    """A column and why it is out of the model (or, for a kept suspect, why it is suspect):
    `why` in plain words, `evidence` the note training recorded."""

    column: str
    why: str
    evidence: str


@dataclass(frozen=True)
class Exclusions:
    """What a flat model's training left out (`left_out`), the suspected leakage the schema
    kept as inputs anyway (`kept`), and the too-good warning in plain words (None without
    one)."""

    left_out: list[LeftOut]
    kept: list[LeftOut]
    too_good: str | None

    def __bool__(self) -> bool:
        return bool(self.left_out or self.kept or self.too_good)


def leakage_words(evidence: str, auc: float | None) -> str:
    """Why a column looks like it records the outcome, in plain words: `evidence` is
    `training.flat_table.leakage_evidence`'s, `auc` the column's ROC AUC alone."""
    if evidence.startswith("alone it ranks") and auc is not None:
        return (
            "suspected leakage: alone it predicts the outcome suspiciously well (of two "
            f"leads, one that converted and one that did not, it ranks the converted one "
            f"higher {auc:.0%} of the time): filled in after the outcome?"
        )
    # "filled for 90% of converted leads and 2% of the others (>= 20 times ...)"
    return f"suspected leakage: {evidence.split(' (>=', 1)[0]}: filled in after the outcome?"


def exclusion_words(note: str, auc: float | None) -> str:
    """Why training left a column out, in plain words, from its note (`FlatDetails.excluded`)
    and, for suspected leakage, its ROC AUC alone; a note of another kind is kept as it is."""
    if note.startswith(LEAKAGE):
        return leakage_words(note.removeprefix(LEAKAGE), auc)
    starts = [start for start in _PLAIN if note.startswith(start)]
    return _PLAIN[max(starts, key=len)] if starts else note


def _of_the_time(auc: float) -> str:
    """A ranking share in words: "97%", but "over 99%" for a near-perfect one that would
    round to 100%."""
    return "over 99%" if 0.995 <= auc < 1 else f"{auc:.0%}"


def too_good_words(strongest_alone: dict[str, float], auc: float, unseen: str) -> str:
    """The too-good warning in plain words: the hold-out ROC AUC `auc` on `unseen` ("rows",
    "leads") and the inputs that alone predict the outcome best (input -> ROC AUC alone, of
    the inputs the model reads)."""
    strongest = sorted(strongest_alone, key=lambda name: -strongest_alone[name])[:STRONGEST_SHOWN]
    named = ", ".join(f"{name} {_of_the_time(strongest_alone[name])}" for name in strongest)
    return (
        f"Too good to be true: on {unseen} it had not seen, this model ranks a lead that converted "
        f"above one that did not {_of_the_time(auc)} of the time. Real leads rarely rank this "
        "well, so an input probably records the outcome (filled in after it)."
        + (
            f" The inputs that rank leads best on their own, by the same measure: {named}."
            if named
            else ""
        )
    )


def _too_good(info: ModelInfo) -> str | None:
    auc = info.metrics.get("test_readiness_roc_auc", math.nan)
    if not auc >= TOO_GOOD_AUC:
        return None
    details = info.details
    used = details.feature_types if isinstance(details, FlatDetails) else info.custom
    alone = {name: a for name, a in details.single_feature_auc.items() if name in used}
    return too_good_words(alone, auc, "rows" if info.flat is not None else "leads")


def _kept(info: ModelInfo) -> list[LeftOut]:
    """The inputs the model reads although suspected of leakage (its schema declares them)."""
    details = info.details
    kept = []
    for name, alone in details.kept_suspects.items():
        # Versions trained before `suspected_leakage` warned on the AUC alone.
        evidence = details.suspected_leakage.get(name) or (
            f"alone it ranks the outcome with ROC AUC {alone:.3f}"
        )
        kept.append(LeftOut(name, leakage_words(evidence, alone), evidence))
    return kept


def exclusions(info: ModelInfo) -> Exclusions | None:
    """What a model's training left out, kept although suspect, or found too good; for a model
    trained on CRM exports (it reads the contract's columns and the schema's custom features,
    so nothing is left out) None unless a custom feature is suspect or the hold-out too good."""
    kept, too_good = _kept(info), _too_good(info)
    details = info.flat
    if details is None:
        return Exclusions([], kept, too_good) if kept or too_good else None
    aucs = details.single_feature_auc
    left_out = [
        LeftOut(name, exclusion_words(note, aucs.get(name)), note)
        for name, note in details.excluded.items()
    ]
    return Exclusions(left_out, kept, too_good)


def distrust_words(info: ModelInfo) -> str | None:
    """Why training did not make this version champion on its own (`ModelInfo.distrust`), in
    plain words; None when nothing about it is suspect."""
    parts = [f"it reads {name}, suspected of leakage" for name in info.details.kept_suspects]
    auc = info.metrics.get("test_readiness_roc_auc", math.nan)
    if auc >= TOO_GOOD_AUC:
        parts.append(
            "on leads it had not seen it ranks a lead that converted above one that did not "
            f"{_of_the_time(auc)} of the time, too good to be true"
        )
    return "; ".join(parts) or None
