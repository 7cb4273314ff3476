"""Deployments on a REAL Prefect server: `tailor deploy` registers the cron schedules and
`tailor serve-flows` executes a retrain (and a scoring) run triggered through the API.

The server is `prefect server start` in its own process group, with its own PREFECT_HOME and a
sqlite database in tmp (PREFECT_API_DATABASE_CONNECTION_URL; a postgresql+asyncpg://... URL
there is how Prefect would run on PostgreSQL). MLflow and Optuna stores are sqlite files in tmp
too; only trial counts are tiny. Every process is stopped (its whole group) even on failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from mlflow import MlflowClient

from tailor.adapters.snapshot import published
from tailor.configs import load_settings
from tailor.data.generate import generate, write_generated
from tailor.deployments.schedules import (
    RETRAIN_DEPLOYMENT,
    RETRAIN_FLOW,
    SCORE_DEPLOYMENT,
    SCORE_FLOW,
    build_deployments,
    changes_on_server,
)

pytestmark = pytest.mark.slow

TAILOR = str(Path(sys.executable).with_name("tailor"))
RETRAIN_CRON, SCORE_CRON, ZONE = "30 2 * * 0", "15 6 * * *", "Asia/Tokyo"  # UTC+9
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This machine's environment without any Prefect/MLflow setting a developer may have."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFECT_") and k != "MLFLOW_TRACKING_URI"}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="true", MLFLOW_ENABLE_TELEMETRY="false", **extra)
    return env


def _start(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group (flow runs are children), SIGKILL what remains."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    env = _clean_env(
        root / "home",
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{root / 'prefect.db'}",
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
    )
    log = root / "server.log"
    process = _start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                      "--port", str(port)], env, log, root)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"prefect server exited with {process.returncode}:\n{_tail(log)}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after 120 s:\n{_tail(log)}")
            time.sleep(0.5)
        yield {"url": url, "root": root, "log": log}
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generated data and one config file carrying stores, tiny budgets and the schedules."""
    root = tmp_path_factory.mktemp("deployed")
    store = root / "store"
    config = {
        "tracking": {"mlflow_tracking_uri": f"sqlite:///{store / 'mlflow.db'}",
                     "optuna_storage": f"sqlite:///{store / 'optuna.db'}"},
        "segmentation": {"n_trials": 2, "exhaustive_limit": 0},
        "recommender": {"n_trials": 2, "max_epochs": 3},
        "churn": {"n_trials": 2},
        "generate": {"customers": 400, "products": 100},
        "scoring": {"snapshot_dir": "snapshot"},
        "deployments": {"retrain_cron": RETRAIN_CRON, "score_cron": SCORE_CRON,
                        "timezone": ZONE, "data_dir": "data", "out_dir": "out/retrain",
                        "score_out": "out/scores.parquet"},
    }
    config_file = root / "tailor.yaml"
    config_file.write_text(yaml.safe_dump(config))
    write_generated(generate(load_settings([config_file]).generate), root / "data")
    return {"root": root, "config": config_file, "store": store}


