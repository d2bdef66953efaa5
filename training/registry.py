"""Everything training says to MLflow: the run, the logged model, the registry and its aliases.

Embedded default: a SQLite tracking store and artifacts under the models folder (`models/`).
With `MLFLOW_TRACKING_URI` set, runs and models go to that server instead and nothing else
changes. Promotion is by alias: every new version becomes `challenger`; `champion` moves to it
only when it beats the current champion on the new test set (or there is none, or on --promote).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow import ActiveRun
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo as LoggedModel
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient

from leadready import features
from leadready.features.evaluation import expected_calibration_error
from leadready.features.registry import (
    CHALLENGER,
    CHAMPION,
    COMPLETE_TAG,
    HOLDOUT,
    HOLDOUT_EXTRA,
    embedded_uri,
    is_complete,
    load_holdout,
    load_scorer,
    model_name,
    redacted,
    tracking_uri,
    use_store,
)
from leadready.training.bootstrap import paired_auc_test
from leadready.training.plots import evaluation_figures
from leadready.training.report import ReportData, write_report
from leadready.training.result import TrainResult

EXPERIMENT = "leadready"


@dataclass(frozen=True)
class Published:
    version: str
    run_id: str
    promoted: bool
    reason: str
    tracking_uri: str
    model_uri: str
    report: Path


def configure(models_dir: Path) -> str:
    """Select the tracking store and experiment; returns the tracking URI in use, credentials
    redacted (it is printed)."""
    embedded = tracking_uri(models_dir) == embedded_uri(models_dir)
    if embedded:
        models_dir.mkdir(parents=True, exist_ok=True)
    use_store(models_dir)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        location = (models_dir / "artifacts").resolve().as_uri() if embedded else None
        mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(EXPERIMENT)
    return redacted(mlflow.get_tracking_uri())


PROMOTION_RULE = (
    "The challenger becomes champion when, on the challenger's hold-out, its ROC AUC is higher "
    "than the champion's with a paired lead-level bootstrap test significant at 5%, or the "
    "difference is within noise (p >= 0.05) and its expected calibration error is lower. "
    "A cold-start scorecard never replaces a learned champion."
)


def _holdout_frame(result: TrainResult) -> pd.DataFrame:
    """The hold-out the run was tested on, kept so any two versions can be compared on it."""
    frame = pd.DataFrame(result.test_columns)
    frame["__ready"] = result.test_ready
    frame["__lead"] = result.test_groups
    frame["__readiness"] = result.test_scores["readiness"]
    return frame


def readiness_of(model: object, holdout: pd.DataFrame) -> np.ndarray:
    """A registered model's readiness on hold-out feature columns."""
    columns = {c: holdout[c].to_numpy() for c in holdout.columns}
    return model.predict_proba(columns)[:, 1]  # type: ignore[attr-defined]


def compare_scores(
    ready: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, leads: np.ndarray
) -> dict[str, object]:
    """Two sets of scores of one hold-out: AUCs, paired bootstrap of the difference, ECEs.

    The version whose hold-out it is enters with the scores its test gave (for a flat model,
    refitted on every row afterwards, rescoring would reuse rows it has seen)."""
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


def promotion_decision(comparison: dict[str, object]) -> bool:
    """The documented rule (PROMOTION_RULE) applied to a comparison of champion a and
    challenger b."""
    significant = comparison["p_value"] < 0.05  # type: ignore[operator]
    if significant:
        return comparison["difference"] > 0  # type: ignore[operator]
    return comparison["b_ece"] < comparison["a_ece"]  # type: ignore[operator]


