"""Deployments on a REAL Prefect server (:mod:`.prefect_server`): `tailor deploy` registers the
cron schedules and `tailor serve-flows` executes a retrain (and a scoring) run triggered
through the API. MLflow and Optuna stores are sqlite files in tmp; only trial counts are tiny.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from mlflow import MlflowClient

from tailor.adapters.snapshot import published
from tailor.configs import load_settings
from tailor.deployments.schedules import (
    RETRAIN_DEPLOYMENT,
    RETRAIN_FLOW,
    SCORE_DEPLOYMENT,
    SCORE_FLOW,
    build_deployments,
    changes_on_server,
)

from .prefect_server import (
    TAILOR,
    api,
    clean_env,
    client_of,
    free_port,
    running_server,
    start,
    stop,
    tail,
    tiny_world,
    wait_for,
)

# one server for the module: its tests share the deployments it registers
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deployments")]

RETRAIN_CRON, SCORE_CRON, ZONE = "30 2 * * 0", "15 6 * * *", "Asia/Tokyo"  # UTC+9


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    # started as `prefect server start --port P` alone: its UI calls 4200, which deploy flags
    with running_server(tmp_path_factory.mktemp("prefect-server"), ui=True,
                        set_api_port=False) as running:
        yield running


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generated data and one config file carrying stores, tiny budgets and the schedules."""
    return tiny_world(
        tmp_path_factory.mktemp("deployed"),
        scoring={"snapshot_dir": "snapshot"},
        deployments={"retrain_cron": RETRAIN_CRON, "score_cron": SCORE_CRON, "timezone": ZONE,
                     "data_dir": "data", "out_dir": "out/retrain",
                     "score_out": "out/scores.parquet"})


@pytest.fixture(scope="module")
def deployed(server: dict[str, Any], world: dict[str, Any]) -> dict[str, Any]:
    env = clean_env(server["root"] / "home", PREFECT_API_URL=server["url"])
    # run from the data's parent: relative paths in the config resolve against it
    done = subprocess.run([TAILOR, "deploy", "--config", str(world["config"])], env=env,
                          cwd=world["root"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    return {"env": env, "stdout": done.stdout, "stderr": done.stderr}


def test_deploy_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    unset = subprocess.run([TAILOR, "deploy"], env=clean_env(tmp_path / "home"),
                           capture_output=True, text=True, timeout=120)
    assert unset.returncode == 1
    assert "PREFECT_API_URL is not set" in unset.stderr
    assert "prefect server start" in unset.stderr

    url = f"http://127.0.0.1:{free_port()}/api"
    nobody = subprocess.run([TAILOR, "serve-flows"],
                            env=clean_env(tmp_path / "home", PREFECT_API_URL=url),
                            capture_output=True, text=True, timeout=120)
    assert nobody.returncode == 1
    assert f"no Prefect server answers at PREFECT_API_URL={url}" in nobody.stderr
    assert "prefect server start" in nobody.stderr


def test_deployments_carry_the_configured_cron_and_parameters(
        server: dict[str, Any], world: dict[str, Any], deployed: dict[str, Any]) -> None:
    root = world["root"]
    with client_of(server["url"]) as client:
        retrain = client.read_deployment_by_name(f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}")
        score = client.read_deployment_by_name(f"{SCORE_FLOW}/{SCORE_DEPLOYMENT}")
    for deployment, cron in ((retrain, RETRAIN_CRON), (score, SCORE_CRON)):
        assert [(s.schedule.cron, s.schedule.timezone, s.active)
                for s in deployment.schedules] == [(cron, ZONE, True)]
        assert deployment.paused is False
        # the UI shows schedules without their zone: the description says it
        assert deployment.description.endswith(f"Schedule: cron `{cron}` in {ZONE}.")
        # one run at a time; a run due meanwhile waits (two retrains must not gate at once)
        assert deployment.global_concurrency_limit is not None
        assert deployment.global_concurrency_limit.limit == 1
        assert deployment.concurrency_options.collision_strategy == "ENQUEUE"
        assert deployment.parameters["config_files"] == [str(world["config"])]
        assert deployment.parameters["data_dir"] == str(root / "data")
        assert "tailor" in deployment.tags
    assert retrain.entrypoint == "tailor.flows.train.train_models"
    assert retrain.parameters["out_dir"] == str(root / "out" / "retrain")
    assert retrain.parameters["models"] == ["segmentation", "recommender", "churn"]
    assert score.parameters["out"] == str(root / "out" / "scores.parquet")
    assert score.parameters["snapshot_dir"] == str(root / "snapshot")
    assert f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}: cron '{RETRAIN_CRON}' ({ZONE}, active)" in (
        deployed["stdout"])


