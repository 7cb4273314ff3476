"""`tailor stack` on this machine's REAL PostgreSQL: an MLflow server and a Prefect server, each
on its own database, a Prefect process worker on a work pool; a retrain deployed to that pool
runs its model tasks on a Dask LocalCluster, and two retrains started at once against the
servers leave a consistent registry.

The databases get a per-module prefix (``tt<hex>_mlflow``...) and are dropped afterwards;
every server is stopped by `tailor stack down` (and the fixture's teardown, should a test fail).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa
import yaml
from mlflow import MlflowClient

from tailor.adapters.dask_trials import WORKER_ATTR
from tailor.configs import load_settings
from tailor.data.generate import generate, write_generated
from tailor.deployments.schedules import RETRAIN_DEPLOYMENT, RETRAIN_FLOW
from tailor.deployments.stack import STACK_FILE, database_name, database_url, drop_databases

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("stack")]

TAILOR = str(Path(sys.executable).with_name("tailor"))
POOL = "tailor-test-pool"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
TINY = {"segmentation": {"n_trials": 2, "exhaustive_limit": 0, "k_max": 5},
        "recommender": {"n_trials": 2, "max_epochs": 3, "max_eval_users": 200},
        "churn": {"n_trials": 2, "families": ["logistic"], "importance_repeats": 1},
        "generate": {"customers": 400, "products": 100}}


def _clean_env(**extra: str) -> dict[str, str]:
    """This machine's environment without any store a developer or the test session set."""
    drop = ("PREFECT_", "MLFLOW_TRACKING_URI", "TAILOR_OPTUNA_STORAGE", "TAILOR_REGISTRY_LOCK")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="true",
               MLFLOW_ENABLE_TELEMETRY="false", **extra)
    return env


def _tailor(*args: str, env: dict[str, str], cwd: Path, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TAILOR, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _exports(text: str) -> dict[str, str]:
    pairs = [shlex.split(line.removeprefix("export "))[0].split("=", 1)
             for line in text.splitlines() if line.startswith("export ")]
    return dict(pairs)


def _sql(url: str, query: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(query), params))
    finally:
        engine.dispose()


# session scope: xdist may run another module's tests between this module's on one worker,
# which would tear a module-scoped stack down (and bring up an empty one) mid-module
@pytest.fixture(scope="session")
def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("stack")
    prefix = f"tt{uuid.uuid4().hex[:8]}"
    server_url = database_url(pg_url, "postgres")
    env = _clean_env(PREFECT_HOME=str(root / "client-home"))
    up = _tailor("stack", "up", "--database-url", server_url, "--dir", str(root / "stack"),
                 "--work-pool", POOL, "--database-prefix", prefix, env=env, cwd=root)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        printed = _tailor("stack", "env", "--dir", str(root / "stack"), env=env, cwd=root)
        assert printed.returncode == 0, printed.stderr
        config = root / "tailor.yaml"
        config.write_text(yaml.safe_dump({**TINY, "deployments": {"data_dir": "data",
                                                                  "paused": True}}))
        write_generated(generate(load_settings([config]).generate), root / "data")
        yield {"root": root, "dir": root / "stack", "prefix": prefix, "pg": pg_url,
               "config": config, "up": up.stdout, "exports": _exports(printed.stdout),
               "env": {**env, **_exports(printed.stdout)}}
    finally:
        _tailor("stack", "down", "--dir", str(root / "stack"), env=env, cwd=root)
        drop_databases(server_url, prefix)


def _db(stack: dict[str, Any], role: str) -> str:
    return database_url(stack["pg"], database_name(role, stack["prefix"]))


def test_stack_up_creates_the_databases_and_env_points_at_the_servers(
        stack: dict[str, Any]) -> None:
    names = {row[0] for row in _sql(stack["pg"], "SELECT datname FROM pg_database")}
    assert {database_name(r, stack["prefix"]) for r in ("mlflow", "prefect", "optuna")} <= names
    exports = stack["exports"]
    assert exports["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:")
    assert exports["PREFECT_API_URL"].endswith("/api")
    assert exports["TAILOR_OPTUNA_STORAGE"] == _db(stack, "optuna")
    assert exports["TAILOR_REGISTRY_LOCK_URL"] == _db(stack, "mlflow")
    recorded = json.loads((stack["dir"] / STACK_FILE).read_text())
    assert set(recorded["servers"]) == {"mlflow", "prefect", "worker"}
    for server in recorded["servers"].values():
        assert psutil.pid_exists(server["pid"]), server
    status = _tailor("stack", "status", "--dir", str(stack["dir"]), env=stack["env"],
                     cwd=stack["root"])
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count(" up ") == 3, status.stdout


def _run_deployment(stack: dict[str, Any], timeout_s: float = 900) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: stack["exports"]["PREFECT_API_URL"]}), \
            get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"{RETRAIN_FLOW}/{RETRAIN_DEPLOYMENT}")
        assert deployment.work_pool_name == POOL
        run = client.create_flow_run_from_deployment(deployment.id)
        deadline = time.monotonic() + timeout_s
        while True:
            run = client.read_flow_run(run.id)
            if run.state is not None and run.state.type.value in FINAL:
                return run
            if time.monotonic() > deadline:
                log = (stack["dir"] / "logs" / "worker.log").read_text()[-4000:]
                pytest.fail(f"retrain still {run.state_name} after {timeout_s} s:\n{log}")
            time.sleep(2)