def _versus_champion(
    client: MlflowClient, name: str, result: TrainResult, force: bool
) -> tuple[bool, str, dict[str, object] | None]:
    """Whether the new version should become champion, why, and the comparison made."""
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return True, "no champion yet", None
    if force:
        return True, "promoted on request (--promote)", None
    if result.scorer.info.cold_start:
        return False, "a cold-start scorecard does not replace a champion; champion kept", None
    try:
        model = load_scorer(name, str(champion.version))
        holdout = _holdout_frame(result).drop(columns=HOLDOUT_EXTRA)
        comparison = compare_scores(
            result.test_ready,
            readiness_of(model, holdout),
            result.test_scores["readiness"],
            result.test_groups,
        )
    except (KeyError, ValueError, AttributeError, ImportError, MlflowException):
        return (
            False,
            (
                f"champion v{champion.version} cannot score this hold-out (its features "
                "differ); champion kept, use --promote to replace it"
            ),
            None,
        )
    comparison["champion_version"] = str(champion.version)
    promoted = promotion_decision(comparison)
    reason = (
        f"ROC AUC {comparison['b_auc']:.4f} vs champion v{champion.version} "
        f"{comparison['a_auc']:.4f} (difference {comparison['difference']:+.4f}, "
        f"p = {comparison['p_value']:.3f}); ECE {comparison['b_ece']:.4f} vs "
        f"{comparison['a_ece']:.4f}: " + ("promoted" if promoted else "champion kept")
    )
    return promoted, reason, comparison


def publish(result: TrainResult, models_dir: Path, force_promote: bool = False) -> Published:
    """Log the run (candidates as nested runs) and the model, then register a version carrying
    all its tags and move `challenger` (and maybe `champion`) in one step that SIGINT and SIGTERM
    wait for, then write the model report.

    Interrupted before that step, the run ends KILLED and the registry is as it was; after it,
    only the report is missing. Either way `Interrupted` says which."""
    tracking_uri = configure(models_dir)
    client = MlflowClient()
    end_abandoned_runs(client)
    name = result.scorer.info.model_name
    version: str | None = None
    promoted = False
    with _handling_signals() as signals:
        try:
            with _run(run_name=f"train-{result.scorer.info.trained_at}") as run:
                logged = _log_run(result)
                promoted, reason, comparison = _versus_champion(client, name, result, force_promote)
                _ensure_registered(client, name)
                with signals.held():
                    version = str(
                        client.create_model_version(
                            name,
                            logged.model_uri,
                            run.info.run_id,
                            tags=_version_tags(result),
                            model_id=logged.model_id,
                        ).version
                    )
                    client.set_registered_model_alias(name, CHALLENGER, version)
                    if promoted:
                        client.set_registered_model_alias(name, CHAMPION, version)
                    mlflow.end_run()
            report = write_report(
                report_data(result, version, comparison, promoted, reason),
                models_dir / "reports" / f"{name}-v{version}.html",
            )
            client.log_artifact(run.info.run_id, str(report), "report")
            return Published(
                version,
                run.info.run_id,
                promoted,
                reason,
                tracking_uri,
                f"models:/{name}/{version}",
                report,
            )
        except Interrupted as exc:
            while mlflow.active_run():  # one started but not yet entered as a `with`
                mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
            end_abandoned_runs(client, own=True)
            raise Interrupted(
                exc.signum,
                "interrupted while publishing: its MLflow run was ended KILLED, no version was "
                "registered and the aliases did not move"
                if version is None
                else f"interrupted after {name} version {version} was registered as challenger"
                + (" and champion" if promoted else "")
                + "; its model report was not written",
            ) from None


