"""How leadready writes files: spreadsheet-safe CSV text, and outputs that appear whole or not
at all. Both sides write files (scores, the audit export, samples, reports, the workspace's
saved uploads), so both call these.

**Formula cells.** A spreadsheet evaluates a CSV cell that starts with `=`, `+`, `-`, `@`, a tab
or a carriage return, quoted or not, so a lead id such as `=HYPERLINK("http://x","y")` would run
when a marketer opens the file. `neutralise_formulas` prefixes such *text* cells (and column
names) with a single quote, which spreadsheets show as text. The rule is on the cell's type, not
its look: a value that is a Python `str` is text (`"-5"` in an id column becomes `'-5`), a number
is a number (`-0.5` in a readiness column stays `-0.5`); missing values and dates are left alone.
Lines end with CRLF, so a cell holding a carriage return is quoted and stays one cell.

**Atomic outputs.** `pandas.DataFrame.to_csv(path)` truncates its target first, so an interrupt
leaves an empty or cut file in place of the previous one. `replacing(target)` hands out a
temporary name in the same folder, `.<name>.leadready-<hex>.partial`, and renames it onto the
target (`os.replace`, atomic on one file system) only once it is complete; on any error or
interrupt it removes it, leaving the previous target untouched. Only SIGKILL or a power cut can
leave a `.partial` file behind: nothing reads those names, and they can be deleted.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet evaluate a cell (OWASP "CSV injection")."""
LINE_END = "\r\n"
"""RFC 4180's line end. With it Python's CSV writer quotes a cell holding a carriage return;
with a bare `\\n` it writes the CR unquoted, and readers see a line break inside the cell."""
PARTIAL_SUFFIX = ".partial"


class OutputError(ValueError):
    """An output path that cannot be written, found before any work is done."""


def _neutralise(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell and column name that a spreadsheet would evaluate
    prefixed with a single quote; numeric, boolean, date and missing cells are unchanged. The
    input frame is not modified (a copy is returned when anything changes)."""
    changed: dict[str, pd.Series] = {}
    for position, column in enumerate(frame.columns):
        series = frame.iloc[:, position]
        if not (
            series.dtype == object
            or pd.api.types.is_string_dtype(series.dtype)
            or isinstance(series.dtype, pd.CategoricalDtype)
        ):
            continue
        values = series.to_numpy(dtype=object)
        safe = [_neutralise(v) for v in values]
        if any(a is not b for a, b in zip(safe, values, strict=True)):
            changed[column] = pd.Series(safe, index=frame.index, dtype=object)
    names = [_neutralise(c) for c in frame.columns]
    if not changed and names == list(frame.columns):
        return frame
    out = frame.copy()
    for column, series in changed.items():
        out[column] = series
    out.columns = names
    return out


def csv_text(frame: pd.DataFrame) -> str:
    """The frame as spreadsheet-safe CSV text: header, no index, CRLF line ends."""
    return neutralise_formulas(frame).to_csv(index=False, lineterminator=LINE_END)


def _beside(target: Path, suffix: str) -> Path:
    return target.with_name(f".{target.name}.leadready-{secrets.token_hex(4)}{suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` for the caller to write (a file, or a folder it
    creates); renamed onto `target` when the block ends normally, removed when it raises
    (KeyboardInterrupt included). The target's folder is created if missing. A folder replaces
    a folder: the old one is moved aside first, then deleted."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _beside(target, PARTIAL_SUFFIX)
    try:
        yield temp
        if not temp.is_dir():
            _sync(temp)
            os.replace(temp, target)
        elif target.is_dir():  # os.replace does not replace a folder that has files
            retired = _beside(target, ".old")
            os.replace(target, retired)
            os.replace(temp, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(temp, target)
    except BaseException:
        _remove(temp)
        raise


def _sync(path: Path) -> None:
    """Flush a written file to disk before it is renamed into place, so that after a power
    cut the target is the old file or the whole new one, not a renamed empty one."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write the frame as spreadsheet-safe CSV, atomically; returns the path."""
    with replacing(path) as temp:
        neutralise_formulas(frame).to_csv(temp, index=False, lineterminator=LINE_END)
    return Path(path)


def write_once(path: Path, data: bytes, mode: int = 0o600) -> bytes:
    """Create `path` holding `data` unless it exists, and return what it holds. Processes racing
    to create it all get the first one's bytes and never a half-written file: the bytes are
    written beside it, then hard-linked to the name, which fails when the name exists."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = _beside(path, PARTIAL_SUFFIX)
        try:
            with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            with suppress(FileExistsError):
                os.link(temp, path)
        finally:
            temp.unlink(missing_ok=True)
    return path.read_bytes()


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write the frame as parquet (types kept, nothing to neutralise), atomically."""
    with replacing(path) as temp:
        frame.to_parquet(temp, index=False)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """Write utf-8 text, atomically; returns the path."""
    with replacing(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return Path(path)


def check_output(path: Path, suffixes: tuple[str, ...], option: str = "--out") -> Path:
    """Refuse, before any work, an output file that could not be written: a folder, a name
    whose suffix is not one of `suffixes` (lower-case, with the dot), or a missing parent
    folder that could not be created (a file in the way, no write permission). Creates
    nothing."""
    path = Path(path)
    expected = " or ".join(suffixes)
    if path.is_dir():
        raise OutputError(
            f"{option} {path}: is a folder; give a file name such as {path / ('x' + suffixes[0])}"
        )
    if path.suffix.lower() not in suffixes:
        raise OutputError(
            f"{option} {path}: expected a {expected} file name"
            + (f", not {path.suffix}" if path.suffix else "")
        )
    check_folder(path.parent, option, f"{option} {path}")
    return path


def check_folder(folder: Path, option: str = "--out", what: str | None = None) -> Path:
    """Refuse, before any work, a folder that neither exists nor could be created, or that
    leadready may not write in. Creates nothing."""
    folder = Path(folder)
    what = what or f"{option} {folder}"
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what}: {existing} is a file, so the folder cannot be created")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{what}: no permission to write in {existing}")
    return folder