def test_a_retrain_on_the_work_pool_runs_on_dask_and_lands_in_the_three_databases(
        stack: dict[str, Any]) -> None:
    deployed = _tailor("deploy", "--work-pool", POOL, "--config", str(stack["config"]),
                       "--set", "orchestration.runner=dask", env=stack["env"],
                       cwd=stack["root"])
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert f"runs execute on work pool {POOL}" in deployed.stdout

    run = _run_deployment(stack)
    worker_log = (stack["dir"] / "logs" / "worker.log").read_text()
    assert run.state.type.value == "COMPLETED", f"{run.state.message}\n{worker_log[-4000:]}"
    assert "task runner: dask (DaskTaskRunner on a LocalCluster" in worker_log

    # tailor_prefect: the flow run, and the per-model tasks it ran
    prefect_db = _db(stack, "prefect")
    flows = _sql(prefect_db, "SELECT state_type FROM flow_run WHERE id = :id", id=run.id)
    assert [f[0] for f in flows] == ["COMPLETED"]
    tasks = {r[0] for r in _sql(prefect_db, "SELECT name FROM task_run "
                                            "WHERE state_type = 'COMPLETED'")}
    assert {"train-segmentation", "train-recommender", "train-churn"} <= tasks

    # tailor_mlflow: parent run tagged with the runner, three model runs, three champions
    mlflow_db = _db(stack, "mlflow")
    parents = _sql(mlflow_db, "SELECT r.run_uuid, r.status FROM runs r JOIN tags t ON "
                              "t.run_uuid = r.run_uuid WHERE t.key = 'tailor.task_runner' "
                              "AND t.value LIKE 'dask%'")
    assert len(parents) == 1 and parents[0][1] == "FINISHED", parents
    children = _sql(mlflow_db, "SELECT t.run_uuid FROM tags t WHERE "
                               "t.key = 'mlflow.parentRunId' AND t.value = :p", p=parents[0][0])
    assert len(children) == 3
    aliases = {(r[0], r[1]) for r in _sql(mlflow_db, "SELECT name, alias FROM "
                                                     "registered_model_aliases")}
    for kind in ("segmentation", "recommender", "churn"):
        assert (f"tailor-{kind}", "champion") in aliases
    # ... and the artifacts went through the server into the stack's folder
    client = MlflowClient(stack["exports"]["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias("tailor-churn", "champion")
    assert champion.source.startswith("mlflow-artifacts:/"), champion.source
    assert any((stack["dir"] / "artifacts").rglob("MLmodel"))

    # tailor_optuna: each model's study and its trials
    studies = _sql(_db(stack, "optuna"), "SELECT s.study_name, count(t.trial_id) FROM studies s "
                                         "JOIN trials t ON t.study_id = s.study_id "
                                         "GROUP BY s.study_name")
    assert {name.split("-")[1] for name, _ in studies} >= {"segmentation", "recommender",
                                                          "churn"}
    assert all(count >= 1 for _, count in studies)
    # ... run by the cluster's workers, each trial naming its worker, over more than one
    workers = _sql(_db(stack, "optuna"), "SELECT a.value_json FROM trial_user_attributes a "
                                         "WHERE a.key = :k", k=WORKER_ATTR)
    assert len(workers) == sum(count for _, count in studies)
    assert len({w[0] for w in workers}) >= 2, workers


def test_two_retrains_at_once_are_serialised_and_leave_a_consistent_registry(
        stack: dict[str, Any]) -> None:
    args = [TAILOR, "train", "--data", str(stack["root"] / "data"), "--models", "churn",
            "--config", str(stack["config"]), "--set", "registry.lock_wait_seconds=600"]
    procs = [subprocess.Popen([*args, "--out", str(stack["root"] / f"out{i}")],
                              env=stack["env"], cwd=stack["root"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outputs)

    client = MlflowClient(stack["exports"]["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("tailor-retrain")
    parents = [r for r in client.search_runs([experiment.experiment_id],
                                             "tags.`tailor.flow` = 'train-models'")
               if r.data.params.get("models") == "churn"]
    assert len(parents) == 2
    first, second = sorted(parents, key=lambda r: r.info.start_time)
    assert first.info.end_time <= second.info.start_time, "the lock let both retrains in"
    # the registry: no run left RUNNING, versions numbered without gaps, each from a
    # finished run, and the champion one of them
    running = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    assert running == []
    versions = sorted(client.search_model_versions("name = 'tailor-churn'"),
                      key=lambda v: int(v.version))
    assert [int(v.version) for v in versions] == list(range(1, len(versions) + 1))
    # ... one new version from each of the two retrains
    ours = {client.get_run(v.run_id).data.tags.get("mlflow.parentRunId") for v in versions}
    assert {p.info.run_id for p in parents} <= ours, "\n".join(outputs)
    for version in versions:
        assert client.get_run(version.run_id).info.status == "FINISHED"
    champion = client.get_model_version_by_alias("tailor-churn", "champion")
    assert champion.version in {v.version for v in versions}


def test_stack_down_stops_exactly_its_processes(stack: dict[str, Any]) -> None:
    recorded = json.loads((stack["dir"] / STACK_FILE).read_text())
    pids = [s["pid"] for s in recorded["servers"].values()]
    family = [p for pid in pids for p in [psutil.Process(pid),
                                          *psutil.Process(pid).children(recursive=True)]]
    down = _tailor("stack", "down", "--dir", str(stack["dir"]), env=stack["env"],
                   cwd=stack["root"])
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.count("stopped") == 3, down.stdout
    _, alive = psutil.wait_procs(family, timeout=10)
    assert alive == [], alive
    status = _tailor("stack", "status", "--dir", str(stack["dir"]), env=stack["env"],
                     cwd=stack["root"])
    assert status.returncode == 1 and "no stack in" in status.stderr