def _log_run(result: TrainResult) -> LoggedModel:
    """Everything the active run keeps: params, data fingerprint, metrics, candidates (nested
    runs), leaderboard, metadata, hold-out, plots, and the model itself, not yet registered."""
    info = result.scorer.info
    stored = info.model_dump(mode="json")
    example = pd.DataFrame({k: v[:5] for k, v in result.test_columns.items()})
    signature = infer_signature(example, result.scorer.predict_proba(example))
    mlflow.log_params(result.params)
    mlflow.set_tags(
        {f"data.{k}": v for k, v in result.fingerprint.items()}
        | {"cold_start": str(info.cold_start).lower()}
    )
    mlflow.log_metrics(
        {
            **result.metrics,
            "threshold_sales": info.thresholds.sales,
            "threshold_disqualify": info.thresholds.disqualify,
        }
    )
    for row in info.leaderboard:
        with _run(run_name=f"{row.target}: {row.candidate}", nested=True):
            mlflow.log_params(
                {
                    "target": row.target,
                    "candidate": row.candidate,
                    "chosen": row.chosen,
                    "explainable": row.explainable,
                    **json.loads(row.params),
                }
            )
            mlflow.log_metrics(
                {"cv_roc_auc": row.cv_roc_auc, "validation_roc_auc": row.validation_roc_auc}
            )
    if info.leaderboard:
        leaderboard = pd.DataFrame([row.model_dump() for row in info.leaderboard])
        mlflow.log_table(leaderboard, "leaderboard.json")
    mlflow.log_dict(stored, "model_info.json")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(HOLDOUT).name
        _holdout_frame(result).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(HOLDOUT).parent))
    scores = {"model": result.test_scores["readiness"]}
    scores.update(
        {
            name.replace("_", " "): result.test_scores[name]
            for name in ("bant_scorecard", "frequency_score")
            if name in result.test_scores
        }
    )
    for path_name, figure in evaluation_figures(
        result.test_ready, scores, info.drivers, info.labels
    ).items():
        mlflow.log_figure(figure, path_name)
        plt.close(figure)
    with tempfile.TemporaryDirectory() as folder:
        return mlflow.sklearn.log_model(
            result.scorer,
            name="model",
            signature=signature,
            input_example=example,
            serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba",
            metadata=stored,
            pip_requirements=_requirements(),
            code_paths=_model_code(Path(folder)),
        )


def _version_tags(result: TrainResult) -> dict[str, str]:
    """The tags a version is created with, COMPLETE_TAG among them: key test metrics, cold
    start, data fingerprint and model kind (what `models list` shows)."""
    info = result.scorer.info
    tags: dict[str, str] = {
        key: f"{result.metrics[key]:.4f}"
        for key in ("test_readiness_roc_auc", "test_readiness_ece", "test_potential_roc_auc")
        if key in result.metrics
    }
    return tags | {
        "cold_start": str(info.cold_start).lower(),
        "data.sha256": str(result.fingerprint["sha256"]),
        COMPLETE_TAG: info.model_kind.readiness,
    }


def _ensure_registered(client: MlflowClient, name: str) -> None:
    """Create the registered model on its first version (a concurrent `train` may just have)."""
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise


PID_TAG = "leadready.pid"
HOST_TAG = "leadready.host"
"""Run tags naming the `train` process logging the run: a later `train` or `models list` ends
KILLED the runs that a process which died without ending them (SIGKILL, a crash) left RUNNING."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped `publish`; the message says what it left in the registry."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message)
        self.signum = signum


class _Signals:
    """The handler of SIGINT and SIGTERM while `publish` runs: raises Interrupted (SIGTERM would
    otherwise end the process without ending its run), except while `held()`, which registers
    the version and moves the aliases: a signal then waits until those writes are all done."""

    def __init__(self) -> None:
        self.holding = False
        self.pending: int | None = None

    def __call__(self, signum: int, frame: object) -> None:
        if self.holding:
            self.pending = signum
        else:
            raise Interrupted(signum)

    @contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending is not None:
            raise Interrupted(self.pending)


@contextmanager
def _handling_signals() -> Iterator[_Signals]:
    """Install _Signals for the block, in the main thread (the only one signals reach)."""
    signals = _Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    previous = {number: signal.signal(number, signals) for number in STOP_SIGNALS}
    try:
        yield signals
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def _run(**kwargs: Any) -> Iterator[ActiveRun]:
    """An MLflow run tagged with this process, ended KILLED when interrupted (MLflow would say
    FAILED), FAILED on an error, FINISHED otherwise."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    with mlflow.start_run(tags=tags, **kwargs) as run:
        try:
            yield run
        except KeyboardInterrupt:
            mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
            raise