def test_deploy_warns_that_the_ui_calls_another_port(deployed: dict[str, Any]) -> None:
    assert "calls the API at http://127.0.0.1:4200/api" in deployed["stderr"]
    assert "PREFECT_SERVER_API_PORT" in deployed["stderr"]


def test_the_run_form_describes_every_parameter(
        server: dict[str, Any], deployed: dict[str, Any]) -> None:
    """The UI's "Custom run" form shows each parameter's description, read by Prefect from
    the flow's docstring (its Args section) and stored with the deployment."""
    with client_of(server["url"]) as client:
        for name in (f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}", f"{SCORE_FLOW}/{SCORE_DEPLOYMENT}"):
            schema = client.read_deployment_by_name(name).parameter_openapi_schema
            undescribed = [key for key, field in schema["properties"].items()
                           if len(field.get("description") or "") < 20]
            assert schema["properties"] and not undescribed, (name, undescribed)


def test_serve_flows_runs_a_triggered_retrain_then_scoring(
        server: dict[str, Any], world: dict[str, Any], deployed: dict[str, Any]) -> None:
    log = world["root"] / "serve.log"
    env = {**deployed["env"], "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    serve = start([TAILOR, "serve-flows", "--config", str(world["config"])], env, log,
                   world["root"])
    try:
        with client_of(server["url"]) as client:
            retrain = client.read_deployment_by_name(f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}")
            run = client.create_flow_run_from_deployment(retrain.id)
            run = wait_for(client, run.id, serve, log, timeout_s=360)
            assert run.state.type.value == "COMPLETED", f"{run.state}\n{tail(log)}"

            registry = MlflowClient(tracking_uri=f"sqlite:///{world['store'] / 'mlflow.db'}",
                                    registry_uri=f"sqlite:///{world['store'] / 'mlflow.db'}")
            for kind in ("segmentation", "recommender", "churn"):
                versions = registry.search_model_versions(f"name='tailor-{kind}'")
                assert [str(v.version) for v in versions] == ["1"], kind
                champion = registry.get_model_version_by_alias(f"tailor-{kind}", "champion")
                assert str(champion.version) == "1", kind

            score = client.read_deployment_by_name(f"{SCORE_FLOW}/{SCORE_DEPLOYMENT}")
            scored = client.create_flow_run_from_deployment(score.id)
            scored = wait_for(client, scored.id, serve, log, timeout_s=90)
            assert scored.state.type.value == "COMPLETED", f"{scored.state}\n{tail(log)}"
        assert "re-registering" not in log.read_text()  # same config and cwd: no change
        assert (world["root"] / "out" / "scores.parquet").stat().st_size > 0
        assert (published(world["root"] / "snapshot") / "manifest.json").exists()
    finally:
        stop(serve)


def test_registering_from_another_directory_reports_the_changed_paths(
        server: dict[str, Any], world: dict[str, Any], deployed: dict[str, Any]) -> None:
    root, config = world["root"], world["config"]
    elsewhere = build_deployments(load_settings([config]), [config], base=root / "data")
    with api(server["url"]):
        changes = changes_on_server(elsewhere.deployments)
        same = changes_on_server(build_deployments(load_settings([config]), [config],
                                                   base=root).deployments)
    assert same == []
    key = f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}: parameter data_dir"
    assert f"{key}: {str(root / 'data')!r} -> {str(root / 'data' / 'data')!r}" in changes
    assert not [line for line in changes if "schedule" in line]


def test_the_server_schedules_runs_on_the_cron_in_its_timezone(
        server: dict[str, Any], deployed: dict[str, Any]) -> None:
    # Guards the SQLAlchemy pin: with SQLAlchemy 2.1, Prefect 3.8's scheduler bulk insert
    # fails ("please supply a bulk_dml decorated function") and no scheduled run is created.
    deadline = time.monotonic() + 10
    with client_of(server["url"]) as client:
        retrain = client.read_deployment_by_name(f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}")
        from prefect.client.schemas.filters import DeploymentFilter

        while True:
            runs = [run for run in client.read_flow_runs(
                deployment_filter=DeploymentFilter(id={"any_": [retrain.id]}))
                if run.auto_scheduled]
            if runs or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert runs, f"no scheduled runs after 10 s; server log:\n{tail(server['log'])}"
    for run in runs:
        local = datetime.fromisoformat(str(run.expected_start_time)).astimezone(ZoneInfo(ZONE))
        # "30 2 * * 0" in Tokyo: Sundays 02:30 there, Saturdays 17:30 UTC
        assert (local.weekday(), local.hour, local.minute) == (6, 2, 30), local
