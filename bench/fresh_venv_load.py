"""Does the champion load where leadready is not installed? A new virtualenv, only the model's
logged requirements, and `mlflow.pyfunc.load_model("models:/sales-readiness@champion")`.

    .venv/bin/python bench/fresh_venv_load.py [--models DIR]

Without --models, a champion is first trained on a 3,000-lead sample in a temporary folder. Then
a virtualenv is created in a temporary folder outside the checkout and given only
`pip install -r requirements.txt` of the champion's logged model; in it, with the working
directory outside the checkout, the champion is loaded through MLflow and predicts its logged
input example (the code its pickle needs is logged with it). The readiness must equal what the
installed leadready computes. Prints the install and load times.

It takes minutes (pip's cache helps), so it is a script; tests/test_registry.py runs the same
load in this virtualenv, with and without leadready importable. Running this file as
`fresh_venv_load.py load URI OUT [--without-leadready]` is the loading process itself: it uses
only the standard library before MLflow, and no leadready.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHAMPION_URI = "models:/sales-readiness@champion"


def load(uri: str, out: Path, without_leadready: bool) -> None:
    """In the loading process: load the champion with MLflow, predict its input example, and
    write the example and what was loaded from where to `out`."""
    if without_leadready:  # as if not installed: drop the editable install's finder and path
        sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        sys.path = [p for p in sys.path if "__editable__" not in p]
    installed = importlib.util.find_spec("leadready") is not None
    import mlflow

    mlflow.set_tracking_uri(uri)
    started = time.perf_counter()
    logged = mlflow.pyfunc.load_model(CHAMPION_URI)
    example = logged.input_example
    readiness = logged.predict(example)[:, 1]
    seconds = time.perf_counter() - started
    try:
        importlib.import_module("leadready.features.schema")  # a module the pickle does not need
        whole = True
    except ImportError:
        whole = False
    example.to_pickle(out / "example.pkl")
    result = {
        "installed": installed,
        "readiness": readiness.tolist(),
        "module": sys.modules["leadready.features.model"].__file__,
        "whole_package": whole,
        "seconds": seconds,
    }
    (out / "result.json").write_text(json.dumps(result))


def load_logged_model(
    python: str | Path, models_dir: Path, work: Path, without_leadready: bool = False
) -> tuple[dict[str, Any], Any]:
    """Run `load` in a new process of `python` (cwd `work`, outside the checkout, where this
    file is copied first); returns what it wrote: (result, input example as a DataFrame)."""
    import pandas as pd

    work.mkdir(parents=True)
    script = work / Path(__file__).name
    script.write_text(Path(__file__).read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}
    uri = f"sqlite:///{(models_dir / 'mlflow.db').resolve()}"
    flags = ["--without-leadready"] if without_leadready else []
    done = subprocess.run(
        [str(python), str(script), "load", uri, str(work), *flags],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loading the champion failed:\n{done.stderr[-3000:]}")
    return json.loads((work / "result.json").read_text()), pd.read_pickle(work / "example.pkl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, help="models folder with a champion")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import mlflow
    import numpy as np

    from leadready.features.contract import load_crm
    from leadready.features.registry import use_store
    from leadready.serving.store import load_champion
    from leadready.training.pipeline import TrainConfig, train
    from leadready.training.registry import publish
    from leadready.training.sample import write_sample

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        models = args.models
        if models is None:
            models = tmp / "models"
            write_sample(tmp / "sample", 3000, seed=11)
            publish(train(load_crm(tmp / "sample"), TrainConfig(search_seconds=0)), models)
        use_store(models)
        requirements = mlflow.pyfunc.get_model_dependencies(CHAMPION_URI)
        print("requirements.txt:", ", ".join(Path(requirements).read_text().split()))
        venv = tmp / "venv"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--disable-pip-version-check", "-r", requirements], check=True)
        installed_in = time.perf_counter() - started
        started = time.perf_counter()
        result, example = load_logged_model(venv / "bin" / "python", models, tmp / "work")
        loaded_in = time.perf_counter() - started
        expected = load_champion(models).scorer.predict_proba(example)[:, 1]
        same = not result["installed"] and np.allclose(result["readiness"], expected)
        print(f"virtualenv and pip install: {installed_in:.1f} s")
        print(
            f"new process, load and predict: {loaded_in:.1f} s "
            f"(load_model and predict: {result['seconds']:.1f} s)"
        )
        print(f"leadready installed in the virtualenv: {result['installed']}")
        print(f"pickled classes from: {result['module']}")
        print(f"readiness of the {len(expected)} example rows equals leadready's: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["load"]:
        load(sys.argv[2], Path(sys.argv[3]), "--without-leadready" in sys.argv)
    else:
        main()
