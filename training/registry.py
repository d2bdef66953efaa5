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
from collections.abc import Iterator, Sequence
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
from leadready.features.exclusions import exclusions
from leadready.features.registry import (
    CHALLENGER,
    CHAMPION,
    COMPLETE_TAG,
    HOLDOUT,
    HOLDOUT_ROWS,
    TRAINED_IDS,
    embedded_uri,
    is_complete,
    load_holdout,
    load_run_frame,
    load_scorer,
    model_name,
    redacted,
    tracking_uri,
    use_store,
)
from leadready.training.compare import (
    MIN_CLEAN_ROWS,
    PROMOTION_RULE,
    ComparisonError,
    Rows,
    Scored,
    Version,
    clean_scores,
    compare_on,
    decide,
    distrust_reason,
    export_scores,
    table_rows,
)
from leadready.training.plots import evaluation_figures
from leadready.training.report import ReportData, write_report
from leadready.training.result import TrainResult

EXPERIMENT = "leadready"
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
MAX_TAG_CHARS = 5000
"""The longest value MLflow keeps in a model version's tag."""
"""MLflow 3's UI opens an experiment of this kind on its training runs, not on an empty GenAI
traces view; experiments created before it was set get it on the next `train`."""


DECISION_TAG = "decision"
REASON_TAG = "reason"
"""The run tags saying what became of a training (promoted, kept, or from `retrain` gated or
skipped) and why."""


@dataclass(frozen=True)
class Published:
    version: str
    run_id: str
    promoted: bool
    decision: str
    """promoted, kept, or gated (`held_back`: the challenger failed `retrain`'s drift gate)."""
    reason: str
    tracking_uri: str
    model_uri: str
    report: Path
    runs_url: str
    """Where the MLflow UI shows the experiment's training runs (`experiment_runs_url`)."""


def configure(models_dir: Path) -> str:
    """Select the tracking store and experiment; returns the tracking URI in use, credentials
    redacted (it is printed)."""
    embedded = tracking_uri(models_dir) == embedded_uri(models_dir)
    if embedded:
        models_dir.mkdir(parents=True, exist_ok=True)
    use_store(models_dir)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        location = (models_dir / "artifacts").resolve().as_uri() if embedded else None
        mlflow.create_experiment(EXPERIMENT, artifact_location=location, tags=EXPERIMENT_TAGS)
    else:
        for key, value in EXPERIMENT_TAGS.items():
            if experiment.tags.get(key) != value:
                MlflowClient().set_experiment_tag(experiment.experiment_id, key, value)
    mlflow.set_experiment(EXPERIMENT)
    return redacted(mlflow.get_tracking_uri())


def experiment_runs_url(tracking_uri: str, experiment_id: str) -> str:
    """The MLflow UI page of the experiment's training runs: on the tracking server itself, or
    for the embedded store, on `mlflow ui`'s default address. MLflow 3.17's UI opens every
    experiment on its GenAI views unless the link asks for `workflowType=machine_learning`."""
    base = (
        tracking_uri
        if tracking_uri.startswith(("http://", "https://"))
        else "http://127.0.0.1:5000"
    )
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def _holdout_frame(result: TrainResult) -> pd.DataFrame:
    """The hold-out the run was tested on, kept so any two versions can be compared on it."""
    frame = pd.DataFrame(result.test_columns)
    frame["__ready"] = result.test_ready
    frame["__lead"] = result.test_groups
    frame["__readiness"] = result.test_scores["readiness"]
    return frame


def _version(client: MlflowClient, name: str, number: str) -> Version:
    """A registered version with its own hold-out and the ids it was fitted on, when its run
    kept them."""
    scorer = load_scorer(name, number)
    run_id = client.get_model_version(name, number).run_id
    if not run_id:
        return Version(number, scorer)
    trained = load_run_frame(run_id, TRAINED_IDS)
    return Version(
        number,
        scorer,
        holdout=load_run_frame(run_id, HOLDOUT),
        trained=None if trained is None else trained["__lead"].to_numpy(),
    )


