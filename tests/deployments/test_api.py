"""The serving API against a real trained registry (sqlite MLflow store) and a real snapshot.

One module-scoped world: generated data, the three models trained with tiny trial counts and
promoted, and the serving snapshot written by the score flow's writer. Tests that move aliases
put the champion back where they found it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from mlflow import MlflowClient

from tailor import kinds
from tailor.adapters import registry
from tailor.adapters.pyfunc import PREDICTOR_ARTIFACT, log_predictor
from tailor.adapters.score_output import write_snapshot
from tailor.adapters.snapshot import FEATURES_FILE, stage
from tailor.adapters.tracking import client_for, ensure_experiment
from tailor.adapters.training import train_model
from tailor.configs import Settings, load_settings
from tailor.data.generate import generate
from tailor.deployments.api.app import create_app
from tailor.deployments.api.state import ServingRuntime
from tailor.models.features import customer_features, default_as_of

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TINY = ["generate.customers=400", "generate.products=100", "generate.messy_share=0",
        "segmentation.n_trials=1", "segmentation.k_max=4", "segmentation.n_init=2",
        "segmentation.stability_resamples=2", "recommender.n_trials=1",
        "recommender.max_epochs=3", "recommender.max_eval_users=100", "churn.n_trials=1",
        "churn.families=[logistic]", "churn.importance_repeats=1",
        "churn.calibration_methods=[sigmoid]"]


@dataclass(frozen=True)
class World:
    root: Path
    settings: Settings
    client: MlflowClient
    features: pd.DataFrame
    customers: pd.DataFrame
    as_of: pd.Timestamp

    def with_(self, *overrides: str) -> Settings:
        return settings_for(self.root, *overrides)


def settings_for(root: Path, *overrides: str) -> Settings:
    return load_settings(overrides=[
        f"tracking.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"tracking.optuna_storage=sqlite:///{root / 'optuna.db'}",
        f"serving.snapshot_dir={root / 'snapshot'}", f"serving.admin_token={TOKEN}",
        "serving.reload_interval_s=null", *TINY, *overrides])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("serving")
    settings = settings_for(root)
    data = generate(settings.generate).dataset
    as_of = default_as_of(data.transactions)
    features = customer_features(data.transactions, as_of, settings.features,
                                 customers=data.customers, products=data.products)
    client = client_for(settings.tracking)
    # trained a few weeks before the snapshot (weekly retrain, daily scoring): customers who
    # first bought since then are in the snapshot but new to the recommender (cold start)
    trained_as_of = as_of - pd.Timedelta(days=21)
    for result in (train_model(kinds.get(kind), settings, data, trained_as_of, kind[:5], "fp")
                   for kind in ("segmentation", "recommender", "churn")):
        registry.promote(client, result.kind, result.version, actor="test", reason="setup")
    write_snapshot(root / "snapshot", features, data.customers,
                   {"as_of": as_of.date().isoformat(), "customers": len(features)})
    return World(root, settings, client, features, data.customers, as_of)


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.settings)) as client:
        yield client


def served(api: TestClient, kind: str) -> Any:
    """The predictor object the app serves now (to compute expected answers independently)."""
    return api.app.state.runtime.state.models[kind].predictor  # type: ignore[attr-defined]


def known_and_cold_ids(api: TestClient, world: World) -> tuple[str, str]:
    """A customer the recommender was trained on, and a snapshot customer it never saw."""
    rec = served(api, "recommender")
    ids = world.features.index.astype(str).to_numpy(dtype=object)
    seen = rec.known(ids)
    assert seen.any() and (~seen).any(), "the world needs both kinds of customers"
    return str(ids[seen][0]), str(ids[~seen][0])


def new_version(world: World, predictor: Any) -> str:
    """Register ``predictor`` as a new version of tailor-recommender (a real logged pyfunc)."""
    experiment = ensure_experiment(world.client, "serving-test")
    run_id = world.client.create_run(experiment).info.run_id
    example = pd.DataFrame({"customer_id": [str(predictor.user_ids[0])]})
    logged = log_predictor(world.client, run_id, predictor, example,
                           registered_model_name="tailor-recommender")
    world.client.set_terminated(run_id)
    assert logged.version is not None
    return logged.version


def champion(world: World, kind: str = "recommender") -> str:
    version = registry.alias_version(world.client, f"tailor-{kind}", "champion")
    assert version is not None
    return version


def promote(world: World, version: str, kind: str = "recommender") -> None:
    registry.promote(world.client, kind, version, actor="test", reason="serving test")


# --- status ------------------------------------------------------------------------------------

def test_health_ready_and_models(api: TestClient, world: World) -> None:
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["missing"] == []
    assert body["models"] == {k: champion(world, k) for k in registry.model_kinds()}
    report = api.get("/models").json()
    assert {m["kind"]: m["version"] for m in report["models"]} == body["models"]
    assert all(m["loaded_at"] and m["last_error"] is None for m in report["models"])
    assert report["snapshot"]["loaded"] and report["snapshot"]["customers"] == len(world.features)
    assert report["snapshot"]["manifest"]["as_of"] == world.as_of.date().isoformat()


def test_requests_are_logged_with_their_latency(api: TestClient,
                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tailor.serving.access"):
        response = api.get("/health")
    assert response.headers["server-timing"].startswith("app;dur=")
    lines = [r.getMessage() for r in caplog.records if r.name == "tailor.serving.access"]
    assert any(line.startswith("GET /health 200 ") and line.endswith("ms") for line in lines)


# --- per-customer endpoints -----------------------------------------------------------------

def test_recommendations_for_a_known_customer_are_the_predictors(api: TestClient,
                                                                  world: World) -> None:
    known, _ = known_and_cold_ids(api, world)
    body = api.get(f"/customers/{known}/recommendations", params={"k": 4}).json()
    expected = served(api, "recommender").recommend([known], k=4)
    assert body["source"] == "history" and body["model_version"] == champion(world)
    assert [i["product_id"] for i in body["items"]] == expected["product_id"].tolist()
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4]
    default = api.get(f"/customers/{known}/recommendations").json()
    assert len(default["items"]) == world.settings.serving.default_k

    # exclude_purchased drops exactly the items the customer bought
    rec = served(api, "recommender")
    row = int(np.flatnonzero(rec.user_ids == known)[0])
    bought = set(rec.item_ids[rec.repeat[row].indices])
    kept = api.get(f"/customers/{known}/recommendations",
                   params={"k": 10, "exclude_purchased": "true"}).json()
    assert bought and not bought & {i["product_id"] for i in kept["items"]}


def test_a_snapshot_customer_the_model_never_saw_gets_a_cold_start(api: TestClient,
                                                                   world: World) -> None:
    _, cold = known_and_cold_ids(api, world)
    body = api.get(f"/customers/{cold}/recommendations", params={"k": 3}).json()
    assert body["source"] == "attributes"
    row = world.customers.astype({"customer_id": str}).set_index("customer_id").loc[[cold]]
    rfm = world.features.loc[[cold], ["recency_days", "frequency", "monetary"]]
    frame = row.join(rfm)
    frame["segment"] = served(api, "segmentation").predict(world.features.loc[[cold]])["segment"]
    expected = served(api, "recommender").recommend_cold(frame, k=3)
    assert [i["product_id"] for i in body["items"]] == expected["product_id"].tolist()


def test_segment_churn_and_next_best_action(api: TestClient, world: World) -> None:
    known, _ = known_and_cold_ids(api, world)
    row = world.features.loc[[known]]
    seg = api.get(f"/customers/{known}/segment").json()
    expected = served(api, "segmentation").predict(row).iloc[0]
    assert (seg["segment"], seg["segment_name"]) == (expected["segment"],
                                                     expected["segment_name"])
    assert seg["snapshot_as_of"] == world.as_of.date().isoformat()

    churn = api.get(f"/customers/{known}/churn").json()
    model = served(api, "churn")
    p = float(model.predict_proba(row)[0])
    assert churn["churn_probability"] == pytest.approx(p)
    assert churn["at_risk"] == (p >= model.threshold)

    # the action is the one batch scoring gives the same customer
    from tailor.models.scoring import score_customers

    models = {k: (champion(world, k), served(api, k)) for k in registry.model_kinds()}
    batch = score_customers(world.features, models, world.settings.scoring, world.customers)
    batch = batch.set_index("customer_id")
    for customer in world.features.index[:25]:
        nba = api.get(f"/customers/{customer}/next-best-action").json()
        assert nba["action"] == batch.loc[customer, "next_best_action"], customer
        products = None if nba["recommendations"] is None else [
            i["product_id"] for i in nba["recommendations"]]
        carries = {r.name: r.with_recommendations for r in world.settings.scoring.actions}
        if carries.get(nba["action"], world.settings.scoring.default_with_recommendations):
            assert products == list(batch.loc[customer, "recommendations"])
        else:
            assert products is None


@pytest.mark.parametrize("endpoint", ["recommendations", "segment", "churn",
                                      "next-best-action"])
def test_unknown_customer_is_a_404_saying_so(api: TestClient, endpoint: str) -> None:
    response = api.get(f"/customers/nobody-like-this/{endpoint}")
    assert response.status_code == 404
    assert "nobody-like-this" in response.json()["detail"]


@pytest.mark.parametrize(("query", "field"), [({"k": 0}, "k"), ({"k": "ten"}, "k"),
                                              ({"k": 10_000}, "k"),
                                              ({"exclude_purchased": "maybe"},
                                               "exclude_purchased")])
def test_malformed_query_is_a_422_naming_the_field(api: TestClient, world: World,
                                                   query: dict, field: str) -> None:
    known, _ = known_and_cold_ids(api, world)
    response = api.get(f"/customers/{known}/recommendations", params=query)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["query", field]]


# --- batch -----------------------------------------------------------------------------------

def test_batch_mixes_known_ids_and_cold_attribute_rows(api: TestClient, world: World) -> None:
    known, cold = known_and_cold_ids(api, world)
    new = {"region": "north", "channel": "app", "age_band": "25-34", "recency_days": 12,
           "frequency": 3.0, "favourite_colour": "blue"}
    body = {"customers": [{"customer_id": known}, {"customer_id": "brand-new", "attributes": new},
                          {"customer_id": cold}, {"customer_id": known}], "k": 5}
    response = api.post("/recommendations", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["customer_id"] for r in results] == [known, "brand-new", cold, known]
    assert [r["source"] for r in results] == ["history", "attributes", "attributes", "history"]
    rec = served(api, "recommender")
    assert [i["product_id"] for i in results[0]["items"]] == \
        rec.recommend([known], k=5)["product_id"].tolist()
    assert results[3] == results[0]
    expected = rec.recommend_cold(pd.DataFrame([{"customer_id": "brand-new", **new}]), k=5)
    assert [i["product_id"] for i in results[1]["items"]] == expected["product_id"].tolist()
    assert results[1]["ignored_attributes"] == ["favourite_colour"]


def test_batch_with_an_unknown_id_and_no_attributes_is_a_404(api: TestClient,
                                                            world: World) -> None:
    known, _ = known_and_cold_ids(api, world)
    response = api.post("/recommendations", json={"customers": [{"customer_id": known},
                                                                {"customer_id": "ghost-1"}]})
    assert response.status_code == 404
    assert "ghost-1" in response.json()["detail"]


@pytest.mark.parametrize(("body", "loc"), [
    ({"customers": []}, ["body", "customers"]),
    ({}, ["body", "customers"]),
    ({"customers": [{"id": "x"}]}, ["body", "customers", 0, "customer_id"]),
    ({"customers": [{"customer_id": "x", "attributes": {"region": {"a": 1}}}]},
     ["body", "customers", 0, "attributes", "region"]),
    ({"customers": [{"customer_id": "x"}], "k": -1}, ["body", "k"]),
    ({"customers": [{"customer_id": "x"}], "colour": "red"}, ["body", "colour"]),
])
def test_malformed_batch_is_a_422_naming_the_field(api: TestClient, body: dict,
                                                   loc: list) -> None:
    response = api.post("/recommendations", json=body)
    assert response.status_code == 422
    locs = [e["loc"][:len(loc)] for e in response.json()["detail"]]
    assert loc in locs, locs


def test_batch_larger_than_configured_is_a_422(world: World) -> None:
    app = create_app(world.with_("serving.max_batch=2"))
    with TestClient(app) as client:
        body = {"customers": [{"customer_id": str(i)} for i in range(3)]}
        response = client.post("/recommendations", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "customers"]


# --- request limits ----------------------------------------------------------------------------

def test_a_body_over_the_limit_is_a_413_with_or_without_a_length(api: TestClient,
                                                                world: World) -> None:
    limit = world.settings.serving.max_body_bytes
    big = b'{"customers": [' + b" " * limit + b"]}"
    declared = api.post("/recommendations", content=big,
                        headers={"content-type": "application/json"})
    assert declared.status_code == 413, declared.text
    assert "serving.max_body_bytes" in declared.json()["detail"]
    assert declared.headers["connection"] == "close"

    chunked = api.post("/recommendations", content=iter([big[:1000], big[1000:]]),
                       headers={"content-type": "application/json"})
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413 and "max_body_bytes" in chunked.json()["detail"]
    assert api.get("/health").status_code == 200

    known, _ = known_and_cold_ids(api, world)
    at_limit = json.dumps({"customers": [{"customer_id": known}], "k": 2}).encode()
    at_limit = at_limit[:-1] + b" " * (limit - len(at_limit)) + b"}"
    assert len(at_limit) == limit
    ok = api.post("/recommendations", content=at_limit,
                  headers={"content-type": "application/json"})
    assert ok.status_code == 200 and len(ok.json()["results"][0]["items"]) == 2


def test_a_streamed_body_is_refused_without_being_read_to_the_end(world: World) -> None:
    app = create_app(world.with_("serving.max_body_bytes=4096"))
    pulled = 0
    sent: list[dict] = []

    async def endless() -> dict:  # a client that would upload forever
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/recommendations", "raw_path": b"",
             "query_string": b"", "root_path": "", "server": ("test", 80),
             "client": ("test", 1), "headers": [(b"content-type", b"application/json"),
                                                (b"transfer-encoding", b"chunked")]}
    anyio.run(app, scope, endless, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert pulled == 5  # the first chunk past 4096 bytes, none after it
    assert b"max_body_bytes" in b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("body", [
    {"customers": "x" * 900_000},
    {"customers": [{"customer_id": "x", "attributes": {"k" * 500_000: {"nested": 1}}}]},
    {"customers": [{"customer_id": "x", "colour": ["red"] * 100_000}]},
    {"customers": [{} for _ in range(1000)]},
])
def test_a_422_for_a_huge_input_stays_small(api: TestClient, body: dict) -> None:
    response = api.post("/recommendations", json=body)
    assert response.status_code == 422
    assert len(response.content) < 5_000, len(response.content)
    errors = response.json()["detail"]
    assert all({"loc", "msg", "type"} <= set(e) for e in errors)
    shown = [e.get("input") for e in errors]
    assert all(len(v if isinstance(v, str) else json.dumps(v)) <= 83 for v in shown), shown
    assert errors[0]["loc"][:2] == ["body", "customers"]


def test_a_422_keeps_the_field_and_small_inputs_as_they_were(api: TestClient) -> None:
    response = api.post("/recommendations", json={"customers": [{"customer_id": "x"}],
                                                  "k": -1})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "k"] and error["input"] == -1
    assert error["type"] == "greater_than_equal" and "1" in error["msg"]

    many = api.post("/recommendations", json={"customers": [{} for _ in range(30)]}).json()
    assert len(many["detail"]) == 20 and many["more_errors"] == 10


@pytest.mark.parametrize(("content", "headers", "says"), [
    (b'{"customers": [{"customer_id": "C1"}', {"content-type": "application/json"},
     "not valid JSON"),
    (b"customers=C1", {"content-type": "application/json"}, "not valid JSON"),
    (b'{"customers": [{"customer_id": "C1"}]}', {"content-type": "text/plain"},
     "Content-Type: application/json"),
    (b'{"customers": [{"customer_id": "C1"}]}', {}, "Content-Type: application/json"),
])
def test_a_body_that_is_not_json_is_a_400(api: TestClient, content: bytes,
                                          headers: dict, says: str) -> None:
    response = api.post("/recommendations", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"]


# --- admin -----------------------------------------------------------------------------------

def test_admin_needs_the_configured_token(api: TestClient) -> None:
    assert api.post("/admin/reload").status_code == 401
    assert api.post("/admin/reload").headers["www-authenticate"] == "Bearer"
    assert api.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert api.post("/admin/reload", headers={"Authorization": TOKEN}).status_code == 401
    ok = api.post("/admin/reload", headers=AUTH)
    assert ok.status_code == 200 and ok.json()["changed"] == {}


def test_admin_is_disabled_without_a_token(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAILOR_ADMIN_TOKEN", raising=False)
    app = create_app(world.with_("serving.admin_token=null"))
    client = TestClient(app)  # no lifespan: the token check comes before any model
    response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 403 and "disabled" in response.json()["detail"]
    monkeypatch.setenv("TAILOR_ADMIN_TOKEN", "from-the-environment-0123")
    ok = client.post("/admin/reload", headers={"Authorization": "Bearer from-the-environment-0123"})
    assert ok.status_code == 200


# --- reloads ---------------------------------------------------------------------------------

def test_reload_during_traffic_fails_no_request(api: TestClient, world: World) -> None:
    known, _ = known_and_cold_ids(api, world)
    old = champion(world)
    # a distinguishable new version: the same model with another blend
    base = served(api, "recommender")
    changed = dataclasses.replace(base, weights=dataclasses.replace(base.weights, repeat=0.0))
    version = new_version(world, changed)
    answers: list[tuple[float, int, str | None]] = []  # (sent at, status, version)
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            r = api.get(f"/customers/{known}/recommendations", params={"k": 5})
            answers.append((sent, r.status_code, r.json().get("model_version")))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        promote(world, version)
        report = api.post("/admin/reload", headers=AUTH).json()
        swapped = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    try:
        assert report["changed"] == {"recommender": version}, report
        assert len(answers) > 20 and {status for _, status, _ in answers} == {200}
        assert {v for _, _, v in answers} == {old, version}
        # every request sent after the reload answered was served by the new version
        assert {v for sent, _, v in answers if sent > swapped} == {version}
        models = {m["kind"]: m for m in api.get("/models").json()["models"]}
        assert models["recommender"]["version"] == version
        body = api.get(f"/customers/{known}/recommendations", params={"k": 5}).json()
        assert [i["product_id"] for i in body["items"]] == \
            changed.recommend([known], k=5)["product_id"].tolist()
    finally:
        promote(world, old)
        api.post("/admin/reload", headers=AUTH)
    models = {m["kind"]: m for m in api.get("/models").json()["models"]}
    assert models["recommender"]["version"] == old


def test_a_broken_new_version_keeps_the_old_one_serving(api: TestClient, world: World) -> None:
    known, _ = known_and_cold_ids(api, world)
    old = champion(world)
    version = new_version(world, served(api, "recommender"))
    source = world.client.get_model_version_download_uri("tailor-recommender", version)
    pickled = Path(source.removeprefix("file://")) / "artifacts" / f"{PREDICTOR_ARTIFACT}.pkl"
    assert pickled.exists()
    pickled.write_bytes(b"not a pickle")
    promote(world, version)
    try:
        report = api.post("/admin/reload", headers=AUTH).json()
        assert report["changed"] == {}
        assert report["failed"]["recommender"]["version"] == version
        models = {m["kind"]: m for m in api.get("/models").json()["models"]}
        rec = models["recommender"]
        assert rec["version"] == old and rec["champion_version"] == version
        assert rec["last_error"]["version"] == version
        assert "UnpicklingError" in rec["last_error"]["error"]
        body = api.get(f"/customers/{known}/recommendations").json()
        assert body["model_version"] == old
        assert api.get("/ready").status_code == 200
    finally:
        promote(world, old)
    api.post("/admin/reload", headers=AUTH)
    models = {m["kind"]: m for m in api.get("/models").json()["models"]}
    assert models["recommender"]["version"] == old
    assert models["recommender"]["last_error"] is None


def test_periodic_check_picks_up_a_promotion(world: World) -> None:
    app = create_app(world.with_("serving.reload_interval_s=0.2"))
    with TestClient(app) as client:
        old = champion(world)
        base = app.state.runtime.state.models["recommender"].predictor
        version = new_version(world, dataclasses.replace(base, k=7))
        promote(world, version)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                models = {m["kind"]: m for m in client.get("/models").json()["models"]}
                if models["recommender"]["version"] == version:
                    break
                time.sleep(0.1)
            assert models["recommender"]["version"] == version
        finally:
            promote(world, old)


def test_a_new_snapshot_is_picked_up_and_a_broken_one_is_not(world: World,
                                                            tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot"
    first = world.features.iloc[:200]
    write_snapshot(snapshot, first, world.customers, {"as_of": "2000-01-01"})
    app = create_app(world.with_(f"serving.snapshot_dir={snapshot}"))
    later = world.features.index[300]
    with TestClient(app) as client:
        assert client.get(f"/customers/{later}/segment").status_code == 404
        published = write_snapshot(snapshot, world.features, world.customers,
                                   {"as_of": "2000-02-01"})
        assert client.post("/admin/reload", headers=AUTH).json()["snapshot_reloaded"] is True
        seg = client.get(f"/customers/{later}/segment").json()
        assert seg["snapshot_as_of"] == "2000-02-01"
        assert client.get("/models").json()["snapshot"]["directory"] == str(published)

        # a score run killed before it published: its directory is never read
        stage(snapshot, {FEATURES_FILE: first.reset_index()}, {"as_of": "2000-03-01"})
        report = client.post("/admin/reload", headers=AUTH).json()
        assert report["snapshot_reloaded"] is False and "snapshot" not in report["failed"]
        assert client.get(f"/customers/{later}/segment").json()["snapshot_as_of"] == "2000-02-01"

        (published / FEATURES_FILE).write_bytes(b"garbage")
        report = client.post("/admin/reload", headers=AUTH).json()
        assert report["snapshot_reloaded"] is False and "snapshot" in report["failed"]
        info = client.get("/models").json()["snapshot"]
        assert info["manifest"]["as_of"] == "2000-02-01" and info["last_error"]
        assert client.get(f"/customers/{later}/segment").status_code == 200


def test_not_ready_without_models_or_snapshot(tmp_path: Path) -> None:
    settings = load_settings(overrides=[
        f"tracking.mlflow_tracking_uri=sqlite:///{tmp_path / 'empty.db'}",
        f"serving.snapshot_dir={tmp_path / 'none'}", "serving.reload_interval_s=null"])
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert set(ready.json()["missing"]) == {"model segmentation", "model recommender",
                                                "model churn", "snapshot"}
        for path in ("/customers/x/recommendations", "/customers/x/segment",
                     "/customers/x/churn", "/customers/x/next-best-action"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert "not loaded" in response.json()["detail"]
        assert client.get("/models").json()["snapshot"]["last_error"]["error"]


# --- the OpenAPI contract, fuzzed ------------------------------------------------------------

def test_openapi_documents_every_response(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            ok = op["responses"].get("200", {})
            assert "schema" in ok.get("content", {}).get("application/json", {}), (path, method)
            if path.startswith("/customers/"):
                assert {"404", "422", "503"} <= set(op["responses"]), (path, method)
    assert {"401", "403"} <= set(spec["paths"]["/admin/reload"]["post"]["responses"])


class LateApp:
    """An ASGI app whose target a fixture sets later.

    schemathesis's ``from_fixture`` fails on pytest 9 (it reads ``request.node._nodeid``), so
    the schema is loaded at import time from an app with the same serving limits, and requests
    go to the world's app once the ``fuzzed`` fixture has built it (its runtime loaded up
    front, so the lifespan is answered here).
    """

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.target: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if self.target is None:  # only the schema, while collecting
            from starlette.responses import JSONResponse

            await JSONResponse(self.spec)(scope, receive, send)
            return
        await self.target(scope, receive, send)


LATE = LateApp(create_app(settings_for(Path("unused"))).openapi())
schema = schemathesis.openapi.from_asgi("/openapi.json", LATE)


@pytest.fixture(scope="module")
def fuzzed(world: World) -> Iterator[None]:
    runtime = ServingRuntime(world.settings)
    runtime.reload()
    LATE.target = create_app(world.settings, runtime)
    yield
    LATE.target = None


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api_never_answers_500_and_follows_its_schema(case: Any, fuzzed: None) -> None:
    case.call_and_validate()


# --- mlflow models serve answers for the same pyfunc -----------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mlflow_models_serve_answers_invocations(world: World, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{world.root / 'mlflow.db'}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_ENABLE_TELEMETRY": "false"}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m",
               "models:/tailor-recommender@champion", "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port)]
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow models serve did not start in 120 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        predictor = registry_predictor(world)  # the champion, loaded independently of the app
        customers = world.customers.astype(str)
        known = customers[predictor.known(customers["customer_id"])].head(2)
        cold = customers.head(1).assign(customer_id="never-seen")
        frame = pd.concat([known, cold], ignore_index=True)
        payload = {"dataframe_split": frame.to_dict(orient="split", index=False)}
        response = httpx.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=60)
        assert response.status_code == 200, response.text
        answer = pd.DataFrame(response.json()["predictions"])
        expected = predictor.predict(frame)
        assert answer["customer_id"].tolist() == expected["customer_id"].tolist()
        assert answer["product_id"].tolist() == expected["product_id"].tolist()
        np.testing.assert_allclose(answer["score"], expected["score"], rtol=1e-6)
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(20)
        log.close()


def registry_predictor(world: World) -> Any:
    from tailor.adapters.champions import load_champion

    found = load_champion(world.client, "recommender")
    assert found is not None
    return found.predictor