@pytest.fixture(scope="module")
def deployed(server: dict[str, Any], world: dict[str, Any]) -> dict[str, Any]:
    env = _clean_env(server["root"] / "home", PREFECT_API_URL=server["url"])
    # run from the data's parent: relative paths in the config resolve against it
    done = subprocess.run([TAILOR, "deploy", "--config", str(world["config"])], env=env,
                          cwd=world["root"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    return {"env": env, "stdout": done.stdout}


@contextmanager
def _api(url: str) -> Iterator[None]:
    """Point this process's Prefect client at ``url`` for the block only."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


@contextmanager
def _client(url: str) -> Iterator[Any]:
    from prefect.client.orchestration import get_client

    with _api(url), get_client(sync_client=True) as client:
        yield client


def _wait_for(client: Any, run_id: Any, serve: subprocess.Popen, log: Path,
              timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.type.value in FINAL:
            return run
        if serve.poll() is not None:
            pytest.fail(f"tailor serve-flows exited with {serve.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"run {run.name} still {run.state_name} after {timeout_s} s:\n"
                        f"{_tail(log)}")
        time.sleep(1)


def test_deploy_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    unset = subprocess.run([TAILOR, "deploy"], env=_clean_env(tmp_path / "home"),
                           capture_output=True, text=True, timeout=120)
    assert unset.returncode == 1
    assert "PREFECT_API_URL is not set" in unset.stderr
    assert "prefect server start" in unset.stderr

    url = f"http://127.0.0.1:{_free_port()}/api"
    nobody = subprocess.run([TAILOR, "serve-flows"],
                            env=_clean_env(tmp_path / "home", PREFECT_API_URL=url),
                            capture_output=True, text=True, timeout=120)
    assert nobody.returncode == 1
    assert f"no Prefect server answers at PREFECT_API_URL={url}" in nobody.stderr
    assert "prefect server start" in nobody.stderr


def test_deployments_carry_the_configured_cron_and_parameters(
        server: dict[str, Any], world: dict[str, Any], deployed: dict[str, Any]) -> None:
    root = world["root"]
    with _client(server["url"]) as client:
        retrain = client.read_deployment_by_name(f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}")
        score = client.read_deployment_by_name(f"{SCORE_FLOW}/{SCORE_DEPLOYMENT}")
    for deployment, cron in ((retrain, RETRAIN_CRON), (score, SCORE_CRON)):
        assert [(s.schedule.cron, s.schedule.timezone, s.active)
                for s in deployment.schedules] == [(cron, ZONE, True)]
        assert deployment.paused is False
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


def test_serve_flows_runs_a_triggered_retrain_then_scoring(
        server: dict[str, Any], world: dict[str, Any], deployed: dict[str, Any]) -> None:
    log = world["root"] / "serve.log"
    env = {**deployed["env"], "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    serve = _start([TAILOR, "serve-flows", "--config", str(world["config"])], env, log,
                   world["root"])
    try:
        with _client(server["url"]) as client:
            retrain = client.read_deployment_by_name(f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}")
            run = client.create_flow_run_from_deployment(retrain.id)
            run = _wait_for(client, run.id, serve, log, timeout_s=360)
            assert run.state.type.value == "COMPLETED", f"{run.state}\n{_tail(log)}"

            registry = MlflowClient(tracking_uri=f"sqlite:///{world['store'] / 'mlflow.db'}",
                                    registry_uri=f"sqlite:///{world['store'] / 'mlflow.db'}")
            for kind in ("segmentation", "recommender", "churn"):
                versions = registry.search_model_versions(f"name='tailor-{kind}'")
                assert [str(v.version) for v in versions] == ["1"], kind
                champion = registry.get_model_version_by_alias(f"tailor-{kind}", "champion")
                assert str(champion.version) == "1", kind

            score = client.read_deployment_by_name(f"{SCORE_FLOW}/{SCORE_DEPLOYMENT}")
            scored = client.create_flow_run_from_deployment(score.id)
            scored = _wait_for(client, scored.id, serve, log, timeout_s=90)
            assert scored.state.type.value == "COMPLETED", f"{scored.state}\n{_tail(log)}"
        assert "re-registering" not in log.read_text()  # same config and cwd: no change
        assert (world["root"] / "out" / "scores.parquet").stat().st_size > 0
        assert (published(world["root"] / "snapshot") / "manifest.json").exists()
    finally:
        _stop(serve)


def test_registering_from_another_directory_reports_the_changed_paths(
        server: dict[str, Any], world: dict[str, Any], deployed: dict[str, Any]) -> None:
    root, config = world["root"], world["config"]
    elsewhere = build_deployments(load_settings([config]), [config], base=root / "data")
    with _api(server["url"]):
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
    with _client(server["url"]) as client:
        retrain = client.read_deployment_by_name(f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}")
        from prefect.client.schemas.filters import DeploymentFilter

        while True:
            runs = [run for run in client.read_flow_runs(
                deployment_filter=DeploymentFilter(id={"any_": [retrain.id]}))
                if run.auto_scheduled]
            if runs or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert runs, f"no scheduled runs after 10 s; server log:\n{_tail(server['log'])}"
    for run in runs:
        local = datetime.fromisoformat(str(run.expected_start_time)).astimezone(ZoneInfo(ZONE))
        # "30 2 * * 0" in Tokyo: Sundays 02:30 there, Saturdays 17:30 UTC
        assert (local.weekday(), local.hour, local.minute) == (6, 2, 30), local