def _versus_champion(
    client: MlflowClient, name: str, result: TrainResult, force: bool
) -> tuple[bool, str, dict[str, object] | None]:
    """Whether the new version should become champion by PROMOTION_RULE, why, and the
    comparison made (None when none could be)."""
    if force:
        return True, "promoted on request (--promote)", None
    distrusted = distrust_reason(result.scorer.info)
    if distrusted:
        return False, distrusted, None
    try:
        number = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return True, "no champion yet", None
    if result.scorer.info.cold_start:
        return False, "a cold-start scorecard does not replace a champion; champion kept", None
    rows = Rows(
        ready=result.test_ready,
        ids=result.test_groups,
        where="this training's hold-out",
        features=pd.DataFrame(result.test_columns),
        table=result.test_table,
    )
    challenger = Scored(result.test_scores["readiness"], np.ones(len(rows.ids), dtype=bool))
    try:
        champion = _version(client, name, number)
    except (ValueError, ImportError, AttributeError, MlflowException) as exc:
        return False, f"champion v{number} cannot be loaded ({exc}); champion kept", None
    try:
        comparison: dict[str, Any] | None = compare_on(
            rows, clean_scores(champion, rows, result.scorer.info), challenger
        )
        problem = ""
    except (ComparisonError, KeyError, ValueError) as exc:
        comparison, problem = None, str(exc)
    promoted, reason = decide(champion, result.scorer.info, comparison, problem)
    if comparison is None or not comparison["comparable"]:
        return promoted, reason, None
    return promoted, reason, comparison | {"champion_version": number}


