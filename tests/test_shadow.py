"""The shadow challenger: when the `challenger` alias names another version than the champion,
the server scores it too, after the answer, and the audit log keeps its readiness and route
under the champion's request ids; `leadready models compare --live` compares the two on the
leads whose outcomes arrived."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score
from test_api import _body
from test_server import AUTH as SERVER_AUTH
from test_server import start, stop
from typer.testing import CliRunner

from leadready.cli import app as cli
from leadready.features.auditdb import engine_for, scores, shadow_scores
from leadready.features.contract import load_crm
from leadready.features.registry import CHALLENGER, CHAMPION, MODEL_NAME
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.schemas import EXAMPLE_REQUEST
from leadready.training.pipeline import TrainConfig, train
from leadready.training.registry import publish

KEY = "shadow-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LEADS = 240
runner = CliRunner()


def set_aliases(models, champion: str, challenger: str) -> None:
    from mlflow.tracking import MlflowClient

    from leadready.serving.store import use_store

    use_store(models)
    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, champion)
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, challenger)


@pytest.fixture(scope="module")
def two_versions(champion_dir, sample_dir, tmp_path_factory):
    """The session's champion (v1) and, as challenger, v2 trained with another seed."""
    models = tmp_path_factory.mktemp("shadow") / "models"
    shutil.copytree(champion_dir, models)
    publish(train(load_crm(sample_dir), TrainConfig(search_seconds=0, seed=5)), models)
    set_aliases(models, "1", "2")
    return models


def closed_leads(sample_dir, n: int) -> tuple[list[dict], dict[str, str]]:
    """API requests for `n` closed leads of the sample, each as of a week before its outcome,
    with the events up to then; and each lead's outcome."""
    crm = load_crm(sample_dir)
    leads = crm.leads[crm.leads.outcome != "open"].head(n).set_index("lead_id")
    requests = []
    for lead_id, lead in leads.iterrows():
        as_of = max(lead.created_at, lead.outcome_at - pd.Timedelta(days=7))
        acts, tch = (
            frame[(frame.lead_id == lead_id) & (frame.occurred_at <= as_of)]
            for frame in (crm.activities, crm.touches)
        )
        requests.append(_body(str(lead_id), lead, acts, tch, as_of))
    return requests, leads["outcome"].to_dict()


def serve(models, url: str, **settings):
    return TestClient(
        create_app(ServeSettings(models_dir=models, api_keys=KEY, audit_url=url, **settings))
    )


def rows(url: str, table: sa.Table) -> pd.DataFrame:
    engine = engine_for(url)
    with engine.connect() as connection:
        frame = pd.read_sql(sa.select(table), connection)
    engine.dispose()
    return frame.set_index("request_id")


@pytest.mark.api
def test_the_challenger_scores_the_same_requests_in_the_shadow_as_it_would_as_champion(
    two_versions, sample_dir, tmp_path
):
    requests, outcomes = closed_leads(sample_dir, LEADS)
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    with serve(two_versions, url) as client:
        ready = client.get("/readyz").json()
        assert ready["model"]["version"] == "1" and ready["shadow_model"]["version"] == "2"
        single = client.post("/v1/score", json=requests[0], headers=AUTH)
        batch = client.post("/v1/score/batch", json={"leads": requests[1:]}, headers=AUTH)
        answers = [single.json(), *batch.json()["results"]]
        assert {a["model"]["version"] for a in answers} == {"1"}
        later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        sent = [{"lead_id": k, "outcome": v, "outcome_at": later} for k, v in outcomes.items()]
        assert client.post("/v1/outcomes", json=sent, headers=AUTH).status_code == 200
    # The app's shutdown scored what was queued and shipped the journal.
    champion, shadow = rows(url, scores), rows(url, shadow_scores)
    assert set(shadow.index) == set(champion.index) == {a["request_id"] for a in answers}
    assert set(shadow["model_version"]) == {"2"}
    assert (shadow["lead_id"] == champion.loc[shadow.index, "lead_id"]).all()
    assert (shadow["as_of"] == champion.loc[shadow.index, "as_of"]).all()

    # v2 as champion answers these requests with the readiness and route its shadow recorded.
    set_aliases(two_versions, "2", "2")
    try:
        with serve(two_versions, f"sqlite:///{tmp_path / 'v2.db'}") as client:
            assert client.get("/readyz").json()["shadow_model"] is None
            direct = client.post("/v1/score/batch", json={"leads": requests}, headers=AUTH)
    finally:
        set_aliases(two_versions, "1", "2")
    by_lead = shadow.set_index("lead_id")
    results = direct.json()["results"]
    assert {r["model"]["version"] for r in results} == {"2"}
    np.testing.assert_allclose(
        [r["readiness"] for r in results], by_lead.loc[list(outcomes), "readiness"], rtol=1e-12
    )
    assert [r["route"] for r in results] == by_lead.loc[list(outcomes), "route"].tolist()
    assert not np.allclose(champion["readiness"], shadow.loc[champion.index, "readiness"])

    # The live comparison: each lead once, with the pair of scores of its one request.
    compared = runner.invoke(cli, ["models", "compare", "--live", "--audit-url", url])
    assert compared.exit_code == 0, compared.output
    won = np.array([outcomes[lead] == "won" for lead in champion["lead_id"]])
    expected = [
        roc_auc_score(won, champion["readiness"]),
        roc_auc_score(won, shadow.loc[champion.index, "readiness"]),
    ]
    line = next(x for x in compared.output.splitlines() if x.lstrip("│ ").startswith("ROC AUC"))
    assert [float(x) for x in re.findall(r"\d\.\d{4}", line)[:2]] == pytest.approx(
        expected, abs=5e-5
    )
    moved = int((champion["route"] != shadow.loc[champion.index, "route"]).sum())
    assert f"{moved:,} ({moved / LEADS:.1%}) would change route" in compared.output
    assert f"v1 vs v2 on {LEADS:,} rows of live scores" in compared.output


@pytest.mark.api
def test_no_shadow_without_another_challenger_or_when_switched_off(
    two_versions, champion_dir, tmp_path
):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    for models, settings in ((champion_dir, {}), (two_versions, {"shadow": False})):
        with serve(models, url, **settings) as client:
            assert client.get("/readyz").json()["shadow_model"] is None
            assert client.post("/v1/score", json=EXAMPLE_REQUEST, headers=AUTH).status_code == 200
    assert len(rows(url, scores)) == 2 and rows(url, shadow_scores).empty
    compared = runner.invoke(cli, ["models", "compare", "--live", "--audit-url", url])
    assert compared.exit_code == 2
    assert "the audit log holds no shadow scores" in compared.output
    asked = runner.invoke(cli, ["models", "compare", "--models-dir", str(champion_dir)])
    assert asked.exit_code == 2 and "give the two versions to compare" in asked.output


@pytest.mark.server
def test_every_worker_of_leadready_serve_scores_the_challenger_in_the_shadow(
    two_versions, tmp_path
):
    server = start(two_versions, tmp_path / "audit.db", "--workers", "2")
    try:
        ready = httpx.get(f"{server.url}/readyz", timeout=5).json()
        assert {w["shadow_model"] for w in ready["workers"]} == {"2"}
        with httpx.Client(headers=SERVER_AUTH) as client:
            ids = {
                client.post(f"{server.url}/v1/score", json=EXAMPLE_REQUEST).json()["request_id"]
                for _ in range(40)
            }
    finally:
        assert stop(server) == 0
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    shadow = rows(url, shadow_scores)
    assert set(shadow.index) == set(rows(url, scores).index) == ids
    assert set(shadow["model_version"]) == {"2"}
