"""The sessions' scored exports: an uploaded CRM export or flat table, or the sample folder,
scored once with the champions the server has loaded (`app.state.engine`, `app.state.flat`:
no model is loaded or self-tested again per upload) and kept in this process's memory for the
session, and on disk (`serving.sessions`) for the other workers and a restart. An export
scored by an older champion is scored again by the one now served."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from starlette.datastructures import UploadFile

from leadready.features.contract import (
    BANT_FIELDS,
    SOURCES,
    ContractError,
    Crm,
    load_crm,
    parse_moment,
)
from leadready.features.registry import NoChampionError
from leadready.features.routing import ROUTES
from leadready.features.schema import Schema
from leadready.features.table import MISSING_CATEGORY, read_flat, stored_mapping
from leadready.serving.batch import latest_time, score_open_leads
from leadready.serving.engine import Champions, Engine
from leadready.serving.flat import FlatModel, score_table
from leadready.serving.sessions import Saved, SavedExports
from leadready.serving.ui.web import crm_model, flat_model

MAX_EXPORTS = 16
"""Scored exports kept in memory (one per session, least recently used dropped first)."""
LEAD_COLUMNS = ("source", "industry", "company_size", "created_at", *BANT_FIELDS)
"""Lead attributes the Leads table shows and filters on beside the scores."""
UPLOAD_TABLES = ("leads", "activities", "touches", "table", "schema")
"""The upload form's file fields: a CRM export's tables (leads, and activities and touches when
it has them), or one flat table; a schema."""
MAX_FILTER_VALUES = 50
"""A categorical column with more distinct values than this (free text, ids) is not offered
as a filter of the Leads page."""
RESERVED = frozenset({"q", "page", "route", "readiness", "potential", "route_reason"})
"""Names the Leads page's query and table use itself; a flat column so named is no filter."""
CRM_FILTERS: dict[str, tuple[str, ...]] = {"source": SOURCES, **BANT_FIELDS}
"""Filters of a CRM export whose values the contract fixes (in its order)."""


def filter_options(
    table: pd.DataFrame, fixed: dict[str, tuple[str, ...]], columns: list[str]
) -> dict[str, tuple[str, ...]]:
    """The Leads page's filters, column -> values offered: the route, the contract's columns
    with their values, then each other categorical column with its values in the table (when
    it has 2 to MAX_FILTER_VALUES)."""
    out = {"route": tuple(r.value for r in ROUTES)}
    out.update({name: values for name, values in fixed.items() if name in table})
    for name in columns:
        if name in RESERVED or name in out or name not in table:
            continue
        values = sorted(set(table[name].dropna().astype(str)) - {""}, key=str.lower)
        if 2 <= len(values) <= MAX_FILTER_VALUES:
            out[name] = tuple(values)
    return out


def shown_columns(
    wanted: Sequence[str], frame: pd.DataFrame, scored: pd.DataFrame
) -> tuple[str, ...]:
    """The display columns (the schema's `display`) a Leads table shows beside each lead:
    those the export has, but none the scores already name (readiness, route...)."""
    return tuple(c for c in wanted if c in frame and c not in scored)


