"""The serving API's admin token and reloads: a reload during traffic, a broken new version, the
periodic check, and new or broken snapshots."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailor.adapters.pyfunc import PREDICTOR_ARTIFACT
from tailor.adapters.score_output import write_snapshot
from tailor.adapters.snapshot import FEATURES_FILE, stage
from tailor.deployments.api.app import create_app

from .conftest import AUTH, TOKEN, World, champion, known_and_cold_ids, new_version, promote, served

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
