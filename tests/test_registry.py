"""The registry shared by both sides: versions registered before the package was named
`leadready` still load, and the logged model carries the code its pickle needs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from legacy_metadata import legacy_info
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from leadready import features
from leadready.cli import app
from leadready.features import baselines, model
from leadready.features.contract import load_crm
from leadready.features.metadata import ModelInfo
from leadready.features.registry import CHAMPION, MODEL_NAME, NoChampionError, use_store
from leadready.serving.batch import score_export
from leadready.serving.store import load_champion
from leadready.training.registry import configure, list_versions

AS_OF = "2026-06-29T00:00:00"
# The champion's load through MLflow in a new process, shared with bench/fresh_venv_load.py, which
# runs it in a new virtualenv given only the model's logged requirements (minutes: not a test).
_spec = importlib.util.spec_from_file_location(
    "fresh_venv_load", Path(__file__).resolve().parents[1] / "bench" / "fresh_venv_load.py"
)
fresh_venv_load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fresh_venv_load)


def _old_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the model's classes live in `features.model` and `features.baselines`, the names
    versions registered before the `leadready` package pickled (undone by monkeypatch)."""
    monkeypatch.setitem(sys.modules, "features", features)
    for module in (model, baselines):
        old = module.__name__.removeprefix("leadready.")
        monkeypatch.setitem(sys.modules, old, module)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__:
                monkeypatch.setattr(value, "__module__", old)


@pytest.mark.model
def test_versions_pickled_under_the_old_module_names_still_load(
    champion_dir, sample_dir, tmp_path, monkeypatch
):
    """A version registered before the package was named `leadready` and before its metadata
    was typed: old module names, and `info` pickled as the old flat dict."""
    current = load_champion(champion_dir)
    models = tmp_path / "models"
    configure(models)
    legacy = legacy_info(current.scorer.info)
    with monkeypatch.context() as patch:
        _old_names(patch)
        # The old LeadScorer pickled its attributes as they were (BaseEstimator.__getstate__).
        patch.setattr(model.LeadScorer, "__getstate__", lambda self: {**vars(self), "info": legacy})
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                current.scorer,
                name="model",
                registered_model_name=MODEL_NAME,
                serialization_format="cloudpickle",
                pip_requirements=["mlflow"],
            )
    MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION, "1")
    (pickled,) = (models / "artifacts").rglob("model.pkl")
    stream = pickled.read_bytes()
    assert b"features.model" in stream and b"leadready" not in stream

    old = load_champion(models)

    assert type(old.scorer) is model.LeadScorer
    assert "features" not in sys.modules and "features.model" not in sys.modules
    info = old.scorer.info
    assert isinstance(info, ModelInfo) and info.flat is None
    assert info.crm.horizon_days == current.scorer.info.crm.horizon_days
    assert info.crm.data.sha256 == current.scorer.info.crm.data.sha256
    assert info.thresholds == current.scorer.info.thresholds
    newer = {"policy", "routes", "routing_notes", "profile"}  # what the old format did not have
    assert info.model_dump_json(exclude=newer) == current.scorer.info.model_dump_json(exclude=newer)
    assert info.policy.disqualify_win_rate is None and info.routing_notes == []
    assert info.profile is None and current.scorer.info.profile is not None  # not monitorable
    assert info.routes["sales"].share == current.scorer.info.routes["sales"].share
    crm = load_crm(sample_dir)
    pd.testing.assert_frame_equal(
        score_export(crm, old, AS_OF, threads=1), score_export(crm, current, AS_OF, threads=1)
    )


class _NotAScorer(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input


@pytest.mark.model
def test_a_champion_that_is_not_a_pickled_scorer_is_refused_in_words(tmp_path):
    models = tmp_path / "models"
    configure(models)
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model",
            python_model=_NotAScorer(),
            registered_model_name=MODEL_NAME,
            pip_requirements=["mlflow"],
        )
    MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION, "1")
    with pytest.raises(NoChampionError, match="version 1 of 'sales-readiness' is no scorer"):
        load_champion(models)


