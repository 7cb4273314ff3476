"""A retrain on the Dask runner whose worker processes are SIGKILLed while they train: Dask
re-runs the lost tasks on the nannies' new workers, and the retrain must still finish with one
finished run and one registered version per model, the lost attempts' runs closed as
superseded, and nothing left RUNNING.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient

from tailor.adapters.reconcile import RECONCILED

pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.xdist_group("fault")]

TAILOR = str(Path(sys.executable).with_name("tailor"))
KINDS = ("segmentation", "recommender", "churn")
#: enough work per model that its task is still running when the workers are killed
SETTINGS = ["orchestration.runner=dask", "orchestration.dask_workers=3",
            "segmentation.n_trials=6", "segmentation.exhaustive_limit=0",
            "recommender.n_trials=4", "recommender.max_epochs=15",
            "churn.n_trials=4", "churn.families=[logistic]"]


def _env() -> dict[str, str]:
    drop = ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "TAILOR_OPTUNA_STORAGE",
            "TAILOR_REGISTRY_LOCK")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="true",
               MLFLOW_ENABLE_TELEMETRY="false")
    return env


def _dask_workers(pid: int) -> list[psutil.Process]:
    """The LocalCluster's worker processes under ``pid`` (multiprocessing spawns them)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _running_model_runs(client: MlflowClient) -> dict[str, str]:
    """kind -> run id of the model runs now RUNNING under a retrain."""
    experiment = client.get_experiment_by_name("tailor-retrain")
    if experiment is None:
        return {}
    runs = client.search_runs([experiment.experiment_id],
                              "attributes.status = 'RUNNING' and tags.`tailor.model` != ''")
    return {r.data.tags["tailor.model"]: r.info.run_id for r in runs
            if r.data.tags.get("mlflow.parentRunId")}


def test_a_retrain_survives_its_dask_workers_being_killed(tmp_path: Path) -> None:
    env = _env() | {"PREFECT_HOME": str(tmp_path / "prefect-home")}
    data = tmp_path / "data"
    subprocess.run([TAILOR, "data", "generate", "--out", str(data), "--customers", "500",
                    "--products", "100"], env=env, check=True, capture_output=True)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sets = [a for item in [f"tracking.mlflow_tracking_uri={store}",
                           f"tracking.optuna_storage=sqlite:///{tmp_path / 'optuna.db'}",
                           *SETTINGS] for a in ("--set", item)]
    train = subprocess.Popen([TAILOR, "train", "--data", str(data), "--out",
                              str(tmp_path / "out"), *sets], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = MlflowClient(store)
    victims: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 600
        while not victims and train.poll() is None and time.monotonic() < deadline:
            running = _running_model_runs(client) if (tmp_path / "mlflow.db").exists() else {}
            workers = _dask_workers(train.pid)
            if len(running) >= 2 and workers:
                for worker in workers:
                    worker.kill()
                psutil.wait_procs(workers, timeout=10)
                # what is RUNNING right after the kill died with the workers (a run that
                # finished in between is not a victim; new workers need seconds to start)
                victims = {k: r for k, r in _running_model_runs(client).items()
                           if r == running.get(k)}
            time.sleep(0.5)
        output, _ = train.communicate(timeout=900)
    finally:
        if train.poll() is None:
            train.kill()
    assert victims, f"no model run was running when the workers were killed:\n{output[-3000:]}"
    assert train.returncode == 0, output[-4000:]

    experiment = client.get_experiment_by_name("tailor-retrain")
    assert client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'") == []
    (parent,) = client.search_runs([experiment.experiment_id],
                                   "tags.`tailor.flow` = 'train-models'")
    assert parent.info.status == "FINISHED"
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    for kind in KINDS:
        mine = [r for r in children if r.data.tags.get("tailor.model") == kind]
        assert [r.info.status for r in mine].count("FINISHED") == 1, (kind, mine)
        versions = client.search_model_versions(f"name = 'tailor-{kind}'")
        assert len(versions) == 1, (kind, [v.version for v in versions])
        assert client.get_run(versions[0].run_id).info.status == "FINISHED"
        assert client.get_model_version_by_alias(f"tailor-{kind}", "champion")
    for kind, run_id in victims.items():
        lost = client.get_run(run_id)
        assert lost.info.status == "KILLED", (kind, lost.info.status)
        assert "superseded" in lost.data.tags.get(RECONCILED, ""), (kind, lost.data.tags)
