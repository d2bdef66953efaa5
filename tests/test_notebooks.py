"""The notebooks in notebooks/: stored without outputs, and each one runs end to end.

Each notebook runs with nbclient in a kernel started from this interpreter (the venv's python,
through a kernelspec written to a temp folder, so no other `python3` kernel on the machine is
picked up), in notebooks/ as Jupyter started at the repository root runs it (README). Its
parameters are pointed through the LEADREADY_NB_* variables at a small sample CRM and a models
folder in temp folders: nothing reads data/, models/ or the shared Leads.csv, nothing is written
beside the notebooks, and no MLflow server set in the environment is used.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = ("01_explore_crm.ipynb", "02_train_and_compare.ipynb", "03_explain_a_lead.ipynb")
SAMPLE_LEADS = 2000
CELL_TIMEOUT = 300
KERNEL_PROBE = "import sys\nprint('KERNEL-PYTHON', sys.executable, sys.prefix, sep='|')"


@pytest.fixture(scope="module")
def kernels(tmp_path_factory) -> KernelSpecManager:
    """A kernelspec named python3 (the name the notebooks store) that runs this interpreter."""
    folder = tmp_path_factory.mktemp("kernels")
    (folder / "python3").mkdir()
    (folder / "python3" / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (leadready venv)",
                "language": "python",
            }
        )
    )
    return KernelSpecManager(kernel_dirs=[str(folder)])


@pytest.fixture(scope="module")
def small_crm(tmp_path_factory) -> Path:
    """A small sample CRM export, written once for the notebooks that take one."""
    from leadready.training.sample import write_sample

    folder = tmp_path_factory.mktemp("nb-crm")
    write_sample(folder, SAMPLE_LEADS, seed=7)
    return folder


def run_notebook(
    name: str, kernels: KernelSpecManager, work: Path, data: Path, models: Path
) -> tuple[nbformat.NotebookNode, str]:
    """Execute a notebook end to end in notebooks/ (any cell error fails); return it and its
    text output."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    before = set(NOTEBOOKS.iterdir())
    nb.cells.append(nbformat.v4.new_code_cell(KERNEL_PROBE))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LEADREADY_", "MLFLOW_"))
    }
    env.update(
        {
            "LEADREADY_NB_DATA": str(data),
            "LEADREADY_NB_MODELS": str(models),
            "LEADREADY_NB_LEADS": str(SAMPLE_LEADS),
            "OMP_WAIT_POLICY": "PASSIVE",  # LightGBM's threads would busy-wait otherwise
            "IPYTHONDIR": str(work / "ipython"),
        }
    )
    km = KernelManager(kernel_name="python3", kernel_spec_manager=kernels)
    client = NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT,
        startup_timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute(env=env)
    assert set(NOTEBOOKS.iterdir()) == before, "the notebook wrote files beside itself"
    errors = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, errors
    text = "\n".join(_texts(nb))
    probe = re.search(r"KERNEL-PYTHON\|(.+)\|(.+)", text)
    assert probe, "the kernel did not report its interpreter"
    assert (probe.group(1), probe.group(2)) == (sys.executable, sys.prefix), (
        "the notebook ran in another Python than the test suite's"
    )
    return nb, text


def _texts(nb: nbformat.NotebookNode) -> list[str]:
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(output.text)
            elif "text/plain" in output.get("data", {}):
                texts.append(output.data["text/plain"])
    return texts