@pytest.mark.model
def test_a_champion_pickled_as_another_estimator_is_refused_in_words(tmp_path):
    models = tmp_path / "models"
    configure(models)
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1]),
            name="model",
            registered_model_name=MODEL_NAME,
            serialization_format="cloudpickle",
            pip_requirements=["mlflow"],
        )
    MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION, "1")
    with pytest.raises(
        NoChampionError,
        match="version 1 of 'sales-readiness' is a pickled LogisticRegression, not a leadready "
        "scorer",
    ):
        load_champion(models)


@pytest.mark.model
def test_comparing_with_a_version_registered_without_a_run_says_why_it_cannot(
    champion_dir, tmp_path
):
    """A version registered from a model folder has no run, so no hold-out to test on."""
    current = load_champion(champion_dir)
    models = tmp_path / "models"
    configure(models)
    with mlflow.start_run():
        logged = mlflow.sklearn.log_model(
            current.scorer,
            name="model",
            registered_model_name=MODEL_NAME,
            serialization_format="cloudpickle",
            pip_requirements=["mlflow"],
        )
    client = MlflowClient()
    folder = mlflow.get_logged_model(logged.model_id).artifact_location
    assert client.create_model_version(MODEL_NAME, folder).run_id is None

    result = CliRunner().invoke(app, ["models", "compare", "1", "2", "--models-dir", str(models)])

    assert result.exit_code == 2, result.output
    assert "version 2 of 'sales-readiness' was registered without a training run" in " ".join(
        result.output.split()
    )


def _expected(champion_dir: Path, example: pd.DataFrame) -> np.ndarray:
    return load_champion(champion_dir).scorer.predict_proba(example)[:, 1]


@pytest.mark.model
def test_the_logged_model_loads_with_its_own_code_where_leadready_is_not_installed(
    champion_dir, tmp_path
):
    result, example = fresh_venv_load.load_logged_model(
        sys.executable, champion_dir, tmp_path / "work", without_leadready=True
    )
    assert not result["installed"]
    code = (champion_dir / "artifacts").resolve()
    assert Path(result["module"]).resolve().is_relative_to(code)
    assert not result["whole_package"]  # only what the pickle needs was logged
    np.testing.assert_allclose(result["readiness"], _expected(champion_dir, example))


@pytest.mark.model
def test_the_installed_leadready_wins_over_the_logged_code(champion_dir, tmp_path, monkeypatch):
    installed = Path(model.__file__).resolve()
    result, example = fresh_venv_load.load_logged_model(
        sys.executable, champion_dir, tmp_path / "work"
    )
    assert result["installed"] and result["whole_package"]
    assert Path(result["module"]).resolve() == installed
    np.testing.assert_allclose(result["readiness"], _expected(champion_dir, example))

    monkeypatch.setattr(sys, "path", list(sys.path))  # MLflow prepends the model's code folder
    use_store(champion_dir)
    logged = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    assert type(logged.get_raw_model()) is model.LeadScorer
    assert Path(sys.modules["leadready.features.model"].__file__).resolve() == installed


@pytest.mark.model
def test_models_list_leaves_out_a_version_an_older_train_cut_off(champion_dir, tmp_path):
    """An older `train` registered the version first and tagged it after: cut off in between,
    it left a version of a training run (its `data.*` run tags) without `model_kind`. A copy
    registered by hand from a run that is not train's is listed as it is."""
    scorer = load_champion(champion_dir).scorer
    models = tmp_path / "models"
    configure(models)
    for tags in ({"data.sha256": "0" * 16}, {}):
        with mlflow.start_run(tags=tags):
            mlflow.sklearn.log_model(
                scorer,
                name="model",
                registered_model_name=MODEL_NAME,
                serialization_format="cloudpickle",
                pip_requirements=["mlflow"],
            )

    assert [row["version"] for row in list_versions(models)] == ["2"]