def end_abandoned_runs(client: MlflowClient, own: bool = False) -> list[str]:
    """End KILLED the runs left RUNNING by a `train` of this host that no longer runs (their
    PID_TAG names no live process), or with `own`, those of this process that an interruption
    cut off before their `with` block began; returns their ids. Runs of another host, of a live
    process or without the tags (another tool's) are left alone."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    host, ended = socket.gethostname(), []
    for run in client.search_runs(
        [experiment.experiment_id], "attributes.status = 'RUNNING'", max_results=1000
    ):
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if (
            tags.get(HOST_TAG) == host
            and pid.isdigit()
            and (int(pid) == os.getpid() if own else not _alive(int(pid)))
        ):
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
            ended.append(run.info.run_id)
    return ended


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        pass
    return True


def report_data(
    result: TrainResult,
    version: str,
    comparison: dict[str, object] | None,
    promoted: bool,
    reason: str,
) -> ReportData:
    """Everything the model report shows, from a training result and its promotion."""
    info = result.scorer.info
    name = info.model_name
    data, split = info.details.data, info.details.split
    summary: dict[str, object] = {
        "leads": data.leads,
        "closed leads": data.closed_leads,
        "activities": data.activities,
        "touches": data.touches,
        "leads created": f"{data.first_created_at} to {data.last_created_at}",
        "snapshot rows (fit / validation / test)": " / ".join(
            str(rows) for rows in (split.fit_rows, split.validation_rows, split.test_rows)
        ),
        "test set from": split.test_from,
        "base rate, ready within horizon (test)": float(result.test_ready.mean()),
        "cold start": info.cold_start,
        "missing_shares": {
            name: float(np.mean(pd.isna(values)))
            for name, values in result.test_columns.items()
            if np.asarray(values).dtype.kind == "f"
        },
    }
    shown = None
    if comparison is not None:
        shown = {
            "champion_version": comparison["champion_version"],
            "challenger_version": version,
            "champion_auc": comparison["a_auc"],
            "challenger_auc": comparison["b_auc"],
            "difference": comparison["difference"],
            "ci_low": comparison["ci_low"],
            "ci_high": comparison["ci_high"],
            "p_value": comparison["p_value"],
            "champion_ece": comparison["a_ece"],
            "challenger_ece": comparison["b_ece"],
            "decision": "promoted" if promoted else "kept",
            "rule": PROMOTION_RULE,
        }
    return ReportData(
        title=f"{name} v{version}",
        model_name=name,
        version=version,
        trained_at=info.trained_at,
        data_summary=summary,
        leaderboard=[row.model_dump() for row in info.leaderboard],
        metrics={name: dict(ci) for name, ci in result.intervals.items()},
        y_test=result.test_ready,
        scores={k: v for k, v in result.test_scores.items() if k != "potential"},
        drivers=info.drivers,
        labels=info.labels,
        thresholds=info.thresholds.as_dict(),
        routes={route: stats.model_dump() for route, stats in info.routes.items()},
        comparison=shown,
    )


MODEL_CODE = (
    "model.py",
    "baselines.py",
    "build.py",
    "contract.py",
    "reading.py",
    "metadata.py",
    "routing.py",
)
"""The leadready.features modules a registered scorer's pickle needs: its classes (model.py,
baselines.py), what they import (build.py, contract.py with reading.py), and metadata.py with
routing.py, which validate its metadata on load. leadready is not on PyPI, so they are logged
with the model: `mlflow.pyfunc.load_model` then works where leadready is not installed."""


def _model_code(folder: Path) -> list[str]:
    """`code_paths` of the logged model: a copy of MODEL_CODE as `leadready/features/`.

    The copy has no `__init__.py` files, so its `leadready` and `leadready.features` are
    namespace packages: MLflow puts it first on `sys.path` at load, and an installed leadready
    (whose `leadready.features` is a regular package) still wins over it."""
    target = folder / "leadready" / "features"
    target.mkdir(parents=True)
    for module in MODEL_CODE:
        shutil.copyfile(Path(features.__file__).parent / module, target / module)
    return [str(folder / "leadready")]


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [
        f"{name}=={version(name)}"
        for name in (
            "mlflow",
            "scikit-learn",
            "lightgbm",
            "numpy",
            "pandas",
            "cloudpickle",
            "pydantic",
        )
    ]


def list_versions(models_dir: Path) -> list[dict[str, str]]:
    """Every complete registered version of both models (CRM exports, then flat tables), newest
    first, with aliases, key metrics and data fingerprint. Runs a killed `train` left RUNNING
    are ended first (end_abandoned_runs); versions one cut off are left out (is_complete)."""
    configure(models_dir)
    client = MlflowClient()
    end_abandoned_runs(client)
    rows = []
    for name in (model_name(flat=False), model_name(flat=True)):
        try:
            aliases = client.get_registered_model(name).aliases
        except MlflowException:
            continue
        by_version: dict[str, list[str]] = {}
        for alias, number in aliases.items():
            by_version.setdefault(str(number), []).append(alias)
        versions = sorted(
            client.search_model_versions(f"name='{name}'"), key=lambda v: -int(v.version)
        )
        for version in filter(lambda v: is_complete(client, v), versions):
            tags = version.tags or {}
            rows.append(
                {
                    "name": name,
                    "version": str(version.version),
                    "aliases": ", ".join(sorted(by_version.get(str(version.version), []))),
                    "created": pd.Timestamp(version.creation_timestamp, unit="ms").strftime(
                        "%m-%d %H:%M"
                    ),
                    "model": tags.get("model_kind", ""),
                    "test ROC AUC": tags.get("test_readiness_roc_auc", ""),
                    "test ECE": tags.get("test_readiness_ece", ""),
                    "data sha256": tags.get("data.sha256", ""),
                }
            )
    return rows


def compare_versions(models_dir: Path, a: str, b: str, flat: bool = False) -> dict[str, Any]:
    """Versions a and b on the hold-out of the newer one, with the paired AUC test and the
    promotion rule's verdict for b replacing a."""
    configure(models_dir)
    client = MlflowClient()
    name = model_name(flat)
    try:
        newer = client.get_model_version(name, str(max(int(a), int(b))))
        models = [load_scorer(name, v) for v in (a, b)]
    except (MlflowException, ValueError):
        raise ValueError(
            f"no versions {a} and {b} of '{name}'; see `leadready models list`"
        ) from None
    if newer.run_id is None:
        raise ValueError(
            f"version {newer.version} of '{name}' was registered without a training run, so "
            "it has no hold-out to compare on"
        )
    holdout, ready, leads, tested = load_holdout(newer.run_id)
    try:
        p_a, p_b = (
            tested
            if tested is not None and int(version) == int(newer.version)
            else readiness_of(model, holdout)
            for version, model in zip((a, b), models, strict=True)
        )
        comparison = compare_scores(ready, p_a, p_b, leads)
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"versions {a} and {b} do not take the same features ({exc}); they "
            "cannot be compared on one hold-out"
        ) from None
    return {
        **comparison,
        "holdout_version": str(newer.version),
        "b_should_replace_a": promotion_decision(comparison),
    }


def promote(models_dir: Path, version: str, flat: bool = False) -> str:
    """Point the champion alias of the model of that mode at `version`; returns the name."""
    configure(models_dir)
    client = MlflowClient()
    name = model_name(flat)
    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise ValueError(f"no version {version} of '{name}'; see `leadready models list`") from None
    client.set_registered_model_alias(name, CHAMPION, version)
    return name
