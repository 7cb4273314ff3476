"""The serving API's status endpoints: health, readiness and the models report, the access log, and
not being ready without models or a snapshot."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailor.adapters import registry
from tailor.configs import load_settings
from tailor.deployments.api.app import create_app

from .conftest import World, champion

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
