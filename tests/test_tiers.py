"""The tier rule of tests/conftest.py, in a real pytest process on a throwaway test folder with
this repository's conftest.py and pytest settings."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parent


def collect(folder: Path, files: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Collect `files` (test modules by name) with the repository's conftest and settings."""
    (folder / "tests").mkdir()
    shutil.copy(TESTS.parent / "pyproject.toml", folder)
    shutil.copy(TESTS / "conftest.py", folder / "tests")
    for name, text in files.items():
        (folder / "tests" / name).write_text(f"import pytest\n\n{text}")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_test_without_a_tier_or_with_two_or_a_heavy_unit_test_stops_the_run(tmp_path):
    result = collect(
        tmp_path,
        {
            "test_bad.py": (
                "def test_unmarked():\n    pass\n\n\n"
                "@pytest.mark.unit\n@pytest.mark.model\ndef test_two():\n    pass\n\n\n"
                "@pytest.mark.unit\ndef test_heavy(sample_dir):\n    pass\n"
            ),
            "test_good.py": "pytestmark = pytest.mark.data\n\n\ndef test_fine():\n    pass\n",
        },
        "-m",
        "data",  # the rule holds for deselected tests too
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "every test needs exactly one tier marker (unit, data, model," in output
    assert "tests/test_bad.py::test_unmarked: no tier marker" in output
    assert "tests/test_bad.py::test_two: several tier markers (unit, model)" in output
    assert "tests/test_bad.py::test_heavy: a unit test using sample_dir" in output
    assert "test_fine" not in output.split("every test needs")[1]


def test_marked_tests_run_and_a_tier_selects_its_own(tmp_path):
    result = collect(
        tmp_path,
        {
            "test_mixed.py": (
                "@pytest.mark.unit\ndef test_quick():\n    pass\n\n\n"
                "@pytest.mark.model\ndef test_slow(champion_dir):\n    pass\n"
            ),
        },
        "-m",
        "unit",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests/test_mixed.py::test_quick" in result.stdout
    assert "test_slow" not in result.stdout
    assert "1/2 tests collected (1 deselected)" in result.stdout