def _images(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


@pytest.mark.unit
def test_notebooks_are_stored_without_outputs() -> None:
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert {path.name for path in paths} >= set(EXPECTED)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (
                    f"{path.name}: cell {cell.get('id')} is stored with outputs; clear them"
                )


@pytest.mark.unit
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_opens_with_what_it_shows_and_parameters(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    intro, parameters = nb.cells[0], nb.cells[1]
    assert intro.cell_type == "markdown" and "What this notebook shows" in intro.source
    assert parameters.cell_type == "code" and "parameters" in parameters.metadata.get("tags", [])
    for name_, variable in (
        ("DATA_DIR", "LEADREADY_NB_DATA"),
        ("MODELS_DIR", "LEADREADY_NB_MODELS"),
        ("N_LEADS", "LEADREADY_NB_LEADS"),
    ):
        assert re.search(rf"^{name_} = .*{variable}", parameters.source, re.M), name_


@pytest.mark.unit
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_paths_are_the_repository_roots_whatever_the_folder(
    name: str, tmp_path, monkeypatch
) -> None:
    """The parameters resolve from the repository root, not the kernel's folder: the `make demo`
    sample and store when they exist (the environment's LEADREADY_NB_* win), else None."""
    for variable in ("LEADREADY_NB_DATA", "LEADREADY_NB_MODELS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    names: dict[str, object] = {}
    exec(nbformat.read(NOTEBOOKS / name, as_version=4).cells[1].source, names)
    root = NOTEBOOKS.parent
    assert names["ROOT"] == root
    demo_data = root / "data" / "sample"
    assert names["DATA_DIR"] == (demo_data if any(demo_data.glob("leads.*")) else None)
    demo_models = root / "models"
    uses_demo = name != "02_train_and_compare.ipynb" and (demo_models / "mlflow.db").exists()
    assert names["MODELS_DIR"] == (demo_models if uses_demo else None)


@pytest.mark.notebook
def test_explore_crm(kernels, tmp_path) -> None:
    # An empty data folder: the notebook generates the sample into it (N_LEADS leads).
    data = tmp_path / "crm"
    nb, text = run_notebook("01_explore_crm.ipynb", kernels, tmp_path, data, tmp_path / "models")
    assert "Generated the sample CRM" in text
    assert (data / "leads.csv").exists()
    assert re.search(r"[\d,]+ closed leads, [\d.]+% of them won", text)
    assert re.search(r"Half of the won leads were won after at most \d+ touches", text)
    assert "weeks_since_touch" in text and "ready_rate" in text
    assert _images(nb) >= 4  # sources, BANT, touches to win, decay


@pytest.mark.notebook
def test_train_and_compare(kernels, small_crm, tmp_path) -> None:
    models = tmp_path / "models"
    nb, text = run_notebook("02_train_and_compare.ipynb", kernels, tmp_path, small_crm, models)
    assert "version 1: no champion yet (champion: True)" in text
    assert re.search(r"version 2: .*champion v1", text)
    assert "lightgbm" in text and "hist_gradient_boosting" in text  # the leaderboard
    assert re.search(r"readiness\s+[\d.]+ \[[\d.]+, [\d.]+\]", text)  # metrics with intervals
    assert "ready: lightgbm" in text  # nested candidate runs read back from MLflow
    assert "b_should_replace_a" in text  # compare_versions
    assert (models / "mlflow.db").exists()
    assert (models / "reports" / "sales-readiness-v2.html").exists()
    assert _images(nb) >= 2


@pytest.mark.notebook
def test_explain_a_lead(kernels, small_crm, tmp_path) -> None:
    # An empty models folder: the notebook trains a quick champion first.
    nb, text = run_notebook(
        "03_explain_a_lead.ipynb", kernels, tmp_path, small_crm, tmp_path / "models"
    )
    assert "training a quick model" in text
    assert re.search(r"^route\s+(sales|nurture|disqualify)$", text, re.M)
    assert re.search(r"^route_reason\s+\S", text, re.M)
    # The reasons add up to the readiness: the notebook prints both sides of the check.
    check = re.search(r"= ([+-][\d.]+) log-odds; logit\(readiness\) = ([+-][\d.]+)", text)
    assert check and check.group(1) == check.group(2)
    assert "weak BANT, demo request yesterday" in text  # the what-if table
    assert re.search(r"[\d,]+ open leads scored", text)
    assert _images(nb) >= 4  # reasons, what-if, reasons of a variant, open leads