@dataclass
class Export:
    """A scored export kept for a session: one row per scored lead, highest readiness first."""

    name: str
    table: pd.DataFrame
    crm: Crm | None
    as_of: int
    model_version: str
    id_column: str = "lead_id"
    positions: dict[str, int] = field(default_factory=dict)
    activity_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    touch_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    sample: bool = False
    scored: frozenset[str] = frozenset()
    frame: pd.DataFrame | None = None
    """A flat table as uploaded (after the schema), kept to score again with a new champion."""
    display: tuple[str, ...] = ()
    """Columns shown beside each lead (the schema's `display`), in `table`; the first is the
    lead's name."""
    known: int = 0
    """Rows of a flat table left out because their outcome is already known (label filled)."""
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The Leads page's filters: column -> values (`filter_options`)."""

    def lead_rows(self, lead_id: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
        """A scored lead of a CRM export: its row of the leads table (a one-row frame), its
        activities and its touches; None when the export has no such open lead."""
        crm = self.crm
        if crm is None or lead_id not in self.positions or lead_id not in self.scored:
            return None

        def events(ids: np.ndarray) -> slice:  # the loader sorts events by lead
            return slice(
                int(np.searchsorted(ids, lead_id, "left")),
                int(np.searchsorted(ids, lead_id, "right")),
            )

        return (
            crm.leads.iloc[[self.positions[lead_id]]],
            crm.activities.iloc[events(self.activity_ids)],
            crm.touches.iloc[events(self.touch_ids)],
        )


class UploadRefused(ValueError):
    """An upload that cannot be scored, said in the user's words (no server paths)."""


def build_export(
    name: str, crm: Crm, engine: Engine, as_of: str | None, sample: bool = False
) -> Export:
    """A CRM export's open leads scored by `engine` at `as_of` (ISO 8601; default the latest
    time the export records)."""
    moment = parse_moment(as_of, "scoring time") if as_of else latest_time(crm)
    scored = score_open_leads(crm, engine, moment)
    custom = [name for name, kind in engine.info.custom.items() if kind == "categorical"]
    shown = shown_columns(crm.display, crm.leads, scored)
    attributes = crm.leads[
        ["lead_id", *LEAD_COLUMNS, *(c for c in custom if c in crm.leads), *shown]
    ]
    table = scored.merge(attributes, on="lead_id", how="left")
    table = table.sort_values(
        ["readiness", "lead_id"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    return Export(
        name=name,
        table=table,
        crm=crm,
        as_of=moment,
        model_version=engine.loaded.version,
        positions={lead: i for i, lead in enumerate(crm.leads["lead_id"])},
        activity_ids=crm.activities["lead_id"].to_numpy(dtype=object),
        touch_ids=crm.touches["lead_id"].to_numpy(dtype=object),
        sample=sample,
        scored=frozenset(table["lead_id"]),
        display=shown,
        filters=filter_options(table, CRM_FILTERS, ["industry", *custom]),
    )


def flat_table_export(
    name: str, frame: pd.DataFrame, model: FlatModel, display: tuple[str, ...] | None = None
) -> Export:
    """The rows of a flat table (after the schema) still open, scored by the flat-table
    champion: a row whose label column is filled already has its outcome and is no lead to
    work. `display` columns (default: the model's schema's) are shown beside each row; the
    categorical inputs are kept in the table for the filters."""
    details = model.details
    label = details.label.column
    open_rows = (frame[label] == "").to_numpy() if label in frame else np.ones(len(frame), bool)
    positions = np.flatnonzero(open_rows)
    if not len(positions):
        raise ContractError(
            f"{name}: every row has a value in '{label}', so every lead already has its "
            "outcome; upload leads whose outcome is still open (an empty "
            f"'{label}'), or import outcomes on the Outcomes page"
        )
    rows = frame.iloc[positions]
    scored = score_table(rows, model.loaded, where=name)
    wanted = details.table_mapping.display if display is None else display
    shown = shown_columns(wanted, frame, scored)
    categorical = [
        c for c, kind in details.feature_types.items() if kind == "categorical" and c not in scored
    ]
    extra = {c: rows[c].to_numpy() for c in shown}
    for c in categorical:
        if c not in extra:
            extra[c] = rows[c].mask(rows[c] == "", MISSING_CATEGORY).to_numpy()
    scored = pd.concat([scored, pd.DataFrame(extra)], axis=1)
    table = scored.sort_values("readiness", ascending=False, kind="stable").reset_index(drop=True)
    ids = scored[details.id_column].tolist()
    return Export(
        name=name,
        table=table,
        crm=None,
        as_of=int(time.time()),
        model_version=model.loaded.version,
        id_column=details.id_column,
        frame=frame,
        positions={lead: int(positions[i]) for i, lead in reversed(list(enumerate(ids)))},
        display=shown,
        known=int(len(frame) - len(positions)),
        filters=filter_options(table, {}, categorical),
    )


def _as_of_text(export: Export) -> str:
    return datetime.fromtimestamp(export.as_of, UTC).isoformat()


def _save_upload(upload: UploadFile, folder: Path, name: str) -> Path:
    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ContractError(
            f"{upload.filename or name}: expected a .csv or .parquet file for the {name} table"
        )
    path = folder / f"{name}{suffix}"
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out)
    return path


def _schema(upload: UploadFile | None) -> Schema | None:
    if upload is None or not upload.filename:
        return None
    import yaml

    text = upload.file.read().decode("utf-8", errors="replace")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{upload.filename}: not valid YAML ({exc})") from None
    # Uploaded tables are saved under the contract's names, whatever the schema calls them.
    return Schema.parse(raw or {}, upload.filename).without_files()


def _present(upload: UploadFile | None) -> bool:
    return upload is not None and bool(upload.filename)


def _flat_export(
    model: FlatModel, upload: UploadFile, folder: Path, schema: Schema | None
) -> Export:
    """A flat table (one row per lead), scored by the flat-table champion (`serving.flat`)."""
    path = _save_upload(upload, folder, "table")
    mapping = schema.table("table") if schema is not None else stored_mapping(model.details)
    frame = read_flat(path, mapping)
    return flat_table_export(str(upload.filename), frame, model, mapping.display or None)


def _score_upload(
    uploads: dict[str, UploadFile | None], as_of: str, champions: Champions, folder: Path
) -> Export:
    leads, activities, touches, table, schema_file = (uploads.get(k) for k in UPLOAD_TABLES)
    mapping = _schema(schema_file)
    if _present(table):
        if any(_present(u) for u in (leads, activities, touches)):
            raise ContractError(
                "give either the tables of a CRM export or one flat table, not both"
            )
        return _flat_export(flat_model(champions), table, folder, mapping)  # type: ignore[arg-type]
    if not _present(leads):
        raise ContractError(
            "missing the leads table; a CRM export has a leads table, and activities and "
            "touches when it records them (.csv or .parquet)"
        )
    files = {"leads": leads, "activities": activities, "touches": touches}
    files = {name: u for name, u in files.items() if _present(u)}
    for name, u in files.items():
        _save_upload(u, folder, name)  # type: ignore[arg-type]
    engine = crm_model(champions)
    if mapping is None and (trained := engine.loaded.schema) is not None:
        mapping = trained.without_files()
    crm = load_crm(
        folder, require_outcome=False, schema=mapping, lost_after=engine.loaded.lost_after
    )
    names = ", ".join(str(u.filename) for u in files.values() if u is not None)
    return build_export(names, crm, engine, as_of or None)


@dataclass
class Exports:
    """Each session's scored export: the last MAX_EXPORTS in memory, all on disk (`saved`); the
    sample (`sample_dir`) scored once per champion version and change of the folder."""

    sample_dir: Path
    saved: SavedExports
    memory: OrderedDict[str, Export] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sample: tuple[tuple, Export] | None = None

    def export_for(self, sid: str) -> Export | None:
        """The export this process holds for a session, as it was scored."""
        with self.lock:
            export = self.memory.get(sid)
            if export is not None:
                self.memory.move_to_end(sid)
            return export

    def keep(self, sid: str, export: Export) -> None:
        with self.lock:
            self.memory[sid] = export
            self.memory.move_to_end(sid)
            while len(self.memory) > MAX_EXPORTS:
                self.memory.popitem(last=False)

    def sample_available(self) -> bool:
        return any((self.sample_dir / f"leads.{ext}").is_file() for ext in ("csv", "parquet"))

    def session_export(self, sid: str, champions: Champions) -> Export | None:
        """This session's export, scored by the champion now served: from this process's
        memory, else from the copy saved on disk (uploaded through another worker, or before a
        restart)."""
        export = self.export_for(sid)
        if export is not None:
            return self._rescored(sid, export, champions)
        saved = self.saved.load(sid)
        if saved is None:
            return None
        try:
            if saved.kind == "sample":
                export = self.sample_export(crm_model(champions))
            elif saved.crm is not None:
                export = build_export(saved.name, saved.crm, crm_model(champions), saved.as_of)
            else:
                assert saved.frame is not None
                export = flat_table_export(saved.name, saved.frame, flat_model(champions))
        except (ContractError, OSError, ValueError):
            return None  # e.g. the sample folder is gone: start over
        self.keep(sid, export)
        return export

    def _rescored(self, sid: str, export: Export, champions: Champions) -> Export:
        """An export scored by an older champion is scored again by the one now served."""
        if export.crm is not None:
            engine = crm_model(champions)
            if export.model_version == engine.loaded.version:
                return export
            fresh = build_export(
                export.name, export.crm, engine, _as_of_text(export), export.sample
            )
        else:
            model = flat_model(champions)
            if export.model_version == model.loaded.version:
                return export
            assert export.frame is not None  # flat exports keep their table
            fresh = flat_table_export(export.name, export.frame, model)
        self.keep(sid, fresh)
        return fresh

    def sample_export(self, engine: Engine) -> Export:
        """The sample scored by the champion; shared by every session, scored once per version
        and change of the folder."""
        folder = self.sample_dir
        stamps = tuple(p.stat().st_mtime_ns for p in sorted(folder.glob("*.*")))
        key = (str(folder.resolve()), stamps, engine.loaded.version)
        if self.sample is not None and self.sample[0] == key:
            return self.sample[1]
        crm = load_crm(folder, require_outcome=False, lost_after=engine.loaded.lost_after)
        export = build_export("Sample CRM", crm, engine, None, sample=True)
        self.sample = (key, export)
        return export

    def use_sample(self, sid: str, champions: Champions) -> Export:
        """Score the sample for a session; ContractError, OSError or ValueError when the
        folder cannot be read."""
        export = self.sample_export(crm_model(champions))
        self.saved.save(sid, Saved(export.name, "sample"))
        self.keep(sid, export)
        return export

    def upload(
        self, sid: str, uploads: dict[str, UploadFile | None], as_of: str, champions: Champions
    ) -> Export:
        """Score an upload for a session: a CRM export (leads, optional events and schema) or a
        flat table; UploadRefused says why one cannot be scored."""
        folder = Path(tempfile.mkdtemp(prefix="leadready-ui-"))
        try:
            export = _score_upload(uploads, as_of, champions, folder)
            self.saved.save(
                sid,
                Saved(export.name, "crm", as_of or None, crm=export.crm)
                if export.crm is not None
                else Saved(export.name, "flat", frame=export.frame),
            )
        except (ContractError, NoChampionError, ValueError) as exc:
            message = str(exc).replace(str(folder) + "/", "").replace(str(folder), "the upload")
            raise UploadRefused(message) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.keep(sid, export)
        return export