def publish(
    result: TrainResult,
    models_dir: Path,
    force_promote: bool = False,
    held_back: Sequence[str] = (),
) -> Published:
    """Log the run (candidates as nested runs) and the model, then register a version carrying
    all its tags and move `challenger` (and maybe `champion`) in one step that SIGINT and SIGTERM
    wait for, then write the model report. `held_back`: why the version must not become champion
    whatever the promotion rule says (`retrain`'s drift gate); the run is tagged with the
    decision and its reason.

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
                decision = "promoted" if promoted else "kept"
                if held_back and not force_promote:
                    promoted, decision = False, "gated"
                    reason = f"held back by the drift gate: {'; '.join(held_back)} (rule: {reason})"
                mlflow.set_tags({DECISION_TAG: decision, REASON_TAG: reason[:MAX_TAG_CHARS]})
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
                report_data(result, version, comparison, decision, reason),
                models_dir / "reports" / f"{name}-v{version}.html",
            )
            client.log_artifact(run.info.run_id, str(report), "report")
            return Published(
                version,
                run.info.run_id,
                promoted,
                decision,
                reason,
                tracking_uri,
                f"models:/{name}/{version}",
                report,
                experiment_runs_url(tracking_uri, run.info.experiment_id),
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


def log_skipped(models_dir: Path, reason: str, tags: dict[str, str]) -> str:
    """The run of a `retrain` that trained nothing: tagged decision skipped, its reason and
    `tags`; returns its id."""
    configure(models_dir)
    with _run(run_name="retrain-skipped") as run:
        mlflow.set_tags({DECISION_TAG: "skipped", REASON_TAG: reason[:MAX_TAG_CHARS], **tags})
    return run.info.run_id


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
        kept = {HOLDOUT: _holdout_frame(result), HOLDOUT_ROWS: result.test_table}
        if result.trained_ids is not None:
            kept[TRAINED_IDS] = pd.DataFrame({"__lead": result.trained_ids.astype(str)})
        for artifact, frame in kept.items():
            if frame is not None:
                frame.to_parquet(Path(folder) / Path(artifact).name, index=False)
        mlflow.log_artifacts(folder, str(Path(HOLDOUT).parent))
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
    if info.distrust:
        tags["not_promoted_because"] = "; ".join(info.distrust)[:MAX_TAG_CHARS]
    return tags | {
        "suspected_leakage": str(bool(info.distrust)).lower(),
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
    decision: str,
    reason: str,
) -> ReportData:
    """Everything the model report shows, from a training result and what became of it
    (`Published.decision` and its reason)."""
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
            "decision": decision,
            "reason": reason,
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
        exclusions=exclusions(info),
    )


MODEL_CODE = (
    "model.py",
    "baselines.py",
    "build.py",
    "contract.py",
    "reading.py",
    "outcome_rules.py",
    "metadata.py",
    "routing.py",
)
"""The leadready.features modules a registered scorer's pickle needs: its classes (model.py,
baselines.py), what they import (build.py, contract.py with reading.py and outcome_rules.py),
and metadata.py with routing.py, which validate its metadata on load. leadready is not on PyPI,
so they are logged with the model: `mlflow.pyfunc.load_model` then works where leadready is not
installed."""


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
                    "suspect": SUSPECT_CELL.get(tags.get("suspected_leakage", ""), ""),
                }
            )
    return rows


SUSPECT_CELL = {"true": "yes", "false": "no"}
"""`models list`'s suspect column by the version's suspected_leakage tag (blank without one)."""


def compare_versions(
    models_dir: Path, a: str, b: str, flat: bool = False, on: Path | None = None
) -> dict[str, Any]:
    """Versions a and b on the same rows, each with its own columns: the newer one's hold-out
    (where it counts with its tested scores), or with `on` a flat table with the label column
    (flat versions) or a CRM export's closed leads as snapshots (CRM versions, each with its
    own features). Rows a version trained on count only with its own test's scores
    (`training.compare`); the result has the paired AUC test, the rows used, notes on those
    left out, and the promotion rule's verdict for b replacing a. ComparisonError when too few
    rows are left."""
    configure(models_dir)
    client = MlflowClient()
    name = model_name(flat)
    try:
        versions = {number: _version(client, name, number) for number in dict.fromkeys((a, b))}
    except (MlflowException, ValueError):
        raise ComparisonError(
            f"no versions {a} and {b} of '{name}'; see `leadready models list`"
        ) from None
    newer = versions[str(max(int(a), int(b)))]
    if on is not None and flat:
        rows = table_rows(on, newer.info)
        scored = {number: clean_scores(v, rows) for number, v in versions.items()}
    elif on is not None:
        rows, scored = export_scores(on, list(versions.values()))
    else:
        rows, tested = _holdout_rows(client, name, newer)
        scored = {
            number: tested
            if number == newer.number and tested is not None
            else clean_scores(v, rows, newer.info)
            for number, v in versions.items()
        }
    comparison = compare_on(rows, scored[a], scored[b])
    if not comparison["comparable"]:
        raise ComparisonError(
            "; ".join(
                [
                    *comparison["notes"],
                    f"{comparison['clean_rows']:,} of {comparison['rows']:,} rows of "
                    f"{rows.where} are left to compare on, fewer than {MIN_CLEAN_ROWS} with "
                    "both outcomes: compare on "
                    + ("a table" if flat else "an export")
                    + " neither version was trained on with --on "
                    + ("FILE" if flat else "DIR"),
                ]
            )
        )
    promoted, reason = decide(versions[a], versions[b].info, comparison)
    return comparison | {
        "where": rows.where,
        "holdout_version": None if on is not None else newer.number,
        "b_should_replace_a": promoted,
        "reason": reason,
    }


def _holdout_rows(client: MlflowClient, name: str, holder: Version) -> tuple[Rows, Scored | None]:
    """The hold-out of `holder`'s run as rows to compare on, and its tested scores there."""
    run_id = client.get_model_version(name, holder.number).run_id
    if not run_id:
        raise ComparisonError(
            f"version {holder.number} of '{name}' was registered without a training run, so "
            "it has no hold-out to compare on"
        )
    features, ready, leads, tested = load_holdout(run_id)
    rows = Rows(
        ready=ready,
        ids=leads,
        where=f"the hold-out of v{holder.number}",
        features=features,
        table=load_run_frame(run_id, HOLDOUT_ROWS),
    )
    return rows, None if tested is None else Scored(tested, np.ones(len(leads), dtype=bool))


def promote(models_dir: Path, version: str, flat: bool = False) -> tuple[str, str]:
    """Point the champion alias of the model of that mode at `version`; returns the name and
    why training did not make it champion itself (empty when nothing about it was suspect)."""
    configure(models_dir)
    client = MlflowClient()
    name = model_name(flat)
    try:
        found = client.get_model_version(name, version)
    except MlflowException:
        raise ValueError(f"no version {version} of '{name}'; see `leadready models list`") from None
    client.set_registered_model_alias(name, CHAMPION, version)
    return name, (found.tags or {}).get("not_promoted_because", "")
