"""What a flat model left out of its inputs and why, in plain words for the workspace's Model page
and the model report (`serving.ui.pages.model`, `training.report`).

Training records each left-out column with a note (`FlatDetails.excluded`, written by
`training.flat_table`), the evidence of suspected leakage (`suspected_leakage`), the AUC of each
column alone (`single_feature_auc`) and the too-good warning (`holdout_warning`); this module
turns them into one line a marketer can read, keeping the note as it was measured for data
scientists. It reads versions trained before any of these were stored too (the metadata's
defaults: nothing suspected, no warning)."""

from __future__ import annotations

from dataclasses import dataclass

from leadready.features.metadata import SCHEMA_IGNORED, FlatDetails, ModelInfo

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


def too_good_words(details: FlatDetails, auc: float) -> str:
    """The too-good warning in plain words: the hold-out ROC AUC `auc` and the inputs that
    alone predict the outcome best."""
    used = details.feature_types
    strongest = sorted(
        (name for name in details.single_feature_auc if name in used),
        key=lambda name: -details.single_feature_auc[name],
    )[:STRONGEST_SHOWN]
    named = ", ".join(f"{name} {details.single_feature_auc[name]:.0%}" for name in strongest)
    return (
        "Too good to be true: on rows it had not seen, this model ranks a lead that converted "
        f"above one that did not {auc:.0%} of the time. Real leads rarely rank this well, so "
        "an input probably records the outcome (filled in after it). The inputs that rank "
        f"leads best on their own, by the same measure: {named}."
    )


def exclusions(info: ModelInfo) -> Exclusions | None:
    """What a model's training left out, kept although suspect, or found too good; None for
    a model trained on CRM exports (it reads the contract's columns and the schema's custom
    features only)."""
    details = info.flat
    if details is None:
        return None
    aucs = details.single_feature_auc
    left_out = [
        LeftOut(name, exclusion_words(note, aucs.get(name)), note)
        for name, note in details.excluded.items()
    ]
    kept = []
    for name, alone in details.leakage_warnings.items():
        # Versions trained before `suspected_leakage` warned on the AUC alone.
        evidence = details.suspected_leakage.get(name) or (
            f"alone it ranks the outcome with ROC AUC {alone:.3f}"
        )
        kept.append(LeftOut(name, leakage_words(evidence, alone), evidence))
    auc = info.metrics.get("test_readiness_roc_auc")
    warned = details.holdout_warning is not None
    too_good = too_good_words(details, auc) if warned and auc is not None else None
    return Exclusions(left_out, kept, too_good)
