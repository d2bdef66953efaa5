"""The scoring API through FastAPI's TestClient, on a real champion in a real MLflow store."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from leadready.cli import app
from leadready.features.contract import MAX_SHOWN_CHARS, load_crm
from leadready.serving.app import ServeSettings, create_app
from leadready.serving.batch import score_export
from leadready.serving.schemas import (
    EXAMPLE_REQUEST,
    MAX_BATCH_BODY_BYTES,
    MAX_BODY_BYTES,
    MAX_EVENTS,
)
from leadready.serving.store import load_champion

pytestmark = pytest.mark.api

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(champion_dir, tmp_path):
    settings = ServeSettings(
        models_dir=champion_dir,
        api_keys=f"other-key,{KEY}",
        audit_url=f"sqlite:///{tmp_path / 'audit.db'}",
    )
    with TestClient(create_app(settings)) as c:
        c.audit_path = tmp_path / "audit.db"
        yield c


def score(client, body, status=200):
    response = client.post("/v1/score", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    return response.json()


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def request_for(crm, lead_id: str, as_of: pd.Timestamp) -> dict:
    """A /v1/score body for one lead of a CRM export, with all its events."""
    return requests_for(crm, [lead_id], as_of)[0]


def requests_for(crm, lead_ids, as_of: pd.Timestamp) -> list[dict]:
    """/v1/score bodies for leads of a CRM export, with all their events."""
    leads = crm.leads.set_index("lead_id")
    events = {
        name: dict(tuple(frame[frame.lead_id.isin(lead_ids)].groupby("lead_id")))
        for name, frame in (("activities", crm.activities), ("touches", crm.touches))
    }
    none = {"activities": crm.activities.iloc[:0], "touches": crm.touches.iloc[:0]}
    return [
        _body(
            lead_id,
            leads.loc[lead_id],
            events["activities"].get(lead_id, none["activities"]),
            events["touches"].get(lead_id, none["touches"]),
            as_of,
        )
        for lead_id in lead_ids
    ]


def _body(lead_id: str, lead: pd.Series, acts, tch, as_of: pd.Timestamp) -> dict:
    return {
        "lead": {
            "lead_id": lead_id,
            "created_at": lead.created_at.isoformat(),
            "source": lead.source,
            "industry": lead.industry,
            "company_size": None if pd.isna(lead.company_size) else lead.company_size,
            **{f: lead[f] for f in ("budget", "authority", "need", "timeframe")},
        },
        "activities": [
            {"occurred_at": t.isoformat(), "type": k}
            for t, k in zip(acts.occurred_at, acts.type, strict=True)
        ],
        "touches": [
            {
                "occurred_at": t.isoformat(),
                "channel": c,
                "team": team,
                "responded": None if pd.isna(r) else bool(r),
            }
            for t, c, team, r in zip(
                tch.occurred_at, tch.channel, tch.team, tch.responded, strict=True
            )
        ],
        "as_of": as_of.isoformat(),
    }


def test_score_answers_readiness_route_reasons_context_and_model(client):
    body = score(client, EXAMPLE_REQUEST)
    assert body["lead_id"] == "L-10442"
    assert 0 <= body["readiness"] <= 1 and 0 <= body["potential"] <= 1
    assert body["route"] in {"sales", "nurture", "disqualify"} and body["route_reason"]
    assert body["model"]["name"] == "sales-readiness" and body["model"]["version"] == "1"
    assert body["context"]["activities_90d"] == 3 and body["context"]["touches_90d"] == 2
    assert body["context"]["last_interactions"][0]["what"] == "demo request"
    reasons = body["reasons"]
    assert reasons["scale"] == "log-odds"
    assert 0 < len(reasons["up"]) <= 5 and len(reasons["down"]) <= 5
    assert all(r["contribution"] > 0 for r in reasons["up"])
    assert all(r["contribution"] < 0 for r in reasons["down"])
    assert all(r["label"] and r["feature"] for r in reasons["up"] + reasons["down"])


def test_reasons_and_base_value_add_up_to_the_readiness_log_odds(client):
    body = score(client, EXAMPLE_REQUEST)
    reasons = body["reasons"]
    total = (
        reasons["base_value"]
        + reasons["others"]
        + sum(r["contribution"] for r in reasons["up"] + reasons["down"])
    )
    assert total == pytest.approx(logit(body["readiness"]), abs=1e-9)


def test_events_after_as_of_do_not_change_the_answer(client):
    before = score(client, EXAMPLE_REQUEST)
    later = copy.deepcopy(EXAMPLE_REQUEST)
    later["activities"] += [
        {"occurred_at": "2026-06-13T10:00:00Z", "type": "demo_request"},
        {"occurred_at": "2026-07-01T10:00:00Z", "type": "unsubscribe"},
    ]
    later["touches"] += [
        {
            "occurred_at": "2026-06-20T10:00:00Z",
            "channel": "meeting",
            "team": "sales",
            "responded": True,
        }
    ]
    after = score(client, later)
    for key in ("readiness", "potential", "route", "route_reason", "reasons", "context"):
        assert after[key] == before[key], key


def test_a_hand_raise_goes_to_sales_whatever_the_score(client):
    body = copy.deepcopy(EXAMPLE_REQUEST)
    body["lead"].update(source="trade_show", budget="none", need="none", timeframe="gt_12m")
    body["activities"] = [{"occurred_at": "2026-06-10T08:40:00Z", "type": "contact_request"}]
    body["touches"] = []
    answer = score(client, body)
    sales_threshold = client.get("/v1/model", headers=AUTH).json()["thresholds"]["sales"]
    assert answer["readiness"] < sales_threshold, "the lead must not qualify by score alone"
    assert answer["route"] == "sales"
    assert answer["route_reason"] == "hand-raise: demo or contact request 2 days ago"


def test_a_no_fit_lead_is_disqualified(client, champion_dir):
    body = {
        "lead": {
            "lead_id": "cold",
            "created_at": "2025-06-01T10:00:00Z",
            "source": "trade_show",
            "company_size": 2,
            "budget": "none",
            "authority": "user",
            "need": "none",
            "timeframe": "gt_12m",
        },
        "activities": [
            {"occurred_at": "2025-06-01T10:00:00Z", "type": "event_attended"},
            {"occurred_at": "2025-06-20T10:00:00Z", "type": "unsubscribe"},
        ],
        "touches": [
            {
                "occurred_at": f"2025-06-{d:02d}T10:00:00Z",
                "channel": "email",
                "team": "marketing",
                "responded": False,
            }
            for d in (3, 10, 17)
        ],
        "as_of": "2026-01-15T00:00:00Z",
    }
    answer = score(client, body)
    assert answer["route"] == "disqualify", answer
    assert "below the disqualify threshold" in answer["route_reason"]


def test_api_and_batch_scoring_agree_with_each_other(client, sample_dir, champion_dir):
    crm = load_crm(sample_dir, require_outcome=False)
    offline = score_export(crm, load_champion(champion_dir), "2026-06-29T00:00:00")
    for lead_id in offline["lead_id"][:5]:
        online = score(client, request_for(crm, lead_id, pd.Timestamp("2026-06-29")))
        row = offline.set_index("lead_id").loc[lead_id]
        assert online["readiness"] == pytest.approx(row.readiness, abs=1e-4)
        assert online["route"] == row.route


def test_changing_the_lead_id_changes_nothing_and_a_demo_request_does_not_lower_readiness(client):
    base = score(client, EXAMPLE_REQUEST)
    renamed = copy.deepcopy(EXAMPLE_REQUEST)
    renamed["lead"]["lead_id"] = "someone-else"
    assert score(client, renamed)["readiness"] == base["readiness"]
    quiet = copy.deepcopy(EXAMPLE_REQUEST)
    quiet["activities"] = quiet["activities"][:2]
    assert base["readiness"] >= score(client, quiet)["readiness"]


def test_batch_scores_valid_leads_and_reports_invalid_ones_in_place(client):
    bad = copy.deepcopy(EXAMPLE_REQUEST)
    bad["lead"]["budget"] = "lots"
    bad["lead"]["lead_id"] = "bad-one"
    response = client.post(
        "/v1/score/batch", headers=AUTH, json={"leads": [EXAMPLE_REQUEST, bad, {"nonsense": 1}]}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["lead_id"] == "L-10442" and "readiness" in results[0]
    assert results[1]["index"] == 1 and results[1]["lead_id"] == "bad-one"
    assert results[1]["errors"][0]["field"] == "lead.budget"
    assert "'confirmed'" in results[1]["errors"][0]["message"]
    assert results[2]["index"] == 2 and results[2]["lead_id"] is None
    assert score(client, EXAMPLE_REQUEST)["readiness"] == results[0]["readiness"]


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda b: b["lead"].update(budget="lots"), "lead.budget"),
        (lambda b: b["lead"].update(company_size="many"), "lead.company_size"),
        (lambda b: b["lead"].pop("source"), "lead.source"),
        (lambda b: b["lead"].update(created_at="last tuesday"), "lead.created_at"),
        (lambda b: b["activities"][0].update(type="tweet"), "activities.0.type"),
        (lambda b: b["touches"][0].update(responded="perhaps"), "touches.0.responded"),
        (lambda b: b.update(as_of="2020-01-01T00:00:00Z"), "body"),
        (lambda b: b.update(surprise=True), "surprise"),
        (lambda b: b.update(activities=[b["activities"][0]] * (MAX_EVENTS + 1)), "activities"),
    ],
)
def test_bad_input_gets_422_with_the_field_path(client, change, field):
    body = copy.deepcopy(EXAMPLE_REQUEST)
    change(body)
    errors = score(client, body, status=422)["detail"]
    assert any(e["field"] == field for e in errors), errors
    assert all(e["message"] for e in errors)


def test_as_of_before_creation_says_so(client):
    body = copy.deepcopy(EXAMPLE_REQUEST)
    body["as_of"] = "2020-01-01T00:00:00Z"
    errors = score(client, body, status=422)["detail"]
    assert "as_of 2020-01-01T00:00:00Z is before lead.created_at" in errors[0]["message"]


def test_too_many_leads_in_a_batch_and_too_large_bodies_are_refused(client):
    many = client.post("/v1/score/batch", headers=AUTH, json={"leads": [{}] * 1001})
    assert many.status_code == 422
    assert many.json()["detail"][0]["field"] == "leads"
    huge = client.post(
        "/v1/score",
        headers={**AUTH, "content-type": "application/json"},
        content=b"{" + b" " * (1 << 20) + b"}",
    )
    assert huge.status_code == 413
    assert "1 MiB" in huge.json()["detail"][0]["message"]


def test_api_keys_are_required_on_v1_but_not_on_health(client):
    assert client.post("/v1/score", json=EXAMPLE_REQUEST).status_code == 401
    wrong = client.post("/v1/score", json=EXAMPLE_REQUEST, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/model").status_code == 401
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    assert client.get("/metrics").status_code == 200


def test_model_endpoint_describes_the_champion(client):
    body = client.get("/v1/model", headers=AUTH).json()
    assert body["model"]["version"] == "1"
    assert 0.5 < body["metrics"]["test_readiness_roc_auc"] <= 1
    assert set(body["routes"]) == {"sales", "nurture", "disqualify"}
    assert all({"share", "win_rate"} <= set(r) for r in body["routes"].values())
    drivers = body["drivers"]
    assert drivers[0]["mean_abs"] >= drivers[-1]["mean_abs"] and drivers[0]["label"]


def test_metrics_count_requests_and_routes(client):
    score(client, EXAMPLE_REQUEST)
    client.post("/v1/score", json=EXAMPLE_REQUEST)
    text = client.get("/metrics").text
    assert 'leadready_requests_total{endpoint="/v1/score",status="200"} 1.0' in text
    assert 'leadready_requests_total{endpoint="/v1/score",status="401"} 1.0' in text
    assert "leadready_request_seconds_bucket" in text
    assert "leadready_scores_total{route=" in text


def test_every_score_reaches_the_audit_log_by_shutdown(champion_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    settings = ServeSettings(models_dir=champion_dir, audit_url=url)
    with TestClient(create_app(settings)) as c:
        ids = [c.post("/v1/score", json=EXAMPLE_REQUEST).json()["request_id"] for _ in range(7)]
        c.post("/v1/score/batch", json={"leads": [EXAMPLE_REQUEST] * 3})
    with sa.create_engine(url).connect() as connection:
        rows = connection.execute(
            sa.text("select request_id, model_version, route from scores")
        ).fetchall()
    assert len(rows) == 10
    assert set(ids) <= {r[0] for r in rows} and {r[1] for r in rows} == {"1"}


def test_reload_switches_to_the_new_champion(champion_dir, sample_dir, tmp_path):
    import shutil

    from leadready.features.contract import load_crm
    from leadready.training.pipeline import TrainConfig, train
    from leadready.training.registry import publish

    models = tmp_path / "models"
    shutil.copytree(champion_dir, models)
    # The copied store keeps absolute artifact paths of the original: still readable.
    settings = ServeSettings(models_dir=models, audit_url=f"sqlite:///{tmp_path / 'a.db'}")
    with TestClient(create_app(settings)) as c:
        assert c.get("/v1/model").json()["model"]["version"] == "1"
        publish(
            train(load_crm(sample_dir), TrainConfig(seed=3, search_seconds=0)),
            models,
            force_promote=True,
        )
        assert c.get("/v1/model").json()["model"]["version"] == "1"
        assert c.post("/v1/admin/reload").json()["model"]["version"] == "2"
        assert c.post("/v1/score", json=EXAMPLE_REQUEST).json()["model"]["version"] == "2"


def test_as_of_defaults_to_now(client):
    body = copy.deepcopy(EXAMPLE_REQUEST)
    del body["as_of"]
    answer = score(client, body)
    as_of = datetime.fromisoformat(answer["as_of"])
    assert abs(as_of - datetime.now(UTC)) < timedelta(minutes=1)
    assert np.isfinite(answer["readiness"])


def test_a_lone_surrogate_in_a_lead_id_is_a_field_error_not_a_500(client):
    # Python's json turns the escape "\udc80" into a string UTF-8 cannot encode.
    lead = json.dumps(EXAMPLE_REQUEST).replace('"L-10442"', '"\\udc80"')
    headers = {**AUTH, "content-type": "application/json"}
    single = client.post("/v1/score", headers=headers, content=lead.encode())
    assert single.status_code == 422
    assert single.json()["detail"][0]["field"] == "lead.lead_id"
    batch = client.post(
        "/v1/score/batch",
        headers=headers,
        content=f'{{"leads": [{lead}, {json.dumps(EXAMPLE_REQUEST)}]}}'.encode(),
    )
    assert batch.status_code == 200, batch.text
    bad, good = batch.json()["results"]
    assert bad["index"] == 0 and bad["lead_id"] == "\\udc80"
    assert [e["field"] for e in bad["errors"]] == ["lead.lead_id"]
    assert "valid string" in bad["errors"][0]["message"]
    assert good["lead_id"] == "L-10442" and "readiness" in good


def test_a_chunked_body_over_1_mib_gets_413(client):
    def chunks():
        for _ in range(12):
            yield b" " * 100_000

    response = client.post(
        "/v1/score", headers={**AUTH, "content-type": "application/json"}, content=chunks()
    )
    assert response.status_code == 413, response.text
    message = "request body is larger than 1 MiB; send fewer leads per request"
    assert response.json()["detail"] == [{"field": "body", "message": message}]
    small = client.post(
        "/v1/score",
        headers={**AUTH, "content-type": "application/json"},
        content=iter([json.dumps(EXAMPLE_REQUEST).encode()]),
    )
    assert small.status_code == 200, small.text


# What CRMs send (issue 11, item 5): nulls, other spellings, numeric ids, future dates, large
# batches, the audit's as_of, unknown custom keys and the value a 422 quotes.


def with_lead(**fields) -> dict:
    body = copy.deepcopy(EXAMPLE_REQUEST)
    body["lead"].update(fields)
    return body


BANT = ("budget", "authority", "need", "timeframe")
OPTIONAL = ("industry", "company_size", "country")


def test_null_and_empty_mean_unknown_for_bant_and_missing_for_optional_fields(client):
    unknown = copy.deepcopy(EXAMPLE_REQUEST)
    unknown["lead"].update(dict.fromkeys(BANT, "unknown"))
    for key in OPTIONAL:
        del unknown["lead"][key]
    for touch in unknown["touches"]:
        touch["responded"] = None
    expected = score(client, unknown)
    assert expected["readiness"] != score(client, EXAMPLE_REQUEST)["readiness"]
    for empty in (None, "", "  "):
        sent = with_lead(**dict.fromkeys((*BANT, *OPTIONAL), empty))
        for touch in sent["touches"]:
            touch["responded"] = empty
        answer = score(client, sent)
        assert answer["readiness"] == expected["readiness"], repr(empty)
        assert answer["reasons"] == expected["reasons"]


def test_an_empty_source_is_refused_as_in_a_file(client):
    for empty in (None, ""):
        errors = score(client, with_lead(source=empty), status=422)["detail"]
        assert [e["field"] for e in errors] == ["lead.source"], errors
        assert "'web_form'" in errors[0]["message"]


def test_values_match_ignoring_case_spaces_and_punctuation(client):
    body = with_lead(source="trade_show", budget="confirmed", timeframe="1_3m")
    expected = score(client, body)["readiness"]
    for spelling in ("Trade Show", "trade-show", " TRADE_SHOW "):
        other = with_lead(source=spelling, budget="Confirmed", timeframe="1-3M")
        other["activities"][2]["type"] = "Demo Request"
        other["touches"][0].update(channel="EMAIL", team="Marketing")
        assert score(client, other)["readiness"] == expected, spelling
    webinar = score(client, with_lead(source="Webinar"))["readiness"]
    assert webinar == score(client, EXAMPLE_REQUEST)["readiness"]


def test_a_numeric_lead_id_becomes_text(client):
    answer = score(client, with_lead(lead_id=12345))
    assert answer["lead_id"] == "12345"
    failed = with_lead(lead_id=777, budget="lots")
    batch = client.post("/v1/score/batch", headers=AUTH, json={"leads": [failed]}).json()
    assert batch["results"][0]["lead_id"] == "777"
    outcome = {"lead_id": 12345, "outcome": "Won", "outcome_at": "2026-07-01T00:00:00Z"}
    stored = client.post("/v1/outcomes", headers=AUTH, json=[outcome])
    assert stored.status_code == 200, stored.text
    assert (
        score(client, with_lead(lead_id=True), status=422)["detail"][0]["field"] == "lead.lead_id"
    )


def test_created_at_after_as_of_is_refused_given_or_defaulted(client):
    given = with_lead(created_at="2026-07-01T00:00:00Z")
    message = score(client, given, status=422)["detail"][0]["message"]
    assert "as_of 2026-06-12T00:00:00Z is before lead.created_at 2026-07-01T00:00:00Z" in message
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    defaulted = with_lead(created_at=future)
    del defaulted["as_of"]
    message = score(client, defaulted, status=422)["detail"][0]["message"]
    assert "is in the future (as_of defaults to now" in message
    defaulted["as_of"] = None  # null is the default too
    assert "is in the future" in score(client, defaulted, status=422)["detail"][0]["message"]


def test_a_batch_of_1000_realistic_leads_fits_the_body_limit(client, sample_dir):
    crm = load_crm(sample_dir, require_outcome=False)
    ids = list(crm.leads["lead_id"][:1000])
    body = json.dumps({"leads": requests_for(crm, ids, pd.Timestamp("2026-06-29"))})
    assert len(body) > 4 * MAX_BODY_BYTES, "1,000 sample leads make several MiB"
    response = client.post(
        "/v1/score/batch",
        headers={**AUTH, "content-type": "application/json"},
        content=body.encode(),
    )
    assert response.status_code == 200, response.text[:500]
    results = response.json()["results"]
    assert len(results) == 1000 and all("readiness" in r for r in results)
    over = client.post(
        "/v1/score/batch",
        headers={**AUTH, "content-type": "application/json"},
        content=b'{"leads": []' + b" " * MAX_BATCH_BODY_BYTES + b"}",
    )
    assert over.status_code == 413
    assert "16 MiB" in over.json()["detail"][0]["message"]


def test_the_audit_log_and_its_export_keep_as_of(champion_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    defaulted = copy.deepcopy(EXAMPLE_REQUEST)
    del defaulted["as_of"]
    with TestClient(create_app(ServeSettings(models_dir=champion_dir, audit_url=url))) as c:
        given = c.post("/v1/score", json=EXAMPLE_REQUEST).json()
        now = c.post("/v1/score", json=defaulted).json()
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(app, ["scores", "export", "--out", str(out), "--audit-url", url])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out).set_index("request_id")
    assert rows.loc[given["request_id"], "as_of"] == "2026-06-12T00:00:00+00:00"
    assert rows.loc[now["request_id"], "as_of"] == now["as_of"]


def test_unknown_custom_keys_are_warned_about(client):
    assert score(client, EXAMPLE_REQUEST)["warnings"] == []
    answer = score(client, with_lead(custom={"Partner teir": "gold"}))
    assert answer["warnings"] == [
        "lead.custom 'Partner teir' is not a custom feature of this model, so it was ignored "
        "(the model's custom features: none)"
    ]
    documented = client.get("/openapi.json").json()["components"]["schemas"]["ScoreResponse"]
    assert "warnings" in documented["required"]
    assert documented["properties"]["warnings"]["description"]


def test_a_422_quotes_the_value_sent_cut_when_long(client):
    errors = score(client, with_lead(budget="Lots!"), status=422)["detail"]
    assert errors[0]["field"] == "lead.budget"
    assert errors[0]["message"].endswith("; got 'Lots!'")
    size = score(client, with_lead(company_size=-3), status=422)["detail"][0]["message"]
    assert size.endswith("; got -3")
    long = "x" * 5000
    message = score(client, with_lead(source=long), status=422)["detail"][0]["message"]
    assert f"; got {'x' * MAX_SHOWN_CHARS!r}... (5,000 characters)" in message
    assert len(message) < 400


def _scored_with(champion_dir, audit_path, bodies, **settings) -> list[dict]:
    """The audit rows of `bodies` scored (twice: a rescore) by a server with `settings`."""
    url = f"sqlite:///{audit_path}"
    app_ = create_app(ServeSettings(models_dir=champion_dir, audit_url=url, **settings))
    with TestClient(app_) as c:
        answers = [c.post("/v1/score/batch", json={"leads": bodies}).json() for _ in range(2)]
    assert [a["explore"] for a in answers[0]["results"]] == [
        a["explore"] for a in answers[1]["results"]
    ]  # the same lead scored again keeps its place in (or out of) the slice
    with sa.create_engine(url).connect() as connection:
        frame = pd.read_sql("select * from scores order by id", connection)
    return frame.assign(reason=[a["route_reason"] for a in answers[0]["results"]] * 2)


def test_the_exploration_slice_takes_its_share_of_nurture_leads_and_the_audit_says_so(
    client, champion_dir, sample_dir, tmp_path
):
    from scipy.stats import binom

    crm = load_crm(sample_dir)
    ids = list(crm.leads.lead_id[:900])
    as_of = crm.leads.created_at.max() + pd.Timedelta(days=1)
    bodies = requests_for(crm, ids, as_of)
    for body in bodies[:100]:  # the same leads with a demo request yesterday: hand-raises
        raised = copy.deepcopy(body)
        raised["lead"]["lead_id"] += "-raised"
        raised["activities"].append(
            {"occurred_at": (as_of - pd.Timedelta(days=1)).isoformat(), "type": "demo_request"}
        )
        bodies.append(raised)
    policy = _scored_with(champion_dir, tmp_path / "off.db", bodies)
    assert not policy["explore"].any() and (policy["propensity"] == 1.0).all()
    explored = _scored_with(champion_dir, tmp_path / "on.db", bodies, explore_share=0.2)
    nurture = (policy["route"] == "nurture").to_numpy()
    hand_raise = policy["reason"].str.startswith("hand-raise").to_numpy()
    once = len(bodies)
    n = int(nurture[:once].sum())
    assert n >= 300 and hand_raise.sum() >= 100  # a few hundred eligible leads, 100 hand-raises
    taken = int(explored["explore"][:once][nurture[:once]].sum())
    low, high = binom.interval(0.99, n, 0.2)
    print(f"explored {taken} of {n} nurture leads at share 0.2; 99% interval {low:.0f}-{high:.0f}")
    assert low <= taken <= high
    inside = explored["explore"].to_numpy(dtype=bool)
    assert not inside[~nurture].any() and not inside[hand_raise].any()
    assert (explored["route"][inside] == "sales").all()
    assert (explored["propensity"][inside] == 0.2).all()
    assert (explored["propensity"][nurture & ~inside] == 0.8).all()
    assert (explored["propensity"][~nurture] == 1.0).all()
    assert explored["reason"][inside].str.startswith("exploration: one of a random 20%").all()
    unchanged = ~inside
    assert (explored["route"][unchanged] == policy["route"][unchanged]).all()
    # With explore_disqualify, the disqualified leads are eligible too; nurture's slice stays.
    wider = _scored_with(
        champion_dir, tmp_path / "wider.db", bodies, explore_share=0.2, explore_disqualify=True
    )
    disqualified = (policy["route"] == "disqualify").to_numpy()
    also = wider["explore"].to_numpy(dtype=bool)
    assert also[disqualified].any() and not also[~(nurture | disqualified)].any()
    assert (also[nurture] == inside[nurture]).all()
    assert wider["reason"][also & disqualified].str.contains("the policy would disqualify").all()
    documented = client.get("/openapi.json").json()["components"]["schemas"]["ScoreResponse"]
    assert {"explore", "propensity"} <= set(documented["required"])
