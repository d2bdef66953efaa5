"""What the workspace keeps on disk, so every worker process (`serve --workers N`) and a
restarted server can serve a session: the secret that signs session cookies, and each
session's uploaded export as it was validated (scored again by whichever process serves it), and
the sessions logged out before their cookie expired.

Everything lives under `<models folder>/workspace/`: `secret` (mode 0600), one folder per
session holding `meta.json` and parquet tables, and one empty `revoked-<session id>` file per
logged-out session. Folders are written beside their final name and renamed into place
(`features.files.replacing`), so a reader never sees half an export; only the newest MAX_SAVED,
and none older than a session's lifetime, are kept.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leadready.features.contract import Crm
from leadready.features.files import replacing, write_once

MAX_SAVED = 64
STALE_STAGING_SECONDS = 3600
CRM_TABLES = ("leads", "activities", "touches")
REVOKED = "revoked-"


def session_secret(folder: Path) -> bytes:
    """The cookie-signing secret shared by the server's processes: created once (0600) by the
    first worker to get here; the others read it, never a half-written one."""
    return write_once(folder / "secret", secrets.token_bytes(32))


@dataclass(frozen=True)
class Saved:
    """A session's export inputs: a CRM export, a flat table, or the sample (no tables)."""

    name: str
    kind: str  # "crm", "flat" or "sample"
    as_of: str | None = None
    crm: Crm | None = None
    frame: pd.DataFrame | None = None


class SavedExports:
    """One folder per session id under `folder`, dropped after `max_age` seconds."""

    def __init__(self, folder: Path, max_age: float = float("inf")) -> None:
        self.folder = folder
        self.max_age = max_age

    def save(self, sid: str, saved: Saved) -> None:
        with replacing(self.folder / sid) as staging:
            staging.mkdir()
            if saved.crm is not None:
                for name in CRM_TABLES:
                    getattr(saved.crm, name).to_parquet(staging / f"{name}.parquet", index=False)
            if saved.frame is not None:
                saved.frame.to_parquet(staging / "table.parquet", index=False)
            meta = {
                "name": saved.name,
                "kind": saved.kind,
                "as_of": saved.as_of,
                "custom": saved.crm.custom if saved.crm is not None else {},
                "display": list(saved.crm.display) if saved.crm is not None else [],
            }
            (staging / "meta.json").write_text(json.dumps(meta))
        self._prune()

    def load(self, sid: str) -> Saved | None:
        folder = self.folder / sid
        try:
            meta = json.loads((folder / "meta.json").read_text())
            crm = frame = None
            if meta["kind"] == "crm":
                leads, activities, touches = (
                    pd.read_parquet(folder / f"{name}.parquet") for name in CRM_TABLES
                )
                crm = Crm(
                    leads,
                    activities,
                    touches,
                    custom=dict(meta["custom"]),
                    display=tuple(meta.get("display", ())),  # absent from older saves
                )
            elif meta["kind"] == "flat":
                frame = pd.read_parquet(folder / "table.parquet")
        except (OSError, ValueError, KeyError):
            return None  # never saved, pruned, or being replaced right now
        return Saved(meta["name"], meta["kind"], meta["as_of"], crm, frame)

    def _prune(self) -> None:
        dated = []
        for path in self.folder.iterdir():
            try:  # another worker may be pruning too
                if not path.is_dir():
                    continue
                if path.name.startswith("."):  # left by a save that was cut off
                    if path.stat().st_mtime < time.time() - STALE_STAGING_SECONDS:
                        shutil.rmtree(path, ignore_errors=True)
                    continue
                dated.append((path.stat().st_mtime, path))
            except OSError:
                continue
        dated.sort(reverse=True)
        oldest = time.time() - self.max_age
        for rank, (mtime, path) in enumerate(dated):
            if rank >= MAX_SAVED or mtime < oldest:
                shutil.rmtree(path, ignore_errors=True)


class Revocations:
    """Logged-out session ids, as empty `revoked-<id>` files in `folder`, so every worker refuses
    a cookie once its session is logged out on any of them. A file older than `max_age` seconds
    (the session lifetime) is dropped: its cookie has expired anyway."""

    def __init__(self, folder: Path, max_age: float) -> None:
        self.folder = folder
        self.max_age = max_age

    def _path(self, sid: str) -> Path | None:
        """Session ids are URL-safe base64; anything else names no file."""
        if not sid or not all(c.isascii() and (c.isalnum() or c in "-_") for c in sid):
            return None
        return self.folder / f"{REVOKED}{sid}"

    def revoke(self, sid: str) -> None:
        path = self._path(sid)
        if path is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path.touch()  # creating an empty file is atomic: no worker sees half a record
        oldest = time.time() - self.max_age
        for entry in self.folder.glob(f"{REVOKED}*"):
            try:  # another worker may be pruning too
                if entry.stat().st_mtime < oldest:
                    entry.unlink()
            except OSError:
                continue

    def revoked(self, sid: str) -> bool:
        path = self._path(sid)
        return path is None or path.exists()
